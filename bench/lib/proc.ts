/**
 * Child processes of a benchmark: each pinned to one core, each killed when the benchmark ends, however it ends.
 *
 * The machine has 2 cores. The system under test (hub, broker, SQLite writer) gets core 0 and the load generators
 * core 1, so a figure is the server's and not the load's; the load side's CPU is reported beside it, so a
 * load-bound figure shows as such.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import os from 'node:os';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BENCH_DIR = path.join(ROOT, 'bench');

/**
 * The server side's core and the load side's core (the same core on a 1-core machine). From the machine's CPU count,
 * not `os.availableParallelism()`: that one honours this process's affinity, and every scenario runs pinned to the load
 * core, where it counts 1, so that until 2026-11-26 the scenarios put their load generators on core 0 with the
 * server (the figures before then were measured with the load sharing the server's core).
 */
export const SERVER_CORE = 0;
export const LOAD_CORE = os.cpus().length > 1 ? 1 : 0;

const children = new Set<ChildProcess>();

function killAll(signal: NodeJS.Signals): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      try {
        // Each child leads its own process group (detached), so this also reaches anything it started.
        process.kill(-c.pid, signal);
      } catch {
        try {
          c.kill(signal);
        } catch {
          /* already gone */
        }
      }
    }
  }
}

let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => killAll('SIGKILL'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`bench: ${sig}; stopping\n`);
      killAll('SIGKILL');
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? String(err)}\n`);
    killAll('SIGKILL');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
    killAll('SIGKILL');
    process.exit(1);
  });
}

/** Ends the whole benchmark after `ms` whatever it is doing: every loop here is bounded in time as well as count. */
export function hardTimeout(ms: number, what: string): void {
  hookExit();
  const t = setTimeout(() => {
    process.stderr.write(`bench: ${what} exceeded its ${Math.round(ms / 1000)} s limit; stopping\n`);
    killAll('SIGKILL');
    process.exit(2);
  }, ms);
  t.unref();
}

export interface PinnedOptions {
  core: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Give the child an IPC channel (node children only). */
  ipc?: boolean;
  /** Pass the child's stderr through (default) or pipe it. */
  stderr?: 'inherit' | 'pipe' | 'ignore';
}

/** Starts `cmd args` pinned to one core with `taskset` (which execs, so the pid is the program's own). */
export function spawnPinned(cmd: string, args: string[], opts: PinnedOptions): ChildProcess {
  hookExit();
  const stdio: StdioOptions = ['ignore', 'pipe', opts.stderr ?? 'inherit'];
  if (opts.ipc) stdio.push('ipc');
  const child = spawn('taskset', ['-c', String(opts.core), cmd, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env, BENCH_PARENT_PID: String(process.pid) },
    stdio,
    detached: true,
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/**
 * Throws unless process `pid` may run on `core` alone (read back from the kernel once it runs): the figures depend on
 * the server and the load having a core each, and a wrong core goes unnoticed otherwise (see LOAD_CORE).
 */
export function assertPinned(pid: number | undefined, core: number, what: string): void {
  if (pid === undefined) throw new Error(`${what}: no pid`);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const allowed = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
  if (allowed !== String(core)) throw new Error(`${what} (pid ${pid}) may run on cores ${allowed ?? '?'}, expected only core ${core}`);
}

/** A node child running a TypeScript file through tsx, pinned to one core. */
export function spawnNodeTs(file: string, args: string[], opts: PinnedOptions & { nodeArgs?: string[] }): ChildProcess {
  return spawnPinned(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', file, ...args], opts);
}

/** Resolves with the first stdout line `match` accepts (parsed as JSON when it is JSON); rejects after `ms`. */
export function waitForLine<T>(child: ChildProcess, match: (line: string, json: unknown) => T | undefined, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    if (!child.stdout) return reject(new Error(`${what}: no stdout`));
    const rl = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      rl.close();
      reject(new Error(`${what}: not ready within ${ms} ms`));
    }, ms);
    const onExit = (code: number | null, sig: string | null) => {
      clearTimeout(timer);
      reject(new Error(`${what}: exited (${code ?? sig}) before it was ready`));
    };
    child.once('exit', onExit);
    rl.on('line', (line) => {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        json = undefined;
      }
      const got = match(line, json);
      if (got !== undefined) {
        clearTimeout(timer);
        child.off('exit', onExit);
        // Keep draining stdout so a chatty child never blocks on a full pipe.
        rl.removeAllListeners('line');
        rl.on('line', () => {});
        resolve(got);
      }
    });
  });
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`. Resolves once it has exited. */
export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

const CLK_TCK = 100; // USER_HZ on Linux; `getconf CLK_TCK` is 100 on every mainstream kernel build.

/** CPU seconds (user + system) a process has used so far, from /proc. 0 when it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return (utime + stime) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Resident set size of a process in bytes, from /proc. 0 when it is gone. */
export function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Measures CPU use of a set of processes over a window: `stop()` gives percent of one core for each. */
export function cpuMeter(pids: Array<number | undefined>): { stop(): number[] } {
  const t0 = performance.now();
  const c0 = pids.map(cpuSeconds);
  return {
    stop() {
      const dt = (performance.now() - t0) / 1000;
      // A process that has exited meanwhile reads 0: unknown (NaN), not a negative share.
      return pids.map((p, i) => {
        const c1 = cpuSeconds(p);
        return dt > 0 && c1 >= c0[i]! ? ((c1 - c0[i]!) / dt) * 100 : NaN;
      });
    },
  };
}

/** Children that were started by a benchmark exit when it does, even if it is SIGKILLed: call in the child. */
export function exitWithParent(): void {
  const ppid = Number(process.env.BENCH_PARENT_PID);
  if (!ppid) return;
  setInterval(() => {
    try {
      process.kill(ppid, 0);
    } catch {
      process.exit(3);
    }
  }, 1000).unref();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
