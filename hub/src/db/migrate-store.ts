/**
 * `kiosk-fleet migrate-store --to postgres://…`: copies a SQLite installation (every table, all history) into an empty
 * PostgreSQL database. This is how a bureau that outgrows one machine moves (issue 18).
 *
 * Invariants:
 * - No hub runs on the data dir (its hub.lock, db/lock.ts), and the target holds no fleet data: refused otherwise,
 *   before anything is written.
 * - All or nothing: the copy is one PostgreSQL transaction; a failure leaves the target as empty as it was.
 * - Rows cross unchanged: the two schemas share table and column names and value conventions (schema.postgres.ts).
 *   A SQLite table or column the PostgreSQL schema lacks stops the copy (it would be data lost), naming it.
 * - At the end every table's row count is compared; a difference is an error (exit 1) and the table says where.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import type { Sql, TransactionSql } from 'postgres';
import { dbPath, openDatabase } from '../store/db.ts';
import { hubHolding } from './lock.ts';
import { openPostgres, type PostgresTarget } from './postgres/open.ts';
import { ensureDailyPartitions, PARTITIONED_TABLES, type PartitionedTable } from './postgres/partitions.ts';

export class MigrateStoreError extends Error {
  override name = 'MigrateStoreError';
}

export interface TableCount {
  table: string;
  sqlite: number;
  postgres: number;
}

export interface MigrateStoreResult {
  tables: TableCount[];
  rows: number;
  ms: number;
}

/** Tables that are the engines' own bookkeeping, not the fleet's. */
const SKIP = new Set(['__drizzle_migrations', 'sqlite_sequence', 'sqlite_stat1', 'sqlite_stat4']);
const DAY_MS = 86_400_000;
/** Daily partitions are made for history within this many days of now; older or future rows go to DEFAULT. */
const PARTITION_HORIZON_DAYS = 800;

