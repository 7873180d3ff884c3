/**
 * What the hub sends to terminals. The database is the source of truth: Aedes' default persistence keeps retained
 * messages in memory only, so at start every desired config and update target is published (retained) again from
 * the database, and commands wait in the database until the terminal subscribes or they expire. Desired configs
 * are computed and written by config-layers (src/config-layers); this module only re-sends them at start.
 */
import crypto from 'node:crypto';
import {
  COMMAND_NAMES,
  commandArgsSchemas,
  updateTargetSchema,
  type Command,
  type TopicKind,
  type UpdateTarget,
} from '@kiosk-fleet/protocol';
import { z } from 'zod';
import type { Broker } from '../broker/broker.ts';
import { badRequest, conflict } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { DownlinkStore, CommandRow } from '../store/downlink.ts';
import type { FleetStore } from '../fleet/store.ts';

export const MAX_COMMAND_TTL_S = 7 * 86400;

export class Downlink {
  constructor(
    private readonly store: DownlinkStore,
    private readonly registry: FleetStore,
    private readonly broker: Broker,
    private readonly log: Logger,
  ) {}

  /** Re-publishes every retained down message the database holds (after a restart the broker's memory is empty). */
  async restoreRetained(): Promise<number> {
    let n = 0;
    for (const r of this.store.s.allDesired.all() as { terminalId: string; version: number; config: string }[]) {
      await this.broker.publish(r.terminalId, 'config/desired', { v: 1, version: r.version, config: JSON.parse(r.config) });
      n++;
    }
    for (const r of this.store.s.allTargets.all() as { terminalId: string; payload: string }[]) {
      await this.broker.publish(r.terminalId, 'update/target', JSON.parse(r.payload));
      n++;
    }
    return n;
  }

  onSubscribed(terminalId: string, kind: TopicKind): void {
    if (kind === 'commands') this.sendUndelivered(terminalId);
  }

  private sendUndelivered(terminalId: string): void {
    const rows = this.store.s.undelivered.all(terminalId, Date.now()) as CommandRow[];
    for (const row of rows) this.send(row);
  }

  private send(row: CommandRow): void {
    const msg: Command = {
      v: 1,
      id: row.id,
      name: row.name,
      args: JSON.parse(row.args) as Record<string, unknown>,
      issuedAt: new Date(row.issuedAt).toISOString(),
      expiresAt: new Date(row.expiresAt).toISOString(),
    };
    this.broker.publish(row.terminalId, 'commands', msg).then(
      () => this.store.s.markSent.run(Date.now(), row.id),
      (err: unknown) => this.log.error({ err, terminalId: row.terminalId }, 'command publish failed'),
    );
  }

  async createCommand(terminalId: string, name: string, args: Record<string, unknown>, ttlSeconds: number, by: string): Promise<CommandRow> {
    const t = await this.registry.requireTerminal(terminalId);
    if (t.state !== 'active') throw conflict(`terminal ${terminalId} is decommissioned`);
    if (!(COMMAND_NAMES as readonly string[]).includes(name)) {
      throw badRequest('invalid-command', `unknown command ${JSON.stringify(name)}`, { path: ['name'] });
    }
    const parsed = (commandArgsSchemas as Record<string, z.ZodType>)[name]!.safeParse(args);
    if (!parsed.success) {
      throw badRequest('invalid-command', z.prettifyError(parsed.error), {
        issues: parsed.error.issues.map((i) => ({ path: ['args', ...i.path.map(String)], message: i.message })),
      });
    }
    const now = Date.now();
    const id = `c-${crypto.randomUUID()}`;
    this.store.s.insertCommand.run(id, terminalId, name, JSON.stringify(parsed.data), now, now + ttlSeconds * 1000, by);
    const row = this.store.s.command.get(id) as CommandRow;
    if (this.broker.live.has(terminalId)) this.send(row);
    return row;
  }

  command(id: string): CommandRow | undefined {
    return this.store.s.command.get(id) as CommandRow | undefined;
  }

  listCommands(terminalId: string, before: { at: number; id: string } | null, limit: number): CommandRow[] {
    const at = before?.at ?? Number.MAX_SAFE_INTEGER;
    return this.store.s.commands.all(terminalId, at, at, before?.id ?? '\uffff', limit) as CommandRow[];
  }

  expire(now = Date.now()): { id: string; terminalId: string }[] {
    return this.store.s.expire.all(now, now) as { id: string; terminalId: string }[];
  }

  async setUpdateTarget(terminalId: string, target: UpdateTarget): Promise<void> {
    await this.registry.requireTerminal(terminalId);
    const parsed = updateTargetSchema.parse(target);
    this.store.s.upsertTarget.run(terminalId, JSON.stringify(parsed), Date.now());
    await this.broker.publish(terminalId, 'update/target', parsed);
  }
}
