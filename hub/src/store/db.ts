/**
 * Opening the database: one SQLite file in WAL mode, migrations applied and then checked.
 *
 * drizzle's migrator applies by journal timestamp, not by hash, and silently skips a migration stamped older than
 * the last applied one (drizzle #5316, #5769). So after migrate() every migration in hub/drizzle must have its hash
 * in the migrations table, or the start fails.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import * as schema from './schema.ts';
import { privateDir, privateFile } from '../data-dir.ts';

export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '..', '..', 'drizzle');
export const DB_FILE = 'kiosk-fleet.db';

export type Db = Database.Database;
export type Orm = BetterSQLite3Database<typeof schema>;

export class MigrationError extends Error {}

export function dbPath(dataDir: string): string {
  return path.join(dataDir, DB_FILE);
}

export function openDatabase(dataDir: string, migrationsDir = MIGRATIONS_DIR): { db: Db; orm: Orm } {
  // 0700/0600 whatever the umask: the file holds password hashes, the hub key and webhook secrets (data-dir.ts).
  privateDir(dataDir);
  privateFile(dbPath(dataDir));
  const db = new Database(dbPath(dataDir));
  try {
    // auto_vacuum only takes effect before the first table exists: pruning then hands pages back to the OS.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // API reads never wait for long on the ingest's short transactions; writes all come from this one connection.
    db.pragma('busy_timeout = 5000');
    // Checkpoint the WAL every 10,000 pages (~40 MB) instead of SQLite's 1,000. Ingest from many terminals dirties
    // about one page per terminal per batch (each terminal's newest sample page, its state row): at 1,000 terminals a
    // batch writes ~1,200 pages, so the default checkpointed, and fsynced, after every batch, copying the same tail
    // pages again each time. Measured (1,000 interleaved terminals, batches of 1,000 rows, the hub's statements, three
    // runs each): 20-23 µs CPU and 36-57 µs wall a row against 24-29 µs and 56-102 µs; with no checkpoint at all
    // 17-19 / 19-38 µs. The WAL file grows to about 40 MB (reads search its index; retention and stop truncate it).
    db.pragma('wal_autocheckpoint = 10000');
    const orm = drizzle(db, { schema });
    migrate(orm, { migrationsFolder: migrationsDir });
    checkMigrations(db, migrationsDir);
    return { db, orm };
  } catch (err) {
    db.close();
    throw err;
  }
}

function checkMigrations(db: Db, migrationsDir: string): void {
  const expected = readMigrationFiles({ migrationsFolder: migrationsDir });
  const applied = new Set(
    (db.prepare('SELECT hash FROM __drizzle_migrations').all() as { hash: string }[]).map((r) => r.hash),
  );
  const missing = expected.filter((m) => !applied.has(m.hash));
  if (missing.length > 0) {
    throw new MigrationError(
      `${missing.length} of ${expected.length} migrations were not applied (drizzle skips migrations stamped older than the last one applied); the database was left as it was`,
    );
  }
}
