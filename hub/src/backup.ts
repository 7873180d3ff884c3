/**
 * `kiosk-fleet backup <file>`: SQLite's online backup API (better-sqlite3 `db.backup()`), safe while the hub runs
 * and writes: it copies a consistent snapshot page by page without stopping writers for long.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { privateFile } from './data-dir.ts';
import { dbPath } from './store/db.ts';

/** Pages copied per step: better-sqlite3's default (100) makes a 1 GB database 2,500 steps, each a progress call. */
const PAGES_PER_STEP = 1000;

export async function backupDatabase(
  dataDir: string,
  target: string,
  onProgress?: (p: { totalPages: number; remainingPages: number }) => void,
): Promise<{ file: string; pages: number }> {
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
