/**
 * Ingest SQL: prepared statements on the hot path (one insert per message plus the stream counter and the latest
 * state), run inside the batch writer's transaction.
 */
import type { Db } from './db.ts';
import { SAMPLE_COLUMNS } from './telemetry-codec.ts';
import { EpochKeys } from './telemetry-keys.ts';

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
  /** `peripherals` parsed, kept with the cached row so each sample does not parse it again. */
  parsedPeripherals?: Record<string, { status: string; since: number; code?: string | undefined; message?: string | undefined }>;
}

export interface StreamRef {
  terminalId: string;
  epoch: string;
  seq: number;
  ts: number;
  receivedAt: number;
  skewed: boolean;
}

/**
 * Invariants: `cache` mirrors committed terminal_state rows plus the current batch's changes; the batch writer calls
 * `flushPending()` inside each transaction before it commits and `rollback()` when one fails (the cache is dropped
 * and reloaded). The latest-sample update, last-seen time and stream counters are written once per terminal (and stream)
 * per batch, not once per message: with a batch of 1000 samples from 100 terminals that is 300 statements instead
 * of 3000.
 */
export class IngestStore {
  readonly s;
  private readonly types = new Map<string, string>();
  private readonly cache = new Map<string, StateRow>();
  private readonly pendingTouch = new Map<string, number>();
  private readonly pendingLatest = new Map<string, () => unknown[]>();
  /** The integer keys of terminals' outbox epochs that telemetry rows carry. */
  readonly epochKeys: EpochKeys;
  private readonly pendingStreams = new Map<string, { id: string; stream: string; epoch: string; first: number; max: number; count: number; lastAt: number }>();

  constructor(readonly db: Db) {
    this.epochKeys = new EpochKeys(db);
    const head = 'terminal_id, epoch, seq, ts, received_at, skewed';
    const q = '?, ?, ?, ?, ?, ?';
    this.s = {
      // The compact row (store/telemetry-codec.ts): epoch key, ts, seq, receive delay, skewed, then SAMPLE_COLUMNS.
      telemetry: db.prepare(
        `INSERT OR IGNORE INTO telemetry_samples (epoch_id, ts, seq, recv_delay, skewed, ${SAMPLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ${SAMPLE_COLUMNS.replace(/\w+/g, '?')})`,
      ),
      event: db.prepare(
        `INSERT OR IGNORE INTO events (${head}, kind, severity, peripheral, code, message, data) VALUES (${q}, ?, ?, ?, ?, ?, ?)`,
      ),
      configReport: db.prepare(
        `INSERT OR IGNORE INTO config_reports (${head}, version, status, reason) VALUES (${q}, ?, ?, ?)`,
      ),
      commandResult: db.prepare(
        `INSERT OR IGNORE INTO command_results (${head}, command_id, status, result, error) VALUES (${q}, ?, ?, ?, ?)`,
      ),
      updateStatus: db.prepare(
        `INSERT OR IGNORE INTO update_status (${head}, rollout_id, release_id, version, state, progress, error) VALUES (${q}, ?, ?, ?, ?, ?, ?)`,
      ),
      stream: db.prepare(
        `INSERT INTO streams (terminal_id, stream, epoch, first_seq, max_seq, count, last_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (terminal_id, stream, epoch) DO UPDATE SET
           first_seq = min(first_seq, excluded.first_seq), max_seq = max(max_seq, excluded.max_seq),
           count = count + excluded.count, last_at = max(last_at, excluded.last_at)`,
      ),
      state: db.prepare(
        `SELECT presence, presence_reason AS presenceReason, presence_since AS presenceSince, flapping, boot_id AS bootId,
           conn_seq AS connSeq, interval_s AS intervalS, last_seen_at AS lastSeenAt, last_telemetry_ts AS lastTelemetryTs,
           peripherals FROM terminal_state WHERE terminal_id = ?`,
      ),
      ensureState: db.prepare('INSERT OR IGNORE INTO terminal_state (terminal_id) VALUES (?)'),
      touch: db.prepare('UPDATE terminal_state SET last_seen_at = max(coalesce(last_seen_at, 0), ?) WHERE terminal_id = ?'),
      latestTelemetry: db.prepare(
        `UPDATE terminal_state SET last_telemetry_at = ?, last_telemetry_ts = ?, host = ?, peripherals = ?, app = ?,
           services = ?, fault_count = ?, app_version = coalesce(?, app_version),
           last_seen_at = max(coalesce(last_seen_at, 0), ?) WHERE terminal_id = ?`,
      ),
      commandDone: db.prepare(
        "UPDATE commands SET status = ?, result = ?, error = ?, completed_at = ? WHERE id = ? AND terminal_id = ? AND status IN ('pending', 'sent')",
      ),
      terminalType: db.prepare('SELECT type FROM terminals WHERE id = ?'),
    };
  }

