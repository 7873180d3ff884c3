/**
 * `kiosk-fleet backup <file>`: SQLite's online backup API (better-sqlite3 `db.backup()`), safe while the hub runs
 * and writes: it copies a consistent snapshot page by page without stopping writers for long.
 *
 * SQLite only. On PostgreSQL the fleet is not in the data dir (a SQLite file left there from before a migrate-store
 * is stale, and copying it would look like a backup): refused, pointing at pg_dump.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { privateFile } from './data-dir.ts';
import type { DatabaseTarget } from './db/url.ts';
import { dbPath } from './store/db.ts';

/** Pages copied per step: better-sqlite3's default (100) makes a 1 GB database 2,500 steps, each a progress call. */
const PAGES_PER_STEP = 1000;

export class BackupRefusedError extends Error {
  override name = 'BackupRefusedError';
}

export async function backupDatabase(
  dataDir: string,
  target: string,
  onProgress?: (p: { totalPages: number; remainingPages: number }) => void,
  database: DatabaseTarget = { engine: 'sqlite' },
): Promise<{ file: string; pages: number }> {
  if (database.engine === 'postgres') {
    throw new BackupRefusedError(
      `the hub's database is PostgreSQL (${database.redacted}), which this command does not copy: back it up with ` +
        `pg_dump, e.g. pg_dump -Fc -d ${database.database} -f kiosk-fleet.dump (hub/README.md, "Backup of PostgreSQL")`,
    );
  }
  const source = dbPath(dataDir);
  if (!fs.existsSync(source)) throw new Error(`no database at ${source}`);
  const file = path.resolve(target);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // A backup holds what the database holds (password hashes, the hub key, webhook secrets): 0600 like the original.
  privateFile(file);
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const r = await db.backup(file, {
      progress: (p) => {
        onProgress?.(p);
        return PAGES_PER_STEP;
      },
    });
    return { file, pages: r.totalPages };
  } finally {
    db.close();
  }
}
