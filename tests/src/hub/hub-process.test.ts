/**
 * The hub as a real process: crash safety of acknowledged samples, restart, backup/restore, config errors, CLI.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { HUB_BIN, REPO_ROOT, spawnHub, type HubProcess } from '../helpers/hub.ts';
import { hubQuery } from '../helpers/reliability-util.ts';
import { testEngineKind } from '../../../hub/src/db/postgres/test-database.ts';

const FLEET = {
  city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
  districts: [{ id: 'GZ-YX', name: { zh: '越秀', en: 'Yuexiu' } }],
  stations: [{ id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '一', en: 'One' } }],
  terminals: [
    { id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card', serial: 'SN1' },
    { id: 'GZ-YX-001-02', station: 'GZ-YX-001', type: 'weijingwu', serial: 'SN2' },
  ],
};

const hubs: HubProcess[] = [];
const clients: MqttClient[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.end(true);
});
afterAll(async () => {
  for (const h of hubs) await h.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function start(opts: Parameters<typeof spawnHub>[0] = {}) {
  const h = await spawnHub(opts);
  hubs.push(h);
  return h;
}

function connect(h: HubProcess, id: string, secret: string) {
  return mqtt
    .connectAsync(h.mqttUrl, { clientId: id, username: id, password: secret, protocolVersion: 4, reconnectPeriod: 0 })
    .then((c) => {
      clients.push(c);
      return c;
    });
}

const sample = (seq: number) => JSON.stringify({ ...EXAMPLES.telemetry, epoch: 'epochPROC1', seq, ts: new Date().toISOString() });

async function storedSeqs(dataDir: string, id: string): Promise<Set<number>> {
  const q = await hubQuery(dataDir);
  return new Set((await q('SELECT seq FROM telemetry WHERE terminal_id = ?', id)).map((r) => Number(r.seq)));
}

describe('hub process', () => {
  test('the ready line reports real ports; SIGKILL right after a PUBACK keeps that sample', async () => {
    const h = await start();
    expect(h.mqttPort).toBeGreaterThan(0);
    expect(h.httpPort).toBeGreaterThan(0);
    const { terminals } = await h.importFleet(FLEET);
    const t = terminals.created[0]!;
    const c = await connect(h, t.id, t.secret);
    await c.publishAsync(topicFor(t.id, 'telemetry'), sample(1), { qos: 1 });
    await h.kill('SIGKILL');
    expect(await storedSeqs(h.dataDir, t.id)).toEqual(new Set([1]));
    await h.restart();
    const res = await h.api(`/api/v1/terminals/${t.id}/telemetry`);
    expect(((await res.json()) as { items: { seq: number }[] }).items.map((x) => x.seq)).toEqual([1]);
  });

  test.each(['SIGKILL', 'SIGTERM'] as const)('a hub stopped by %s in the middle of ingest loses no acknowledged sample', async (signal) => {
    const h = await start();
    const { terminals } = await h.importFleet(FLEET);
    const t = terminals.created[1]!;
    const c = await connect(h, t.id, t.secret);
    c.on('error', () => undefined);
    const acked: number[] = [];
    let stop = false;
    const pump = (async () => {
      for (let seq = 1; !stop && seq <= 100_000; seq++) {
        const batch = Array.from({ length: 20 }, (_, i) => seq + i);
        seq += 19;
        await Promise.all(
          batch.map((s) => c.publishAsync(topicFor(t.id, 'telemetry'), sample(s), { qos: 1 }).then(() => acked.push(s))),
        ).catch(() => {
          stop = true;
        });
      }
    })();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (acked.length >= 300) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
    });
    await h.kill(signal);
    stop = true;
    c.end(true);
    await pump;
    const stored = await storedSeqs(h.dataDir, t.id);
    const lost = acked.filter((s) => !stored.has(s));
    expect(acked.length).toBeGreaterThanOrEqual(300);
    expect(lost).toEqual([]);
    // And the restarted hub serves the same data and accepts the terminal again.
    await h.restart();
    const again = await connect(h, t.id, t.secret);
    await again.publishAsync(topicFor(t.id, 'telemetry'), sample(1), { qos: 1 }); // a replay: stored once
    expect((await storedSeqs(h.dataDir, t.id)).size).toBe(stored.size);
  }, 60_000);

  test('after a restart the desired config comes from the database without anyone re-saving it', async () => {
    const h = await start();
    const { terminals } = await h.importFleet(FLEET);
    const t = terminals.created[0]!;
    const put = await h.api(`/api/v1/config/terminals/${t.id}`, { method: 'PUT', json: { config: { telemetryInterval: 45 } } });
    expect(put.status).toBe(200);
    await h.restart();
    const c = await connect(h, t.id, t.secret);
    const got = new Promise<{ version: number; config: { telemetryInterval: number } }>((resolve) =>
      c.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as { version: number; config: { telemetryInterval: number } })),
    );
    await c.subscribeAsync(topicFor(t.id, 'config/desired'), { qos: 1 });
    expect(await got).toMatchObject({ version: 1, config: { telemetryInterval: 45 } });
  });

  test('SIGTERM drains and exits 0; a restart after it keeps every terminal', async () => {
    const h = await start();
    await h.importFleet(FLEET);
    expect(await h.kill('SIGTERM')).toBe(0);
    expect(h.logs.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    await h.restart();
    const list = (await (await h.api('/api/v1/terminals')).json()) as { items: unknown[] };
    expect(list.items).toHaveLength(2);
  });

  // `kiosk-fleet backup` copies the SQLite file and refuses PostgreSQL (its backups are pg_dump's job, hub/README.md).
  test.skipIf(testEngineKind() === 'postgres')('backup while the hub runs and ingests; the copy restores into a working hub', async () => {
    const h = await start();
    const { terminals } = await h.importFleet(FLEET);
    const t = terminals.created[0]!;
    const c = await connect(h, t.id, t.secret);
    for (let i = 1; i <= 20; i++) await c.publishAsync(topicFor(t.id, 'telemetry'), sample(i), { qos: 1 });
    const backupFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-bak-')), 'fleet.db');
    dirs.push(path.dirname(backupFile));
    const r = spawnSync(process.execPath, [HUB_BIN, 'backup', backupFile], { env: { ...process.env, KF_DATA_DIR: h.dataDir }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    // Restore as hub/README.md says: stop the hub, put the copy in place as kiosk-fleet.db in a data dir, start.
    const restoreDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-restore-'));
    dirs.push(restoreDir);
    fs.copyFileSync(backupFile, path.join(restoreDir, 'kiosk-fleet.db'));
    const restored = await start({ dataDir: restoreDir });
    const tel = (await (await restored.api(`/api/v1/terminals/${t.id}/telemetry?limit=100`)).json()) as { items: unknown[] };
    expect(tel.items).toHaveLength(20);
    // Terminal secrets survive (the hashing key is in the database too).
    const again = await connect(restored, t.id, t.secret);
    expect(again.connected).toBe(true);
  });
});

describe('configuration and CLI', () => {
  const run = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, [HUB_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });

  test.each([
    ['KF_MQTT_PORT', 'eighty'],
    ['KF_HTTP_PORT', '70000'],
    ['KF_RETENTION_DAYS', '0'],
    ['KF_TIMEZONE', 'Mars/Olympus'],
    ['KF_LOG_LEVEL', 'chatty'],
    ['KF_ADMIN_TOKEN', 'short'],
  ])('a wrong %s stops the start with a message naming it', (key, value) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-cfg-'));
    dirs.push(dir);
    const r = run(['serve'], { KF_DATA_DIR: dir, KF_BIND: '127.0.0.1', KF_MQTT_PORT: '0', KF_HTTP_PORT: '0', [key]: value });
    // 2: a configuration error (the unit's RestartPreventExitStatus), never retried by systemd
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${key}:`);
  });

  test('without KF_ADMIN_TOKEN a token is generated, printed once on stderr (never in the JSON log) and kept', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-tok-'));
    dirs.push(dir);
    const h = await start({ dataDir: dir, env: { KF_ADMIN_TOKEN: '' } });
    const kept = fs.readFileSync(path.join(dir, 'admin-token'), 'utf8').trim();
    const stdout = h.logs.filter((l) => l.startsWith('{')).join('\n');
    expect(stdout).not.toContain(kept);
    expect(h.logs.filter((l) => !l.startsWith('{')).join('')).toContain(kept);
    const res = await fetch(`${h.url}/api/v1/terminals`, { headers: { authorization: `Bearer ${kept}` } });
    expect(res.status).toBe(200);
    expect((await fetch(`${h.url}/api/v1/terminals`)).status).toBe(401);
  });

  test('kiosk-fleet import <csv> writes the database and prints the new secrets; a bad row changes nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-imp-'));
    dirs.push(dir);
    const json = path.join(dir, 'fleet.json');
    fs.writeFileSync(json, JSON.stringify(FLEET));
    const r1 = run(['import', json], { KF_DATA_DIR: dir });
    expect(r1.status, r1.stderr).toBe(0);
    expect((JSON.parse(r1.stdout) as { terminals: { created: unknown[] } }).terminals.created).toHaveLength(2);
    const csv = path.join(dir, 'more.csv');
    fs.writeFileSync(csv, 'id,station,type,serial\nGZ-YX-001-03,GZ-YX-001,id-card,SN3\nGZ-YX-001-04,GZ-YX-404,id-card,SN4\n');
    const r2 = run(['import', csv], { KF_DATA_DIR: dir });
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/row 3.*GZ-YX-404/);
    fs.writeFileSync(csv, 'id,station,type,serial\nGZ-YX-001-03,GZ-YX-001,id-card,SN3\n');
    const r3 = run(['import', csv], { KF_DATA_DIR: dir });
    expect(r3.status, r3.stderr).toBe(0);
    const out = JSON.parse(r3.stdout) as { terminals: { created: { id: string; secret: string }[] } };
    expect(out.terminals.created.map((x) => x.id)).toEqual(['GZ-YX-001-03']);
  });
});
