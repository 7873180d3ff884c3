/**
 * The write path on PostgreSQL: what a batch's jobs record is buffered here and written at the batch's end, inside its
 * transaction, in bulk: one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING` per stream table (the
 * returned keys say which rows were new: a resent message is stored once and its follow-up told so), one
 * `UPDATE terminal_state … FROM unnest(…)` per shape of state-row change, one upsert of the stream counters. Issue 18
 * measured on this machine, 21-column rows in batches of 1,000: `INSERT … SELECT FROM unnest` 36k rows/s on one
 * connection, a state-row `UPDATE … FROM unnest` 45k; a round trip per message would cost ~0.2 ms each.
 *
 * Invariants:
 * - `cache` mirrors committed terminal_state rows plus the current batch's changes; `load` fills it for a batch's
 *   terminals before its jobs run (they read it synchronously); `rollback` drops it.
 * - The dedupe key of telemetry_samples and events carries `ts` (their partition key, schema.postgres.ts): a resent
 *   message is the outbox's stored payload with the same ts. Within a batch the first copy of a (terminal, stream,
 *   epoch, seq) is the one inserted, as on SQLite.
 * - An epoch key (telemetry_epochs.id) is cached only once seen committed; new keys are numbered under a transaction
 *   advisory lock (the column has no sequence: SQLite's rowid numbering, copied by migrate-store).
 * - Rows of a day without a daily partition get one made (in a savepoint: PostgreSQL refuses one whose rows already
 *   sit in the DEFAULT partition, and such a day stays there); a flagged clock's rows go where they fall (DEFAULT).
 */
import type { Sql, TransactionSql } from 'postgres';
import { pgSql, type Tx } from '../db/engine.ts';
import { dayStart, ensureDailyPartitions, type PartitionedTable } from '../db/postgres/partitions.ts';
import type { Birth, IngestStore, IngestStoreOptions, RowStream, SecurityColumn, StateRow, Stored, StreamRef, StreamRows, TransitionRow } from './store.ts';
import { SAMPLE_COLUMNS } from './telemetry-codec.ts';
import type { TxContext } from './writer.ts';

type Q = Sql | TransactionSql;

/** pg_advisory_xact_lock key of numbering new telemetry epochs: 'kfep' as an int32. */
const EPOCH_LOCK = 0x6b666570;
const DAY_MS = 86_400_000;

interface Rec {
  then: Stored;
  fresh: boolean;
}

interface PendingRow {
  seen: number;
  latest: (() => unknown[]) | null;
  epoch: string | null;
  first: number;
  max: number;
  count: number;
  lastAt: number;
  slotEpoch: string | null;
  presence?: [presence: string, reason: string, since: number, flapping: number];
  birth?: Birth;
  lastAddress?: string;
  conn?: [hubId: string, gen: number];
  flooding?: string | null;
  credentialConflict?: string | null;
}

interface StreamTable {
  table: string;
  cols: string[];
  types: string[];
}

const HEAD_COLS = ['terminal_id', 'epoch', 'seq', 'ts', 'received_at', 'skewed'];
const HEAD_TYPES = ['text', 'text', 'int8', 'int8', 'int8', 'int8'];

const STREAM_TABLES: Record<RowStream, StreamTable> = {
  events: { table: 'events', cols: ['kind', 'severity', 'peripheral', 'code', 'message', 'data'], types: ['text', 'text', 'text', 'text', 'text', 'text'] },
  'config/reported': { table: 'config_reports', cols: ['version', 'status', 'reason'], types: ['int8', 'text', 'text'] },
  'commands/result': { table: 'command_results', cols: ['command_id', 'status', 'result', 'error'], types: ['text', 'text', 'text', 'text'] },
  'update/status': {
    table: 'update_status',
    cols: ['rollout_id', 'release_id', 'version', 'state', 'progress', 'error'],
    types: ['text', 'text', 'text', 'text', 'float8', 'text'],
  },
};

/** telemetry_samples' columns after the key columns, with their unnest types (schema.postgres.ts). */
const SAMPLE_TYPES: Record<string, string> = {
  cpu: 'float8',
  mem_used: 'float8',
  mem_total: 'float8',
  disk_used: 'float8',
  disk_total: 'float8',
  temp: 'float8',
  uptime: 'float8',
  pstat: 'int8',
  reads: 'int8',
  failed_reads: 'int8',
  pnote: 'text',
  app: 'int2',
  tx_ok: 'int8',
  tx_failed: 'int8',
  app_version: 'text',
  services: 'int8',
};
const SAMPLE_COLS = SAMPLE_COLUMNS.split(',').map((c) => c.trim());
const TELEMETRY_COLS = ['epoch_id', 'ts', 'seq', 'recv_delay', 'skewed', ...SAMPLE_COLS];
const TELEMETRY_TYPES = ['int4', 'int8', 'int8', 'int8', 'int2', ...SAMPLE_COLS.map((c) => SAMPLE_TYPES[c]!)];

