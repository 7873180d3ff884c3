/**
 * The read side on PostgreSQL: the same answers as store.sqlite.ts on the same rows (store.test.ts).
 *
 * - Order: ids are compared and sorted in byte order, as SQLite's BINARY collation does. On a database whose
 *   collation is C (`initdb --locale=C`, or `CREATE DATABASE … LC_COLLATE 'C' TEMPLATE template0`) that is the
 *   default, and the primary-key and station indexes serve the list's order and node ranges; on any other collation
 *   the statements say `COLLATE "C"` (same answers, but a sort instead of an index walk).
 * - Telemetry and events are partitioned by day on `ts`: every read of them bounds `ts` by the request's range, so
 *   only that range's daily partitions (and the DEFAULT one) are read.
 * - Averages: SQLite's avg() adds with Kahan-Babuska-Neumaier compensation, PostgreSQL's float8 avg() without, and
 *   the two differ in the last bits as soon as a partial sum rounds (every bucket of memory percentages). The chart
 *   SQL therefore returns the averaged values as an array per bucket and `sqliteAvg` adds them as SQLite does.
 */
import type { Sql } from 'postgres';
import type { PostgresDb } from '../db/postgres/open.ts';
import { appOf, CPU_SCALE, hostOf, peripheralsOf, servicesOf, TEMP_SCALE, type SampleRow } from '../store/telemetry-codec.ts';
import { ChartCache, TS_MOD, type ChartSource } from './chart-cache.ts';
import { bucketObjects } from './store.sqlite.ts';
import {
  BUCKET_FIELDS,
  ROLLUP_COLUMN,
  type BucketField,
  type BucketObject,
  type ChildNodeRow,
  type EventRow,
  type PresenceHistoryRow,
  type QueryStore,
  type RawCursor,
  type RawSample,
  type RollupRow,
  type StreamRow,
  type TerminalDetailRow,
  type TerminalFilter,
  type TerminalListRow,
  type UnderNodeRow,
} from './store.ts';

/** Per field: an aggregate computed by PostgreSQL, or the values to average in JavaScript and a divisor. */
const BUCKET_EXPR: Record<BucketField, { sql: string } | { values: string; divide: number }> = {
  samples: { sql: 'count(*)' },
  cpuMin: { sql: `min(t.cpu) / ${CPU_SCALE}.0` },
  cpuAvg: { values: 't.cpu', divide: CPU_SCALE },
  cpuMax: { sql: `max(t.cpu) / ${CPU_SCALE}.0` },
  memPctAvg: { values: '100.0 * t.mem_used / nullif(t.mem_total, 0)', divide: 1 },
  memPctMax: { sql: 'max(100.0 * t.mem_used / nullif(t.mem_total, 0))' },
  diskPctAvg: { values: '100.0 * t.disk_used / nullif(t.disk_total, 0)', divide: 1 },
  diskPctMax: { sql: 'max(100.0 * t.disk_used / nullif(t.disk_total, 0))' },
  tempMin: { sql: `min(t.temp) / ${TEMP_SCALE}.0` },
  tempAvg: { values: 't.temp', divide: TEMP_SCALE },
  tempMax: { sql: `max(t.temp) / ${TEMP_SCALE}.0` },
};

/**
 * SQLite's avg() (func.c since 3.43: sumStep/avgFinalize over REAL values): Kahan-Babuska-Neumaier summation from
 * 0, NULLs skipped, the compensation added unless it overflowed, divided by the count; null without values.
 */
export function sqliteAvg(values: readonly (number | null)[]): number | null {
  let sum = 0;
  let err = 0;
  let n = 0;
  for (const v of values) {
    if (v === null) continue;
    n++;
    const t = sum + v;
    if (Math.abs(sum) > Math.abs(v)) err += sum - t + v;
    else err += v - t + sum;
    sum = t;
  }
  if (n === 0) return null;
  return (Number.isFinite(err) ? sum + err : sum) / n;
}

const LIST_COLUMNS = `t.id, t.type, t.serial, t.station_id AS "stationId", t.state, t.created_at AS "createdAt",
  s.presence, s.presence_reason AS "presenceReason", s.presence_since AS "presenceSince", s.flapping,
  s.last_seen_at AS "lastSeenAt", s.fault_count AS "faultCount", s.peripherals, s.services`;

