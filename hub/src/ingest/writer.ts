/**
 * The batch writer: every write that ingest makes goes through here, one transaction per batch.
 *
 * Invariants:
 * - A job's promise resolves only after the transaction holding it committed (that is what PUBACK waits for).
 * - A batch is flushed `flushMs` after its first job, or at the end of the event-loop turn in which it reached
 *   EAGER_BATCH jobs, or as soon as it holds `batchSize` (group commit: batches as large as the load under load,
 *   since messages gather while a batch is written). The wait (5 ms by default) is for light load: a commit costs
 *   about 0.1 ms whatever it holds, and when messages trickle in (19,000 terminals reporting every 30 s, a reconnect
 *   storm's logins each writing presence) each turn held one or two, so each paid a commit of its own; the wait
 *   halved the hub's CPU per reconnected terminal (`pnpm bench reconnect`: 1.65 → 0.8 ms). A batch that is already
 *   EAGER_BATCH strong shares its commit well enough and waits no more: one agent replaying its outbox (256 in
 *   flight) would otherwise wait 5 ms per round trip (`pnpm bench agent`: 14,047 msgs/s against 17,851 without the
 *   wait).
 * - One batch per event-loop turn: what is left waits for the next turn, so a deep queue (terminals replaying their
 *   outboxes after a restart) never holds the event loop, and the API, for more than one batch. `flush()` (at a stop)
 *   writes everything.
 * - The queue holds at most `queueLimit` jobs. A job arriving at a full queue waits for room before it is queued, so
 *   its PUBACK is delayed; Aedes reads a connection's next chunk only after every packet of the previous chunk was
 *   handled, so a slow database slows the terminals' sending (TCP back-pressure) instead of growing memory.
 * - If a batch fails as a whole (disk full, I/O error), each job is retried alone so one bad job cannot fail its
 *   neighbours; a job that still fails is rejected (its message is not acknowledged and the terminal resends it).
 *   When a retry fails because the database cannot be reached (`hooks.unavailable`), the batch's remaining jobs are
 *   rejected without a try each: a 1,000-job batch would otherwise wait out 1,000 connection attempts.
 * - Change notifications are emitted only after the commit.
 * - SQLite: one batch at a time. The batch transaction takes `sqliteWriteLock(db)` (db/engine.ts), so a cross-domain
 *   `transaction()` never interleaves with it, and it settles in microtasks (everything underneath is synchronous).
 * - PostgreSQL: up to `parallel` batches at once (default PG_PARALLEL), each one transaction on its own pool
 *   connection; jobs record rows (ingest/store.ts) that the store writes in bulk before the commit, so a batch costs a
 *   handful of round trips, not one per message, and while one batch waits for its round trips and its commit's
 *   fsync the next is written. Batches in flight hold disjoint sets of terminals: a job whose terminal is in a batch
 *   in flight waits in the queue (so do that terminal's later jobs: a terminal's messages commit in order), so two
 *   transactions never update one terminal's state row (no row-lock waits, no deadlocks). A job that names no
 *   terminal (start, stop, stale sweep, reaper: they touch any terminal) is a barrier: it is written only when
 *   nothing else is in flight, and nothing queued after it passes it. A batch that fails because the
 *   database went away (restart, network) is retried job by job like any failed batch: postgres.js reconnects by
 *   itself, so the retry either commits (acknowledged) or fails (not acknowledged).
 */
import { transaction, type Engine, type Tx } from '../db/engine.ts';
import type { Metrics } from '../metrics.ts';
import type { Logger } from '../log.ts';

export interface Change {
  type: 'presence' | 'telemetry' | 'event' | 'command' | 'terminal' | 'config' | 'update' | 'alert' | 'rollout' | 'security';
  /** Empty for a change that is about a node (a station's alert): then `nodeId` says where. */
  terminalId: string;
  /** The node a change belongs to when it is not a terminal's (the live stream scopes by it). */
  nodeId?: string;
  at: number;
  data?: unknown;
}

export interface TxContext {
  /** Hub receive time of this batch's messages is per job; `now` is the commit's wall clock. */
  now: number;
  emit(change: Change): void;
}

/**
 * A write: `run` records what it writes (ingest/store.ts), synchronously, inside the batch's transaction. A bare
 * function is a job with only `run`.
 */
export interface JobSpec {
  /**
   * The terminal whose state row `run` reads: loaded with the batch's others before any job runs (PostgreSQL). A job
   * that names a terminal touches no other terminal's rows, in `prepare` (which then returns nothing) as in `run`:
   * the PostgreSQL writer runs it beside batches holding other terminals. A job that names none is a barrier.
   */
  terminalId?: string;
  /**
   * Reads (or set-wise writes) a rare job needs before the batch's jobs run: the start's, the stop's and the stale
   * sweep's. Runs in the batch's transaction; returns more terminals whose state rows `run` reads.
   */
  prepare?(tx: Tx, ctx: TxContext): Promise<Iterable<string> | void>;
  run(ctx: TxContext): void;
}

