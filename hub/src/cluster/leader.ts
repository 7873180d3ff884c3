/**
 * Job leadership (issue 19, "jobs run once"): of the hubs on one PostgreSQL database, exactly one runs each
 * background job at a time. SQLite: the hub is a cluster of one and leads every job.
 *
 * How: one session advisory lock per job (`pg_try_advisory_lock(KEY_SPACE, jobKey)`), held on ONE dedicated
 * postgres.js connection (max 1, no idle timeout, no max_lifetime: a pooled or recycled connection ends its session
 * and silently drops the lock). Per job rather than one lock for all: a job is a unit of failure, and after
 * restarts the jobs end up on different hubs instead of all on the oldest one.
 *
 * Every `retryMs` (2.5 s) a round on that connection checks the locks this session holds (a session that changed
 * under us, i.e. a reconnect, holds none) and tries the jobs it does not lead. Safety against two leaders:
 * - The server frees a vanished hub's locks within seconds: the session asks for TCP keepalives (idle 3 s, then 3
 *   probes 1 s apart) and a 5 s `tcp_user_timeout`, so a dead machine or a cut link ends it after about 6 s.
 * - A hub stops acting as leader before the server can have freed its locks: `isLeader` is true only within
 *   `LEASE_MS` (4 s) of the last round that confirmed the locks, a round that does not answer within
 *   `ROUND_TIMEOUT_MS` drops everything, and a connection that closes (terminated, network) drops everything at
 *   once. The 'change' listeners (which stop the jobs) run BEFORE a new connection is made to campaign again.
 * So a successor (retrying every 2.5 s) leads within about 6 + 2.5 s of a leader's machine vanishing, and within one
 * retry when the leader's process dies (its kernel closes the socket, the server frees the locks at once).
 * A hub that lost its locks (its connection closed) leaves the next two rounds to the others, so a flapping
 * connection does not take the jobs straight back.
 */
import { EventEmitter } from 'node:events';
import postgres, { type Sql } from 'postgres';
import { Gauge, type Registry } from 'prom-client';
import type { Engine } from '../db/engine.ts';
import type { PostgresTarget } from '../db/postgres/open.ts';
import type { Logger } from '../log.ts';

/** The jobs that run on one hub of an installation at a time. */
export const JOBS = ['rollouts', 'alerts', 'webhooks', 'retention', 'reaper'] as const;
export type Job = (typeof JOBS)[number];

/** First key of every job lock: 'kfld' as an int32 (the schema migration's lock is 'kfmg', db/postgres/open.ts). */
export const KEY_SPACE = 0x6b666c64;

/** Second key of a job's lock: stable across versions (a new job takes the next number; never renumber). */
const JOB_KEYS: Record<Job, number> = { rollouts: 1, alerts: 2, webhooks: 3, retention: 4, reaper: 5 };

export const RETRY_MS = 2500;
/** A round that confirmed the locks counts this long; below the server's keepalive timeout (idle 3 + 3 × 1 s). */
export const LEASE_MS = 4000;
const ROUND_TIMEOUT_MS = 3000;
/** Server-side TCP settings of the leadership session, in seconds (tcp_user_timeout in ms). */
const KEEPALIVE = { tcp_keepalives_idle: '3', tcp_keepalives_interval: '1', tcp_keepalives_count: '3', tcp_user_timeout: '5000' };

export interface LeadershipOptions {
  engine: Engine;
  log: Logger;
  /** Names the session in pg_stat_activity (`application_name`), e.g. KF_HUB_ID. */
  hubId?: string;
  jobs?: readonly Job[];
  retryMs?: number;
  leaseMs?: number;
  metricsRegistry?: Registry | null;
}

export interface LeadershipChange {
  led: Job[];
  gained: Job[];
  lost: Job[];
}

export interface Leadership {
  on(event: 'change', listener: (c: LeadershipChange) => void): this;
  off(event: 'change', listener: (c: LeadershipChange) => void): this;
}

export class Leadership extends EventEmitter {
  readonly #o: LeadershipOptions;
  readonly #jobs: readonly Job[];
  readonly #retryMs: number;
  readonly #leaseMs: number;
  readonly #target: PostgresTarget | null;
  #sql: Sql | null = null;
  /** The backend pid of the session holding our locks: another pid means a new session, which holds none. */
  #pid: number | null = null;
  #held = new Set<Job>();
  #confirmedAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #round: Promise<void> | null = null;
  #stopped = false;
  /** A hub that just lost its jobs leaves the next rounds to the others (it does not grab them back at once). */
  #holdOffUntil = 0;
  readonly #gauge: Gauge | null;

