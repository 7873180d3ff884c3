/**
 * Helpers for the reliability and security suite (tests/src/reliability, tests/src/soak): a seeded PRNG so a
 * failing fuzz run reproduces, fleets of any size, /metrics reading, a read-only audit of what the hub stored,
 * raw MQTT sockets, and throwaway TLS material made with openssl at test time (never committed).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { inject } from 'vitest';
import { testDatabaseUrl } from '../../../hub/src/db/postgres/test-database.ts';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { HubProcess } from './hub.ts';

/** mulberry32: small, fast and good enough to pick mutations; the seed is printed by the tests that use it. */
export function prng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; bytes(n: number): Buffer } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    pick: (xs) => xs[int(xs.length)]!,
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}

/** The seed of a fuzz run: KF_FUZZ_SEED when set (to replay a failure), else a fixed default. */
export function fuzzSeed(fallback: number): number {
  const s = process.env.KF_FUZZ_SEED;
  return s && /^\d+$/.test(s) ? Number(s) : fallback;
}

export const TERMINAL_TYPES_CYCLE = ['id-card', 'police-multi', 'weijingwu', 'endorsement', 'driver-photo'] as const;

/** A fleet of `n` terminals over a few stations of one district; ids `GZ-RL-00s-nnnn`. */
export function fleet(n: number, prefix = 'RL'): { fleet: object; ids: string[] } {
  const district = `GZ-${prefix}`;
  const stationCount = Math.max(1, Math.ceil(n / 100));
  const stations = Array.from({ length: stationCount }, (_, i) => ({
    id: `${district}-${String(i + 1).padStart(3, '0')}`,
    district,
    name: { zh: `站${i + 1}`, en: `Station ${i + 1}` },
  }));
  const ids: string[] = [];
  const terminals = Array.from({ length: n }, (_, i) => {
    const station = stations[Math.floor(i / 100)]!.id;
    const id = `${station}-${String(i + 1).padStart(4, '0')}`;
    ids.push(id);
    return { id, station, type: TERMINAL_TYPES_CYCLE[i % TERMINAL_TYPES_CYCLE.length], serial: `SN-${prefix}-${i + 1}` };
  });
  return {
    fleet: {
      city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
      districts: [{ id: district, name: { zh: '测试', en: 'Reliability' } }],
      stations,
      terminals,
    },
    ids,
  };
}

/** Imports a fleet of `n` and returns each terminal's id and secret. */
export async function provisionFleet(hub: HubProcess, n: number, prefix = 'RL'): Promise<{ id: string; secret: string }[]> {
  const { fleet: f } = fleet(n, prefix);
  const r = await hub.importFleet(f);
  return r.terminals.created;
}

/** Sums the samples of a metric in the hub's /metrics whose labels include `labels`. */
export async function metric(hub: HubProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await hub.api('/metrics')).text();
  return sumMetric(text, name, labels);
}

export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const kv of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

export const STREAM_TABLES = {
  telemetry: 'telemetry',
  events: 'events',
  'config/reported': 'config_reports',
  'commands/result': 'command_results',
  'update/status': 'update_status',
} as const;

export interface StreamAudit {
  /** Rows per table. */
  rows: Record<string, number>;
  /** (terminal, stream, epoch) whose stored seqs are not exactly 1..max: what is missing. */
  gaps: { terminalId: string; table: string; epoch: string; missing: number[] }[];
  /** (terminal, stream, epoch, seq) stored more than once (the unique index should make this impossible). */
  duplicates: { terminalId: string; table: string; epoch: string; seq: number; n: number }[];
  /** Distinct terminals with at least one row per table. */
  terminals: Record<string, number>;
}

/**
 * Reads the hub's SQLite file read-only and checks every stream: contiguous from 1 within each epoch (nothing lost),
 * each (terminal, epoch, seq) once (nothing stored twice). Works on a live (WAL) or killed hub's file.
 */
type HubQuery = (text: string, ...params: (string | number)[]) => Promise<Record<string, unknown>[]>;

/**
 * Read-only SQL on the database of the hub whose data dir is `dataDir`, whichever engine it runs on (`?` placeholders;
 * KF_TEST_ENGINE=postgres: its test database, helpers/hub.ts). Or on the PostgreSQL database `pgUrl` given.
 */
export async function hubQuery(dataDir: string, pgUrl?: string): Promise<HubQuery> {
  const url = pgUrl ?? (await testDatabaseUrl(dataDir, inject('pgUrl')));
  if (!url) return async (text, ...params) => withDb(dataDir, (db) => db.prepare(text).all(...params) as Record<string, unknown>[]);
  return async (text, ...params) => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      let i = 0;
      return [...(await sql.unsafe(text.replace(/\?/g, () => `$${++i}`), params))];
    } finally {
      await sql.end({ timeout: 2 });
    }
  };
}