  terminalType(id: string): string | undefined {
    let t = this.types.get(id);
    if (t === undefined) {
      t = (this.s.terminalType.get(id) as { type: string } | undefined)?.type;
      if (t !== undefined) this.types.set(id, t);
    }
    return t;
  }

  state(id: string): StateRow | undefined {
    let st = this.cache.get(id);
    if (!st) {
      st = this.s.state.get(id) as StateRow | undefined;
      if (st) {
        if (this.cache.size > 50_000) this.cache.clear();
        this.cache.set(id, st);
      }
    }
    return st;
  }

  ensureState(id: string): StateRow {
    let st = this.state(id);
    if (!st) {
      this.s.ensureState.run(id);
      st = this.state(id)!;
    }
    return st;
  }

  /** Counts the message in its stream (written at the end of the batch); call only when its insert changed a row. */
  bumpStream(r: StreamRef, stream: string): void {
    const key = `${r.terminalId}\u0000${stream}\u0000${r.epoch}`;
    const p = this.pendingStreams.get(key);
    if (p) {
      p.first = Math.min(p.first, r.seq);
      p.max = Math.max(p.max, r.seq);
      p.count++;
      p.lastAt = Math.max(p.lastAt, r.receivedAt);
    } else {
      this.pendingStreams.set(key, { id: r.terminalId, stream, epoch: r.epoch, first: r.seq, max: r.seq, count: 1, lastAt: r.receivedAt });
    }
  }

  touch(id: string, at: number): void {
    this.pendingTouch.set(id, Math.max(this.pendingTouch.get(id) ?? 0, at));
  }

  /**
   * The latest-sample columns, written at the end of the batch (the newest call per terminal wins). Given as a
   * function, so they are made only for the sample that wins: an outbox replay sends a terminal's samples back to back,
   * up to a whole batch of them, and serialising each one's host, app and services for nothing cost about 1.5 µs.
   */
  setLatest(id: string, args: () => unknown[]): void {
    this.pendingLatest.set(id, args);
  }

  /** Inside the batch's transaction, before commit. */
  flushPending(): void {
    for (const [id, latest] of this.pendingLatest) {
      // One UPDATE per terminal: the last-seen time rides along with the latest sample.
      this.s.latestTelemetry.run(...latest(), this.pendingTouch.get(id) ?? 0, id);
      this.pendingTouch.delete(id);
    }
    for (const [id, at] of this.pendingTouch) this.s.touch.run(at, id);
    for (const p of this.pendingStreams.values()) this.s.stream.run(p.id, p.stream, p.epoch, p.first, p.max, p.count, p.lastAt);
    this.pendingLatest.clear();
    this.pendingTouch.clear();
    this.pendingStreams.clear();
  }

  /** After a failed transaction: nothing pending survives, and the cache is reloaded from what was committed. */
  rollback(): void {
    this.pendingStreams.clear();
    this.pendingLatest.clear();
    this.pendingTouch.clear();
    this.cache.clear();
  }

  /** Forget a terminal's cached state (after writes made outside ingest). */
  forget(id: string): void {
    this.cache.delete(id);
  }
}

export const head = (r: StreamRef) => [r.terminalId, r.epoch, r.seq, r.ts, r.receivedAt, r.skewed ? 1 : 0] as const;
