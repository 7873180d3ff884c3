/**
 * Upgrading a hub whose telemetry was stored in the old layout (JSON text, text ids; migrations 0000-0005): migration
 * 0006 converts every row to the compact layout, and the API reads each sample back as it was; replays of old
 * samples are still recognised as duplicates; the 24-hour chart and rollups see the same figures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { openDatabase } from './db.ts';
import { createFleetStore } from '../fleet/index.ts';
import { migrationsBefore, startTestHub, telemetry, topicFor } from '../test-support.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-tel-migrate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));


const T = 'GZ-A-001-01';
const hour = 3_600_000;
const t0 = Math.floor((Date.now() - 2 * 86_400_000) / hour) * hour;

/** Old-layout rows: what the API returned for each, as it must still return it. */
const samples = [
  {
    epoch: 'epochAAAA1',
    seq: 1,
    ts: t0,
    receivedAt: t0 + 40,
    skewed: 0,
    host: { cpu: 12.5, memUsed: 1610612736, memTotal: 4294967296, diskUsed: 21474836480, diskTotal: 64424509440, tempC: 48, uptime: 86430 },
    peripherals: {
      idCardReader: { status: 'ok', reads: 14, failedReads: 1 },
      receiptPrinter: { status: 'degraded', code: 'PAPER_LOW', message: 'paper low' },
      camera: { status: 'ok' },
    },
    app: { up: true, version: '3.2.1', sessionActive: false, transactionsOk: 9, transactionsFailed: 1 },
    services: ['id-card-application', 'progress-inquiry'],
  },
  {
    epoch: 'epochAAAA1',
    seq: 2,
    ts: t0 + 30_000,
    receivedAt: t0 + 30_100,
    skewed: 0,
    // Values that are not whole in the stored scale, a missing sensor, odd byte counts, fractional uptime.
    host: { cpu: 33.3333333, memUsed: 1610612737, memTotal: 4294967296, diskUsed: 1000, diskTotal: 64424509440, tempC: null, uptime: 86460.25 },
    peripherals: {
      idCardReader: { status: 'fault', code: 'E_NO_RESPONSE', message: 'no response' },
      fingerprintScanner: { status: 'unknown' },
      touchscreen: { status: 'absent' },
      qrScanner: { status: 'ok', reads: 3, failedReads: 0 },
      holoScanner: { status: 'degraded', code: 'X1' },
    },
    app: { up: false, sessionActive: true, transactionsOk: 0, transactionsFailed: 4 },
    services: [],
  },
  {
    epoch: 'epochBBBB2',
    seq: 1,
    ts: t0 + hour + 5000,
    receivedAt: Date.now(),
    skewed: 1,
    host: { cpu: 0, memUsed: 0, memTotal: 0, diskUsed: 0, diskTotal: 0, tempC: -12.5, uptime: 0 },
    peripherals: { visionTester: { status: 'ok' }, travelDocReader: { status: 'fault', message: 'jam' } },
    app: null,
    services: null,
  },
];

