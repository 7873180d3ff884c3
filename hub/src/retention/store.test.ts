import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXAMPLES, type ServiceId, type Telemetry } from '@kiosk-fleet/protocol';
import type { Engine, EngineKind } from '../db/engine.ts';
import { partitionName } from '../db/postgres/partitions.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createLogger } from '../log.ts';
import { createMetrics } from '../metrics.ts';
import { encodeSample, SAMPLE_COLUMNS } from '../ingest/telemetry-codec.ts';
import { Retention } from './service.ts';
import { createRetentionStore, HOUR_MS, NO_METRICS, type RetentionStore } from './store.ts';

const DAY = 86_400_000;
/** A fixed clock: 2026-11-20 12:30 UTC. */
const NOW = Date.UTC(2026, 10, 20, 12, 30);
const HOUR = Math.floor(NOW / HOUR_MS) * HOUR_MS;

/** Raw SQL on either engine, `?` placeholders: only to lay out rows and look at them, as a hub's writers would. */
async function exec(e: Engine, text: string, params: unknown[] = []): Promise<void> {
  if (e.kind === 'sqlite') e.db.prepare(text).run(...params);
  else {
    let i = 0;
    await e.pg.sql.unsafe(text.replace(/\?/g, () => `$${++i}`), params as never[]);
  }
}
async function rows<T>(e: Engine, text: string, params: unknown[] = []): Promise<T[]> {
  if (e.kind === 'sqlite') return e.db.prepare(text).all(...params) as T[];
  let i = 0;
  return [...(await e.pg.sql.unsafe(text.replace(/\?/g, () => `$${++i}`), params as never[]))] as T[];
}
const count = async (e: Engine, table: string) => (await rows<{ n: number }>(e, `SELECT count(*) AS n FROM ${table}`))[0]!.n;

function telemetry(cpu: number, o: { mem?: number; temp?: number | null; printer?: 'ok' | 'fault'; app?: boolean } = {}): Telemetry {
  const ex = EXAMPLES.telemetry;
  return {
    v: 1,
    epoch: 'e',
    seq: 1,
    ts: new Date(0).toISOString(),
    host: { cpu, memUsed: o.mem ?? 1, memTotal: 3, diskUsed: 2, diskTotal: 7, tempC: o.temp === undefined ? ex.host.tempC : o.temp, uptime: 100 },
    peripherals: {
      idCardReader: { status: 'ok' },
      touchscreen: { status: 'ok' },
      receiptPrinter: { status: o.printer ?? 'ok' },
    },
    ...(o.app === false ? {} : { app: { up: true, sessionActive: false, transactionsOk: 0, transactionsFailed: 0 } }),
  } as Telemetry;
}

/** Terminals, their outbox epochs (T1 has two), as ingest lays them out. */
async function fleet(e: Engine): Promise<void> {
  for (const [id, type] of [['GZ-YX-001-01', 'weijingwu'], ['GZ-YX-001-02', 'police-multi'], ['GZ-YX-001-03', 'id-card']]) {
    await exec(e, "INSERT INTO terminals (id, type, serial, station_id, secret_hash, created_at) VALUES (?, ?, ?, 'GZ-YX-001', 'h', 0)", [id, type, id]);
  }
  for (const [n, id, epoch] of [[1, 'GZ-YX-001-01', 'epochA'], [2, 'GZ-YX-001-02', 'epochB'], [3, 'GZ-YX-001-01', 'epochC'], [4, 'GZ-YX-001-03', 'epochD']] as const) {
    await exec(e, 'INSERT INTO telemetry_epochs (id, terminal_id, epoch) VALUES (?, ?, ?)', [n, id, epoch]);
  }
}

let seqs = 0;
async function sample(e: Engine, epochId: number, ts: number, t: Telemetry, o: { receivedAt?: number; skewed?: boolean; services?: ServiceId[] | null } = {}): Promise<void> {
  const values = encodeSample(t, o.services === undefined ? ['id-card-application', 'progress-inquiry'] : o.services);
  await exec(
    e,
    `INSERT INTO telemetry_samples (epoch_id, ts, seq, recv_delay, skewed, ${SAMPLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ${SAMPLE_COLUMNS.replace(/\w+/g, '?')})`,
    [epochId, ts, ++seqs, (o.receivedAt ?? ts) - ts, o.skewed ? 1 : 0, ...values],
  );
}

