/**
 * In-process hub for the hub's own tests: real broker on 127.0.0.1 ephemeral ports, real SQLite file in a temp dir.
 * Not imported by production code.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { parseConfig, type HubConfig } from './config.ts';
import { startHub, type Hub } from './hub.ts';
import { createLogger, type Logger } from './log.ts';
import { MIGRATIONS_DIR } from './store/db.ts';
import { inject } from 'vitest';
import { dropTestDatabase, testDatabaseUrl } from './db/postgres/test-database.ts';

export const TOKEN = 'test-admin-token-0123456789';
/** The first start's `admin` password (KF_ADMIN_PASSWORD), so tests can sign in and no generated one is printed. */
export const ADMIN_PASSWORD = 'test-admin-password-0123';

export interface TestHub extends Hub {
  /** Always listening in tests (KF_MQTT_PORT=0). */
  mqttPort: number;
  dir: string;
  api(p: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** Registers a terminal at a station (creating GZ / GZ-T / GZ-T-001 on first use); returns id and secret. */
  terminal(id: string, opts?: { station?: string; type?: string }): Promise<{ id: string; secret: string }>;
  connect(id: string, secret: string, opts?: mqtt.IClientOptions): Promise<MqttClient>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

/**
 * `opts.engine: 'sqlite'`: this hub stays on SQLite whatever KF_TEST_ENGINE says, for tests of SQLite itself (its
 * migrations, its file, backup). Every other test runs on the engine of the run.
 */
export async function startTestHub(overrides: Partial<HubConfig> = {}, dir?: string, opts: { log?: Logger; engine?: 'sqlite' } = {}): Promise<TestHub> {
  const dataDir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kf-hubtest-'));
  // KF_TEST_ENGINE=postgres: the same hub on a database of the run's PostgreSQL server (db/postgres/test-database.ts).
  const databaseUrl = opts.engine === 'sqlite' ? undefined : await testDatabaseUrl(dataDir, inject('pgUrl'));
  const config = parseConfig(
    { ...(databaseUrl ? { KF_DATABASE_URL: databaseUrl } : {}), KF_BIND: '127.0.0.1', KF_MQTT_PORT: '0', KF_HTTP_PORT: '0', KF_DATA_DIR: dataDir, KF_ADMIN_TOKEN: TOKEN, KF_ADMIN_PASSWORD: ADMIN_PASSWORD, KF_LOG_LEVEL: 'silent' },
    // scrypt at 2^14 instead of the production 2^17: the same code at an eighth of the time and memory, for suites
    // that sign in dozens of times on a shared 2-core machine (auth.test.ts keeps the production cost).
    { ...overrides, auth: { scryptN: 2 ** 14, ...overrides.auth } },
  );
  const hub = (await startHub(config, { log: opts.log ?? createLogger(process.env.KF_TEST_LOG ?? 'silent') })) as TestHub;
  const clients: MqttClient[] = [];
  hub.dir = dataDir;
  hub.api = (p, init = {}) => {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    headers.set('authorization', `Bearer ${TOKEN}`);
    if (json !== undefined) headers.set('content-type', 'application/json');
    return fetch(`http://127.0.0.1:${hub.httpPort}${p}`, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
  };
  hub.terminal = async (id, opts = {}) => {
    const station = opts.station ?? 'GZ-T-001';
    const parts = station.split('-');
    for (let i = 1; i <= parts.length; i++) {
      const nid = parts.slice(0, i).join('-');
      if (!(await hub.registry.node(nid))) await hub.registry.createNode({ id: nid, name: { zh: nid, en: nid } });
    }
    const res = await hub.api('/api/v1/terminals', { method: 'POST', json: { id, type: opts.type ?? 'id-card', serial: `SN-${id}`, station } });
    if (res.status !== 201) throw new Error(`register ${id}: ${res.status} ${await res.text()}`);
    return (await res.json()) as { id: string; secret: string };
  };
  hub.connect = async (id, secret, opts = {}) => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, {
      clientId: id,
      username: id,
      password: secret,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...opts,
    });
    clients.push(c);
    return c;
  };
  hub.metric = async (name, labels = {}) => {
    const m = await hub.metrics.registry.getSingleMetric(name)?.get();
    const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => String(x.labels[k]) === val));
    return v?.value ?? 0;
  };
  const close = hub.close;
  hub.stop = async () => {
    for (const c of clients) c.end(true);
    await close();
    if (!dir) {
      fs.rmSync(dataDir, { recursive: true, force: true });
      await dropTestDatabase(dataDir);
    }
  };
  return hub;
}

export function telemetry(seq: number, over: Record<string, unknown> = {}, epoch = 'epochAAAA1') {
  return JSON.stringify({ ...EXAMPLES.telemetry, epoch, seq, ts: new Date().toISOString(), ...over });
}

export function presence(bootId: string, connSeq: number, over: Record<string, unknown> = {}) {
  return JSON.stringify({ ...EXAMPLES.presence, bootId, connSeq, ts: new Date().toISOString(), ...over });
}

export { topicFor };

/** Resolves when the socket closes (or rejects after ms). */
export function closed(c: MqttClient, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!c.connected) return resolve();
    const t = setTimeout(() => reject(new Error('connection not closed')), ms);
    c.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Polls until fn returns a truthy value. Used for effects the hub makes asynchronously (presence after a close). */
export async function until<T>(fn: () => T | Promise<T>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A raw TCP connection speaking just enough MQTT to send hand-made packets. */
export function rawSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * A copy of hub/drizzle (in `dir`) as it was before the migration `tag`: for upgrade tests that build an old
 * database, fill it, then let the hub migrate it.
 */
export function migrationsBefore(dir: string, tag: string): string {
  const out = path.join(dir, `migrations-before-${tag}`);
  fs.cpSync(MIGRATIONS_DIR, out, { recursive: true });
  const journalFile = path.join(out, 'meta', '_journal.json');
  const journal = JSON.parse(fs.readFileSync(journalFile, 'utf8')) as { entries: { tag: string }[] };
  const at = journal.entries.findIndex((e) => e.tag === tag);
  if (at <= 0) throw new Error(`migrationsBefore: no migration ${tag} after the first in ${MIGRATIONS_DIR}`);
  journal.entries = journal.entries.slice(0, at);
  fs.writeFileSync(journalFile, JSON.stringify(journal));
  return out;
}