export type Job = JobSpec | ((tx: TxContext) => void);

interface Pending {
  job: Job;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Called inside every transaction: `beforeJobs` with the terminals of its jobs before they run (load their state),
 * `beforeCommit` after them (deferred per-batch writes); `afterRollback` after a failed one. Async since the
 * PostgreSQL port (a synchronous hook still fits).
 */
export interface WriterHooks {
  beforeJobs?(terminals: Set<string>, tx: Tx): Promise<void> | void;
  /** Synchronously before the jobs of the batch of `tx` run (a store that keeps several batches apart switches here). */
  enter?(tx: Tx): void;
  beforeCommit(tx: Tx): Promise<void> | void;
  /** `tx`: the failed transaction, when it began. */
  afterRollback(tx?: Tx): void;
  /**
   * Whether an error is a value the database refuses (PostgreSQL's class 22, e.g. U+0000 in text): the failing job is
   * found by halving its batch, then acknowledged and dropped (counted as rejected, reason `unstorable`) instead of
   * being refused again at every resend.
   */
  poison?(err: unknown): boolean;
  /** Whether an error says the database cannot be reached (then a failed batch's other jobs are not tried alone). */
  unavailable?(err: unknown): boolean;
}

/** A batch this large is written at the end of its turn, without waiting for `flushMs`. */
export const EAGER_BATCH = 64;

/**
 * Batches in flight on PostgreSQL. Issue 18 measured COPY/unnest inserts 46k/36k rows/s on one connection, 71k/58k on
 * two; three leaves the pool (db/open-engine.ts) connections for the API while ingest is at full speed.
 */
export const PG_PARALLEL = 3;

export interface WriterOptions {
  batchSize: number;
  flushMs: number;
  queueLimit: number;
  /** Batches in flight at once: 1 on SQLite (one connection); PG_PARALLEL on PostgreSQL unless given. */
  parallel?: number;
}

export class BatchWriter {
  private queue: Pending[] = [];
  private readonly waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private closed = false;
  /** The batch being written (one at a time), or `flush()`'s. */
  private running: Promise<void> | null = null;
  /** Batches in flight at once (1: the single-batch path, as on SQLite). */
  private readonly parallel: number;
  /** The parallel path's batches in flight, and the terminals they hold. */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly busy = new Set<string>();
  /** A barrier batch is in flight: nothing else starts. */
  private exclusive = false;
  /**
   * The last look through the queue found only terminals in flight: none is looked for again before a batch ends
   * (at 100 terminals every one is in the batch in flight, and each turn would scan the queue for nothing).
   */
  private starved = false;

  constructor(
    private readonly engine: Engine,
    private readonly opts: WriterOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly onChanges: (changes: Change[]) => void,
    private readonly hooks: WriterHooks = { beforeCommit: () => undefined, afterRollback: () => undefined },
  ) {
    this.parallel = engine.kind === 'sqlite' ? 1 : Math.max(1, opts.parallel ?? PG_PARALLEL);
  }

  get depth(): number {
    return this.queue.length;
  }

  /**
   * Since when the database has been unreachable (a batch and its retry failed on a connection error), null while
   * batches commit: what health reports as degraded.
   */
  unavailableSince: number | null = null;

  /** Told of each batch's outcome as far as the database's reachability goes (db/health.ts: `/health`). */
  health: { succeeded(): void; failed(err: unknown): void } | null = null;

  /**
   * Not `async`: an async function returning this promise would wrap it in another, resolved through two more
   * microtask hops per message (measured: 0.65 µs against 0.03 µs for the bare promise).
   */
  enqueue(job: Job): Promise<void> {
    if (this.closed) return Promise.reject(new Error('writer closed'));
    if (this.queue.length >= this.opts.queueLimit) return this.enqueueWhenRoom(job);
    return this.push(job);
  }

  private async enqueueWhenRoom(job: Job): Promise<void> {
    this.metrics.backpressureWaits.inc();
    // Room is made by a flush; each flush wakes the waiters, which re-check (a flush may free less than asked).
    while (this.queue.length >= this.opts.queueLimit) {
      if (this.closed) throw new Error('writer closed');
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.closed) throw new Error('writer closed');
    return this.push(job);
  }

