/**
 * spawnAgent / spawnSimulator: the real agent (`kiosk-fleet-agent run`) and the fleet simulator
 * (`kiosk-fleet-agent simulate`) as child processes, for cross-package scenarios.
 *
 *   const agent = await spawnAgent({ hubUrl: hub.mqttUrl, terminalId: 'GZ-YX-001-01', secret, dataDir });
 *   await agent.waitForLog((l) => l.msg === 'connected to hub');
 *   await agent.kill('SIGKILL'); await agent.restart();          // same data dir: the outbox replays
 *   await agent.stop();                                           // SIGTERM (offline presence, clean exit)
 *
 *   const sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, count: 20, provision: true });
 *   await sim.control('/terminals/GZ-YX-001-01/fault', { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
 *   await sim.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
export const AGENT_BIN = path.join(REPO_ROOT, 'agent', 'bin', 'kiosk-fleet-agent.mjs');

export type LogLine = Record<string, unknown> & { msg?: string };

interface ChildHandle {
  proc: ChildProcess;
  /** Parsed JSON log lines (stdout), newest last. */
  lines: LogLine[];
  /** Raw stderr text. */
  stderr: string[];
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The bin's warning when it could not (re)build its bundle and runs the TypeScript sources instead. */
const FELL_BACK_TO_SOURCES = 'running the TypeScript sources through tsx';

