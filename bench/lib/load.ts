/**
 * The load side seen from a scenario: terminals spread over several load-generator processes on the load core,
 * each connecting from its own source address in 127.0.0.0/8 (so neither ports nor descriptors run out).
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { assertPinned, BENCH_DIR, LOAD_CORE, spawnNodeTs, stopChild } from './proc.ts';
import { Histogram, type HistogramJson } from './stats.ts';
import type { LoadConfig, RunResult, RunSpec } from './loadgen.ts';
import type { TerminalCred } from './terminals.ts';

export interface LoadOptions extends Omit<LoadConfig, 'terminals' | 'localAddress' | 'host'> {
  terminals: TerminalCred[];
  processes: number;
  /** Max time to wait for every terminal to connect. */
  readyTimeoutMs: number;
}

export interface Connected {
  ok: number;
  failed: number;
  errors: string[];
  /** Until the last process had connected all its terminals. */
  ms: number;
  connectHist: Histogram;
}

export interface MergedRun {
  sent: number;
  acked: number;
  ackedInWindow: number;
  windowMs: number;
  lost: number;
  hist: Histogram;
  connected: number;
  /** Acks per second inside the measured window, all processes together. */
  rate: number;
}

interface Msg {
  type: string;
  [k: string]: unknown;
}

export interface LoadStatus {
  connected: number;
  reconnects: number;
  timedOut: number;
  /** Attempts given up because the TCP handshake went unanswered (with `handshakeTimeoutMs`). */
  noHandshake: number;
  failed: number;
  /** With several hubs (`ports`): failed attempts that moved on to the next hub of the list. */
  moves: number;
  /** Terminals connected now, by the hub port they are connected to. */
  perPort: Record<number, number>;
}

export class Load {
  private constructor(
    readonly procs: ChildProcess[],
    readonly connected: Connected,
  ) {}

  get pids(): Array<number | undefined> {
    return this.procs.map((p) => p.pid);
  }

  /** Events (config applied) from every process go to this listener. */
  onEvent(fn: (e: Msg) => void): void {
    for (const p of this.procs) p.on('message', (m: Msg) => m.type === 'event' && fn(m));
  }

