/**
 * RetentionStore on PostgreSQL. The rollups read and write the same rows as on SQLite (same SQL shape). Pruning
 * differs: telemetry and events are partitioned by day on `ts` (db/postgres/partitions.ts), so a day past retention
 * goes as one DROP of its partition (no dead rows, nothing for vacuum to do) instead of millions of row deletes; the
 * DEFAULT partition (clocks outside the daily partitions) is deleted from by receive time as on SQLite; the other
 * tables by time, in chunks of PRUNE_CHUNK rows (short transactions, ingest keeps committing). Autovacuum reclaims
 * the space of deleted rows; there is no file to shrink.
 *
 * A dropped partition takes its rows by the terminal's clock (its day), where SQLite keeps a raw sample
 * KF_RETENTION_DAYS after the hub received it: an outbox replay of samples taken before the cutoff may go with its
 * day at the next run (their hours were not rolled up either way: see service.ts). Rows of days that were dropped
 * already, or never had a partition, land in DEFAULT and go by receive time.
 */
import type { Sql, TransactionSql } from 'postgres';
import type { Tx } from '../db/engine.ts';
import { pgSql } from '../db/engine.ts';
import { dropPartitionsBefore, ensureDailyPartitions, PARTITIONED_TABLES, type PartitionedTable } from '../db/postgres/partitions.ts';
import { PRUNE_CHUNK, type PartitionsMade, type PruneCutoffs, type PruneResult, type RetentionStore, type RollupRow, type SampleRow } from './store.ts';

const TEXT = 25;
const INT8 = 20;
const FLOAT8 = 701;
const DAY_MS = 86_400_000;

/**
 * How long a partition drop waits for its lock. A DROP of a partition takes an ACCESS EXCLUSIVE lock on the parent
 * table, and every insert queues behind a waiting one: a long report query holding the table must not stall ingest
 * for more than this. A drop that times out is tried again at the next run.
 */
const DROP_LOCK_TIMEOUT = '5s';

type Queryable = Sql | TransactionSql;

export class PostgresRetentionStore implements RetentionStore {
  constructor(private readonly sql: Sql) {}

  async meta(key: string): Promise<string | undefined> {
    const [row] = await this.sql<{ value: string }[]>`select value from meta where key = ${key}`;
    return row?.value;
  }

  async setMeta(key: string, value: string, tx?: Tx): Promise<void> {
    await pgSql(this.sql, tx)`insert into meta (key, value) values (${key}, ${value}) on conflict (key) do update set value = excluded.value`;
  }

  async nextSampleTs(from: number): Promise<number | null> {
    // As on SQLite: one index range seek per outbox epoch (each partition's primary key leads with epoch_id), where
    // min(ts) over the table would read all of it; partitions ending before `from` are pruned from each probe.
    const [row] = await this.sql<{ ts: number | null }[]>`
      select min((select min(ts) from telemetry_samples t where t.epoch_id = e.id and t.ts >= ${from})) as ts from telemetry_epochs e`;
    return row?.ts ?? null;
  }

  async hourSamples(from: number, to: number): Promise<SampleRow[]> {
    // Ordered within a terminal as SQLite reads them (epochs by (terminal, epoch), samples by (ts, seq)), so the
    // averages add in the same order and the shares' JSON keys come in the same order on both engines.
    const rows = await this.sql<SampleRow[]>`
      select e.terminal_id as "terminalId", t.cpu, t.mem_used as "memUsed", t.mem_total as "memTotal", t.disk_used as "diskUsed",
        t.disk_total as "diskTotal", t.temp, t.pstat, t.pnote, t.services, r.type
      from telemetry_epochs e join telemetry_samples t on t.epoch_id = e.id join terminals r on r.id = e.terminal_id
      where t.ts >= ${from} and t.ts < ${to}
      order by e.terminal_id collate "C", e.epoch collate "C", t.ts, t.seq`;
    return rows.map((r) => ({ ...r }));
  }

  async writeRollups(rows: RollupRow[], rollupUntil: number | null, tx?: Tx): Promise<void> {
    const write = async (sql: Queryable) => {
      if (rows.length > 0) await this.#upsertRollups(sql, rows);
      if (rollupUntil !== null) {
        await sql`insert into meta (key, value) values ('rollup_until', ${String(rollupUntil)}) on conflict (key) do update set value = excluded.value`;
      }
    };
    if (tx) await write(pgSql(this.sql, tx));
    else await this.sql.begin(write);
  }