const allRollups = (e: Engine) => rows<Record<string, unknown>>(e, 'SELECT * FROM rollups_hourly ORDER BY terminal_id, hour');

function retention(store: RetentionStore, days = 7): Retention {
  return new Retention(store, days, createMetrics(), createLogger('silent'));
}

/** A fresh database per test, migrated, on a machine others share: generous, never a measure of speed. */
const HOOK_TIMEOUT = 60_000;

/** What the rollups and the pruning must do alike on both engines. */
describe.each(TEST_ENGINES)('retention store on %s', (kind: EngineKind) => {
  let t: TestEngine;
  let store: RetentionStore;
  beforeEach(async () => {
    t = await openTestEngine(kind);
    store = createRetentionStore(t.engine);
    // On PostgreSQL the days of the rows below have their partitions, as a running hub makes them day by day.
    await store.preparePartitions(NOW - 12 * DAY, NOW);
    await fleet(t.engine);
  }, HOOK_TIMEOUT);
  afterEach(async () => {
    await t.close();
  }, HOOK_TIMEOUT);

  it('keeps meta values', async () => {
    expect(await store.meta('rollup_until')).toBeUndefined();
    await store.setMeta('rollup_until', '5');
    await store.setMeta('rollup_until', '6');
    expect(await store.meta('rollup_until')).toBe('6');
  });

  it('finds the next sample and reads an hour\'s samples grouped by terminal', async () => {
    const e = t.engine;
    const h = HOUR - 3 * HOUR_MS;
    await sample(e, 2, h + 10_000, telemetry(20));
    await sample(e, 3, h + 5_000, telemetry(30));
    await sample(e, 1, h + 1_000, telemetry(10));
    await sample(e, 1, h + HOUR_MS, telemetry(40));
    expect(await store.nextSampleTs(0)).toBe(h + 1_000);
    expect(await store.nextSampleTs(h + 1_001)).toBe(h + 5_000);
    expect(await store.nextSampleTs(h + HOUR_MS + 1)).toBeNull();
    const got = await store.hourSamples(h, h + HOUR_MS);
    expect(got.map((r) => [r.terminalId, r.cpu, r.type])).toEqual([
      ['GZ-YX-001-01', 1000, 'weijingwu'],
      ['GZ-YX-001-01', 3000, 'weijingwu'],
      ['GZ-YX-001-02', 2000, 'police-multi'],
    ]);
    expect(got[0]).toEqual({
      terminalId: 'GZ-YX-001-01',
      cpu: 1000,
      memUsed: 1 / 1024,
      memTotal: 3 / 1024,
      diskUsed: 2 / 1024,
      diskTotal: 7 / 1024,
      temp: got[0]!.temp,
      pstat: got[0]!.pstat,
      pnote: null,
      services: got[0]!.services,
      type: 'weijingwu',
    });
    expect(typeof got[0]!.pstat).toBe('number');
  });

  it('rolls up each completed hour per terminal, and the cursor with it', async () => {
    const e = t.engine;
    const h = HOUR - 2 * HOUR_MS;
    await sample(e, 1, h + 1_000, telemetry(10, { mem: 1 }));
    await sample(e, 3, h + 2_000, telemetry(20, { mem: 2, printer: 'fault' }));
    await sample(e, 1, h + 3_000, telemetry(60, { mem: 3, temp: null }), { services: ['progress-inquiry'] });
    await sample(e, 2, h + 4_000, telemetry(5), { services: null });
    // The current hour is not complete: not rolled up.
    await sample(e, 1, HOUR + 1_000, telemetry(99));
    expect(await retention(store).rollup(NOW)).toBe(2);
    const got = await allRollups(e);
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({
      terminal_id: 'GZ-YX-001-01',
      hour: h,
      samples: 3,
      cpu_min: 10,
      cpu_avg: 30,
      cpu_max: 60,
      mem_pct_min: 100 / 3,
      mem_pct_max: 100,
      peripheral_ok: '{"idCardReader":1,"receiptPrinter":0.6666666666666666,"touchscreen":1}',
      services: '{"id-card-application":0.6666666666666666,"progress-inquiry":1}',
    });
    expect(got[0]!.temp_min).toBe(got[0]!.temp_max);
    expect(got[1]).toMatchObject({ terminal_id: 'GZ-YX-001-02', hour: h, samples: 1, cpu_min: 5, services: '{}' });
    expect(await store.meta('rollup_until')).toBe(String(HOUR));
    // Nothing twice.
    expect(await retention(store).rollup(NOW)).toBe(0);
  });

  it('replaces rollup rows it writes again, with the cursor in the same write', async () => {
    const row = { terminalId: 'GZ-YX-001-01', hour: HOUR, samples: 1, ...NO_METRICS, cpuMax: 1.5, peripheralOk: '{}', services: '{}' };
    await store.writeRollups([row], null);
    await store.writeRollups([{ ...row, samples: 2, cpuMax: 2.25 }], HOUR + HOUR_MS);
    expect(await allRollups(t.engine)).toEqual([
      expect.objectContaining({ terminal_id: 'GZ-YX-001-01', hour: HOUR, samples: 2, cpu_max: 2.25, cpu_min: null, peripheral_ok: '{}' }),
    ]);
    expect(await store.meta('rollup_until')).toBe(String(HOUR + HOUR_MS));
  });

  it('prunes what is past retention and keeps what is recent, on every table retention covers', async () => {
    const e = t.engine;
    const old = NOW - 10 * DAY;
    const ancient = NOW - 401 * DAY;
    const recent = NOW - HOUR_MS;
    // Raw telemetry: received ten days ago (right clock) goes; a dead clock (1970) and one a year ahead go by
    // receive time: received eight days ago they go, received an hour ago they stay.
    await sample(e, 1, old, telemetry(10));
    await sample(e, 1, recent, telemetry(11));
    await sample(e, 2, 1_000, telemetry(12), { receivedAt: NOW - 8 * DAY, skewed: true });
    await sample(e, 2, NOW + 365 * DAY, telemetry(13), { receivedAt: NOW - 8 * DAY, skewed: true });
    await sample(e, 2, 2_000, telemetry(14), { receivedAt: recent, skewed: true });
    // Events, rollups, presence history, stream tables, finished commands: 400 days.
    if (e.kind === 'postgres') await store.preparePartitions(ancient, ancient);
    const event = (ts: number, receivedAt: number, seq: number) =>
      exec(e, "INSERT INTO events (terminal_id, epoch, seq, ts, received_at, skewed, kind, severity) VALUES ('GZ-YX-001-01', 'epochA', ?, ?, ?, 0, 'fault', 'warning')", [seq, ts, receivedAt]);
    await event(ancient, ancient, 1);
    await event(1_000, ancient, 2);
    await event(1_500, recent, 3);
    await event(recent, recent, 4);
    await store.writeRollups(
      [ancient, recent - DAY].map((hour) => ({ terminalId: 'GZ-YX-001-03', hour: Math.floor(hour / HOUR_MS) * HOUR_MS, samples: 1, ...NO_METRICS, peripheralOk: '{}', services: '{}' })),
      null,
    );
    // More presence transitions than one delete chunk.
    if (e.kind === 'sqlite') {
      const ins = e.db.prepare("INSERT INTO presence_transitions (terminal_id, at, from_state, to_state, reason) VALUES ('GZ-YX-001-01', ?, 'online', 'offline', 'lost')");
      e.db.transaction(() => {
        for (let i = 0; i < 12_001; i++) ins.run(ancient + i);
      })();
    } else {
      await e.pg.sql`insert into presence_transitions (terminal_id, at, from_state, to_state, reason)
        select 'GZ-YX-001-01', ${ancient}::int8 + g, 'online', 'offline', 'lost' from generate_series(0, 12000) g`;
    }
    await exec(e, "INSERT INTO presence_transitions (terminal_id, at, from_state, to_state, reason) VALUES ('GZ-YX-001-01', ?, 'offline', 'online', 'connected')", [recent]);
    const head = "terminal_id, epoch, seq, ts, received_at, skewed";
    const headValues = "'GZ-YX-001-01', 'epochA', ?, ?, ?, 0";
    for (const [seq, at] of [[1, ancient], [2, recent]]) {
      await exec(e, `INSERT INTO config_reports (${head}, version, status) VALUES (${headValues}, 1, 'applied')`, [seq, at, at]);
      await exec(e, `INSERT INTO command_results (${head}, command_id, status) VALUES (${headValues}, 'c-x', 'ok')`, [seq, at, at]);
      await exec(e, `INSERT INTO update_status (${head}, state) VALUES (${headValues}, 'done')`, [seq, at, at]);
    }
    const command = (id: string, status: string, at: number) =>
      exec(e, "INSERT INTO commands (id, terminal_id, name, args, issued_at, expires_at, status, created_by) VALUES (?, 'GZ-YX-001-01', 'ping', '{}', ?, ?, ?, 'admin')", [id, at, at + 60_000, status]);
    await command('c-old-ok', 'ok', ancient);
    await command('c-old-expired', 'expired', ancient);
    await command('c-old-pending', 'pending', ancient);
    await command('c-new-ok', 'ok', recent);

    const r = await retention(store).run(NOW);
    expect(r).toEqual({ rolledUp: 2, telemetry: 3, other: 2 + 1 + 12_001 + 3 + 2 });
    const left = await rows<{ ts: number }>(e, 'SELECT ts FROM telemetry_samples ORDER BY ts');
    expect(left.map((x) => x.ts)).toEqual([2_000, recent]);
    expect((await rows<{ seq: number }>(e, 'SELECT seq FROM events ORDER BY seq')).map((x) => x.seq)).toEqual([3, 4]);
    // The old hour was rolled up before its samples went, the recent hour too; the 401-day-old rollup is gone.
    expect((await rows<{ hour: number; terminal_id: string }>(e, 'SELECT terminal_id, hour FROM rollups_hourly ORDER BY hour')).map((x) => x.hour)).toEqual([
      Math.floor(old / HOUR_MS) * HOUR_MS,
      Math.floor((recent - DAY) / HOUR_MS) * HOUR_MS,
      Math.floor(recent / HOUR_MS) * HOUR_MS,
    ]);
    expect(await count(e, 'presence_transitions')).toBe(1);
    for (const table of ['config_reports', 'command_results', 'update_status']) {
      expect(await rows(e, `SELECT seq FROM ${table}`)).toEqual([{ seq: 2 }]);
    }
    expect((await rows<{ id: string }>(e, 'SELECT id FROM commands ORDER BY id')).map((x) => x.id)).toEqual(['c-new-ok', 'c-old-pending']);
    // A second run has nothing left to do.
    expect(await retention(store).run(NOW)).toEqual({ rolledUp: 0, telemetry: 0, other: 0 });

    if (e.kind === 'postgres') {
      // Whole days went as partitions: the ten-day-old day's and the 401-day-old events', not today's.
      const parts = (await rows<{ name: string }>(e, "SELECT relname AS name FROM pg_class WHERE relname ~ '_p[0-9]{8}$'")).map((x) => x.name);
      expect(parts).not.toContain(partitionName('telemetry_samples', old));
      expect(parts).not.toContain(partitionName('events', ancient));
      expect(parts).toContain(partitionName('telemetry_samples', NOW));
      expect(parts).toContain(partitionName('telemetry_samples', NOW - 7 * DAY));
      // …and the days ahead were made.
      expect(parts).toContain(partitionName('events', NOW + 3 * DAY));
    }
  }, 120_000);
});