  constructor(o: LeadershipOptions) {
    super();
    this.#o = o;
    this.#jobs = o.jobs ?? JOBS;
    this.#retryMs = o.retryMs ?? RETRY_MS;
    this.#leaseMs = o.leaseMs ?? LEASE_MS;
    this.#target = o.engine.kind === 'postgres' ? o.engine.pg.target : null;
    this.#gauge = o.metricsRegistry
      ? new Gauge({
          name: 'kf_job_leader',
          help: 'Background jobs this hub leads (1) or not (0): each runs on one hub of the installation at a time',
          labelNames: ['job'],
          registers: [o.metricsRegistry],
        })
      : null;
    for (const j of this.#jobs) this.#gauge?.set({ job: j }, 0);
  }

  /** Whether this hub runs `job` now. */
  isLeader(job: Job): boolean {
    if (!this.#target) return !this.#stopped;
    return this.#held.has(job) && Date.now() - this.#confirmedAt < this.#leaseMs;
  }

  /** The jobs this hub leads now (for `/api/v1/hubs`). */
  jobsLed(): Job[] {
    return this.#jobs.filter((j) => this.isLeader(j));
  }

  /** The first campaign: resolves once it is decided what this hub leads (on SQLite: everything, at once). */
  async start(): Promise<void> {
    this.#stopped = false;
    if (!this.#target) {
      this.#set(new Set(this.#jobs));
      return;
    }
    await this.#runRound();
    this.#schedule();
  }

  /** Gives every job up (its locks released for the next leader at once) and closes the connection. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#round;
    this.#set(new Set());
    const sql = this.#sql;
    this.#sql = null;
    if (sql) {
      await sql`select pg_advisory_unlock_all()`.catch(() => undefined);
      await sql.end({ timeout: 2 }).catch(() => undefined);
    }
  }

  #schedule(): void {
    if (this.#stopped || !this.#target) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#runRound().finally(() => this.#schedule());
    }, this.#retryMs);
    this.#timer.unref();
  }

  #runRound(): Promise<void> {
    this.#round = this.#campaign().catch((err: unknown) => this.#lose('round failed', err));
    return this.#round;
  }

  #connect(): Sql {
    const t = this.#target!;
    let sql!: Sql;
    sql = postgres(t.url, {
      max: 1,
      // never recycled: ending the session ends its locks (postgres.js' default max_lifetime is 30-60 min)
      idle_timeout: 0,
      max_lifetime: 0,
      connect_timeout: 5,
      keep_alive: 1,
      onnotice: () => {},
      connection: { application_name: `kiosk-fleet leader ${this.#o.hubId ?? ''}`.trim(), ...KEEPALIVE },
      onclose: () => {
        // the session is gone and its locks with it: stop leading now, not at the next round
        if (this.#sql === sql) this.#lose('leadership connection closed');
      },
    });
    return sql;
  }

  async #campaign(): Promise<void> {
    if (this.#stopped) return;
    this.#sql ??= this.#connect();
    const sql = this.#sql;
    const round = (async () => {
      const [me] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const pid = me!.pid;
      if (this.#pid !== null && pid !== this.#pid && this.#held.size > 0) {
        // a silent reconnect: this session holds nothing; stop before campaigning on it
        this.#lose('leadership session changed');
      }
      this.#pid = pid;
      const rows = await sql<{ objid: number }[]>`
        select objid::int4 as objid from pg_locks
        where locktype = 'advisory' and pid = ${pid} and classid = ${KEY_SPACE} and objsubid = 2 and granted`;
      const have = new Set(rows.map((r) => r.objid));
      const held = new Set(this.#jobs.filter((j) => have.has(JOB_KEYS[j])));
      const lost = [...this.#held].filter((j) => !held.has(j));
      if (lost.length > 0) {
        this.#o.log.warn({ jobs: lost }, 'job leadership lost: the lock is no longer held');
        this.#set(new Set(held));
      }
      const missing = this.#jobs.filter((j) => !held.has(j));
      if (missing.length > 0 && !this.#stopped && Date.now() >= this.#holdOffUntil) {
        const got = await sql<{ job: Job; got: boolean }[]>`
          select t.job, pg_try_advisory_lock(${KEY_SPACE}, t.key) as got
          from unnest(${missing}::text[], ${missing.map((j) => JOB_KEYS[j])}::int[]) as t(job, key)`;
        for (const r of got) if (r.got) held.add(r.job);
      }
      return held;
    })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ROUND_TIMEOUT_MS} ms`)), ROUND_TIMEOUT_MS);
    });
    try {
      const held = await Promise.race([round, timeout]);
      if (this.#sql !== sql || this.#stopped) {
        if (this.#stopped) await sql`select pg_advisory_unlock_all()`.catch(() => undefined);
        return;
      }
      this.#confirmedAt = Date.now();
      this.#set(held);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops every job at once (listeners stop them), and the connection: the next round campaigns on a new one. */
  #lose(why: string, err?: unknown): void {
    const sql = this.#sql;
    this.#sql = null;
    this.#pid = null;
    if (this.#held.size > 0) {
      this.#o.log.warn({ err, jobs: [...this.#held] }, `job leadership lost: ${why}`);
      // two of the others' retries: a hub whose connection flaps does not take its jobs straight back
      this.#holdOffUntil = Date.now() + 2 * this.#retryMs;
    }
    else if (err && !this.#stopped) this.#o.log.debug({ err }, `job leadership: ${why}`);
    this.#set(new Set());
    // ended after the listeners ran: the locks go with the session
    if (sql) void sql.end({ timeout: 0 }).catch(() => undefined);
  }

  #set(next: Set<Job>): void {
    const gained = [...next].filter((j) => !this.#held.has(j));
    const lost = [...this.#held].filter((j) => !next.has(j));
    this.#held = next;
    if (gained.length === 0 && lost.length === 0) return;
    for (const j of gained) this.#gauge?.set({ job: j }, 1);
    for (const j of lost) this.#gauge?.set({ job: j }, 0);
    if (gained.length > 0 && this.#target) this.#o.log.info({ jobs: gained, hubId: this.#o.hubId }, 'job leadership gained');
    const change: LeadershipChange = { led: this.#jobs.filter((j) => next.has(j)), gained, lost };
    for (const l of this.listeners('change') as ((c: LeadershipChange) => void)[]) {
      try {
        l(change);
      } catch (err) {
        this.#o.log.error({ err }, 'job leadership listener failed');
      }
    }
  }
}
