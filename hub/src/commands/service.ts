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
import type { Tx } from '../db/engine.ts';
import { badRequest, conflict } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { FleetStore } from '../fleet/store.ts';
import type { CommandRow, CommandStore } from './store.ts';

export const MAX_COMMAND_TTL_S = 7 * 86400;

export class Downlink {
  constructor(
    private readonly store: CommandStore,
    private readonly registry: FleetStore,
    private readonly broker: Broker,
    private readonly log: Logger,
  ) {}

  /** Re-publishes every retained down message the database holds (after a restart the broker's memory is empty). */
  async restoreRetained(): Promise<number> {
    let n = 0;
    for (const r of await this.store.allDesired()) {
      await this.broker.publish(r.terminalId, 'config/desired', { v: 1, version: r.version, config: JSON.parse(r.config) });
      n++;
    }
    for (const r of await this.store.allTargets()) {
      await this.broker.publish(r.terminalId, 'update/target', JSON.parse(r.payload));
      n++;
    }
    return n;
  }

  onSubscribed(terminalId: string, kind: TopicKind): void {
    if (kind !== 'commands') return;
    this.store.undelivered(terminalId, Date.now()).then(
      (rows) => {
        for (const row of rows) this.send(row);
      },
      (err: unknown) => this.log.error({ err, terminalId }, 'reading undelivered commands failed'),
    );
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
    this.broker
      .publish(row.terminalId, 'commands', msg)
      .then(() => this.store.markSent(row.id, Date.now()))
      .catch((err: unknown) => this.log.error({ err, terminalId: row.terminalId, command: row.id }, 'command publish failed'));
  }

  /** Validates and stores a command and sends it at once when its terminal is connected; returns it as stored. */
  async createCommand(terminalId: string, name: string, args: Record<string, unknown>, ttlSeconds: number, by: string): Promise<CommandRow> {
    const row = await this.queueCommand(terminalId, name, args, ttlSeconds, by);
    this.deliver(row);
    return row;
  }

  /**
   * Validates and stores a command without sending it: for a caller that stores it in its own transaction (`tx`,
   * with the audit entry) and calls `deliver` once that committed, so no terminal runs a command that was rolled back.
   */
  async queueCommand(terminalId: string, name: string, args: Record<string, unknown>, ttlSeconds: number, by: string, tx?: Tx): Promise<CommandRow> {
    const t = await this.registry.requireTerminal(terminalId);
    if (t.state !== 'active') throw conflict(`terminal ${terminalId} is decommissioned`, undefined, { code: 'error.terminal-decommissioned', params: { terminal: terminalId } });
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
    return this.store.insert(
      { id, terminalId, name, args: JSON.stringify(parsed.data), issuedAt: now, expiresAt: now + ttlSeconds * 1000, createdBy: by },
      tx,
    );
  }

  /** Sends a stored command now if its terminal is connected (otherwise it goes when the terminal subscribes). */
  deliver(row: CommandRow): void {
    if (this.broker.live.has(row.terminalId)) this.send(row);
  }

  command(id: string): Promise<CommandRow | undefined> {
    return this.store.get(id);
  }

  listCommands(terminalId: string, before: { at: number; id: string } | null, limit: number): Promise<CommandRow[]> {
    return this.store.listByTerminal(terminalId, before, limit);
  }

  expire(now = Date.now()): Promise<{ id: string; terminalId: string }[]> {
    return this.store.expire(now);
  }

  async setUpdateTarget(terminalId: string, target: UpdateTarget): Promise<void> {
    await this.registry.requireTerminal(terminalId);
    const parsed = updateTargetSchema.parse(target);
    await this.store.upsertTarget(terminalId, JSON.stringify(parsed), Date.now());
    await this.broker.publish(terminalId, 'update/target', parsed);
  }
}
