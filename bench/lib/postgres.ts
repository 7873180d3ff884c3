/**
 * PostgreSQL as a system under test (issue 18): Debian's `postgresql` started by the test suites' throwaway-server
 * code (hub/src/db/postgres/test-server.ts) but durable (fsync, synchronous_commit and full_page_writes at their
 * defaults: a bench measures what a bureau's server does, commits flushed to disk), every process of it pinned to
 * the server core, the hub's schema applied by the hub's own migrations, a fresh database per run.
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { createTestDatabase, findPostgresBin, startTestPostgres, type TestPostgres } from '../../hub/src/db/postgres/test-server.ts';
import { openPostgres, type PostgresTarget } from '../../hub/src/db/postgres/open.ts';
import { ensureDailyPartitions } from '../../hub/src/db/postgres/partitions.ts';
import { parseDatabaseUrl } from '../../hub/src/db/url.ts';
import { assertPinned, SERVER_CORE } from './proc.ts';

export { findPostgresBin };

export interface BenchPostgres {
  server: TestPostgres;
  /** The postmaster's pid; every backend is its child (and inherits its core). */
  pid: number;
  /** A fresh database holding the hub's schema (the hub's migrations), with today's and tomorrow's partitions. */
  database(prefix: string): Promise<{ url: string; drop(): Promise<void> }>;
  /** pids of the server's processes now (postmaster and children: backends, checkpointer, WAL writer, …). */
  pids(): number[];
  stop(): Promise<void>;
}

function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppidOf = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppidOf === ppid) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Starts the server and pins it to the server core: the postmaster and the children it has forked so far. */
export async function startBenchPostgres(): Promise<BenchPostgres> {
  const server = await startTestPostgres({ durable: true });
  try {
    const pid = Number(fs.readFileSync(path.join(server.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    // pg_ctl daemonises the postmaster, so it cannot be started under `taskset` as the hub is; backends forked from
    // here on inherit the postmaster's mask, the auxiliary processes already running are pinned one by one.
    for (const p of [pid, ...childrenOf(pid)]) execFileSync('taskset', ['-a', '-p', '-c', String(SERVER_CORE), String(p)], { stdio: 'ignore' });
    for (const p of [pid, ...childrenOf(pid)]) assertPinned(p, SERVER_CORE, 'PostgreSQL');
    return {
      server,
      pid,
      pids: () => [pid, ...childrenOf(pid)],
      async database(prefix) {
        const db = await createTestDatabase(server.url, prefix);
        const pg = await openPostgres(parseDatabaseUrl(db.url) as PostgresTarget, { max: 1 });
        try {
          // As the hub does at start: the days being written get their own partitions, not the DEFAULT one.
          await ensureDailyPartitions(pg.sql, 'telemetry_samples', Date.now(), Date.now() + 86_400_000);
        } finally {
          await pg.close();
        }
        return db;
      },
      stop: () => server.stop(),
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** A client for the bench's own reads and writes (int8 as numbers, as the hub's). */
export function benchClient(url: string, max = 1): postgres.Sql {
  return postgres(url, {
    max,
    onnotice: () => {},
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
  });
}

export interface TelemetryUsage {
  samples: number;
  /** pg_total_relation_size of telemetry_samples' partitions (heap, TOAST, indexes) and of telemetry_epochs. */
  bytes: number;
  /** Each table with its total, and of that its heap (main fork) and its indexes. */
  perObject: Array<{ name: string; bytes: number; heap: number; indexes: number }>;
}

/** Bytes the telemetry tables take, with their partitions and indexes, and the samples they hold. */
export async function telemetryUsage(url: string): Promise<TelemetryUsage> {
  const sql = benchClient(url);
  try {
    // Statistics first, so that the visibility and free-space maps a real table has (autovacuum makes them) count too.
    await sql`vacuum analyze telemetry_samples`;
    await sql`vacuum analyze telemetry_epochs`;
    const objects = await sql<Array<{ name: string; bytes: number; heap: number; indexes: number }>>`
      select c.relname as name, pg_total_relation_size(c.oid)::int8 as bytes, pg_relation_size(c.oid)::int8 as heap,
        pg_indexes_size(c.oid)::int8 as indexes
      from pg_class c
      where c.relname = 'telemetry_epochs'
         or c.oid in (select inhrelid from pg_inherits where inhparent = 'telemetry_samples'::regclass)
      order by bytes desc`;
    const [row] = await sql<Array<{ n: number }>>`select count(*)::int8 as n from telemetry_samples`;
    return { samples: row?.n ?? 0, bytes: objects.reduce((a, o) => a + o.bytes, 0), perObject: objects.filter((o) => o.bytes > 0) };
  } finally {
    await sql.end({ timeout: 2 });
  }
}

/** One value in COPY's text format: `\N` for NULL, backslash, tab and line breaks escaped. */
function copyField(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  const s = String(v);
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : s;
}

/** One row in COPY's text format. */
export function copyLine(values: readonly unknown[]): string {
  return `${values.map(copyField).join('\t')}\n`;
}

/** `COPY table (cols) FROM STDIN` of rows already in COPY's text format; resolves once the server has them all. */
export async function copyInto(sql: postgres.Sql | postgres.TransactionSql, table: string, cols: string, text: string): Promise<void> {
  const w = await sql.unsafe(`COPY ${table} (${cols}) FROM STDIN`).writable();
  await pipeline(Readable.from([Buffer.from(text)]), w);
}
