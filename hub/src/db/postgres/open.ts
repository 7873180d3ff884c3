/**
 * Opening PostgreSQL: reach the server (a clear error naming host and database, never the password), check it is 15
 * or later, apply the migrations in hub/drizzle-postgres and check they all are applied (the drizzle migrator trap
 * described in store/db.ts holds for PostgreSQL too: it compares journal timestamps, not hashes).
 *
 * Several hubs may start at once on one database: the migrations run under a session advisory lock on a connection of
 * their own, so a second hub waits for the first one's migration instead of racing it into a duplicate CREATE TABLE.
 */
import path from 'node:path';
import postgres, { type Sql } from 'postgres';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type { DatabaseTarget } from '../url.ts';
import { MigrationError } from '../../store/db.ts';

export const POSTGRES_MIGRATIONS_DIR = path.resolve(import.meta.dirname, '..', '..', '..', 'drizzle-postgres');

/** pg_advisory_lock key of the schema migration: 'kfmg' as an int32. */
const MIGRATION_LOCK = 0x6b666d67;
const MIN_SERVER_VERSION = 150000;

export type PostgresTarget = Extract<DatabaseTarget, { engine: 'postgres' }>;

export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}

export interface PostgresDb {
  sql: Sql;
  orm: PostgresJsDatabase;
  target: PostgresTarget;
  close(): Promise<void>;
}

export interface OpenPostgresOptions {
  /** Pool size of the returned client (issue 18: 2-4 writer connections measured best here). */
  max?: number;
  /** Seconds to wait for a connection before the start gives up. */
  connectTimeoutS?: number;
  migrationsDir?: string;
  /** false: only connect and check the version (migrate-store checks an empty target first). */
  migrate?: boolean;
}

function client(target: PostgresTarget, max: number, connectTimeoutS: number): Sql {
  return postgres(target.url, {
    max,
    connect_timeout: connectTimeoutS,
    // NOTICEs (e.g. "relation already exists, skipping") are not the operator's business.
    onnotice: () => {},
    // int8 comes back as a JS number, not a string: every bigint here is a time in ms or a counter below 2^53 (the
    // protocol caps seq there), and the SQLite store hands out numbers too.
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
    transform: { undefined: null },
  });
}

/** What went wrong, for a person: host, database and the driver's reason, never the URL (it may hold a password). */
export function describeConnectError(target: PostgresTarget, err: unknown): DatabaseUnavailableError {
  const e = err as { code?: string; message?: string; errno?: string };
  const reason = e.code && e.code !== e.message ? `${e.code}: ${e.message ?? ''}` : (e.message ?? String(err));
  const safe = reason.replaceAll(target.url, target.redacted);
  return new DatabaseUnavailableError(`cannot open PostgreSQL database "${target.database}" on ${target.hosts.join(',')} as ${target.user}: ${safe}`);
}

export async function openPostgres(target: PostgresTarget, opts: OpenPostgresOptions = {}): Promise<PostgresDb> {
  const connectTimeoutS = opts.connectTimeoutS ?? 10;
  const sql = client(target, opts.max ?? 4, connectTimeoutS);
  try {
    const [row] = await sql<{ v: number }[]>`select current_setting('server_version_num')::int as v`;
    if (!row || row.v < MIN_SERVER_VERSION) {
      throw new DatabaseUnavailableError(`PostgreSQL ${row ? Math.floor(row.v / 10000) : '?'} at ${target.redacted}: the hub needs 15 or later`);
    }
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw err instanceof DatabaseUnavailableError ? err : describeConnectError(target, err);
  }
  try {
    if (opts.migrate !== false) await migratePostgres(target, opts.migrationsDir ?? POSTGRES_MIGRATIONS_DIR, connectTimeoutS);
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw err;
  }
  const orm = drizzle(sql);
  return { sql, orm, target, close: () => sql.end({ timeout: 5 }) };
}

export async function migratePostgres(target: PostgresTarget, migrationsDir = POSTGRES_MIGRATIONS_DIR, connectTimeoutS = 10): Promise<void> {
  // One connection: the session lock and drizzle's migration transaction must share it.
  const one = client(target, 1, connectTimeoutS);
  try {
    await one`select pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      await migrate(drizzle(one), { migrationsFolder: migrationsDir });
      await checkMigrations(one, migrationsDir);
    } finally {
      await one`select pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    await one.end({ timeout: 5 });
  }
}

async function checkMigrations(sql: Sql, migrationsDir: string): Promise<void> {
  const expected = readMigrationFiles({ migrationsFolder: migrationsDir });
  const rows = await sql<{ hash: string }[]>`select hash from drizzle.__drizzle_migrations`;
  const applied = new Set(rows.map((r) => r.hash));
  const missing = expected.filter((m) => !applied.has(m.hash));
  if (missing.length > 0) {
    throw new MigrationError(
      `${missing.length} of ${expected.length} PostgreSQL migrations were not applied (drizzle skips migrations stamped older than the last one applied); the database was left as it was`,
    );
  }
}