describe.runIf(TEST_ENGINES.includes('postgres'))('retention on PostgreSQL', () => {
  let t: TestEngine;
  let store: RetentionStore;
  beforeEach(async () => {
    t = await openTestEngine('postgres');
    store = createRetentionStore(t.engine);
    await store.preparePartitions(NOW - 12 * DAY, NOW);
    await fleet(t.engine);
  }, HOOK_TIMEOUT);
  afterEach(async () => {
    await t.close();
  }, HOOK_TIMEOUT);

  const partitions = async () => (await rows<{ name: string }>(t.engine, "SELECT relname AS name FROM pg_class WHERE relname ~ '^telemetry_samples_p'")).map((x) => x.name);

  it('drops no day of raw samples the rollups have not passed, and drops it once they have', async () => {
    const old = NOW - 10 * DAY;
    await sample(t.engine, 1, old, telemetry(10));
    const cutoffs = { raw: NOW - 7 * DAY, long: NOW - 400 * DAY, skewMs: 60_000 };
    const held = await store.prune({ ...cutoffs, rolledUpUntil: old - DAY });
    expect(held).toMatchObject({ telemetry: 0 });
    expect(await partitions()).toContain(partitionName('telemetry_samples', old));
    expect(await count(t.engine, 'telemetry_samples')).toBe(1);
    const done = await store.prune({ ...cutoffs, rolledUpUntil: NOW });
    expect(done.telemetry).toBe(1);
    expect(done.partitionsDropped).toContain(partitionName('telemetry_samples', old));
    expect(await partitions()).not.toContain(partitionName('telemetry_samples', old));
  });

  it('makes the days ahead, and leaves a day whose rows already sit in the DEFAULT partition there', async () => {
    const ahead = NOW + 5 * DAY;
    // A clock five days ahead wrote before that day had its partition.
    await sample(t.engine, 1, ahead, telemetry(10), { receivedAt: NOW, skewed: true });
    const made = await store.preparePartitions(NOW, ahead);
    expect(made.skipped).toEqual([partitionName('telemetry_samples', ahead)]);
    expect(made.created).toContain(partitionName('events', ahead));
    expect(made.created).toContain(partitionName('telemetry_samples', ahead - DAY));
    expect(await count(t.engine, 'telemetry_samples_default')).toBe(1);
  });
});