/**
 * The state-row columns a batch may set, as `name: [unnest type, SET clause over v.name]`. A terminal's change in a
 * batch is a subset; terminals with the same subset share one UPDATE.
 */
const STATE_COLS: Record<string, [string, string]> = {
  seen: ['int8', 'last_seen_at = greatest(coalesce(s.last_seen_at, 0), v.seen)'],
  lt_at: ['int8', 'last_telemetry_at = v.lt_at'],
  lt_ts: ['int8', 'last_telemetry_ts = v.lt_ts'],
  host: ['text', 'host = v.host'],
  peripherals: ['text', 'peripherals = v.peripherals'],
  app: ['text', 'app = v.app'],
  services: ['text', 'services = v.services'],
  fault_count: ['int8', 'fault_count = v.fault_count'],
  app_version: ['text', 'app_version = coalesce(v.app_version, s.app_version)'],
  m_first: ['int8', 'tel_first_seq = least(s.tel_first_seq, v.m_first)'],
  m_max: ['int8', 'tel_max_seq = greatest(s.tel_max_seq, v.m_max)'],
  m_count: ['int8', 'tel_count = coalesce(s.tel_count, 0) + v.m_count'],
  m_last: ['int8', 'tel_last_at = greatest(s.tel_last_at, v.m_last)'],
  tel_epoch: ['text', 'tel_epoch = v.tel_epoch'],
  tel_first_seq: ['int8', 'tel_first_seq = v.tel_first_seq'],
  tel_max_seq: ['int8', 'tel_max_seq = v.tel_max_seq'],
  tel_count: ['int8', 'tel_count = v.tel_count'],
  tel_last_at: ['int8', 'tel_last_at = v.tel_last_at'],
  presence: ['text', 'presence = v.presence'],
  presence_reason: ['text', 'presence_reason = v.presence_reason'],
  presence_since: ['int8', 'presence_since = v.presence_since'],
  flapping: ['int8', 'flapping = v.flapping'],
  boot_id: ['text', 'boot_id = v.boot_id'],
  conn_seq: ['int8', 'conn_seq = v.conn_seq'],
  interval_s: ['float8', 'interval_s = v.interval_s'],
  agent_version: ['text', 'agent_version = v.agent_version'],
  uptime: ['float8', 'uptime = v.uptime'],
  last_exit: ['text', 'last_exit = v.last_exit'],
  clock_skew_ms: ['int8', 'clock_skew_ms = v.clock_skew_ms'],
  last_address: ['text', 'last_address = v.last_address'],
  conn_hub: ['text', 'conn_hub = v.conn_hub'],
  conn_gen: ['int8', 'conn_gen = v.conn_gen'],
  flooding: ['text', 'flooding = v.flooding'],
  credential_conflict: ['text', 'credential_conflict = v.credential_conflict'],
};

/** `INSERT INTO table (cols) SELECT * FROM unnest($1::t1[], …) AS v(cols)` with one array per column. */
function unnestInsert(sql: Q, table: string, cols: string[], types: string[], rows: unknown[][], tail: string) {
  const arrays = cols.map((_, i) => rows.map((r) => r[i] ?? null));
  const params = types.map((t, i) => `$${i + 1}::${t}[]`).join(', ');
  return sql.unsafe(`INSERT INTO ${table} (${cols.join(', ')}) SELECT * FROM unnest(${params}) AS v(${cols.join(', ')}) ${tail}`, arrays as never[]);
}

const UNAVAILABLE = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
]);

const key3 = (terminalId: string, epoch: string, seq: number) => `${terminalId}\u0000${epoch}\u0000${seq}`;

export class PostgresIngestStore implements IngestStore {
  readonly engine = 'postgres' as const;
  private readonly types = new Map<string, string>();
  private readonly cache = new Map<string, StateRow>();
  /** Committed epoch keys: terminal \0 epoch → telemetry_epochs.id. */
  private readonly epochIds = new Map<string, number>();
  /** Daily partitions (`table:dayStart`) known to exist or left to DEFAULT: reset on a rollback (their CREATE may have gone with it). */
  private readonly days = new Set<string>();

  /** The batch whose jobs are recording now (set synchronously before they run: `enter`, `beforeCommit`). */
  private b = new Batch();
  /** Batches in flight, by their transaction (the writer runs several at once, on disjoint terminals). */
  private readonly batches = new Map<Tx, Batch>();

  constructor(
    private readonly sql: Sql,
    private readonly opts: IngestStoreOptions,
  ) {}

  // --- the batch's life ---

  private batchOf(tx: Tx): Batch {
    let b = this.batches.get(tx);
    if (b === undefined) this.batches.set(tx, (b = new Batch()));
    return b;
  }

