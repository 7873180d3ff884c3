/**
 * The data dir holds the hub key, password hashes, webhook secrets, the admin token and release files: only the hub's
 * user may read it. Directories are 0700 and files 0600 whatever the umask (a mode given to open/mkdir is masked by
 * it, so each is set again with chmod); a data dir left readable by an older hub is tightened at start, and logged.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from './log.ts';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** mkdir -p with mode 0700 for `dir` (and any parent it makes), set exactly. */
export function privateDir(dir: string): void {
  const first = fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first === undefined) return;
  // Every directory mkdir made, from the first one down to `dir`.
  for (let d = dir; ; d = path.dirname(d)) {
    fs.chmodSync(d, PRIVATE_DIR_MODE);
    if (d === first || path.dirname(d) === d) break;
  }
}

/**
 * Creates `file` empty with mode 0600 if it does not exist (SQLite then makes its -wal and -shm with the database
 * file's mode), and sets 0600 on a file that does.
 */
export function privateFile(file: string): void {
  const fd = fs.openSync(file, 'a', PRIVATE_FILE_MODE);
  try {
    fs.fchmodSync(fd, PRIVATE_FILE_MODE);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * At start: the data dir 0700, and every directory under it 0700 and every file 0600 (symbolic links are left
 * alone). Logs what it tightened (warn: someone could have read it) and what it could not (not the hub's own file).
 */
export function tightenDataDir(dataDir: string, log: Logger): void {
  privateDir(dataDir);
  const tightened: string[] = [];
  const failed: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st || st.isSymbolicLink()) return;
    const want = st.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE;
    if (st.isDirectory() || st.isFile()) {
      if ((st.mode & 0o777) !== want) {
        try {
          fs.chmodSync(p, want);
          tightened.push(`${path.relative(dataDir, p) || '.'} ${(st.mode & 0o777).toString(8).padStart(4, '0')}`);
        } catch {
          failed.push(path.relative(dataDir, p) || '.');
        }
      }
    }
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
  };
  visit(dataDir);
  if (tightened.length > 0) {
    log.warn({ dataDir, tightened: tightened.slice(0, 50), count: tightened.length }, 'data dir was readable by others: now 0700 (directories) and 0600 (files)');
  }
  if (failed.length > 0) log.error({ dataDir, paths: failed.slice(0, 50), count: failed.length }, 'data dir: could not make these private (not owned by the hub user?)');
}