const FROM_SAMPLES = 'FROM telemetry_epochs e JOIN telemetry_samples t ON t.epoch_id = e.id WHERE e.terminal_id = $1 AND t.ts >= $2 AND t.ts < $3';

export class PostgresQueryStore implements QueryStore {
  private readonly sql: Sql;
  private readonly chartCache: ChartCache;
  /** ' COLLATE "C"' unless the database's collation already is byte order; resolved by the first query. */
  private collate: Promise<string> | null = null;

  constructor(pg: PostgresDb) {
    this.sql = pg.sql;
    this.chartCache = new ChartCache(this.chartSource());
  }

  private c(): Promise<string> {
    this.collate ??= this.sql<{ binary: boolean }[]>`
      select datlocprovider = 'c' and datcollate in ('C', 'POSIX', 'C.UTF-8', 'C.utf8') as binary
      from pg_database where datname = current_database()`.then(
      ([r]) => (r?.binary ? '' : ' COLLATE "C"'),
      (err: unknown) => {
        this.collate = null;
        throw err;
      },
    );
    return this.collate;
  }

  private run<T>(text: string, args: unknown[]): Promise<T[]> {
    return this.sql.unsafe(text, args as never[], { prepare: true }) as unknown as Promise<T[]>;
  }

  /** `column` under `node` in the isUnderNode sense, as a byte-order range (see store.sqlite.ts underNodeClause). */
  private static under(column: string, c: string, args: unknown[], node: string): string {
    args.push(node, `${node}.`, `${node}-`);
    const n = args.length;
    return `(${column}${c} >= $${n - 2} AND ${column}${c} < $${n - 1} AND (${column} = $${n - 2} OR ${column}${c} >= $${n}))`;
  }

  async terminals(f: TerminalFilter): Promise<TerminalListRow[]> {
    const c = await this.c();
    const where: string[] = [];
    const args: unknown[] = [];
    const p = (v: unknown) => {
      args.push(v);
      return `$${args.length}`;
    };
    if (f.state !== 'all') where.push(`t.state = ${p(f.state ?? 'active')}`);
    const nodes = [f.node, f.scope].filter((n): n is string => Boolean(n)).sort((a, b) => b.split('-').length - a.split('-').length);
    for (const node of nodes) where.push(PostgresQueryStore.under('t.station_id', c, args, node));
    if (f.type) where.push(`t.type = ${p(f.type)}`);
    // coalesce(s.presence, 'unknown') = $x written so that the planner can use presence's statistics: with coalesce it
    // guessed 100 of 20,000 rows and hash-joined both tables (78 ms), instead of walking the id order (0.4 ms).
    if (f.presence === 'unknown') where.push("(s.presence = 'unknown' OR s.presence IS NULL)");
    else if (f.presence) where.push(`s.presence = ${p(f.presence)}`);
    if (f.fault === 'any') where.push('s.fault_count > 0');
    else if (f.fault) where.push(`(s.peripherals::jsonb -> ${p(f.fault)} ->> 'status') = 'fault'`);
    if (f.q) {
      // SQLite's LIKE ignores the case of ASCII letters only: so does ILIKE under the C collation.
      const q = p(f.q.replace(/[\\%_]/g, (ch) => `\\${ch}`));
      where.push(`(t.id COLLATE "C" ILIKE '%' || ${q} || '%' ESCAPE '\\' OR t.serial COLLATE "C" ILIKE '%' || ${q} || '%' ESCAPE '\\')`);
    }
    if (f.after) where.push(`t.id${c} > ${p(f.after)}`);
    const limit = p(f.limit);
    return this.run<TerminalListRow>(
      `SELECT ${LIST_COLUMNS} FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY t.id${c} LIMIT ${limit}`,
      args,
    );
  }

  async terminalsByIds(ids: readonly string[]): Promise<TerminalListRow[]> {
    if (ids.length === 0) return [];
    const c = await this.c();
    return this.run<TerminalListRow>(
      `SELECT ${LIST_COLUMNS} FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id
       WHERE t.id = ANY($1::text[]) ORDER BY t.id${c}`,
      [ids],
    );
  }