  private push(job: Job): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.metrics.writeQueueDepth.set(this.queue.length);
      if (this.queue.length >= this.opts.batchSize || this.queue.length >= EAGER_BATCH) this.schedule(0);
      else this.schedule(this.opts.flushMs);
    });
  }

  private schedule(ms: number): void {
    if (this.immediate || this.running || this.inFlight.size >= this.parallel) return;
    if (ms <= 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      // Group commit: everything parsed in this turn of the event loop (every socket read that was ready) goes
      // into one transaction at the check phase. Under load the next batch gathers while this one is written.
      this.immediate = setImmediate(() => {
        this.immediate = null;
        this.flushOne();
      });
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.flushOne();
    }, ms);
  }

  /** Writes one batch; the rest, if any, from the next turn (after it committed). */
  private flushOne(): void {
    if (this.parallel > 1) return this.startBatches();
    if (this.running || this.queue.length === 0) return;
    this.running = this.writeBatches(1)
      .catch((err: unknown) => this.log.error({ err }, 'batch writer failed'))
      .finally(() => {
        this.running = null;
        // what is left (or came while this batch was written) goes in the next turn
        if (this.queue.length > 0) this.schedule(0);
      });
  }

  /**
   * The parallel path: starts batches while fewer than `parallel` are in flight and the queue holds jobs that may go
   * (`take`); each one's end starts more.
   */
  private startBatches(): void {
    while (!this.running && !this.exclusive && this.inFlight.size < this.parallel && this.queue.length > 0) {
      // Another batch beside those in flight only for a backlog of a full batch: a smaller queue waits for the next
      // commit and goes as one batch (group commit), since a batch's statements and round trips cost about the same
      // whatever it holds (a first cut that started one per EAGER_BATCH jobs wrote batches of ~100 and spent more
      // hub CPU per sample than the single writer did).
      if (this.inFlight.size > 0 && (this.starved || this.queue.length < this.opts.batchSize)) return;
      const taken = this.take();
      if (taken === null) {
        this.starved = true;
        return;
      }
      const { batch, terminals, barrier } = taken;
      if (barrier) this.exclusive = true;
      for (const id of terminals) this.busy.add(id);
      this.metrics.writeQueueDepth.set(this.queue.length);
      const p: Promise<void> = this.runBatch(batch)
        .catch((err: unknown) => this.log.error({ err }, 'batch writer failed'))
        .finally(() => {
          this.inFlight.delete(p);
          this.starved = false;
          for (const id of terminals) this.busy.delete(id);
          if (barrier) this.exclusive = false;
          for (const w of this.waiters.splice(0)) w();
          if (this.queue.length > 0) this.schedule(0);
        });
      this.inFlight.add(p);
    }
  }

  /**
   * The next batch of the parallel path, or null when none may start now. With nothing in flight: the queue's head,
   * as the single path takes it (a barrier among it makes the batch exclusive). Otherwise: queued jobs in order, up
   * to the first barrier, skipping the terminals of the batches in flight (and so every later job of theirs).
   */
  private take(): { batch: Pending[]; terminals: Set<string>; barrier: boolean } | null {
    const terminals = new Set<string>();
    if (this.inFlight.size === 0) {
      const batch = this.queue.splice(0, this.opts.batchSize);
      let barrier = false;
      for (const p of batch) {
        const id = barrierOrTerminal(p.job);
        if (id === null) barrier = true;
        else terminals.add(id);
      }
      return { batch, terminals, barrier };
    }
    const batch: Pending[] = [];
    const left: Pending[] = [];
    let i = 0;
    // a bounded look ahead: a queue of 20,000 is not scanned whole for every batch
    const scan = Math.min(this.queue.length, this.opts.batchSize * 4);
    for (; i < scan && batch.length < this.opts.batchSize; i++) {
      const p = this.queue[i]!;
      const id = barrierOrTerminal(p.job);
      if (id === null) break;
      if (this.busy.has(id)) left.push(p);
      else {
        terminals.add(id);
        batch.push(p);
      }
    }
    if (batch.length === 0) return null;
    this.queue = left.concat(this.queue.slice(i));
    return { batch, terminals, barrier: false };
  }

  /** Writes everything queued now, in batches of batchSize (at a stop), after the batch being written. */
  async flush(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    if (this.queue.length === 0) return;
    const all = this.writeBatches(Infinity);
    this.running = all;
    try {
      await all;
    } finally {
      this.running = null;
      if (this.queue.length > 0) this.schedule(0);
    }
  }

  /** Writes up to `max` batches, then wakes the jobs waiting for room. */
  private async writeBatches(max: number): Promise<void> {
    for (let n = 0; n < max && this.queue.length > 0; n++) {
      const batch = this.queue.splice(0, this.opts.batchSize);
      this.metrics.writeQueueDepth.set(this.queue.length);
      await this.runBatch(batch);
    }
    this.metrics.writeQueueDepth.set(this.queue.length);
    for (const w of this.waiters.splice(0)) w();
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const started = process.hrtime.bigint();
    const changes: Change[] = [];
    const now = Date.now();
    try {
      await this.attempt(batch, now, changes);
    } catch (err) {
      this.metrics.writeFailures.inc({ scope: 'batch' });
      this.log.error({ err, jobs: batch.length }, 'batch failed; retrying its jobs to find the failing ones');
      changes.length = 0;
      const s: Retry = { ok: [], down: null };
      // A data error (a value the database refuses) is one job's: halves find it in ~2·log2(n) transactions. Anything
      // else (disk full, I/O error, the database gone) may be every job's: one by one, as each may still commit.
      if (batch.length > 1 && this.hooks.poison?.(err)) await this.halves(batch, now, changes, s);
      else for (const p of batch) await this.retry([p], now, changes, s);
      batch = s.ok;
      this.unavailableSince = s.down === null ? null : (this.unavailableSince ?? now);
    }
    if (batch.length > 0) {
      this.unavailableSince = null;
      this.health?.succeeded();
    }
    this.metrics.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    this.metrics.batchSize.observe(batch.length);
    for (const p of batch) p.resolve();
    if (changes.length > 0) {
      try {
        this.onChanges(changes);
      } catch (err) {
        this.log.error({ err }, 'change listener failed');
      }
    }
  }

  /** `jobs` again in two halves, in order; a half that fails is split again, down to single jobs. */
  private async halves(jobs: Pending[], now: number, changes: Change[], s: Retry): Promise<void> {
    const mid = Math.ceil(jobs.length / 2);
    for (const part of [jobs.slice(0, mid), jobs.slice(mid)]) await this.retry(part, now, changes, s);
  }

  /** One retry of `part` (its own transaction): committed, split again, or its job settled as failed. */
  private async retry(part: Pending[], now: number, changes: Change[], s: Retry): Promise<void> {
    if (s.down !== null) {
      // the database is unreachable: the rest are not acknowledged either, without a try each
      for (const p of part) {
        this.metrics.writeFailures.inc({ scope: 'message' });
        p.reject(s.down);
      }
      return;
    }
    const mine: Change[] = [];
    try {
      await this.attempt(part, now, mine);
      changes.push(...mine);
      s.ok.push(...part);
      return;
    } catch (err) {
      if (this.hooks.unavailable?.(err)) {
        s.down = err;
        this.health?.failed(err);
        for (const p of part) {
          this.metrics.writeFailures.inc({ scope: 'message' });
          p.reject(err);
        }
        return;
      }
      if (part.length > 1) return this.halves(part, now, changes, s);
      const p = part[0]!;
      this.metrics.writeFailures.inc({ scope: 'message' });
      if (this.hooks.poison?.(err)) {
        // A value the database refuses fails the same way at every resend: acknowledged and dropped like an invalid
        // payload (broker.ts), so that it blocks neither its batch nor the terminal's outbox.
        this.metrics.rejected.inc({ reason: 'unstorable' });
        this.log.error({ err, terminalId: typeof p.job === 'function' ? undefined : p.job.terminalId }, 'message refused by the database as data: acknowledged, not stored');
        p.resolve();
        return;
      }
      p.reject(err);
    }
  }

  /** One transaction: prepare the rare jobs that need it, load the jobs' state rows, run the jobs, write, commit. */
  private async attempt(batch: Pending[], now: number, changes: Change[]): Promise<void> {
    const ctx: TxContext = { now, emit: (c) => changes.push(c) };
    let began: Tx | undefined;
    try {
      await this.transaction(batch, ctx, (tx) => (began = tx));
    } catch (err) {
      this.hooks.afterRollback(began);
      throw err;
    }
  }

  private transaction(batch: Pending[], ctx: TxContext, began: (tx: Tx) => void): Promise<void> {
    return transaction(this.engine, async (tx) => {
      began(tx);
      const load = this.hooks.beforeJobs;
      let ids: Set<string> | null = null;
      for (const p of batch) {
        const j = p.job;
        if (typeof j === 'function') continue;
        if (j.prepare) {
          const more = await j.prepare(tx, ctx);
          if (more && load) for (const id of more) (ids ??= new Set()).add(id);
        }
        if (j.terminalId !== undefined && load) (ids ??= new Set()).add(j.terminalId);
      }
      if (ids !== null && load) await load.call(this.hooks, ids, tx);
      this.hooks.enter?.(tx);
      for (const p of batch) {
        const j = p.job;
        if (typeof j === 'function') j(ctx);
        else j.run(ctx);
      }
      await this.hooks.beforeCommit(tx);
    });
  }

  /** Refuses new jobs and writes what is queued. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    // refused from now on (closing takes turns now: a job arriving meanwhile would land after the database closed)
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
    await this.flush();
  }
}

interface Retry {
  ok: Pending[];
  down: unknown;
}

/** The terminal whose state a job holds, or null for a barrier (a job that names no terminal may touch any). */
function barrierOrTerminal(j: Job): string | null {
  if (typeof j === 'function' || j.terminalId === undefined) return null;
  return j.terminalId;
}
