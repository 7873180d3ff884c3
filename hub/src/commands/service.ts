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
import type { ChangeFeed } from '../cluster/feed.ts';
import type { Tx } from '../db/engine.ts';
import { badRequest, conflict } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { FleetStore } from '../fleet/store.ts';
import type { CommandRow, CommandStore } from './store.ts';

export const MAX_COMMAND_TTL_S = 7 * 86400;

/** Feed channels (cluster/feed.ts) of what another hub must send to the terminals connected to it. */
export const COMMANDS_CHANNEL = 'commands';
export const TARGET_CHANNEL = 'target';

export class Downlink {
  /** The update target each terminal's retained message holds (as stored), to publish only what changed. */
  readonly #targets = new Map<string, string>();

  constructor(
    private readonly store: CommandStore,
    private readonly registry: FleetStore,
    private readonly broker: Broker,
    private readonly log: Logger,
    /** Other hubs hear of new commands and targets here: the terminal may be connected to one of them. */
    private readonly feed?: ChangeFeed,
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
      this.#targets.set(r.terminalId, r.payload);
      n++;
    }
    return n;
  }

  /**
   * A terminal subscribed: it gets what the database holds for it, whichever hub wrote it. Commands are read here;
   * the retained update target is checked against the table (another hub may have set it while this hub's feed was
   * down) and sent again only when it differs.
   */
  onSubscribed(terminalId: string, kind: TopicKind): void {
    if (kind === 'update/target') {
      this.refreshTargets([terminalId]).catch((err: unknown) => this.log.error({ err, terminalId }, 'reading the update target failed'));
      return;
    }
    if (kind !== 'commands') return;
    this.store.undelivered(terminalId, Date.now()).then(
      (rows) => {
        for (const row of rows) this.send(row);
      },
      (err: unknown) => this.log.error({ err, terminalId }, 'reading undelivered commands failed'),
    );
  }

  /**
   * Another hub queued commands for these terminals: those connected here get their pending ones (a sent one is the
   * other hub's, or comes again at the next subscribe).
   */
  async sendPending(terminalIds: readonly string[]): Promise<void> {
    const now = Date.now();
    for (const id of terminalIds) {
      if (!this.broker.live.has(id)) continue;
      for (const row of await this.store.undelivered(id, now)) if (row.status === 'pending') this.send(row);
    }
  }

  /** Every terminal connected here gets its pending commands (after the feed missed messages). */
  resyncCommands(): Promise<void> {
    return this.sendPending([...this.broker.live.keys()]);
  }

  /**
   * Publishes (retained) the stored update target of these terminals where it differs from what this hub's broker
   * holds: another hub set it (or this hub's copy missed it). All terminals when no ids are given.
   */
  async refreshTargets(terminalIds?: readonly string[]): Promise<void> {
    const rows = terminalIds ? await this.store.targets(terminalIds) : await this.store.allTargets();
    for (const r of rows) {
      if (this.#targets.get(r.terminalId) === r.payload) continue;
      this.#targets.set(r.terminalId, r.payload);
      await this.broker.publish(r.terminalId, 'update/target', JSON.parse(r.payload));
    }
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

  /**
   * Sends a stored command now if its terminal is connected here (otherwise it goes when the terminal subscribes), and
   * tells the other hubs: the terminal may be connected to one of them. Called after the command's commit.
   */
  deliver(row: CommandRow): void {
    if (this.broker.live.has(row.terminalId)) this.send(row);
    else this.feed?.publish(COMMANDS_CHANNEL, [row.terminalId]).catch(() => {});
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
    const payload = JSON.stringify(parsed);
    await this.store.upsertTarget(terminalId, payload, Date.now());
    this.#targets.set(terminalId, payload);
    await this.broker.publish(terminalId, 'update/target', parsed);
    this.feed?.publish(TARGET_CHANNEL, [terminalId]).catch(() => {});
  }
}