  /** Drops cached rows, but never those of the batches still in flight (their jobs read them after an await). */
  private dropCache(ids: Iterable<string> | null): void {
    if (ids !== null) {
      for (const id of ids) this.cache.delete(id);
      return;
    }
    const keep = new Map<string, StateRow>();
    for (const b of this.batches.values()) {
      for (const id of b.terminals) {
        const st = this.cache.get(id);
        if (st) keep.set(id, st);
      }
    }
    this.cache.clear();
    for (const [id, st] of keep) this.cache.set(id, st);
  }

  async load(terminals: Iterable<string>, tx: Tx): Promise<void> {
    this.batchOf(tx).terminals = terminals;
    let missing: string[] = [];
    for (const id of terminals) if (!this.cache.has(id)) missing.push(id);
    if (missing.length === 0) return;
    if (this.cache.size + missing.length > 50_000) {
      this.dropCache(null);
      missing = [];
      for (const id of terminals) if (!this.cache.has(id)) missing.push(id);
    }
    const sql = pgSql(this.sql, tx);
    await sql`insert into terminal_state (terminal_id) select unnest(${missing}::text[]) on conflict do nothing`;
    const since = Date.now() - this.opts.flapWindowMs - 60_000;
    const rows = await sql<(StateRow & { terminalId: string; type: string | null; recent: (number | string)[]; telMax: number | null })[]>`
      select s.terminal_id as "terminalId", s.presence, s.presence_reason as "presenceReason", s.presence_since as "presenceSince",
        s.flapping, s.boot_id as "bootId", s.conn_seq as "connSeq", s.interval_s as "intervalS", s.last_seen_at as "lastSeenAt",
        s.last_telemetry_ts as "lastTelemetryTs", s.peripherals, s.tel_epoch as "telEpoch", s.conn_hub as "connHub", s.conn_gen as "connGen", t.type,
        greatest(s.tel_max_seq, (select x.max_seq from streams x where x.terminal_id = s.terminal_id and x.stream = 'telemetry' and x.epoch = s.tel_epoch)) as "telMax",
        array(select p.at from presence_transitions p where p.terminal_id = s.terminal_id and p.at > ${since}) as recent
      from terminal_state s left join terminals t on t.id = s.terminal_id
      where s.terminal_id = any(${missing}::text[])`;
    for (const r of rows) {
      const { terminalId, type, recent, telMax, ...st } = r;
      if (type !== null) this.types.set(terminalId, type);
      const hw = st.telEpoch === null ? null : { epoch: st.telEpoch, max: telMax ?? Number.MAX_SAFE_INTEGER };
      this.cache.set(terminalId, { ...st, recent: recent.map(Number), hw });
    }
  }

  enter(tx: Tx): void {
    this.b = this.batchOf(tx);
  }

  async beforeCommit(tx: Tx): Promise<void> {
    const sql = pgSql(this.sql, tx);
    const b = this.batchOf(tx);
    try {
      if (b.telemetry.length > 0 || b.streamRows.size > 0) await this.writeRows(sql, b);
      // the follow-ups record into this batch: synchronously, so no other batch's jobs interleave
      this.b = b;
      for (const rec of b.recs) rec.then.stored(rec.fresh);
      this.b = new Batch();
      await this.writeDeltas(sql, b);
    } finally {
      this.batches.delete(tx);
    }
  }

  rollback(tx?: Tx): void {
    const b = tx === undefined ? undefined : this.batches.get(tx);
    if (tx !== undefined) this.batches.delete(tx);
    // what the failed batch's jobs changed in its terminals' cached rows was not committed
    this.dropCache(b ? b.terminals : null);
    this.days.clear();
  }

  poison(err: unknown): boolean {
    // SQLSTATE class 22, data exception: 22021 (U+0000 or bad UTF-8 in text), 22003 (out of range), 22P02 …
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' && code.startsWith('22');
  }