  static async start(o: LoadOptions): Promise<Load> {
    const n = Math.max(1, Math.min(o.processes, o.terminals.length));
    const procs: ChildProcess[] = [];
    const results: Array<Promise<Msg>> = [];
    for (let i = 0; i < n; i++) {
      const child = spawnNodeTs(path.join(BENCH_DIR, 'lib/loadgen.ts'), [], { core: LOAD_CORE, ipc: true, nodeArgs: ['--max-old-space-size=2048'] });
      procs.push(child);
      const slice = o.terminals.filter((_, j) => j % n === i); // interleaved: every process gets every kind
      const cfg: LoadConfig = {
        host: '127.0.0.1',
        port: o.port,
        ...(o.ports?.length ? { ports: o.ports } : {}),
        localAddress: `127.0.0.${2 + i}`,
        terminals: slice,
        keepalive: o.keepalive,
        presence: o.presence,
        ...(o.presenceRetain === undefined ? {} : { presenceRetain: o.presenceRetain }),
        subscribeConfig: o.subscribeConfig,
        connectConcurrency: o.connectConcurrency,
        connectTimeoutMs: o.connectTimeoutMs,
        ...(o.handshakeTimeoutMs ? { handshakeTimeoutMs: o.handshakeTimeoutMs } : {}),
        ...(o.reconnect ? { reconnect: o.reconnect } : {}),
      };
      results.push(
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`load process ${i}: not connected within ${o.readyTimeoutMs} ms`)), o.readyTimeoutMs);
          child.once('exit', (code) => reject(new Error(`load process ${i} exited (${code})`)));
          child.on('message', (m: Msg) => {
            if (m.type === 'ready') {
              try {
                assertPinned(child.pid, LOAD_CORE, `load process ${i}`);
              } catch (err) {
                reject(err as Error);
                return;
              }
              child.send({ type: 'config', cfg });
            }
            if (m.type === 'progress' && process.env.BENCH_VERBOSE) process.stdout.write(`  load ${i}: ${m.ok as number} connecting/connected, ${m.failed as number} failed ${(m.errors as string[]).slice(0, 1).join('')}\n`);
            if (m.type === 'connected') {
              clearTimeout(timer);
              resolve(m);
            }
          });
        }),
      );
    }
    const all = await Promise.all(results);
    const connectHist = new Histogram();
    for (const m of all) connectHist.merge(m.connectHist as HistogramJson);
    return new Load(procs, {
      ok: all.reduce((a, m) => a + (m.ok as number), 0),
      failed: all.reduce((a, m) => a + (m.failed as number), 0),
      errors: all.flatMap((m) => m.errors as string[]).slice(0, 5),
      ms: Math.max(...all.map((m) => m.ms as number)),
      connectHist,
    });
  }

  /** Runs one load phase in every process at once and merges the results. */
  async run(spec: RunSpec, timeoutMs = spec.durationMs + 30000): Promise<MergedRun> {
    const parts = await Promise.all(
      this.procs.map(
        (p, i) =>
          new Promise<RunResult>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`load process ${i}: run did not finish within ${timeoutMs} ms`)), timeoutMs);
            const onMsg = (m: Msg) => {
              if (m.type !== 'done') return;
              clearTimeout(timer);
              p.off('message', onMsg);
              resolve(m as unknown as RunResult);
            };
            p.on('message', onMsg);
            // A message count is for all processes together: each gets its share.
            const share = spec.mode === 'flood' ? { maxMessages: Math.ceil(spec.maxMessages / this.procs.length) } : {};
            p.send({ type: 'run', ...spec, ...share });
          }),
      ),
    );
    const hist = new Histogram();
    for (const r of parts) hist.merge(r.hist);
    const ackedInWindow = parts.reduce((a, r) => a + r.ackedInWindow, 0);
    const windowMs = parts[0]?.windowMs ?? 1;
    return {
      sent: parts.reduce((a, r) => a + r.sent, 0),
      acked: parts.reduce((a, r) => a + r.acked, 0),
      ackedInWindow,
      windowMs,
      lost: parts.reduce((a, r) => a + r.lost, 0),
      connected: parts.reduce((a, r) => a + r.connected, 0),
      hist,
      rate: ackedInWindow / (windowMs / 1000),
    };
  }

  /**
   * How many terminals are connected now, over all processes; successful reconnects; reconnect attempts given up for
   * want of a CONNACK in time (`timedOut`) and those refused or closed before it (`failed`).
   */
  async status(): Promise<LoadStatus> {
    const none: LoadStatus = { connected: 0, reconnects: 0, timedOut: 0, noHandshake: 0, failed: 0, moves: 0, perPort: {} };
    const parts = await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<LoadStatus>((resolve) => {
            const t = setTimeout(() => resolve(none), 5000);
            const on = (m: Msg) => {
              if (m.type !== 'status') return;
              clearTimeout(t);
              p.off('message', on);
              resolve({ ...none, ...(m as unknown as Partial<LoadStatus>) });
            };
            p.on('message', on);
            p.send({ type: 'status' });
          }),
      ),
    );
    const sum = (k: Exclude<keyof LoadStatus, 'perPort'>) => parts.reduce((a, x) => a + x[k], 0);
    const perPort: Record<number, number> = {};
    for (const x of parts) for (const [port, n] of Object.entries(x.perPort)) perPort[Number(port)] = (perPort[Number(port)] ?? 0) + n;
    return { connected: sum('connected'), reconnects: sum('reconnects'), timedOut: sum('timedOut'), noHandshake: sum('noHandshake'), failed: sum('failed'), moves: sum('moves'), perPort };
  }

  /**
   * Stops `count` terminals for good, as agents stop (offline presence, DISCONNECT), spread over the processes (and,
   * with `ports`, over the hubs they started on); resolves with how many were stopped.
   */
  async retire(count: number): Promise<number> {
    const n = this.procs.length;
    const each = this.procs.map((_, i) => Math.floor(count / n) + (i < count % n ? 1 : 0));
    const parts = await Promise.all(this.procs.map((p, i) => this.askOne(p, { type: 'retire', count: each[i]! }, (m) => m.n as number)));
    return parts.reduce((a, b) => a + b, 0);
  }

  /** Ids of the terminals connected to hub port `port` now. */
  async idsOn(port: number): Promise<string[]> {
    return (await Promise.all(this.procs.map((p) => this.askOne(p, { type: 'ids', port }, (m) => m.ids as string[])))).flat();
  }

  /** One process's answer to `msg` (`retire` is answered by `retired`, the others by their own type). */
  private askOne<T>(p: ChildProcess, msg: Msg, pick: (m: Msg) => T, timeoutMs = 10000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const answer = msg.type === 'retire' ? 'retired' : msg.type;
      const t = setTimeout(() => reject(new Error(`load process: no answer to ${msg.type} within ${timeoutMs} ms`)), timeoutMs);
      const on = (m: Msg) => {
        if (m.type !== answer) return;
        clearTimeout(t);
        p.off('message', on);
        resolve(pick(m));
      };
      p.on('message', on);
      p.send(msg);
    });
  }

  /** Ends every load process: `clean` sends DISCONNECT, `drop` just closes the sockets (wills fire). */
  async close(how: 'clean' | 'drop' = 'clean'): Promise<void> {
    for (const p of this.procs) {
      // A process killed a moment ago (the offline scenario's silent drop) may still look connected: with a callback
      // the send's EPIPE goes to it instead of an 'error' event nobody handles (which ended the scenario).
      if (!p.connected) continue;
      try {
        p.send({ type: 'close', how }, () => undefined);
      } catch {
        /* gone */
      }
    }
    // They exit by themselves once closed; a signal only for one that does not.
    await Promise.all(
      this.procs.map(async (p) => {
        if (p.exitCode === null && p.signalCode === null) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 3000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          });
        }
        await stopChild(p, 3000);
      }),
    );
  }
}