test('telemetry stored before 0006 reads back the same, stays deduplicated, and charts and rolls up the same', async () => {
  const dataDir = path.join(tmp, 'data');
  const old = openDatabase(dataDir, migrationsBefore(tmp, '0006_telemetry_compact')).db;
  const registry = createFleetStore({ kind: 'sqlite', db: old });
  for (const id of ['GZ', 'GZ-A', 'GZ-A-001']) await registry.createNode({ id, name: { zh: id, en: id } });
  await registry.insertTerminal({ id: T, type: 'id-card', serial: 'SN1', station: 'GZ-A-001' }, 'test');
  const insert = old.prepare(
    `INSERT INTO telemetry (terminal_id, epoch, seq, ts, received_at, skewed, cpu, mem_used, mem_total, disk_used, disk_total, temp_c, uptime, peripherals, app, services)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const s of samples) {
    const h = s.host;
    insert.run(T, s.epoch, s.seq, s.ts, s.receivedAt, s.skewed, h.cpu, h.memUsed, h.memTotal, h.diskUsed, h.diskTotal, h.tempC, h.uptime,
      JSON.stringify(s.peripherals), s.app && JSON.stringify(s.app), s.services && JSON.stringify(s.services));
  }
  // A service id the catalog does not know (written by an old bench) is dropped, the rest kept.
  insert.run(T, 'epochCCCC3', 1, t0 + 2 * hour, t0 + 2 * hour, 0, 1, 1, 2, 1, 2, null, 1, '{}', null, '["no-such-service","progress-inquiry"]');
  old.close();

  const hub = await startTestHub({}, dataDir, { engine: 'sqlite' }); // a SQLite file written by an older version
  try {
    const got = (await (await hub.api(`/api/v1/terminals/${T}/telemetry?limit=100`)).json()) as { items: Record<string, unknown>[] };
    expect(got.items).toHaveLength(4);
    const byKey = new Map(got.items.map((i) => [`${String(i.epoch)}/${String(i.seq)}`, i]));
    for (const s of samples) {
      const item = byKey.get(`${s.epoch}/${s.seq}`)!;
      expect(item, `${s.epoch}/${s.seq}`).toMatchObject({
        ts: new Date(s.ts).toISOString(),
        receivedAt: new Date(s.receivedAt).toISOString(),
        clockSkewed: s.skewed === 1,
      });
      expect(item.peripherals).toEqual(s.peripherals);
      expect(item.app).toEqual(s.app);
      expect(item.services).toEqual(s.services);
      // Whole values in the stored scale come back exactly; others within a rounding error.
      const host = item.host as Record<string, number | null>;
      for (const [k, v] of Object.entries(s.host)) {
        if (v === null) expect(host[k], k).toBeNull();
        else expect(host[k], k).toBeCloseTo(v, 9);
      }
      if (s.seq === 1 && s.epoch === 'epochAAAA1') expect(item.host).toEqual(s.host);
    }
    expect(byKey.get('epochCCCC3/1')!.services).toEqual(['progress-inquiry']);

    // The compact row takes the samples' place: no old table, a view under the old name for SQL readers.
    expect(hub.db.prepare("SELECT type FROM sqlite_schema WHERE name = 'telemetry'").get()).toEqual({ type: 'view' });
    expect(hub.db.prepare('SELECT received_at, cpu, temp_c FROM telemetry WHERE terminal_id = ? AND epoch = ? AND seq = 1').get(T, 'epochAAAA1')).toEqual({
      received_at: t0 + 40,
      cpu: 12.5,
      temp_c: 48,
    });

    // A replay of an old sample is still a duplicate.
    const secret = await hub.registry.rotateSecret(T);
    const c = await hub.connect(T, secret);
    await c.publishAsync(topicFor(T, 'telemetry'), telemetry(1, { ts: new Date(t0).toISOString() }, 'epochAAAA1'), { qos: 1 });
    await c.publishAsync(topicFor(T, 'telemetry'), telemetry(3, {}, 'epochAAAA1'), { qos: 1 });
    await c.endAsync();
    expect(hub.db.prepare('SELECT count(*) AS n FROM telemetry_samples').get()).toEqual({ n: 5 });

    // Chart points and rollups of the converted hour as the old layout gave them.
    const chart = (await (
      await hub.api(`/api/v1/terminals/${T}/telemetry?from=${new Date(t0).toISOString()}&to=${new Date(t0 + hour).toISOString()}&bucket=1h`)
    ).json()) as { items: Record<string, unknown>[] };
    expect(chart.items).toHaveLength(1);
    expect(chart.items[0]).toMatchObject({ samples: 2, cpuMin: 12.5, cpuMax: 33.3333333, tempMin: 48, tempMax: 48 });
    expect(chart.items[0]!.memPctAvg as number).toBeCloseTo((37.5 + (100 * 1610612737) / 4294967296) / 2, 9);
    await hub.retention.rollup(t0 + 3 * hour);
    const rollup = (await (
      await hub.api(`/api/v1/terminals/${T}/telemetry?from=${new Date(t0).toISOString()}&to=${new Date(t0 + hour).toISOString()}&bucket=rollup`)
    ).json()) as { items: Record<string, unknown>[] };
    expect(rollup.items[0]).toMatchObject({
      samples: 2,
      cpuMin: 12.5,
      peripheralOk: { idCardReader: 0.5, receiptPrinter: 0, camera: 1, fingerprintScanner: 0, touchscreen: 0, qrScanner: 1, holoScanner: 0 },
      services: { 'id-card-application': 0.5, 'progress-inquiry': 0.5 },
    });
  } finally {
    await hub.stop();
  }
}, 60_000);
