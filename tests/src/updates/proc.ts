/** Child-process helpers for the update scenarios: start a TypeScript entry through tsx and read its JSON lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../../..');

export interface Proc {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: string[];
  exited: Promise<number | null>;
  /** Resolve with the first line (seen so far or later) matching `pred`; reject after `ms` or when the process exits. */
  waitLine(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<Proc>();

export function startTs(file: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  let buf = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        stderr.push(`stdout: ${line}`);
      }
      for (const l of listeners) l();
    }
  });
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const p: Proc = {
    child,
    lines,
    stderr,
    exited,
    waitLine(pred, ms = 30_000) {
      return new Promise((resolve, reject) => {
        let done = false;
        const check = (): void => {
          const hit = lines.find(pred);
          if (hit && !done) {
            done = true;
            cleanup();
            resolve(hit);
          }
        };
        const timer = setTimeout(() => fail('timed out'), ms);
        const fail = (why: string): void => {
          if (done) return;
          done = true;
          cleanup();
          reject(new Error(`${why} waiting for a line; got ${JSON.stringify(lines.slice(-8))}; stderr ${stderr.join('').slice(-1500)}`));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void exited.then(() => setTimeout(() => {
          check();
          fail('process exited');
        }, 50));
        check();
      });
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      live.delete(p);
    },
  };
  live.add(p);
  void exited.then(() => live.delete(p));
  return p;
}

export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill('SIGKILL')));
}
