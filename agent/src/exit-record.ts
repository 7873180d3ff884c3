/**
 * Why the agent last stopped, for presence `lastExit`.
 *
 * On start the agent reads the previous run's record and then writes `running`. A clean stop writes `clean`. A
 * record still saying `running` means the previous run did not stop cleanly: if the host booted after that run was
 * last seen alive, the machine lost power (or was reset); otherwise the agent process died (crash, SIGKILL, OOM).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Presence } from '@kiosk-fleet/protocol';
import { writeFileAtomic } from './fs-atomic.ts';

export type LastExit = NonNullable<Presence['lastExit']>;

interface Record {
  state: 'running' | 'stopped';
  cause?: LastExit['cause'];
  bootId: string;
  startedAt: string;
  /** Refreshed while running, so that a power loss can be told apart from a crash. */
  aliveAt: string;
  stoppedAt?: string;
}

export interface ExitRecorder {
  /** Read the previous run's outcome and mark this run as running. */
  start(bootId: string, now?: Date): LastExit;
  alive(now?: Date): void;
  stopped(cause: 'clean' | 'crash', now?: Date): void;
}

export class FileExitRecorder implements ExitRecorder {
  #file: string;
  #rec: Record | null = null;
  constructor(
    dataDir: string,
    private readonly hostBootTime: () => number = () => Date.now() - os.uptime() * 1000,
  ) {
    mkdirSync(dataDir, { recursive: true });
    this.#file = path.join(dataDir, 'agent-state.json');
  }

  start(bootId: string, now = new Date()): LastExit {
    let prev: Record | null = null;
    try {
      prev = JSON.parse(readFileSync(this.#file, 'utf8')) as Record;
    } catch {
      prev = null;
    }
    let last: LastExit;
    if (!prev) last = { cause: 'first-start' };
    else if (prev.state === 'stopped') last = { cause: prev.cause ?? 'unknown', ...(prev.stoppedAt ? { at: prev.stoppedAt } : {}) };
    else {
      const aliveAt = Date.parse(prev.aliveAt);
      // a one-minute margin: os.uptime() is coarse and the clock may have been stepped at boot
      const cause = Number.isFinite(aliveAt) && this.hostBootTime() > aliveAt - 60_000 ? 'power-loss' : 'crash';
      last = { cause, ...(Number.isFinite(aliveAt) ? { at: new Date(aliveAt).toISOString() } : {}) };
    }
    this.#rec = { state: 'running', bootId, startedAt: now.toISOString(), aliveAt: now.toISOString() };
    this.#write();
    return last;
  }

  alive(now = new Date()): void {
    if (!this.#rec) return;
    this.#rec.aliveAt = now.toISOString();
    this.#write();
  }

  stopped(cause: 'clean' | 'crash', now = new Date()): void {
    if (!this.#rec) return;
    this.#rec = { ...this.#rec, state: 'stopped', cause, stoppedAt: now.toISOString() };
    this.#write();
  }

  #write(): void {
    writeFileAtomic(this.#file, JSON.stringify(this.#rec));
  }
}

/** For simulated terminals: the same logic, kept in memory across simulated restarts. */
export class MemoryExitRecorder implements ExitRecorder {
  #last: LastExit = { cause: 'first-start' };
  #running = false;
  start(): LastExit {
    const last = this.#running ? { cause: 'crash' as const } : this.#last;
    this.#running = true;
    return last;
  }
  alive(): void {}
  stopped(cause: 'clean' | 'crash', now = new Date()): void {
    this.#running = false;
    this.#last = { cause, at: now.toISOString() };
  }
  /** The simulator cuts the power: the next start reports it. */
  powerLost(now = new Date()): void {
    this.#running = false;
    this.#last = { cause: 'power-loss', at: now.toISOString() };
  }
}