/** The tests run what users run: the bundle (agent/README.md, "What runs"), never the sources behind its back. */
function assertRanBundle(handle: ChildHandle): void {
  const err = handle.stderr.join('');
  if (err.includes(FELL_BACK_TO_SOURCES)) throw new Error(`the agent did not run its bundle:\n${err}`);
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

function launch(args: string[], env: Record<string, string>, lines: LogLine[] = []): ChildHandle {
  const proc = spawn(process.execPath, [AGENT_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      lines.push({ msg: line, raw: true });
    }
    if (lines.length > 20_000) lines.splice(0, 5000);
    for (const w of waiters) w();
  });
  proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  return {
    proc,
    lines,
    stderr,
    waitForLog(pred, timeoutMs = 20_000) {
      const found = lines.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = lines.find(pred);
          if (hit) {
            done();
            resolve(hit);
          }
        };
        const onExit = (): void => {
          done();
          reject(new Error(`process exited before the expected log line:\n${lines.slice(-20).map((l) => JSON.stringify(l)).join('\n')}\n${stderr.join('')}`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`expected log line not seen within ${timeoutMs} ms:\n${lines.slice(-20).map((l) => JSON.stringify(l)).join('\n')}\n${stderr.join('')}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
          proc.off('exit', onExit);
        };
        waiters.add(check);
        proc.once('exit', onExit);
      });
    },
    kill(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
      return new Promise((resolve) => {
        proc.once('exit', (code) => resolve(code));
        proc.kill(signal);
      });
    },
  };
}

export interface SpawnAgentOptions {
  hubUrl: string;
  terminalId: string;
  /** Written to `<dataDir>/secret` (mode 0600) and passed as KF_SECRET_FILE. */
  secret?: string;
  /** Default: a new temp dir, removed by stop(). */
  dataDir?: string;
  /** Extra env: KF_TELEMETRY_INTERVAL, KF_LOCAL_API_PORT (default here: 0), KF_PERIPHERALS, ... */
  env?: Record<string, string>;
  /** Wait for the first "connected to hub" line (default true). */
  waitConnected?: boolean;
}

export interface AgentProcess extends ChildHandle {
  dataDir: string;
  terminalId: string;
  /** Start again on the same data dir (after kill/stop); lines keep accumulating. */
  restart(opts?: { waitConnected?: boolean }): Promise<void>;
  /** SIGTERM, wait, and remove the data dir if spawnAgent made it. */
  stop(): Promise<void>;
}

export async function spawnAgent(opts: SpawnAgentOptions): Promise<AgentProcess> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kf-agent-'));
  fs.mkdirSync(dataDir, { recursive: true });
  const secretFile = path.join(dataDir, 'secret');
  fs.writeFileSync(secretFile, `${opts.secret ?? 'no-secret'}\n`, { mode: 0o600 });
  const env = {
    KF_HUB_URL: opts.hubUrl,
    KF_TERMINAL_ID: opts.terminalId,
    KF_SECRET_FILE: secretFile,
    KF_AGENT_DATA_DIR: dataDir,
    KF_LOCAL_API_PORT: '0',
    KF_RECONNECT_MIN_MS: '200',
    KF_RECONNECT_MAX_MS: '2000',
    KF_LOG_LEVEL: 'info',
    ...opts.env,
  };
  let handle = launch(['run'], env);
  const agent: AgentProcess = {
    get proc() {
      return handle.proc;
    },
    lines: handle.lines,
    stderr: handle.stderr,
    dataDir,
    terminalId: opts.terminalId,
    waitForLog: (pred, t) => handle.waitForLog(pred, t),
    kill: (s) => handle.kill(s),
    async restart(r = {}) {
      await handle.kill('SIGTERM');
      const from = agent.lines.length;
      handle = launch(['run'], env, agent.lines);
      if (r.waitConnected ?? true) {
        await handle.waitForLog((l) => l.msg === 'connected to hub' && agent.lines.indexOf(l) >= from);
      }
    },
    async stop() {
      await handle.kill('SIGTERM');
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  if (opts.waitConnected ?? true) await handle.waitForLog((l) => l.msg === 'connected to hub');
  assertRanBundle(handle);
  return agent;
}

export interface SpawnSimulatorOptions {
  hubUrl: string;
  /** Hub HTTP base URL and admin token, for --provision. */
  apiUrl?: string;
  token?: string;
  provision?: boolean;
  count?: number;
  /** Telemetry interval in seconds (default here: 5). */
  interval?: number;
  fleet?: string;
  /** Default 0 here: no random faults, so tests decide what breaks. */
  chaos?: number;
  /** Default: a new temp dir, removed by stop(). */
  dataDir?: string;
  localAddresses?: string[];
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Wait until this many terminals are connected (default: all). */
  waitConnected?: number;
}

export interface SimulatorProcess extends ChildHandle {
  controlUrl: string;
  dataDir: string;
  /** POST (with a body) or GET (without) against the control API; throws on a non-2xx answer. */
  control<T = unknown>(path: string, body?: unknown): Promise<T>;
  /** Current summary from the control API. */
  summary(): Promise<{ terminals: number; connected: number; [k: string]: number }>;
  stop(): Promise<void>;
}

export async function spawnSimulator(opts: SpawnSimulatorOptions): Promise<SimulatorProcess> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kf-sim-'));
  const args = [
    'simulate',
    '--hub', opts.hubUrl,
    '--data-dir', dataDir,
    '--control-port', '0',
    '--interval', String(opts.interval ?? 5),
    '--chaos', String(opts.chaos ?? 0),
    '--summary-every', '2',
    ...(opts.count !== undefined ? ['--count', String(opts.count)] : []),
    ...(opts.fleet ? ['--fleet', opts.fleet] : []),
    ...(opts.apiUrl ? ['--api', opts.apiUrl] : []),
    ...(opts.provision ? ['--provision'] : []),
    ...(opts.localAddresses?.length ? ['--local-address', opts.localAddresses.join(',')] : []),
    ...(opts.extraArgs ?? []),
  ];
  // the token goes through env, not argv (argv shows in `ps`)
  const handle = launch(args, { ...(opts.token ? { KF_ADMIN_TOKEN: opts.token } : {}), ...opts.env });
  const listening = await handle.waitForLog((l) => l.msg === 'control API listening on 127.0.0.1', 60_000);
  assertRanBundle(handle);
  const controlUrl = `http://127.0.0.1:${String(listening.controlPort)}`;
  const sim: SimulatorProcess = {
    ...handle,
    controlUrl,
    dataDir,
    async control<T>(p: string, body?: unknown): Promise<T> {
      const res = await fetch(`${controlUrl}${p}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`simulator control ${p}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    },
    summary() {
      return sim.control('/summary');
    },
    async stop() {
      await handle.kill('SIGTERM');
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  await handle.waitForLog((l) => l.msg === 'simulator ready', 120_000);
  const want = opts.waitConnected;
  const until = Date.now() + 60_000;
  for (;;) {
    const s = await sim.summary();
    if (s.connected >= (want ?? s.terminals)) break;
    if (Date.now() > until) throw new Error(`simulator: only ${s.connected}/${s.terminals} connected after 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return sim;
}