  unavailable(err: unknown): boolean {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code !== 'string') return false;
    // postgres.js' own codes and the socket's; SQLSTATE class 08 (connection exception), 57P01-57P03 (shutting down,
    // crashed, not yet accepting connections)
    return UNAVAILABLE.has(code) || code.startsWith('08') || /^57P0[123]$/.test(code);
  }

  // --- the cache ---

  state(id: string): StateRow | undefined {
    return this.cache.get(id);
  }

  ensureState(id: string): StateRow {
    const st = this.cache.get(id);
    // load() made and read every row a batch's jobs named; a job that reads another's is a bug of the job
    if (!st) throw new Error(`state of terminal ${id} read by a writer job that did not name it`);
    return st;
  }

  peek(id: string): StateRow | undefined {
    return this.cache.get(id);
  }

  forget(id: string): void {
    this.cache.delete(id);
  }

  terminalType(id: string): string | undefined {
    return this.types.get(id);
  }

  // --- rows ---

  /** False when the batch already holds this message (the first copy is the one written). */
  private firstInBatch(stream: string, r: StreamRef): boolean {
    let keys = this.b.seenKeys.get(stream);
    if (!keys) this.b.seenKeys.set(stream, (keys = new Set()));
    const k = key3(r.terminalId, r.epoch, r.seq);
    if (keys.has(k)) return false;
    keys.add(k);
    return true;
  }

  insertTelemetry(_tx: TxContext, r: StreamRef, sample: unknown[], then: Stored): void {
    const rec: Rec = { then, fresh: false };
    this.b.recs.push(rec);
    if (this.firstInBatch('telemetry', r)) this.b.telemetry.push({ r, sample, rec });
  }

  insertStream<S extends RowStream>(stream: S, r: StreamRef, values: StreamRows[S], then: Stored): void {
    const rec: Rec = { then, fresh: false };
    this.b.recs.push(rec);
    if (!this.firstInBatch(stream, r)) return;
    let rows = this.b.streamRows.get(stream);
    if (!rows) this.b.streamRows.set(stream, (rows = []));
    rows.push({ r, values, rec });
  }

  async eventsReceivedSince(terminalId: string, since: number, tx?: Tx): Promise<number> {
    const [row] = await pgSql(this.sql, tx)<{ n: number }[]>`
      select count(*)::int8 as n from events where terminal_id = ${terminalId} and received_at >= ${since}`;
    return row?.n ?? 0;
  }

  private async writeRows(sql: Q, b: Batch): Promise<void> {
    const ids = b.telemetry.length > 0 ? await this.epochKeys(sql, b) : null;
    await this.ensurePartitions(sql, b);
    const inserts: Promise<void>[] = [];
    if (ids !== null) {
      const resent = await this.resent(sql, b, ids);
      const list = resent === null ? b.telemetry : b.telemetry.filter((_, i) => !resent.has(i));
      const rows = list.map(({ r, sample }) => [ids.get(`${r.terminalId}\u0000${r.epoch}`), r.ts, r.seq, r.receivedAt - r.ts, r.skewed ? 1 : 0, ...sample]);
      inserts.push(
        unnestInsert(sql, 'telemetry_samples', TELEMETRY_COLS, TELEMETRY_TYPES, rows, 'ON CONFLICT DO NOTHING RETURNING epoch_id, ts, seq').then((out) => {
          const fresh = new Set((out as unknown as { epoch_id: number; ts: number; seq: number }[]).map((o) => `${o.epoch_id}:${o.ts}:${o.seq}`));
          rows.forEach((row, i) => {
            if (!fresh.has(`${row[0] as number}:${row[1] as number}:${row[2] as number}`)) return;
            const { r, rec } = list[i]!;
            rec.fresh = true;
            // the high-water mark follows the stored samples (as the state row's telemetry counters do)
            const st = this.cache.get(r.terminalId);
            if (!st) return;
            if (st.hw?.epoch === r.epoch) st.hw.max = Math.max(st.hw.max, r.seq);
            else st.hw = { epoch: r.epoch, max: b.madeEpochs.has(`${r.terminalId}\u0000${r.epoch}`) ? r.seq : Number.MAX_SAFE_INTEGER };
          });
        }),
      );
    }
    for (const [stream, list] of b.streamRows) {
      const t = STREAM_TABLES[stream];
      const rows = list.map(({ r, values }) => [r.terminalId, r.epoch, r.seq, r.ts, r.receivedAt, r.skewed ? 1 : 0, ...values]);
      // events' unique key carries ts (the partition key): a resend with another ts is found by (terminal, epoch, seq)
      // in every partition; events are few, so each is looked up
      const tail =
        stream === 'events'
          ? 'WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.terminal_id = v.terminal_id AND e.epoch = v.epoch AND e.seq = v.seq) ON CONFLICT DO NOTHING RETURNING terminal_id, epoch, seq'
          : 'ON CONFLICT DO NOTHING RETURNING terminal_id, epoch, seq';
      inserts.push(
        unnestInsert(sql, t.table, [...HEAD_COLS, ...t.cols], [...HEAD_TYPES, ...t.types], rows, tail).then((out) => {
          const fresh = new Set((out as unknown as { terminal_id: string; epoch: string; seq: number }[]).map((o) => key3(o.terminal_id, o.epoch, o.seq)));
          for (const x of list) if (fresh.has(key3(x.r.terminalId, x.r.epoch, x.r.seq))) x.rec.fresh = true;
        }),
      );
    }
    // one connection, pipelined
    await Promise.all(inserts);
  }

  /**
   * The batch's samples (indexes into `b.telemetry`) already stored with another ts. telemetry_samples' unique key
   * carries ts (its partition key), so a sample re-sent with another ts (an agent re-stamping after a clock step)
   * passes ON CONFLICT. A sample above its terminal's high-water mark (`hw`: the highest stored seq of its newest
   * epoch) or of an epoch numbered in this batch is new: the usual case costs nothing. The others (a seq at or below
   * the mark, another epoch) are looked up by (epoch_id, seq) in every partition, in one query; resends are rare.
   */
  private async resent(sql: Q, b: Batch, ids: Map<string, number>): Promise<Set<number> | null> {
    const at: number[] = [];
    b.telemetry.forEach(({ r }, i) => {
      const k = `${r.terminalId}\u0000${r.epoch}`;
      if (b.madeEpochs.has(k)) return;
      const hw = this.cache.get(r.terminalId)?.hw;
      if (hw && hw.epoch === r.epoch && r.seq > hw.max) return;
      at.push(i);
    });
    if (at.length === 0) return null;
    const e = at.map((i) => ids.get(`${b.telemetry[i]!.r.terminalId}\u0000${b.telemetry[i]!.r.epoch}`)!);
    const q = at.map((i) => b.telemetry[i]!.r.seq);
    const found = await sql<{ e: number; s: number }[]>`
      select v.e, v.s from unnest(${e}::int4[], ${q}::int8[]) as v(e, s)
      where exists (select 1 from telemetry_samples t where t.epoch_id = v.e and t.seq = v.s)`;
    if (found.length === 0) return null;
    const dup = new Set(found.map((f) => `${f.e}:${f.s}`));
    const out = new Set<number>();
    at.forEach((i, j) => {
      if (dup.has(`${e[j]}:${q[j]}`)) out.add(i);
    });
    return out;
  }

  /** telemetry_epochs ids of this batch's samples: cached, found committed, or numbered now. */
  private async epochKeys(sql: Q, b: Batch): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const want = new Map<string, [string, string]>();
    for (const { r } of b.telemetry) {
      const k = `${r.terminalId}\u0000${r.epoch}`;
      const id = this.epochIds.get(k);
      if (id !== undefined) out.set(k, id);
      else want.set(k, [r.terminalId, r.epoch]);
    }
    if (want.size === 0) return out;
    const find = async (pairs: [string, string][]) =>
      sql<{ id: number; terminalId: string; epoch: string }[]>`
        select e.id, e.terminal_id as "terminalId", e.epoch from telemetry_epochs e
        join unnest(${pairs.map((p) => p[0])}::text[], ${pairs.map((p) => p[1])}::text[]) as v(t, ep) on e.terminal_id = v.t and e.epoch = v.ep`;
    for (const f of await find([...want.values()])) {
      const k = `${f.terminalId}\u0000${f.epoch}`;
      // committed (read committed sees no uncommitted row, and this transaction wrote none of these yet)
      this.epochIds.set(k, f.id);
      out.set(k, f.id);
      want.delete(k);
    }
    if (want.size === 0) return out;
    await sql`select pg_advisory_xact_lock(${EPOCH_LOCK})`;
    const pairs = [...want.values()];
    const made = await sql<{ id: number; terminalId: string; epoch: string }[]>`
      insert into telemetry_epochs (id, terminal_id, epoch)
      select (select coalesce(max(id), 0) from telemetry_epochs) + row_number() over (), v.t, v.ep
      from unnest(${pairs.map((p) => p[0])}::text[], ${pairs.map((p) => p[1])}::text[]) as v(t, ep)
      on conflict do nothing returning id, terminal_id as "terminalId", epoch`;
    // numbered by this transaction: used now, cached once a later batch finds them committed
    for (const m of made) {
      const k = `${m.terminalId}\u0000${m.epoch}`;
      out.set(k, m.id);
      b.madeEpochs.add(k);
      want.delete(k);
    }
    if (want.size > 0) {
      // another hub numbered them between our look and our lock
      for (const f of await find([...want.values()])) out.set(`${f.terminalId}\u0000${f.epoch}`, f.id);
    }
    for (const k of want.keys()) if (!out.has(k)) throw new Error('telemetry epoch key could not be made');
    return out;
  }

  /** The daily partitions of this batch's rows whose clocks were right (a day at most 40 days old, or tomorrow). */
  private async ensurePartitions(sql: Q, b: Batch): Promise<void> {
    const now = Date.now();
    const want: [PartitionedTable, number][] = [];
    const add = (table: PartitionedTable, r: StreamRef) => {
      if (r.skewed || r.ts < now - 40 * DAY_MS || r.ts > now + DAY_MS) return;
      const day = dayStart(r.ts);
      const key = `${table}:${day}`;
      if (this.days.has(key)) return;
      this.days.add(key);
      want.push([table, day]);
    };
    for (const { r } of b.telemetry) add('telemetry_samples', r);
    for (const { r } of b.streamRows.get('events') ?? []) add('events', r);
    if (want.length === 0) return;
    if (!('savepoint' in sql)) throw new Error('partitions are made inside the batch transaction');
    for (const [table, day] of want) {
      try {
        await sql.savepoint(async (sp) => {
          const res = await ensureDailyPartitions(sp, table, day, day);
          // refused (the DEFAULT partition holds rows of that day): undo the savepoint, the day stays in DEFAULT
          if (res.skipped.length > 0) throw new PartitionSkipped();
        });
      } catch (err) {
        if (!(err instanceof PartitionSkipped) && (err as { code?: string }).code !== '23514') throw err;
      }
    }
  }

  // --- deltas ---

  private row(id: string): PendingRow {
    let p = this.b.pending.get(id);
    if (p === undefined) {
      p = { seen: 0, latest: null, epoch: null, first: 0, max: 0, count: 0, lastAt: 0, slotEpoch: null };
      this.b.pending.set(id, p);
    }
    return p;
  }

  countTelemetry(r: StreamRef, st: StateRow): void {
    const p = this.row(r.terminalId);
    if (p.epoch === r.epoch) {
      if (r.seq < p.first) p.first = r.seq;
      if (r.seq > p.max) p.max = r.seq;
      p.count++;
      if (r.receivedAt > p.lastAt) p.lastAt = r.receivedAt;
      return;
    }
    if (p.epoch === null) p.slotEpoch = st.telEpoch;
    else this.addStream(r.terminalId, 'telemetry', p.epoch, p.first, p.max, p.count, p.lastAt);
    p.epoch = r.epoch;
    p.first = r.seq;
    p.max = r.seq;
    p.count = 1;
    p.lastAt = r.receivedAt;
    st.telEpoch = r.epoch;
  }

  bumpStream(r: StreamRef, stream: string): void {
    this.addStream(r.terminalId, stream, r.epoch, r.seq, r.seq, 1, r.receivedAt);
  }

  private addStream(id: string, stream: string, epoch: string, first: number, max: number, count: number, lastAt: number): void {
    const key = `${id}\u0000${stream}\u0000${epoch}`;
    const p = this.b.pendingStreams.get(key);
    if (p) {
      p.first = Math.min(p.first, first);
      p.max = Math.max(p.max, max);
      p.count += count;
      p.lastAt = Math.max(p.lastAt, lastAt);
    } else {
      this.b.pendingStreams.set(key, { id, stream, epoch, first, max, count, lastAt });
    }
  }

  touch(id: string, at: number): void {
    const p = this.row(id);
    if (at > p.seen) p.seen = at;
  }

  setLatest(id: string, args: () => unknown[]): void {
    this.row(id).latest = args;
  }

  commandDone(terminalId: string, commandId: string, status: string, result: string | null, error: string | null, at: number): void {
    // the first result wins, as on SQLite (the row leaves pending/sent with it)
    if (!this.b.commands.has(commandId)) this.b.commands.set(commandId, [terminalId, status, result, error, at]);
  }

  configSync(terminalId: string, version: number, status: 'applied' | 'rejected', reason: string | null, at: number): void {
    if (status === 'applied') {
      const a = this.b.applied.get(terminalId);
      if (!a || version > a[0]) this.b.applied.set(terminalId, [version, at]);
    } else {
      const r = this.b.rejected.get(terminalId);
      if (!r || version > r[0]) this.b.rejected.set(terminalId, [version, reason, at]);
    }
  }

  transition(t: TransitionRow): void {
    this.b.transitions.push(t);
    const st = this.cache.get(t.terminalId);
    if (st) {
      const recent = (st.recent ??= []);
      const horizon = Date.now() - this.opts.flapWindowMs - 60_000;
      if (recent.length > 0 && recent[0]! < horizon) st.recent = recent.filter((at) => at > horizon);
      st.recent.push(t.at);
    }
  }

  flapCount(_id: string, st: StateRow, since: number): number {
    let n = 0;
    for (const at of st.recent ?? []) if (at > since) n++;
    return n;
  }

  setPresence(id: string, presence: string, reason: string, since: number, flapping: number): void {
    this.row(id).presence = [presence, reason, since, flapping];
  }

  birth(id: string, b: Birth): void {
    this.row(id).birth = b;
    this.touch(id, b.at);
  }

  refineLastOffline(id: string, reason: string): void {
    // the newest offline transition may be this batch's own, not yet written
    for (let i = this.b.transitions.length - 1; i >= 0; i--) {
      const t = this.b.transitions[i]!;
      if (t.terminalId === id && t.toState === 'offline') {
        if (t.reason === 'connection-lost' || t.reason === 'hub-restart' || t.reason === 'hub-lost') t.reason = reason;
        return;
      }
    }
    this.b.refines.set(id, reason);
  }

  setLastAddress(id: string, address: string): void {
    this.row(id).lastAddress = address;
  }

  setConnection(id: string, hubId: string, gen: number): void {
    this.row(id).conn = [hubId, gen];
    const st = this.cache.get(id);
    if (st) {
      st.connHub = hubId;
      st.connGen = gen;
    }
  }

  setSecurity(id: string, column: SecurityColumn, json: string | null): void {
    this.row(id)[column] = json;
  }

  private async writeDeltas(sql: Q, b: Batch): Promise<void> {
    const first: Promise<unknown>[] = [];
    // refined reasons go to transitions written before this batch's (those were refined in memory)
    if (b.refines.size > 0) {
      const ids = [...b.refines.keys()];
      first.push(sql`
        update presence_transitions p set reason = v.reason
        from unnest(${ids}::text[], ${ids.map((i) => b.refines.get(i)!)}::text[]) as v(terminal_id, reason)
        where p.id = (select id from presence_transitions where terminal_id = v.terminal_id and to_state = 'offline' order by at desc, id desc limit 1)
          and p.reason in ('connection-lost', 'hub-restart', 'hub-lost')`);
    }
    // an older epoch's telemetry counters leave the state row for `streams` before the row takes the new epoch's
    const spill: string[] = [];
    for (const [id, p] of b.pending) if (p.epoch !== null && p.slotEpoch !== null && p.slotEpoch !== p.epoch) spill.push(id);
    if (spill.length > 0) {
      first.push(sql`
        insert into streams (terminal_id, stream, epoch, first_seq, max_seq, count, last_at)
        select terminal_id, 'telemetry', tel_epoch, tel_first_seq, tel_max_seq, tel_count, tel_last_at from terminal_state
        where terminal_id = any(${spill}::text[]) and tel_epoch is not null
        on conflict (terminal_id, stream, epoch) do update set
          first_seq = least(streams.first_seq, excluded.first_seq), max_seq = greatest(streams.max_seq, excluded.max_seq),
          count = streams.count + excluded.count, last_at = greatest(streams.last_at, excluded.last_at)`);
    }
    await Promise.all(first);
    const rest: Promise<unknown>[] = [];
    if (b.transitions.length > 0) {
      const rows = b.transitions.map((t) => [t.terminalId, t.at, t.fromState, t.toState, t.reason, t.bootId, t.connSeq, t.address ?? null]);
      rest.push(
        unnestInsert(
          sql,
          'presence_transitions',
          ['terminal_id', 'at', 'from_state', 'to_state', 'reason', 'boot_id', 'conn_seq', 'address'],
          ['text', 'int8', 'text', 'text', 'text', 'text', 'int8', 'text'],
          rows,
          '',
        ),
      );
    }
    if (b.pendingStreams.size > 0) {
      const rows = [...b.pendingStreams.values()].map((p) => [p.id, p.stream, p.epoch, p.first, p.max, p.count, p.lastAt]);
      rest.push(
        unnestInsert(
          sql,
          'streams',
          ['terminal_id', 'stream', 'epoch', 'first_seq', 'max_seq', 'count', 'last_at'],
          ['text', 'text', 'text', 'int8', 'int8', 'int8', 'int8'],
          rows,
          `ON CONFLICT (terminal_id, stream, epoch) DO UPDATE SET
             first_seq = least(streams.first_seq, excluded.first_seq), max_seq = greatest(streams.max_seq, excluded.max_seq),
             count = streams.count + excluded.count, last_at = greatest(streams.last_at, excluded.last_at)`,
        ),
      );
    }
    for (const p of this.stateUpdates(sql, b)) rest.push(p);
    if (b.commands.size > 0) {
      const ids = [...b.commands.keys()];
      const c = ids.map((i) => b.commands.get(i)!);
      rest.push(sql`
        update commands c set status = v.status, result = v.result, error = v.error, completed_at = v.at
        from unnest(${ids}::text[], ${c.map((x) => x[0])}::text[], ${c.map((x) => x[1])}::text[], ${c.map((x) => x[2])}::text[],
          ${c.map((x) => x[3])}::text[], ${c.map((x) => x[4])}::int8[]) as v(id, terminal_id, status, result, error, at)
        where c.id = v.id and c.terminal_id = v.terminal_id and c.status in ('pending', 'sent')`);
    }
    if (b.applied.size > 0) {
      const ids = [...b.applied.keys()];
      const a = ids.map((i) => b.applied.get(i)!);
      rest.push(sql`
        insert into config_sync (terminal_id, applied_version, applied_at)
        select * from unnest(${ids}::text[], ${a.map((x) => x[0])}::int8[], ${a.map((x) => x[1])}::int8[])
        on conflict (terminal_id) do update set applied_version = excluded.applied_version, applied_at = excluded.applied_at
        where excluded.applied_version > config_sync.applied_version`);
    }
    if (b.rejected.size > 0) {
      const ids = [...b.rejected.keys()];
      const r = ids.map((i) => b.rejected.get(i)!);
      rest.push(sql`
        insert into config_sync (terminal_id, rejected_version, rejected_reason, rejected_at)
        select * from unnest(${ids}::text[], ${r.map((x) => x[0])}::int8[], ${r.map((x) => x[1])}::text[], ${r.map((x) => x[2])}::int8[])
        on conflict (terminal_id) do update set rejected_version = excluded.rejected_version, rejected_reason = excluded.rejected_reason,
          rejected_at = excluded.rejected_at
        where excluded.rejected_version > config_sync.rejected_version`);
    }
    // one connection, pipelined
    await Promise.all(rest);
  }

  /** One `UPDATE terminal_state … FROM unnest(…)` per set of columns that terminals change in this batch. */
  private stateUpdates(sql: Q, b: Batch): Promise<unknown>[] {
    const shapes = new Map<string, { names: string[]; rows: unknown[][] }>();
    for (const [id, p] of b.pending) {
      const names: string[] = [];
      const values: unknown[] = [id];
      const put = (name: string, v: unknown) => {
        names.push(name);
        values.push(v);
      };
      const seen = p.birth ? Math.max(p.seen, p.birth.at) : p.seen;
      if (seen > 0) put('seen', seen);
      let appVersion: unknown = null;
      let appVersionSet = false;
      if (p.latest !== null) {
        const l = p.latest();
        put('lt_at', l[0]);
        put('lt_ts', l[1]);
        put('host', l[2]);
        put('peripherals', l[3]);
        put('app', l[4]);
        put('services', l[5]);
        put('fault_count', l[6]);
        appVersion = l[7];
        appVersionSet = true;
      }
      if (p.birth) {
        const b = p.birth;
        put('boot_id', b.bootId);
        put('conn_seq', b.connSeq);
        put('interval_s', b.intervalS);
        put('agent_version', b.agentVersion);
        put('uptime', b.uptime);
        put('last_exit', b.lastExit);
        put('clock_skew_ms', b.clockSkewMs);
        appVersion ??= b.appVersion;
        appVersionSet = true;
      }
      if (appVersionSet) put('app_version', appVersion);
      if (p.epoch !== null) {
        if (p.slotEpoch === p.epoch) {
          put('m_first', p.first);
          put('m_max', p.max);
          put('m_count', p.count);
          put('m_last', p.lastAt);
        } else {
          put('tel_epoch', p.epoch);
          put('tel_first_seq', p.first);
          put('tel_max_seq', p.max);
          put('tel_count', p.count);
          put('tel_last_at', p.lastAt);
        }
      }
      if (p.presence) {
        put('presence', p.presence[0]);
        put('presence_reason', p.presence[1]);
        put('presence_since', p.presence[2]);
        put('flapping', p.presence[3]);
      }
      if (p.lastAddress !== undefined) put('last_address', p.lastAddress);
      if (p.conn !== undefined) {
        put('conn_hub', p.conn[0]);
        put('conn_gen', p.conn[1]);
      }
      if (p.flooding !== undefined) put('flooding', p.flooding);
      if (p.credentialConflict !== undefined) put('credential_conflict', p.credentialConflict);
      if (names.length === 0) continue;
      const shape = names.join(',');
      let s = shapes.get(shape);
      if (!s) shapes.set(shape, (s = { names, rows: [] }));
      s.rows.push(values);
    }
    const out: Promise<unknown>[] = [];
    for (const { names, rows } of shapes.values()) {
      const arrays = ['id', ...names].map((_, i) => rows.map((r) => r[i] ?? null));
      const params = ['text', ...names.map((n) => STATE_COLS[n]![0])].map((t, i) => `$${i + 1}::${t}[]`).join(', ');
      const sets = names.map((n) => STATE_COLS[n]![1]).join(', ');
      // Names come from STATE_COLS, never from input: safe to splice.
      out.push(
        sql.unsafe(
          `UPDATE terminal_state s SET ${sets} FROM unnest(${params}) AS v(id, ${names.join(', ')}) WHERE s.terminal_id = v.id`,
          arrays as never[],
        ),
      );
    }
    return out;
  }
}

/** What one batch's jobs recorded, in record order, until its commit (several batches may be in flight). */
class Batch {
  /** The terminals whose state rows this batch loaded (dropped from the cache if it rolls back). */
  terminals: Iterable<string> = [];
  recs: Rec[] = [];
  /** Epoch keys numbered by this batch: nothing of them is stored yet. */
  readonly madeEpochs = new Set<string>();
  telemetry: { r: StreamRef; sample: unknown[]; rec: Rec }[] = [];
  readonly streamRows = new Map<RowStream, { r: StreamRef; values: unknown[]; rec: Rec }[]>();
  readonly seenKeys = new Map<string, Set<string>>();
  transitions: TransitionRow[] = [];
  readonly refines = new Map<string, string>();
  readonly commands = new Map<string, [terminalId: string, status: string, result: string | null, error: string | null, at: number]>();
  readonly applied = new Map<string, [version: number, at: number]>();
  readonly rejected = new Map<string, [version: number, reason: string | null, at: number]>();
  readonly pending = new Map<string, PendingRow>();
  readonly pendingStreams = new Map<string, { id: string; stream: string; epoch: string; first: number; max: number; count: number; lastAt: number }>();
}

class PartitionSkipped extends Error {}
