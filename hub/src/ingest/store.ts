/**
 * The write path's store: what the batch writer's jobs record, on either engine (store.sqlite.ts, store.postgres.ts).
 *
 * A job runs synchronously inside its batch's transaction and records rows and state-row changes here; it never
 * names SQL. The two engines differ in WHEN the rows are written:
 * - SQLite: at once, with today's prepared statements (better-sqlite3 is synchronous; a commit costs ~0.1 ms
 *   whatever it holds), so a job sees its insert's result as it records it.
 * - PostgreSQL: a statement is a round trip, so the records are buffered per batch and written in bulk at its end
 *   (`beforeCommit`): one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING` per table, one
 *   `UPDATE … FROM unnest(…)` per shape of state-row change. The state rows the jobs read are loaded before they run
 *   (`load`, one query per batch for the terminals not cached).
 *
 * So a stream message's follow-up (counters, latest state, change event) is given as `then.stored(fresh)`: called once it
 * is known whether the row was new (SQLite: at once; PostgreSQL: after the batch's inserts, in record order, still
 * inside the transaction, and what it records is written before the commit). A resent message (same terminal, epoch
 * and seq) is stored once and `then.stored(false)` on both engines.
 */
import type { ServiceId } from '@kiosk-fleet/protocol';
import type { Engine, Tx } from '../db/engine.ts';
import { SqliteIngestStore } from './store.sqlite.ts';
import { PostgresIngestStore } from './store.postgres.ts';
import type { TxContext, WriterHooks } from './writer.ts';

export interface StateRow {
  presence: 'unknown' | 'online' | 'offline' | 'stale';
  presenceReason: string | null;
  presenceSince: number | null;
  flapping: number;
  bootId: string | null;
  connSeq: number | null;
  intervalS: number | null;
  lastSeenAt: number | null;
  lastTelemetryTs: number | null;
  peripherals: string | null;
  /** The outbox epoch whose telemetry counters the row holds (tel_* columns), as of the current batch. */
  telEpoch: string | null;
  /** `peripherals` parsed, kept with the cached row so each sample does not parse it again, and its key count. */
  parsedPeripherals?: Record<string, { status: string; since: number; code?: string | undefined; message?: string | undefined }>;
  peripheralCount?: number;
  /** The services of the terminal's last sample and what they were derived from (ingest/telemetry.ts). */
  services?: ServicesMemo;
  /** PostgreSQL: the times of the terminal's presence transitions in the flap window (counted without a query). */
  recent?: number[];
  /**
   * PostgreSQL: the highest stored telemetry seq of the epoch of the newest stored sample (the resend check,
   * store.postgres.ts `resent`); null before the terminal's first sample.
   */
  hw?: { epoch: string; max: number } | null;
  /** The hub holding the terminal's connection and that connection's generation (presence/service.ts). */
  connHub?: string | null;
  connGen?: number | null;
}

export interface ServicesMemo {
  statuses: Record<string, string>;
  count: number;
  appUp: boolean;
  list: readonly ServiceId[];
}

export interface StreamRef {
  terminalId: string;
  epoch: string;
  seq: number;
  ts: number;
  receivedAt: number;
  skewed: boolean;
}

/** The stream tables other than telemetry, and the values of a row after the stream head (store.sqlite.ts `head`). */
export interface StreamRows {
  events: [kind: string, severity: string, peripheral: string | null, code: string | null, message: string | null, data: string | null];
  'config/reported': [version: number, status: string, reason: string | null];
  'commands/result': [commandId: string, status: string, result: string | null, error: string | null];
  'update/status': [rolloutId: string | null, releaseId: string | null, version: string | null, state: string, progress: number | null, error: string | null];
}
export type RowStream = keyof StreamRows;

export interface TransitionRow {
  terminalId: string;
  at: number;
  fromState: string;
  toState: string;
  reason: string;
  bootId: string | null;
  connSeq: number | null;
  /** The connection's remote address, on transitions that a connection made (connected, takeover). */
  address?: string | null;
}

/** What an agent's birth message sets in its terminal's state row. */
export interface Birth {
  bootId: string;
  connSeq: number;
  intervalS: number;
  agentVersion: string;
  appVersion: string | null;
  uptime: number | null;
  lastExit: string | null;
  clockSkewMs: number;
  at: number;
}

/** A recorded row's follow-up: told once whether the row was new (an object, not a closure: one per message). */
export interface Stored {
  stored(fresh: boolean): void;
}

export type SecurityColumn = 'flooding' | 'credentialConflict';

export interface IngestStore {
  readonly engine: Engine['kind'];