  async terminal(id: string): Promise<TerminalDetailRow | undefined> {
    const [row] = await this.run<TerminalDetailRow>(
      `SELECT ${LIST_COLUMNS}, t.decommissioned_at AS "decommissionedAt", s.boot_id AS "bootId", s.conn_seq AS "connSeq",
         s.interval_s AS "intervalS", s.agent_version AS "agentVersion", s.app_version AS "appVersion", s.uptime,
         s.last_exit AS "lastExit", s.last_telemetry_at AS "lastTelemetryAt", s.last_telemetry_ts AS "lastTelemetryTs",
         s.clock_skew_ms AS "clockSkewMs", s.host, s.app, s.last_address AS "lastAddress"
       FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id WHERE t.id = $1`,
      [id],
    );
    return row;
  }

  async streams(id: string): Promise<StreamRow[]> {
    const c = await this.c();
    return this.run<StreamRow>(
      `SELECT stream, epoch, min(first_seq) AS "firstSeq", max(max_seq) AS "maxSeq", sum(count)::int8 AS count, max(last_at) AS "lastAt"
       FROM (SELECT stream, epoch, first_seq, max_seq, count, last_at FROM streams WHERE terminal_id = $1
         UNION ALL SELECT 'telemetry', tel_epoch, tel_first_seq, tel_max_seq, tel_count, tel_last_at FROM terminal_state
         WHERE terminal_id = $1 AND tel_epoch IS NOT NULL) x
       GROUP BY stream, epoch ORDER BY "lastAt" DESC, stream${c}, epoch${c} LIMIT 20`,
      [id],
    );
  }

  async children(id: string): Promise<ChildNodeRow[]> {
    const c = await this.c();
    return this.run<ChildNodeRow>(`SELECT id, level, name_zh AS "nameZh", name_en AS "nameEn" FROM nodes WHERE parent_id = $1 ORDER BY id${c}`, [id]);
  }

  async underNode(id: string): Promise<UnderNodeRow[]> {
    const c = await this.c();
    const args: unknown[] = [];
    return this.run<UnderNodeRow>(
      `SELECT t.id, t.type, t.station_id AS "stationId", s.presence, s.fault_count AS "faultCount", s.services
       FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id
       WHERE t.state = 'active' AND ${PostgresQueryStore.under('t.station_id', c, args, id)}`,
      args,
    );
  }

  async telemetryRaw(id: string, from: number, to: number, after: RawCursor | null, limit: number): Promise<RawSample[]> {
    const rows =
      after === null
        ? await this.run<SampleRow & { epochId: number; epoch: string }>(
            `SELECT t.*, t.epoch_id AS "epochId", e.epoch ${FROM_SAMPLES} ORDER BY t.ts, t.epoch_id, t.seq LIMIT $4`,
            [id, from, to, limit],
          )
        : await this.run<SampleRow & { epochId: number; epoch: string }>(
            `SELECT t.*, t.epoch_id AS "epochId", e.epoch ${FROM_SAMPLES} AND (t.ts, t.epoch_id, t.seq) > ($4, $5, $6)
             ORDER BY t.ts, t.epoch_id, t.seq LIMIT $7`,
            [id, from, to, after.ts, after.epochId, after.seq, limit],
          );
    return rows.map((r) => ({
      cursor: { ts: r.ts, epochId: r.epochId, seq: r.seq },
      seq: r.seq,
      epoch: r.epoch,
      ts: r.ts,
      receivedAt: r.ts + r.recv_delay,
      skewed: r.skewed,
      host: hostOf(r),
      peripherals: peripheralsOf(r.pstat, r.reads, r.failed_reads, r.pnote),
      app: appOf(r.app, r.tx_ok, r.tx_failed, r.app_version),
      services: servicesOf(r.services),
    }));
  }

  async telemetryBuckets(id: string, from: number, to: number, bucketMs: number, limit: number): Promise<BucketObject[]> {
    return bucketObjects(await this.chartRows(id, from, to, bucketMs, BUCKET_FIELDS, limit));
  }

