/**
 * Issue 20, item 12: the data dir and everything the hub writes there is private (0700 / 0600, whatever the umask), a
 * dir left readable by an older hub is tightened at start and logged, and webhook secrets are encrypted at rest — a
 * secret stored in plain text by an older hub is sealed at start — while webhooks still deliver with valid signatures.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { canonicalManifestBytes } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { sign } from './alerts/webhooks.ts';
import { parseConfig } from './config.ts';
import { resolveAdminToken, startHub, type Hub } from './hub.ts';
import { createLogger } from './log.ts';
import { dbPath } from './store/db.ts';
import { until } from './test-support.ts';

const TOKEN = 'test-admin-token-0123456789';
const SECRET = 'webhook-secret-NEVER-IN-THE-FILE-0123';
let tmp: string;
let dataDir: string;
let keyFile: string;
let hub: Hub | null = null;
let server: http.Server;
const got: { headers: http.IncomingHttpHeaders; body: string }[] = [];
let receiver: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-private-'));
  // Not made beforehand: the hub makes it, and its parent stays the test's.
  dataDir = path.join(tmp, 'data');
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  receiver = `http://127.0.0.1:${(server.address() as AddressInfo).port}/duty`;
});
afterAll(async () => {
  await hub?.close();
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function start(lines: string[] = []): Promise<Hub> {
  const config = parseConfig(
    { KF_BIND: '127.0.0.1', KF_MQTT_PORT: '0', KF_HTTP_PORT: '0', KF_DATA_DIR: dataDir, KF_ADMIN_TOKEN: TOKEN, KF_ADMIN_PASSWORD: 'test-admin-password-0123' },
    { alerts: { evaluateMs: 600_000, startGraceMs: 3_600_000, webhookBackoffMs: 100 }, ...(keyFile ? { releaseKeys: keyFile } : {}) },
  );
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  hub = await startHub(config, { log: createLogger('info', sink) });
  return hub;
}

const api = (h: Hub, p: string, init: RequestInit & { json?: unknown } = {}) => {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  headers.set('authorization', `Bearer ${TOKEN}`);
  if (json !== undefined) headers.set('content-type', 'application/json');
  return fetch(`http://127.0.0.1:${h.httpPort}${p}`, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
};

/** Every path under the data dir with its permission bits, e.g. `kiosk-fleet.db-wal 600`. */
function modes(): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    out[path.relative(dataDir, p) || '.'] = (st.mode & 0o777).toString(8);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
  };
  visit(dataDir);
  return out;
}

/** An alert note: one webhook delivery per enabled webhook. */
async function raiseAlert(h: Hub, station: string): Promise<number> {
  const now = Date.now();
  const id = (await h.alerts.store.insertAlert({ openKey: `node:${station}|station-service-lost`, subjectKind: 'node', subjectId: station, nodeId: station, rule: 'station-service-lost', severity: 'critical', title: `${station} cannot offer`, details: '{}', at: now, dueAt: now + 900_000 }))!;
  await h.alerts.engine.note(id, 'tech-li', 'checking');
  return id;
}

function expectSigned(d: { headers: http.IncomingHttpHeaders; body: string }) {
  expect(d.headers['x-kf-signature']).toBe(sign(SECRET, String(d.headers['x-kf-timestamp']), d.body));
}

test('everything the hub writes under the data dir is 0700/0600; webhook secrets are sealed in the database and still sign', async () => {
  const keys = generateReleaseKeyPair();
  keyFile = path.join(tmp, 'release-public.pem');
  fs.writeFileSync(keyFile, keys.publicKeyPem);
  const h = await start();
  // The generated admin token (kept when KF_ADMIN_TOKEN is unset).
  resolveAdminToken({ ...h.config, adminToken: undefined }, () => undefined);
  for (const id of ['GZ', 'GZ-TH', 'GZ-TH-001']) await h.registry.createNode({ id, name: { zh: id, en: id } });
  await h.registry.register({ id: 'GZ-TH-001-01', type: 'id-card', serial: 'SN1', station: 'GZ-TH-001' }, 'test');
  // A release (artifact and index) and a rollout (its state file).
  const artifact = Buffer.from('signed bytes of a kiosk app bundle');
  const manifest = canonicalManifestBytes({
    v: 1, kind: 'app', version: '4.0.0', size: artifact.length, sha256: createHash('sha256').update(artifact).digest('hex'), terminalTypes: ['id-card'], createdAt: new Date().toISOString(),
  });
  const up = await api(h, '/api/v1/releases', {
    method: 'POST',
    body: artifact,
    headers: { 'x-kf-manifest': Buffer.from(manifest).toString('base64'), 'x-kf-signature': signManifest(manifest, privateKeyFromPem(keys.privateKeyPem)) },
  });
  expect(up.status, await up.text()).toBe(201);
  const ro = await api(h, '/api/v1/rollouts', { method: 'POST', json: { releaseId: 'app-4.0.0', nodeIds: ['GZ-TH'], waves: [{ kind: 'pilot', stations: ['GZ-TH-001'] }, { kind: 'rest' }] } });
  expect(ro.status, await ro.text()).toBe(201);

  const hook = await api(h, '/api/v1/webhooks', { method: 'POST', json: { url: receiver, secret: SECRET } });
  expect(hook.status).toBe(201);
  expect(await hook.text()).not.toContain(SECRET);
  const raw = h.db.prepare('SELECT secret FROM alert_webhooks').all() as { secret: string }[];
  expect(raw).toHaveLength(1);
  expect(raw[0]!.secret).not.toContain(SECRET);
  expect(raw[0]!.secret).toMatch(/^kfenc1:/);
  // Nor anywhere in the database files on disk.
  for (const f of ['kiosk-fleet.db', 'kiosk-fleet.db-wal']) {
    const file = path.join(dataDir, f);
    if (fs.existsSync(file)) expect(fs.readFileSync(file).includes(SECRET)).toBe(false);
  }
  await raiseAlert(h, 'GZ-TH-001');
  await until(() => got.length >= 1, 10_000);
  expectSigned(got[0]!);

  const m = modes();
  // Releases, their artifacts, the download-token key and rollouts live in the database now (issue 18).
  for (const f of ['.', 'kiosk-fleet.db', 'kiosk-fleet.db-wal', 'kiosk-fleet.db-shm', 'admin-token', 'hub.lock']) {
    expect(m, f).toHaveProperty([f]);
  }
  for (const [f, mode] of Object.entries(m)) expect(`${f} ${mode}`).toBe(`${f} ${fs.statSync(path.join(dataDir, f)).isDirectory() ? '700' : '600'}`);
  await h.close();
  hub = null;
}, 120_000);