describe.runIf(TEST_ENGINES.includes('postgres'))('rollups on both engines', () => {
  let engines: TestEngine[] = [];
  beforeEach(async () => {
    engines = [await openTestEngine('sqlite'), await openTestEngine('postgres')];
  }, HOOK_TIMEOUT);
  afterEach(async () => {
    for (const e of engines) await e.close();
  }, HOOK_TIMEOUT);

  it('are the same rows, to the bit, for the same raw samples', async () => {
    const got: unknown[] = [];
    for (const te of engines) {
      const store = createRetentionStore(te.engine);
      await store.preparePartitions(NOW - 3 * DAY, NOW);
      await fleet(te.engine);
      // A day of samples every 7 minutes from three terminals (two epochs on one), values that do not add up exactly,
      // stored newest first (an outbox replay): each engine must read them in its rollup order, not in arrival order.
      const writes: (() => Promise<void>)[] = [];
      let k = 0;
      for (let ts = HOUR - DAY; ts < HOUR; ts += 7 * 60_000) {
        for (const epoch of [1, 2, 3, 4]) {
          k++;
          const args = [
            epoch,
            ts + epoch * 1_000,
            telemetry((k * 7.13) % 100, { mem: 1 + (k % 3) / 10, temp: k % 5 === 0 ? null : 30 + (k % 7) / 10, printer: k % 4 === 0 ? 'fault' : 'ok', app: k % 6 !== 0 }),
            { services: k % 3 === 0 ? ['progress-inquiry'] : ['id-card-application', 'progress-inquiry', 'id-card-collection'] },
          ] as const;
          writes.push(() => sample(te.engine, args[0], args[1], args[2], { services: [...args[3].services] as ServiceId[] }));
        }
      }
      for (const w of writes.reverse()) await w();
      const rt = retention(store);
      let n = 0;
      for (let written = -1; written !== 0; ) n += written = await rt.rollup(NOW);
      expect(n).toBe(3 * 24);
      got.push(await allRollups(te.engine));
    }
    expect(got[1]).toEqual(got[0]);
  }, 120_000);
});
