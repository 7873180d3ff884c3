/**
 * What the downlink needs from the database, engine-neutral: commands queued for terminals (their delivery, results
 * and expiry), and the retained down messages a restarted hub publishes again (desired configs, update targets).
 * `store.sqlite.ts` and `store.postgres.ts` implement it; `createCommandStore` picks by engine.
 *
 * A command's status only moves forward: pending (queued) → sent (published to the terminal) → ok | error (its
 * result) | expired. `markSent`, `expire` and `recordResults` each act only on a command still pending or sent, so
 * whichever of them comes first wins and a late one changes nothing.
 */
import type { Engine, Tx } from '../db/engine.ts';
import { PostgresCommandStore } from './store.postgres.ts';
import { SqliteCommandStore } from './store.sqlite.ts';

export interface CommandRow {
  id: string;
  terminalId: string;
  name: string;
  /** JSON text, as validated and stored. */
  args: string;
  issuedAt: number;
  expiresAt: number;
  status: string;
  sentAt: number | null;
  completedAt: number | null;
  /** JSON text or null. */
  result: string | null;
  /** JSON text or null. */
  error: string | null;
  createdBy: string;
}

export type NewCommand = Pick<CommandRow, 'id' | 'terminalId' | 'name' | 'args' | 'issuedAt' | 'expiresAt' | 'createdBy'>;

/** A `commands/result` message as the ingest writer stores it (the stream head of store/ingest.ts, then the result). */
export interface CommandResultRow {
  terminalId: string;
  epoch: string;
  seq: number;
  ts: number;
  receivedAt: number;
  skewed: boolean;
  commandId: string;
  status: 'ok' | 'error';
  /** JSON text or null. */
  result: string | null;
  /** JSON text or null. */
  error: string | null;
}

export interface DesiredConfigRow {
  terminalId: string;
  version: number;
  /** JSON text. */
  config: string;
}

export interface UpdateTargetRow {
  terminalId: string;
  /** JSON text: the update/target message. */
  payload: string;
}

export interface CommandStore {
  // ---- commands queued through the API (commands/service.ts)
  /** Stores a new pending command; returns it as stored. */
  insert(c: NewCommand, tx?: Tx): Promise<CommandRow>;
  get(id: string): Promise<CommandRow | undefined>;
  /** A terminal's commands still pending or sent and not expired at `now`, oldest first (sent again on subscribe). */
  undelivered(terminalId: string, now: number): Promise<CommandRow[]>;
  /** pending → sent; false when it was not pending any more. */
  markSent(id: string, at: number, tx?: Tx): Promise<boolean>;
  /** pending or sent with `expires_at <= now` → expired; returns those. */
  expire(now: number, tx?: Tx): Promise<{ id: string; terminalId: string }[]>;
  /** A terminal's commands newest first (issued_at, then id, descending), strictly before `before` when given. */
  listByTerminal(terminalId: string, before: { at: number; id: string } | null, limit: number): Promise<CommandRow[]>;

  // ---- results: written by the ingest writer (ingest/command-result.ts) inside its batch, so pass its `tx`
  /**
   * Stores each result once (keyed on terminal, epoch, seq: a redelivered message stores nothing) and gives its
   * command the final status, result and completion time, only when the command belongs to the reporting terminal
   * and is still pending or sent. Returns, per input row in order, whether it was new. Of two new results for one
   * command the first completes it. On SQLite the writes are done synchronously within the call (before it returns
   * its promise), as a batch job of the SQLite writer needs.
   */
  recordResults(rows: CommandResultRow[], tx?: Tx): Promise<boolean[]>;

  // ---- retained down messages (re-published at start)
  allDesired(): Promise<DesiredConfigRow[]>;
  allTargets(): Promise<UpdateTargetRow[]>;
  /** The update targets of those of `terminalIds` that have one (another hub set them: cluster/feed-hub.ts). */
  targets(terminalIds: readonly string[]): Promise<UpdateTargetRow[]>;
  upsertTarget(terminalId: string, payload: string, at: number, tx?: Tx): Promise<void>;
}

export function createCommandStore(engine: Engine): CommandStore {
  return engine.kind === 'sqlite' ? new SqliteCommandStore(engine.db) : new PostgresCommandStore(engine.pg.sql);
}