/** One value in COPY's text format (PostgreSQL docs, COPY, "Text Format"). */
function copyValue(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (Buffer.isBuffer(v)) return `\\\\x${v.toString('hex')}`;
  const s = String(v);
  if (s.includes('\0')) throw new MigrateStoreError('a text value holds a NUL character, which PostgreSQL cannot store');
  return s.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

export interface MigrateStoreOptions {
  dataDir: string;
  target: PostgresTarget;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
  /** Seconds between progress lines of a long table. */
  progressEveryS?: number;
}

export async function migrateStore(opts: MigrateStoreOptions): Promise<MigrateStoreResult> {
  const say = opts.progress ?? (() => {});
  const started = Date.now();
  const holder = hubHolding(opts.dataDir);
  if (holder) throw new MigrateStoreError(`a hub (pid ${holder.pid}) is running on ${opts.dataDir}: stop it first, so that nothing changes during the copy`);
  // Applies any migration this version has and the file lacks, so both sides are at this version's schema.
  const { db: sqlite } = openDatabase(opts.dataDir);
  sqlite.close();
  const src = new Database(dbPath(opts.dataDir), { readonly: true, fileMustExist: true });
  const pg = await openPostgres(opts.target, { max: 2 });
  try {
    const tables = (src.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[])
      .map((r) => r.name)
      .filter((n) => !SKIP.has(n) && !n.startsWith('sqlite_'));
    const pgColumns = await columnsOf(pg.sql);
    // Refuse before writing anything: a target with fleet data, a table or column the target lacks.
    const nonEmpty: string[] = [];
    for (const t of pgColumns.keys()) {
      const [row] = await pg.sql<{ any: boolean }[]>`select exists (select 1 from ${pg.sql(t)}) as any`;
      if (row?.any) nonEmpty.push(t);
    }
    if (nonEmpty.length > 0) {
      throw new MigrateStoreError(`the target ${opts.target.redacted} is not empty (${nonEmpty.slice(0, 5).join(', ')}${nonEmpty.length > 5 ? ', …' : ''} hold rows): migrate-store copies into an empty database only`);
    }
    const plan = tables.map((table) => {
      const cols = (src.prepare(`SELECT name FROM pragma_table_info(?)`).all(table) as { name: string }[]).map((c) => c.name);
      const into = pgColumns.get(table);
      if (!into) throw new MigrateStoreError(`table ${table} has no counterpart in the PostgreSQL schema`);
      const missing = cols.filter((c) => !into.has(c));
      if (missing.length > 0) throw new MigrateStoreError(`${table}: column(s) ${missing.join(', ')} missing in the PostgreSQL schema`);
      const rows = (src.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n;
      return { table, cols, rows };
    });
    const total = plan.reduce((a, p) => a + p.rows, 0);
    say(`migrate-store: ${plan.length} tables, ${fmt(total)} rows from ${dbPath(opts.dataDir)} to ${opts.target.redacted}`);

    await pg.sql.begin(async (tx) => {
      for (const p of PARTITIONED_TABLES) {
        if (!plan.some((x) => x.table === p)) continue;
        const r = await partitionsFor(src, tx, p);
        if (r) say(`  ${p}: ${r}`);
      }
      let copied = 0;
      for (const { table, cols, rows } of plan) {
        let done = 0;
        let lastSaid = Date.now();
        const every = (opts.progressEveryS ?? 2) * 1000;
        const stmt = src.prepare(`SELECT ${cols.map((c) => `"${c}"`).join(', ')} FROM "${table}"`).raw(true);
        async function* lines(): AsyncGenerator<string> {
          let chunk = '';
          for (const row of stmt.iterate() as Iterable<unknown[]>) {
            chunk += `${row.map(copyValue).join('\t')}\n`;
            done++;
            if (chunk.length >= 256 * 1024) {
              yield chunk;
              chunk = '';
              if (Date.now() - lastSaid >= every) {
                lastSaid = Date.now();
                say(`  ${table}: ${fmt(done)} / ${fmt(rows)} rows (${Math.floor((100 * (copied + done)) / Math.max(total, 1))} % of all)`);
              }
            }
          }
          if (chunk) yield chunk;
        }
        if (rows > 0) {
          const sink = await tx`COPY ${tx(table)} (${tx(cols)}) FROM STDIN`.writable();
          try {
            await pipeline(Readable.from(lines()), sink);
          } catch (err) {
            throw new MigrateStoreError(`${table}: ${(err as Error).message}`);
          }
        }
        copied += done;
        say(`  ${table}: ${fmt(done)} rows`);
      }
      // Identity columns continue after the highest copied id, as SQLite's AUTOINCREMENT would.
      const identities = await tx<{ table: string; column: string }[]>`
        select table_name as table, column_name as column from information_schema.columns
        where table_schema = 'public' and is_identity = 'YES'`;
      for (const { table, column } of identities) {
        await tx.unsafe(
          `SELECT setval(pg_get_serial_sequence('"${table}"', '${column}'), coalesce((SELECT max("${column}") FROM "${table}"), 0) + 1, false)`,
        );
      }
    });

    const counts: TableCount[] = [];
    for (const { table, rows } of plan) {
      const [row] = await pg.sql<{ n: number }[]>`select count(*)::bigint as n from ${pg.sql(table)}`;
      counts.push({ table, sqlite: rows, postgres: row?.n ?? 0 });
    }
    return { tables: counts, rows: total, ms: Date.now() - started };
  } finally {
    src.close();
    await pg.close();
  }
}

async function columnsOf(sql: Sql): Promise<Map<string, Set<string>>> {
  // Partitions are tables of their own in information_schema; only their parents take rows.
  const rows = await sql<{ table: string; column: string }[]>`
    select c.table_name as table, c.column_name as column
    from information_schema.columns c
    join pg_class k on k.relname = c.table_name and k.relkind in ('r', 'p') and not k.relispartition
    join pg_namespace n on n.oid = k.relnamespace and n.nspname = 'public'
    where c.table_schema = 'public'`;
  const out = new Map<string, Set<string>>();
  for (const r of rows) {
    let s = out.get(r.table);
    if (!s) out.set(r.table, (s = new Set()));
    s.add(r.column);
  }
  return out;
}

/** Daily partitions for the history `table` holds (within the horizon around now) and the days ahead. */
async function partitionsFor(src: Database.Database, sql: TransactionSql, table: PartitionedTable): Promise<string | null> {
  const now = Date.now();
  const range = src.prepare(`SELECT min(ts) AS lo, max(ts) AS hi FROM "${table}" WHERE ts BETWEEN ? AND ?`).get(
    now - PARTITION_HORIZON_DAYS * DAY_MS,
    now + 2 * DAY_MS,
  ) as { lo: number | null; hi: number | null };
  const lo = Math.min(range.lo ?? now, now);
  const hi = Math.max(range.hi ?? now, now + 2 * DAY_MS);
  const r = await ensureDailyPartitions(sql, table, lo, hi);
  return r.created.length > 0 ? `${r.created.length} daily partitions (${r.created[0]} … ${r.created.at(-1)})` : null;
}

/** The per-table check as the CLI prints it; `ok` false when any count differs. */
export function formatCounts(tables: TableCount[]): { text: string; ok: boolean } {
  const w = Math.max(5, ...tables.map((t) => t.table.length));
  const lines = [`${'table'.padEnd(w)}  ${'sqlite'.padStart(12)}  ${'postgres'.padStart(12)}`];
  let ok = true;
  for (const t of tables) {
    const same = t.sqlite === t.postgres;
    ok &&= same;
    lines.push(`${t.table.padEnd(w)}  ${fmt(t.sqlite).padStart(12)}  ${fmt(t.postgres).padStart(12)}${same ? '' : '  MISMATCH'}`);
  }
  return { text: lines.join('\n'), ok };
}
