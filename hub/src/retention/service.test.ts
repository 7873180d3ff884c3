import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXAMPLES, type Telemetry } from '@kiosk-fleet/protocol';
import { queryRows, execute } from '../db/test-query.ts';
import { dbPath } from '../store/db.ts';
import { startTestHub, type TestHub } from '../test-support.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
let hub: TestHub;

beforeAll(async () => {
  hub = await startTestHub({ retentionDays: 7 });
});
afterAll(() => hub.stop());

function sample(seq: number, at: number, cpu: number, printer: 'ok' | 'fault'): Telemetry {
  return {
    v: 1,
    epoch: 'epochRRRR1',
    seq,
    ts: new Date(at).toISOString(),
    host: { cpu, memUsed: 1, memTotal: 4, diskUsed: 1, diskTotal: 8, tempC: EXAMPLES.telemetry.host.tempC, uptime: 100 },
    peripherals: {
      idCardReader: { status: 'ok' as const },
      qrScanner: { status: 'ok' as const },
      touchscreen: { status: 'ok' as const },
      receiptPrinter: { status: printer },
    },
    app: { up: true, sessionActive: false, transactionsOk: 0, transactionsFailed: 0 },
  };
}

describe('retention', () => {
  test('old raw samples are rolled up per hour, then pruned; recent ones stay; the file stops growing', async () => {
    const t = await hub.terminal('GZ-T-001-01', { type: 'weijingwu' });
    const now = Date.now();
    const oldHour = Math.floor((now - 10 * DAY) / HOUR) * HOUR;
    // Four samples in one hour ten days ago (printer in fault in one), as if received then; one recent sample.
    const writes = [
      hub.ingest.handle(t.id, 'telemetry', sample(1, oldHour + 60_000, 10, 'ok'), oldHour + 60_000),
      hub.ingest.handle(t.id, 'telemetry', sample(2, oldHour + 120_000, 20, 'ok'), oldHour + 120_000),
      hub.ingest.handle(t.id, 'telemetry', sample(3, oldHour + 180_000, 30, 'fault'), oldHour + 180_000),
      hub.ingest.handle(t.id, 'telemetry', sample(4, oldHour + 240_000, 40, 'ok'), oldHour + 240_000),
    ];
    for (let i = 0; i < 3000; i++) writes.push(hub.ingest.handle(t.id, 'telemetry', sample(10 + i, oldHour + 300_000 + i, 50, 'ok'), oldHour + 300_000));
    writes.push(hub.ingest.handle(t.id, 'telemetry', sample(99_999, now - HOUR, 5, 'ok'), now - HOUR));
    await Promise.all(writes);
    // SQLite's file (PostgreSQL has none here: autovacuum reclaims dropped rows' space there).
    const sqlite = hub.engine.kind === 'sqlite';
    const size = () => (sqlite ? fs.statSync(dbPath(hub.dir)).size + (fs.statSync(`${dbPath(hub.dir)}-wal`, { throwIfNoEntry: false })?.size ?? 0) : 0);
    const sizeBefore = size();

    const r = await hub.retention.run(now);
    expect(r.telemetry).toBe(3004);
    const left = await queryRows(hub.engine, 'SELECT seq FROM telemetry WHERE terminal_id = ?', t.id);
    expect(left).toEqual([{ seq: 99_999 }]);

    const rollups = (await (
      await hub.api(`/api/v1/terminals/${t.id}/telemetry?bucket=rollup&from=${new Date(oldHour).toISOString()}&to=${new Date(oldHour + HOUR).toISOString()}`)
    ).json()) as { items: { start: string; samples: number; cpuMin: number; cpuMax: number; peripheralOk: Record<string, number>; services: Record<string, number> }[] };
    expect(rollups.items).toHaveLength(1);
    const h = rollups.items[0]!;
    expect(h.start).toBe(new Date(oldHour).toISOString());
    expect(h.samples).toBe(3004);
    expect([h.cpuMin, h.cpuMax]).toEqual([10, 50]);
    expect(h.peripheralOk.receiptPrinter).toBeCloseTo(3003 / 3004);
    expect(h.services['appointment-check-in']).toBeCloseTo(3003 / 3004);
    expect(h.services['progress-inquiry']).toBe(1);

    // A sample from a broken clock (1970) does not send the job through half a million empty hours.
    await hub.ingest.handle(t.id, 'telemetry', sample(123_456, 0, 1, 'ok'), now);
    expect(await hub.retention.rollup(now)).toBe(0);

    // A second run finds nothing to do and rolls nothing up twice.
    expect(await hub.retention.run(now)).toEqual({ rolledUp: 0, telemetry: 0, other: 0 });
    if (sqlite) expect(size()).toBeLessThan(sizeBefore);
  });

  test('raw samples go by when the hub received them, whatever the terminal clock said', async () => {
    const t = await hub.terminal('GZ-T-001-02', { type: 'weijingwu' });
    const now = Date.now();
    const epoch = (e: string, x: Telemetry) => ({ ...x, epoch: e });
    await Promise.all([
      // Received 8 days ago with a right clock: pruned.
      hub.ingest.handle(t.id, 'telemetry', sample(1, now - 8 * DAY, 1, 'ok'), now - 8 * DAY),
      // Clock a year ahead, received 8 days ago (skewed): pruned, although its ts is in the future.
      hub.ingest.handle(t.id, 'telemetry', sample(2, now + 365 * DAY, 1, 'ok'), now - 8 * DAY),
      // Dead RTC (1970), received an hour ago (skewed): kept.
      hub.ingest.handle(t.id, 'telemetry', sample(3, 1000, 1, 'ok'), now - HOUR),
      // An outbox replay: taken 9 days ago, received now (not skewed, 30 days behind at most): kept.
      hub.ingest.handle(t.id, 'telemetry', epoch('epochRRRR2', sample(1, now - 9 * DAY, 1, 'ok')), now),
      hub.ingest.handle(t.id, 'telemetry', sample(4, now - HOUR, 1, 'ok'), now - HOUR),
    ]);
    // Engine detail: PostgreSQL drops the replay's day partition whole, by the terminal's clock (store.postgres.ts).
    const sqlite = hub.engine.kind === 'sqlite';
    expect((await hub.retention.prune(now)).telemetry).toBe(sqlite ? 2 : 3);
    const left = await queryRows(hub.engine, 'SELECT epoch, seq, skewed FROM telemetry WHERE terminal_id = ? ORDER BY epoch, seq', t.id);
    expect(left).toEqual([
      { epoch: 'epochRRRR1', seq: 3, skewed: 1 },
      { epoch: 'epochRRRR1', seq: 4, skewed: 0 },
      ...(sqlite ? [{ epoch: 'epochRRRR2', seq: 1, skewed: 0 }] : []),
    ]);
  });
});