test('a data dir left readable and a webhook secret stored in plain text are fixed at start, and logged', async () => {
  // What an older hub left: a plain secret in the row, 0755 directories and 0644 files.
  const db = new Database(dbPath(dataDir));
  db.prepare('UPDATE alert_webhooks SET secret = ?').run(SECRET);
  db.close();
  const loosen = (p: string) => {
    const st = fs.lstatSync(p);
    fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) loosen(path.join(p, n));
  };
  loosen(dataDir);

  const lines: string[] = [];
  const h = await start(lines);
  for (const [f, mode] of Object.entries(modes())) expect(`${f} ${mode}`).toBe(`${f} ${fs.statSync(path.join(dataDir, f)).isDirectory() ? '700' : '600'}`);
  const warn = lines.map((l) => JSON.parse(l) as { msg: string; tightened?: string[] }).find((l) => l.msg.startsWith('data dir was readable by others'));
  expect(warn?.tightened).toEqual(expect.arrayContaining(['. 0755', 'kiosk-fleet.db 0644', 'admin-token 0644']));
  expect(lines.some((l) => l.includes('webhook secrets stored in plain text are now encrypted at rest'))).toBe(true);
  expect(lines.join('\n')).not.toContain(SECRET);

  const raw = h.db.prepare('SELECT secret FROM alert_webhooks').get() as { secret: string };
  expect(raw.secret).toMatch(/^kfenc1:/);
  const before = got.length;
  await raiseAlert(h, 'GZ-TH');
  await until(() => got.length > before, 10_000);
  expectSigned(got[before]!);
}, 120_000);

test('the real hub started with umask 000 still makes its data dir 0700 and its files 0600', async () => {
  const fresh = path.join(tmp, 'umask0', 'data');
  const bin = path.resolve(import.meta.dirname, '..', 'bin', 'kiosk-fleet.mjs');
  // No KF_ADMIN_TOKEN: the hub writes admin-token itself.
  const env: NodeJS.ProcessEnv = { ...process.env, KF_BIND: '127.0.0.1', KF_MQTT_PORT: '0', KF_HTTP_PORT: '0', KF_DATA_DIR: fresh, KF_ADMIN_PASSWORD: 'test-admin-password-0123', KF_LOG_LEVEL: 'info' };
  delete env.KF_ADMIN_TOKEN;
  const proc = spawn('sh', ['-c', 'umask 000 && exec "$0" "$@"', process.execPath, bin, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no ready line')), 60_000);
      readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
        if (l.includes('"msg":"ready"')) {
          clearTimeout(t);
          resolve();
        }
      });
      proc.once('exit', (code) => reject(new Error(`hub exited ${code}`)));
    });
    const out: Record<string, string> = {};
    const visit = (p: string) => {
      const st = fs.lstatSync(p);
      out[path.relative(fresh, p) || '.'] = `${st.isDirectory() ? 'dir' : 'file'} ${(st.mode & 0o777).toString(8)}`;
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
    };
    visit(fresh);
    expect(out).toMatchObject({ '.': 'dir 700', 'kiosk-fleet.db': 'file 600', 'kiosk-fleet.db-wal': 'file 600', 'kiosk-fleet.db-shm': 'file 600', 'admin-token': 'file 600', 'hub.lock': 'file 600' });
    for (const [f, m] of Object.entries(out)) expect(`${f} ${m}`).toMatch(/ (dir 700|file 600)$/);
    // The parent the hub made for it is private too (mkdir -p).
    expect((fs.statSync(path.dirname(fresh)).mode & 0o777).toString(8)).toBe('700');
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode === null ? proc.once('exit', r) : r(null)));
  }
}, 120_000);
