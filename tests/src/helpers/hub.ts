/**
 * spawnHub: the real hub as a child process (`node hub/bin/kiosk-fleet.mjs serve`) on 127.0.0.1 with ephemeral
 * ports, a temp data dir and a known admin token. Resolves after the hub's `ready` line.
 *
 *   const hub = await spawnHub();
 *   const res = await hub.api('/api/v1/terminals');          // bearer token added
 *   const { terminals } = await hub.importFleet({ ... });    // → { id, secret }[] per new terminal
 *   await hub.kill('SIGKILL'); await hub.restart();          // same data dir, new ports
 *   await hub.stop();                                        // SIGTERM, waits, removes the temp dir it made
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, inject } from 'vitest';
// The one piece of the hub these black-box tests use: which database a test hub gets under KF_TEST_ENGINE.
import { dropTestDatabase, testDatabaseUrl } from '../../../hub/src/db/postgres/test-database.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
export const HUB_BIN = path.join(REPO_ROOT, 'hub', 'bin', 'kiosk-fleet.mjs');

export interface SpawnHubOptions {
  /** Reuse a data dir (kept on stop); default: a new temp dir, removed on stop. */
  dataDir?: string;
  /** Extra env (KF_LOG_LEVEL, KF_MAX_PAYLOAD, ...). */
  env?: Record<string, string>;
  /** How long to wait for the ready line; default 30 s. */
  readyTimeoutMs?: number;
}

export interface HubProcess {
  mqttPort: number;
  /** KF_MQTT_PROXY_PORT's real port, when the hub was started with one. */
  mqttProxyPort?: number | undefined;
  httpPort: number;
  token: string;
  dataDir: string;
  proc: ChildProcess;
  /** Every stdout line so far (pino JSON) and stderr text, for assertions and debugging. */
  logs: string[];
  /** `http://127.0.0.1:<httpPort>` */
  url: string;
  /** `mqtt://127.0.0.1:<mqttPort>` */
  mqttUrl: string;
  /** fetch against the hub with the admin token; `path` starts with `/`. JSON bodies: pass `json`. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** POST /api/v1/import with a fleet object (JSON) or CSV text; throws on a non-200 answer. */
  importFleet(fleet: object | string): Promise<ImportResult>;
  /** Sends a signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** Starts the hub again on the same data dir (after kill/stop); ports change, this object is updated. */
  restart(): Promise<void>;
  /** SIGTERM, wait, and remove the data dir if spawnHub made it. */
  stop(): Promise<void>;
}

export interface ImportResult {
  nodes: { created: string[]; existing: string[] };
  terminals: { created: { id: string; secret: string }[]; existing: string[] };
}

// A test that fails before stop() must not leave a hub running: one exit handler for all of them.
const live = new Set<HubProcess>();
process.once('exit', () => {
  for (const h of live) h.proc.kill('SIGKILL');
});

export async function spawnHub(opts: SpawnHubOptions = {}): Promise<HubProcess> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kf-hub-'));
  const token = opts.env?.KF_ADMIN_TOKEN ?? `test-token-${crypto.randomBytes(12).toString('hex')}`;
  const logs: string[] = [];
  // KF_TEST_ENGINE=postgres: the hub keeps its fleet in a database of the run's PostgreSQL server, the same one
  // across restart() (a test that passes its own KF_DATABASE_URL keeps it).
  const databaseUrl = opts.env?.KF_DATABASE_URL === undefined ? await testDatabaseUrl(dataDir, inject('pgUrl')) : undefined;

  const start = () =>
    new Promise<{ proc: ChildProcess; mqttPort: number; httpPort: number; mqttProxyPort?: number | undefined }>((resolve, reject) => {
      const proc = spawn(process.execPath, [HUB_BIN, 'serve'], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          KF_BIND: '127.0.0.1',
          KF_MQTT_PORT: '0',
          KF_HTTP_PORT: '0',
          KF_DATA_DIR: dataDir,
          KF_ADMIN_TOKEN: token,
          KF_LOG_LEVEL: 'info',
          ...(databaseUrl ? { KF_DATABASE_URL: databaseUrl } : {}),
          ...opts.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`hub not ready within ${opts.readyTimeoutMs ?? 30_000} ms:\n${logs.join('\n')}`));
      }, opts.readyTimeoutMs ?? 30_000);
      proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
      readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
        logs.push(line);
        if (logs.length > 5000) logs.splice(0, 1000);
        try {
          const j = JSON.parse(line) as { msg?: string; mqttPort?: number; httpPort?: number; mqttProxyPort?: number };
          if (j.msg === 'ready' && typeof j.mqttPort === 'number' && typeof j.httpPort === 'number') {
            clearTimeout(timer);
            resolve({ proc, mqttPort: j.mqttPort, httpPort: j.httpPort, mqttProxyPort: j.mqttProxyPort });
          }
        } catch {
          // not JSON
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`hub exited with ${code} before ready:\n${logs.join('\n')}`));
      });
    });

  const first = await start();
  const hub: HubProcess = {
    mqttPort: first.mqttPort,
    mqttProxyPort: first.mqttProxyPort,
    httpPort: first.httpPort,
    token,
    dataDir,
    proc: first.proc,
    logs,
    get url() {
      return `http://127.0.0.1:${hub.httpPort}`;
    },
    get mqttUrl() {
      return `mqtt://127.0.0.1:${hub.mqttPort}`;
    },
    api(p, init = {}) {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      headers.set('authorization', `Bearer ${token}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(`${hub.url}${p}`, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
    },
    async importFleet(fleet) {
      const csv = typeof fleet === 'string';
      const res = await hub.api('/api/v1/import', {
        method: 'POST',
        headers: { 'content-type': csv ? 'text/csv' : 'application/json' },
        body: csv ? fleet : JSON.stringify(fleet),
      });
      if (res.status !== 200) throw new Error(`import failed: ${res.status} ${await res.text()}`);
      return (await res.json()) as ImportResult;
    },
    kill(signal = 'SIGTERM') {
      const proc = hub.proc;
      if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
      return new Promise((resolve) => {
        proc.once('exit', (code) => resolve(code));
        proc.kill(signal);
      });
    },
    async restart() {
      await hub.kill('SIGTERM');
      const next = await start();
      hub.proc = next.proc;
      hub.mqttPort = next.mqttPort;
      hub.mqttProxyPort = next.mqttProxyPort;
      hub.httpPort = next.httpPort;
    },
    async stop() {
      await hub.kill('SIGTERM');
      live.delete(hub);
      if (ownDir) {
        fs.rmSync(dataDir, { recursive: true, force: true });
        await dropTestDatabase(dataDir);
      }
    },
  };
  live.add(hub);
  return hub;
}

/**
 * Vitest convenience: one hub for the file, started in beforeAll and stopped in afterAll.
 *
 *   const hub = useHub();
 *   test('...', async () => { await hub().api('/api/v1/health'); });
 */
export function useHub(opts: SpawnHubOptions = {}): () => HubProcess {
  let hub: HubProcess | undefined;
  beforeAll(async () => {
    hub = await spawnHub(opts);
  }, (opts.readyTimeoutMs ?? 30_000) + 5_000);
  afterAll(async () => {
    await hub?.stop();
  });
  return () => {
    if (!hub) throw new Error('useHub(): the hub is not started yet (call it inside a test or hook)');
    return hub;
  };
}
