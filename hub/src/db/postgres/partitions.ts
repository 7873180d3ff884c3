/**
 * Daily partitions of `telemetry_samples` and `events` (declarative range partitions on `ts`, the terminal's clock,
 * in UTC days). Retention drops a whole day's partition instead of deleting rows; a DEFAULT partition (migration 0000)
 * takes what no daily partition covers: clocks that are dead, far ahead, or older than the partitions made.
 *
 * A daily partition cannot be created once the DEFAULT partition holds rows of its range (PostgreSQL refuses:
 * "updated partition constraint for default partition would be violated"), so partitions are made ahead of time
 * (`ensureDailyPartitions` for today and the next days at start and daily), and a day whose rows already sit in the
 * DEFAULT partition stays there; that is logged by the caller, nothing is lost.
 */
import type { Sql, TransactionSql } from 'postgres';

/** A pool or a transaction: partitions are made either way. */
type Queryable = Sql | TransactionSql;

export const PARTITIONED_TABLES = ['telemetry_samples', 'events'] as const;
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number];

const DAY_MS = 86_400_000;

export function dayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

export function partitionName(table: PartitionedTable, dayMs: number): string {
  return `${table}_p${new Date(dayMs).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

export interface PartitionResult {
  created: string[];
  /** Days left to the DEFAULT partition because it already holds rows of them. */
  skipped: string[];
}

/** Creates the missing daily partitions of `table` for the UTC days that [fromMs, toMs] touches. */
export async function ensureDailyPartitions(sql: Queryable, table: PartitionedTable, fromMs: number, toMs: number): Promise<PartitionResult> {
  const existing = new Set(
    (
      await sql<{ name: string }[]>`
        select c.relname as name from pg_inherits i
        join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
        where p.relname = ${table}`
    ).map((r) => r.name),
  );
  const result: PartitionResult = { created: [], skipped: [] };
  for (let day = dayStart(fromMs); day <= toMs; day += DAY_MS) {
    const name = partitionName(table, day);
    if (existing.has(name)) continue;
    try {
      // Identifiers and bounds come from this function, never from input: safe to splice.
      await sql.unsafe(`CREATE TABLE IF NOT EXISTS "${name}" PARTITION OF "${table}" FOR VALUES FROM (${day}) TO (${day + DAY_MS})`);
      result.created.push(name);
    } catch (err) {
      if ((err as { code?: string }).code === '23514') result.skipped.push(name);
      else throw err;
    }
  }
  return result;
}

/** Drops the daily partitions of `table` that lie wholly before `beforeMs`; returns their names. */
export async function dropPartitionsBefore(sql: Queryable, table: PartitionedTable, beforeMs: number): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    select c.relname as name from pg_inherits i
    join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
    where p.relname = ${table} and c.relname ~ '_p[0-9]{8}$'`;
  const dropped: string[] = [];
  for (const { name } of rows) {
    const ymd = name.slice(-8);
    const day = Date.UTC(Number(ymd.slice(0, 4)), Number(ymd.slice(4, 6)) - 1, Number(ymd.slice(6, 8)));
    if (day + DAY_MS <= beforeMs) {
      await sql.unsafe(`DROP TABLE IF EXISTS "${name}"`);
      dropped.push(name);
    }
  }
  return dropped.sort();
}