/** Rows in `table` of the hub's database (either engine). */
export async function countRows(dataDir: string, table: string, pgUrl?: string): Promise<number> {
  const q = await hubQuery(dataDir, pgUrl);
  return Number((await q(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
}

export async function auditStreams(dataDir: string, tables: string[] = ['telemetry', 'events'], pgUrl?: string): Promise<StreamAudit> {
  const q = await hubQuery(dataDir, pgUrl);
  const audit: StreamAudit = { rows: {}, gaps: [], duplicates: [], terminals: {} };
  for (const table of tables) {
    audit.rows[table] = Number((await q(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
    audit.terminals[table] = Number((await q(`SELECT count(DISTINCT terminal_id) AS n FROM ${table}`))[0]!.n);
    for (const d of await q(`SELECT terminal_id AS "terminalId", epoch, seq, count(*) AS n FROM ${table} GROUP BY terminal_id, epoch, seq HAVING count(*) > 1`)) {
      audit.duplicates.push({ terminalId: String(d.terminalId), epoch: String(d.epoch), seq: Number(d.seq), n: Number(d.n), table });
    }
    const groups = await q(`SELECT terminal_id AS "terminalId", epoch, min(seq) AS lo, max(seq) AS hi, count(DISTINCT seq) AS n FROM ${table} GROUP BY terminal_id, epoch`);
    for (const g of groups) {
      const [lo, hi, n] = [Number(g.lo), Number(g.hi), Number(g.n)];
      if (lo === 1 && n === hi) continue;
      const have = new Set((await q(`SELECT seq FROM ${table} WHERE terminal_id = ? AND epoch = ?`, String(g.terminalId), String(g.epoch))).map((r) => Number(r.seq)));
      const missing: number[] = [];
      for (let s = 1; s <= hi && missing.length < 50; s++) if (!have.has(s)) missing.push(s);
      audit.gaps.push({ terminalId: String(g.terminalId), table, epoch: String(g.epoch), missing });
    }
  }
  return audit;
}

/** Runs `fn` on a read-only handle to the hub's database. */
export function withDb<T>(dataDir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(path.join(dataDir, 'kiosk-fleet.db'), { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** An MQTT 3.1.1 client as a terminal would connect; no automatic reconnect. */
export function connectTerminal(url: string, id: string, secret: string, extra: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    clientId: id,
    username: id,
    password: secret,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 20_000,
    ...extra,
  });
}

export interface RawConn {
  socket: net.Socket;
  /** Everything the hub sent. */
  received: () => Buffer;
  /** Resolves when the hub (or we) closed the connection. */
  closed: Promise<void>;
  isClosed: () => boolean;
}

/** A plain TCP connection to the hub's MQTT port, for bytes no MQTT client would send. */
export function rawConnect(port: number, localAddress?: string): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    const chunks: Buffer[] = [];
    let isClosed = false;
    const closed = new Promise<void>((r) => socket.once('close', () => {
      isClosed = true;
      r();
    }));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks), closed, isClosed: () => isClosed }));
    socket.once('error', reject);
  });
}

/** Resolves true when `p` settles within `ms`, false otherwise. */
export function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.then(
      () => {
        clearTimeout(t);
        resolve(true);
      },
      () => {
        clearTimeout(t);
        resolve(true);
      },
    );
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 30_000, everyMs = 250): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

export interface TlsMaterial {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A second, unrelated CA: an agent trusting only this one must refuse the hub. */
  otherCaCert: string;
  cleanup(): void;
}

/** A throwaway CA and a server certificate for 127.0.0.1 / localhost, made with openssl in a temp dir. */
export function makeTlsMaterial(): TlsMaterial {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-tls-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ca = (name: string) => {
    run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  };
  ca('kf-test-ca');
  ca('kf-other-ca');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'kf-test-ca.crt', '-CAkey', 'kf-test-ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'server.crt');
  fs.chmodSync(path.join(dir, 'server.key'), 0o600);
  return {
    dir,
    caCert: path.join(dir, 'kf-test-ca.crt'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    otherCaCert: path.join(dir, 'kf-other-ca.crt'),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TelemetryPump {
  epoch: string;
  /** Seqs the hub acknowledged (PUBACK). */
  acked: number[];
  /** Errors seen by the legitimate terminal's connection (a hostile neighbour must cause none). */
  errors: string[];
  /** Stops publishing, waits for the last in-flight sample, returns the acked seqs. */
  stop(): Promise<number[]>;
}

/**
 * A legitimate terminal that keeps reporting while hostile things happen around it: one telemetry sample every
 * `everyMs`, QoS 1, seq from 1 in its own epoch.
 */
export function pumpTelemetry(client: MqttClient, terminalId: string, topic: string, sample: (epoch: string, seq: number) => string, everyMs = 50): TelemetryPump {
  const epoch = `rel${Math.random().toString(36).slice(2, 12)}`;
  const acked: number[] = [];
  const errors: string[] = [];
  let running = true;
  client.on('error', (err) => errors.push(err.message));
  client.on('close', () => {
    if (running) errors.push(`connection of ${terminalId} closed`);
  });
  const loop = (async () => {
    for (let seq = 1; running; seq++) {
      try {
        await client.publishAsync(topic, sample(epoch, seq), { qos: 1 });
        acked.push(seq);
      } catch (err) {
        errors.push((err as Error).message);
        return;
      }
      await sleep(everyMs);
    }
  })();
  return {
    epoch,
    acked,
    errors,
    async stop() {
      running = false;
      await loop;
      return acked;
    },
  };
}

/** A port that was free a moment ago, for a hub that must come back on the same port after a restart. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