  // --- the batch's life (the writer's hooks) ---
  /** Before a batch's jobs run: the state rows (and types) of `terminals` made and cached. SQLite: nothing to do. */
  load(terminals: Iterable<string>, tx: Tx): Promise<void>;
  /**
   * Synchronously before the batch of `tx` runs its jobs: what they record belongs to it (PostgreSQL runs several
   * batches at once, on disjoint terminals). SQLite: nothing to do.
   */
  enter(tx: Tx): void;
  /** Inside the batch's transaction after its jobs: what they recorded, written. */
  beforeCommit(tx: Tx): Promise<void>;
  /**
   * After a failed transaction (`tx`, when it began): nothing it recorded survives, its terminals' cached rows are
   * reloaded from what was committed.
   */
  rollback(tx?: Tx): void;
  /** Whether `err` says the database cannot be reached (connection refused, closed, server shutting down). */
  unavailable(err: unknown): boolean;
  /** Whether `err` is a value the database refuses (writer.ts `poison`: found, acknowledged and dropped). */
  poison(err: unknown): boolean;

  // --- the cache of terminal_state rows (read by jobs, synchronously) ---
  /** The terminal's state row; SQLite reads it on a miss, PostgreSQL has it once `load` ran for the terminal. */
  state(id: string): StateRow | undefined;
  /** `state`, making the row when there is none. */
  ensureState(id: string): StateRow;
  /** The cached row only, never a read (outside a batch: is a will stale?). SQLite reads on a miss. */
  peek(id: string): StateRow | undefined;
  /** Forget a terminal's cached state (after writes made outside the cache, e.g. the bulk offline at a start). */
  forget(id: string): void;
  terminalType(id: string): string | undefined;

  // --- rows (stored once per terminal, epoch and seq) ---
  /** A telemetry sample, `sample` the compact row of telemetry-codec.ts `encodeSample`. */
  insertTelemetry(tx: TxContext, r: StreamRef, sample: unknown[], then: Stored): void;
  insertStream<S extends RowStream>(stream: S, r: StreamRef, values: StreamRows[S], then: Stored): void;
  /** Events stored for the terminal since `since` (receive time): the daily event cap after a restart. */
  eventsReceivedSince(terminalId: string, since: number, tx?: Tx): Promise<number>;

  // --- per-batch deltas of the state row and the counters (written once per terminal and batch) ---
  countTelemetry(r: StreamRef, st: StateRow): void;
  bumpStream(r: StreamRef, stream: string): void;
  touch(id: string, at: number): void;
  /** The latest-sample columns, made only for the sample that wins (the newest call per terminal and batch). */
  setLatest(id: string, args: () => unknown[]): void;
  /** A command's final status (only from pending or sent; a terminal completes only its own commands). */
  commandDone(terminalId: string, commandId: string, status: string, result: string | null, error: string | null, at: number): void;
  /** The highest applied / rejected config version a terminal reported (never lowered by a replay). */
  configSync(terminalId: string, version: number, status: 'applied' | 'rejected', reason: string | null, at: number): void;

  // --- presence and security, inside a batch ---
  transition(t: TransitionRow): void;
  /** Transitions of the terminal after `since`, this batch's included. */
  flapCount(id: string, st: StateRow, since: number): number;
  setPresence(id: string, presence: string, reason: string, since: number, flapping: number): void;
  birth(id: string, b: Birth): void;
  /** The reason of the terminal's last offline transition, when it was a guess (connection-lost, hub-restart, hub-lost). */
  refineLastOffline(id: string, reason: string): void;
  setLastAddress(id: string, address: string): void;
  /** The hub and connection generation now holding the terminal's connection (kept in the cached row too). */
  setConnection(id: string, hubId: string, gen: number): void;
  setSecurity(id: string, column: SecurityColumn, json: string | null): void;
}

export interface IngestStoreOptions {
  /** The presence flap window (PostgreSQL keeps the transitions' times of that window with each cached row). */
  flapWindowMs: number;
}

export function createIngestStore(engine: Engine, opts: IngestStoreOptions): IngestStore {
  return engine.kind === 'sqlite' ? new SqliteIngestStore(engine.db) : new PostgresIngestStore(engine.pg.sql, opts);
}

/** The writer's hooks for `store`: load the batch's state rows (PostgreSQL), write what its jobs recorded, forget a failed batch. */
export function ingestHooks(store: IngestStore): WriterHooks {
  const hooks: WriterHooks = {
    beforeCommit: (tx) => store.beforeCommit(tx),
    afterRollback: (tx) => store.rollback(tx),
    unavailable: (err) => store.unavailable(err),
    poison: (err) => store.poison(err),
  };
  if (store.engine === 'postgres') {
    hooks.beforeJobs = (ids, tx) => store.load(ids, tx);
    hooks.enter = (tx) => store.enter(tx);
  }
  return hooks;
}
