/**
 * `<dataDir>/hub.lock`: which process serves this data dir. `serve` takes it at start and drops it at stop; tools that
 * must not run beside a hub (`migrate-store`) refuse while a live process holds it, and a second hub on the same data
 * dir refuses to start. The file names the pid and, on Linux, the process's start time (/proc/<pid>/stat field 22),
 * so a stale lock left by a crash or a reboot, whose pid now belongs to another process, is recognised as stale.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const LOCK_FILE = 'hub.lock';

interface LockRecord {
  pid: number;
  startTicks: string | null;
  host: string;
  at: string;
}

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

function startTicks(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function alive(rec: LockRecord): boolean {
  if (rec.host !== os.hostname()) return true; // another machine's hub on a shared disk: assume it runs
  try {
    process.kill(rec.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTicks(rec.pid);
  return rec.startTicks === null || now === null || now === rec.startTicks;
}

function read(file: string): LockRecord | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockRecord;
  } catch {
    return null;
  }
}

/** The live hub holding `dataDir`, or null. */
export function hubHolding(dataDir: string): LockRecord | null {
  const rec = read(path.join(dataDir, LOCK_FILE));
  return rec && alive(rec) && rec.pid !== process.pid ? rec : null;
}

export function acquireDataDirLock(dataDir: string): { release(): void } {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, LOCK_FILE);
  const holder = hubHolding(dataDir);
  if (holder) throw new DataDirLockedError(`another hub (pid ${holder.pid}, since ${holder.at}) is serving ${dataDir}`);
  const rec: LockRecord = { pid: process.pid, startTicks: startTicks(process.pid), host: os.hostname(), at: new Date().toISOString() };
  const token = `${JSON.stringify(rec)}\n`;
  fs.writeFileSync(file, token, { mode: 0o600 });
  return {
    release() {
      try {
        if (fs.readFileSync(file, 'utf8') === token) fs.unlinkSync(file);
      } catch {
        // already gone
      }
    },
  };
}