  /** One statement for the hour, whatever the fleet's size (unnest: 17 array parameters, not 17 per row). */
  async #upsertRollups(sql: Queryable, rows: RollupRow[]): Promise<void> {
    const f = (k: keyof RollupRow) => sql.array(rows.map((r) => r[k]) as number[], FLOAT8);
    await sql`
      insert into rollups_hourly (terminal_id, hour, samples, cpu_min, cpu_avg, cpu_max, mem_pct_min, mem_pct_avg,
        mem_pct_max, disk_pct_min, disk_pct_avg, disk_pct_max, temp_min, temp_avg, temp_max, peripheral_ok, services)
      select * from unnest(
        ${sql.array(rows.map((r) => r.terminalId), TEXT)}::text[], ${sql.array(rows.map((r) => r.hour), INT8)}::int8[],
        ${sql.array(rows.map((r) => r.samples), INT8)}::int8[],
        ${f('cpuMin')}::float8[], ${f('cpuAvg')}::float8[], ${f('cpuMax')}::float8[],
        ${f('memPctMin')}::float8[], ${f('memPctAvg')}::float8[], ${f('memPctMax')}::float8[],
        ${f('diskPctMin')}::float8[], ${f('diskPctAvg')}::float8[], ${f('diskPctMax')}::float8[],
        ${f('tempMin')}::float8[], ${f('tempAvg')}::float8[], ${f('tempMax')}::float8[],
        ${sql.array(rows.map((r) => r.peripheralOk), TEXT)}::text[], ${sql.array(rows.map((r) => r.services), TEXT)}::text[])
      on conflict (terminal_id, hour) do update set
        samples = excluded.samples, cpu_min = excluded.cpu_min, cpu_avg = excluded.cpu_avg, cpu_max = excluded.cpu_max,
        mem_pct_min = excluded.mem_pct_min, mem_pct_avg = excluded.mem_pct_avg, mem_pct_max = excluded.mem_pct_max,
        disk_pct_min = excluded.disk_pct_min, disk_pct_avg = excluded.disk_pct_avg, disk_pct_max = excluded.disk_pct_max,
        temp_min = excluded.temp_min, temp_avg = excluded.temp_avg, temp_max = excluded.temp_max,
        peripheral_ok = excluded.peripheral_ok, services = excluded.services`;
  }

  async prune(c: PruneCutoffs): Promise<PruneResult> {
    // A day of raw samples goes only once the rollups passed it (the rollup job catches up a bounded number of hours
    // per run; SQLite's row deletes have the same order, rollups first, from service.ts).
    const rawBefore = Math.min(c.raw, c.rolledUpUntil ?? c.raw);
    const dropped = [...(await this.#dropDays('telemetry_samples', rawBefore)), ...(await this.#dropDays('events', c.long))];
    let telemetry = dropped.filter((d) => d.table === 'telemetry_samples').reduce((n, d) => n + d.rows, 0);
    let other = dropped.filter((d) => d.table === 'events').reduce((n, d) => n + d.rows, 0);
    // Receive time, as on SQLite; `ts + recv_delay` is the receive time of a compact sample row.
    telemetry += await this.#deleteChunked('telemetry_samples_default', (sql) => sql`ts + recv_delay < ${c.raw}`);
    other += await this.#deleteChunked('events_default', (sql) => sql`received_at < ${c.long}`);
    other += await this.#deleteChunked('rollups_hourly', (sql) => sql`hour < ${c.long}`);
    other += await this.#deleteChunked('presence_transitions', (sql) => sql`at < ${c.long}`);
    for (const table of ['config_reports', 'command_results', 'update_status']) {
      other += await this.#deleteChunked(table, (sql) => sql`received_at < ${c.long}`);
    }
    other += await this.#deleteChunked('commands', (sql) => sql`status not in ('pending', 'sent') and issued_at < ${c.long}`);
    return { telemetry, other, partitionsDropped: dropped.map((d) => d.name).sort() };
  }

  /** Drops the daily partitions of `table` wholly before `before`; returns them with their row counts. */
  async #dropDays(table: PartitionedTable, before: number): Promise<{ table: PartitionedTable; name: string; rows: number }[]> {
    // reltuples is the planner's count (-1 before the first ANALYZE; autovacuum analyzes a filled day long before it
    // expires): counting a day of a large fleet exactly would read the whole partition just to drop it.
    const parts = await this.sql<{ name: string; est: number }[]>`
      select c.relname as name, c.reltuples::float8 as est from pg_inherits i
      join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
      where p.relname = ${table} and c.relname ~ '_p[0-9]{8}$'`;
    const doomed = parts.filter((p) => {
      const ymd = p.name.slice(-8);
      return Date.UTC(Number(ymd.slice(0, 4)), Number(ymd.slice(4, 6)) - 1, Number(ymd.slice(6, 8))) + DAY_MS <= before;
    });
    if (doomed.length === 0) return [];
    const rows = new Map<string, number>();
    for (const p of doomed) {
      if (p.est >= 0) rows.set(p.name, Math.round(p.est));
      else {
        const [n] = await this.sql<{ n: number }[]>`select count(*)::int8 as n from ${this.sql(p.name)}`;
        rows.set(p.name, n?.n ?? 0);
      }
    }
    const names = await this.sql.begin(async (sql) => {
      await sql.unsafe(`SET LOCAL lock_timeout = '${DROP_LOCK_TIMEOUT}'`);
      return dropPartitionsBefore(sql, table, before);
    });
    return names.map((name) => ({ table, name, rows: rows.get(name) ?? 0 }));
  }

  /** DELETE … WHERE `where` in chunks of PRUNE_CHUNK rows, each its own statement (and transaction). */
  async #deleteChunked(table: string, where: (sql: Sql) => ReturnType<Sql>): Promise<number> {
    const sql = this.sql;
    let total = 0;
    for (;;) {
      // ctid = ANY(array): a TID scan of the chunk found (the tables here are plain ones, DEFAULT partitions included).
      const r = await sql`
        delete from ${sql(table)} where ctid = any(array(select ctid from ${sql(table)} where ${where(sql)} limit ${PRUNE_CHUNK}))`;
      total += r.count;
      if (r.count < PRUNE_CHUNK) return total;
    }
  }

  async preparePartitions(from: number, to: number): Promise<PartitionsMade> {
    const made: PartitionsMade = { created: [], skipped: [] };
    for (const table of PARTITIONED_TABLES) {
      const r = await ensureDailyPartitions(this.sql, table, from, to);
      made.created.push(...r.created);
      made.skipped.push(...r.skipped);
    }
    return made;
  }
}