  async rollups(id: string, from: number, to: number, limit: number): Promise<RollupRow[]> {
    return this.run<RollupRow>(
      `SELECT hour, ${BUCKET_FIELDS.map((f) => `${ROLLUP_COLUMN[f]} AS "${f}"`).join(', ')}, peripheral_ok AS "peripheralOk", services
       FROM rollups_hourly WHERE terminal_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour LIMIT $4`,
      [id, from, to, limit],
    );
  }

  async chartRows(id: string, from: number, to: number, bucketMs: number | null, fields: readonly BucketField[], limit: number): Promise<readonly (number | null)[][]> {
    if (bucketMs !== null) return this.chartCache.rows(id, from, to, bucketMs, fields.join(','), fields.length, limit);
    return (await this.sql
      .unsafe(
        `SELECT hour, ${fields.map((f) => ROLLUP_COLUMN[f]).join(', ')} FROM rollups_hourly
         WHERE terminal_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour LIMIT $4`,
        [id, from, to, limit],
        { prepare: true },
      )
      .values()) as (number | null)[][];
  }

  async events(id: string, from: number, to: number, beforeId: number, limit: number, kind?: string): Promise<EventRow[]> {
    const args: unknown[] = [id, from, to, beforeId, limit];
    if (kind) args.push(kind);
    return this.run<EventRow>(
      `SELECT id, seq, epoch, ts, received_at AS "receivedAt", skewed, kind, severity, peripheral, code, message, data
       FROM events WHERE terminal_id = $1 AND ts >= $2 AND ts < $3 AND id < $4 ${kind ? 'AND kind = $6' : ''}
       ORDER BY id DESC LIMIT $5`,
      args,
    );
  }

  async presenceHistory(id: string, from: number, to: number, beforeId: number, limit: number): Promise<PresenceHistoryRow[]> {
    return this.run<PresenceHistoryRow>(
      `SELECT id, at, from_state AS "fromState", to_state AS "toState", reason, boot_id AS "bootId", conn_seq AS "connSeq", address
       FROM presence_transitions WHERE terminal_id = $1 AND at >= $2 AND at < $3 AND id < $4 ORDER BY id DESC LIMIT $5`,
      [id, from, to, beforeId, limit],
    );
  }

  /** The chart cache's reads: one grouped statement per field list, the averages added here as SQLite adds them. */
  private chartSource(): ChartSource {
    const check = `count(*)::int8, coalesce(sum(t.seq), 0)::int8, coalesce(sum(t.ts % ${TS_MOD}), 0)::int8`;
    return {
      grouped: async (id, from, to, b, fieldsKey, limit) => {
        const fields = fieldsKey.split(',') as BucketField[];
        const cols = fields.map((f) => {
          const e = BUCKET_EXPR[f];
          // NULLs left out here (postgres.js reads a NULL element of float8[] as NaN); none at all: a NULL array.
          return 'sql' in e ? e.sql : `array_agg(${e.values}) FILTER (WHERE ${e.values} IS NOT NULL)`;
        });
        const raw = (await this.sql
          .unsafe(
            `SELECT (t.ts / $4::int8) * $4::int8 AS start, ${cols.join(', ')}, ${check}
             ${FROM_SAMPLES} GROUP BY 1 ORDER BY 1 LIMIT $5`,
            [id, from, to, b, limit],
            { prepare: true },
          )
          .values()) as unknown[][];
        for (const r of raw) {
          for (let i = 0; i < fields.length; i++) {
            const e = BUCKET_EXPR[fields[i]!];
            if ('values' in e) {
              const avg = sqliteAvg((r[i + 1] as number[] | null) ?? []);
              r[i + 1] = avg === null ? null : avg / e.divide;
            }
          }
        }
        return raw as (number | null)[][];
      },
      check: async (id, from, to) => {
        const [r] = (await this.sql.unsafe(`SELECT ${check} ${FROM_SAMPLES}`, [id, from, to], { prepare: true }).values()) as unknown as [number, number, number][];
        return r!;
      },
    };
  }
}