describe('retention with a terminal clock far off (finding F11-5)', () => {
  let fresh: TestHub;
  beforeAll(async () => {
    fresh = await startTestHub({ retentionDays: 7 });
  });
  afterAll(() => fresh.stop());

  const rollupHours = async (id: string) => (await queryRows(fresh.engine, 'SELECT hour FROM rollups_hourly WHERE terminal_id = ? ORDER BY hour', id)).map((r) => r.hour);
  const rollupUntil = async () => (await queryRows(fresh.engine, "SELECT value FROM meta WHERE key = 'rollup_until'"))[0];

  test('a first sample dated 1970 on a hub that never rolled up is not rolled up and does not hold back the recent hours', async () => {
    const t = await fresh.terminal('GZ-T-001-02', { type: 'weijingwu' });
    const now = Date.now();
    const lastHour = Math.floor(now / HOUR) * HOUR - HOUR;
    // The oldest sample in the table is the 1970 one: the hour cursor used to start there and walk ~500,000 hours.
    await fresh.ingest.handle(t.id, 'telemetry', sample(1, 1_000, 10, 'ok'), now - 2 * HOUR);
    await fresh.ingest.handle(t.id, 'telemetry', sample(2, lastHour + 60_000, 20, 'ok'), now);
    expect(await rollupUntil()).toBeUndefined();

    expect(await fresh.retention.rollup(now)).toBe(1);
    expect(await rollupHours(t.id)).toEqual([lastHour]);
    expect(await rollupUntil()).toEqual({ value: String(lastHour + HOUR) });
    // Nothing is left to do, and the raw 1970 sample goes with its receive time like any other.
    expect(await fresh.retention.rollup(now)).toBe(0);
    const pruned = (await fresh.retention.prune(now + 8 * DAY)).telemetry;
    if (fresh.engine.kind === 'sqlite') expect(pruned).toBe(2);
    else {
      // Engine detail: PostgreSQL drops a day's partition only once the rollups passed the day; a full run does both.
      expect(pruned).toBe(1);
      expect((await fresh.retention.run(now + 8 * DAY)).telemetry).toBe(1);
    }
    expect(await queryRows(fresh.engine, 'SELECT seq FROM telemetry WHERE terminal_id = ?', t.id)).toEqual([]);
  });

  test('a backlog of hours is rolled up a bounded number of hours per run, oldest first, and caught up by the next runs', async () => {
    const t = await fresh.terminal('GZ-T-001-03', { type: 'weijingwu' });
    const now = Date.now();
    const firstHour = Math.floor(now / HOUR) * HOUR - 60 * HOUR;
    await execute(fresh.engine, "DELETE FROM meta WHERE key = 'rollup_until'");
    // One sample in each of 60 past hours, plus one from 1970 and one from 2099 (clocks off both ways).
    const writes = Array.from({ length: 60 }, (_, i) => fresh.ingest.handle(t.id, 'telemetry', sample(10 + i, firstHour + i * HOUR + 1_000, i, 'ok'), now));
    writes.push(fresh.ingest.handle(t.id, 'telemetry', sample(1, 5_000, 1, 'ok'), now));
    writes.push(fresh.ingest.handle(t.id, 'telemetry', sample(2, Date.parse('2099-01-01T00:00:00Z'), 1, 'ok'), now));
    await Promise.all(writes);

    expect(await fresh.retention.rollup(now)).toBe(48);
    expect(await rollupHours(t.id)).toEqual(Array.from({ length: 48 }, (_, i) => firstHour + i * HOUR));
    expect(await fresh.retention.rollup(now)).toBe(12);
    expect(await rollupHours(t.id)).toEqual(Array.from({ length: 60 }, (_, i) => firstHour + i * HOUR));
    expect(await fresh.retention.rollup(now)).toBe(0);
  });
});
