/**
 * The hub as the system under test: `node hub/bin/kiosk-fleet.mjs serve` on the server core, ports 0, a fresh
 * data dir; terminals registered through the import API (one request, one transaction, secrets returned once).
 */
import fs from 'node:fs';
import path from 'node:path';
import { assertPinned, ROOT, SERVER_CORE, spawnPinned, stopChild, waitForLine } from './proc.ts';
import { tmpDir, type Server } from './brokers.ts';
import { scaledFleet, type FleetJson } from './fleet.ts';
import type { TerminalCred } from './terminals.ts';

/**
 * BENCH_HUB_ROOT runs another checkout's hub (for instance `git archive HEAD hub` with node_modules linked) while
 * the working tree's hub is mid-change.
 */
export const HUB_ROOT = process.env.BENCH_HUB_ROOT ? path.resolve(process.env.BENCH_HUB_ROOT) : ROOT;
export const HUB_BIN = path.join(HUB_ROOT, 'hub/bin/kiosk-fleet.mjs');
export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';

export function hubAvailable(): boolean {
  return fs.existsSync(HUB_BIN);
}

export interface HubOptions {
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
  nodeArgs?: string[];
  /** Keep the data dir after stop (for a restart, or to measure its size). */
  keepData?: boolean;
  /** Reuse fixed ports (a restart must come back on the same port for the terminals to find it). */
  mqttPort?: number;
  httpPort?: number;
}

export interface Hub extends Server {
  httpPort: number;
  dataDir: string;
  api(method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  /** Sends `signal` (a SIGKILL: a hub that dies) and resolves once it has exited; `stop` after it is a no-op. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

export async function startHub(o: HubOptions): Promise<Hub> {
  const dataDir = o.dataDir ?? tmpDir('hub');
  // BENCH_HUB_NODE_ARGS: more node options for every hub the bench starts (a diagnostic preload, a V8 flag).
  const extra = (process.env.BENCH_HUB_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawnPinned(process.execPath, [...extra, ...(o.nodeArgs ?? []), HUB_BIN, 'serve'], {
    core: SERVER_CORE,
    env: {
      KF_BIND: '127.0.0.1',
      KF_MQTT_PORT: String(o.mqttPort ?? 0),
      KF_HTTP_PORT: String(o.httpPort ?? 0),
      KF_DATA_DIR: dataDir,
      KF_ADMIN_TOKEN: ADMIN_TOKEN,
      KF_LOG_LEVEL: process.env.BENCH_HUB_LOG_LEVEL ?? 'info',
      // The scenarios push each terminal far past what a real one sends (hundreds of samples a second, 100,000-message
      // replays) to measure throughput: the per-terminal quotas stay on (their check is part of the hot path being
      // measured) but at their ceiling, so nothing is dropped.
      KF_QUOTA_TELEMETRY_RATE: '1000000',
      KF_QUOTA_TELEMETRY_BURST: '10000000',
      KF_QUOTA_EVENTS_RATE: '1000000',
      KF_QUOTA_EVENTS_BURST: '10000000',
      KF_QUOTA_EVENTS_PER_DAY: '0',
      ...o.env,
    },
    stderr: 'pipe',
  });
  // Passed through, and its end kept: a hub that refuses to start says why on stderr (e.g. an engine it cannot serve
  // on yet), and a scenario reports that reason instead of "exited (1)".
  let errTail = '';
  proc.stderr?.on('data', (d: Buffer) => {
    process.stderr.write(d);
    errTail = (errTail + d.toString('utf8')).slice(-2000);
  });
  let ports: { mqtt: number; http: number };
  try {
    ports = await waitForLine(
      proc,
      (_l, j) => {
        const m = j as { msg?: string; mqttPort?: number; httpPort?: number } | undefined;
        return m?.msg === 'ready' && m.mqttPort && m.httpPort ? { mqtt: m.mqttPort, http: m.httpPort } : undefined;
      },
      60000,
      'hub',
    );
  } catch (err) {
    await stopChild(proc);
    // 'exit' may come before the last of stderr has been read.
    await new Promise<void>((resolve) => {
      if (!proc.stderr || proc.stderr.readableEnded) return resolve();
      proc.stderr.once('close', () => resolve());
      setTimeout(resolve, 1000).unref();
    });
    if (!o.keepData && !o.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    const said = errTail.trim().split('\n').filter(Boolean).slice(-1)[0];
    throw new Error(said ? `${(err as Error).message}: ${said}` : (err as Error).message);
  }
  assertPinned(proc.pid, SERVER_CORE, 'hub');
  // BENCH_HUB_LOG=<file>: keep the hub's log (stdout) for a post-mortem.
  if (process.env.BENCH_HUB_LOG && proc.stdout) proc.stdout.pipe(fs.createWriteStream(process.env.BENCH_HUB_LOG, { flags: 'a' }));
  proc.once('exit', (code, signal) => {
    if (!stopping) process.stdout.write(`bench: the hub exited by itself (${code ?? signal})\n`);
  });
  let stopping = false;
  const base = `http://127.0.0.1:${ports.http}`;
  return {
    name: 'hub',
    proc,
    mqttPort: ports.mqtt,
    httpPort: ports.http,
    dataDir,
    async api(method, route, body) {
      const res = await fetch(`${base}${route}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120000),
      });
      const text = await res.text();
      let json: unknown = text;
      try {
        json = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, json };
    },
    async kill(signal) {
      stopping = true;
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill(signal);
      await exited;
    },
    async stop() {
      stopping = true;
      await stopChild(proc, 15000);
      if (!o.keepData && !o.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Registers the first `n` terminals of the scaled reference fleet and returns their credentials. */
export async function registerTerminals(hub: Server, n: number, fleet: FleetJson = scaledFleet(n)): Promise<TerminalCred[]> {
  const h = hub as Hub;
  const res = await h.api('POST', '/api/v1/import', fleet);
  if (res.status >= 300) throw new Error(`import failed: ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
  const created = (res.json as { terminals?: { created?: TerminalCred[] } }).terminals?.created ?? [];
  if (created.length !== fleet.terminals.length) throw new Error(`import created ${created.length} of ${fleet.terminals.length} terminals`);
  return created;
}
