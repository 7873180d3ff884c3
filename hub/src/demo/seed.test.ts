/**
 * The demo's month of history, seen the way a visitor sees it: seeded into a fresh data dir, then a real hub on it
 * answers the terminal page's 24 h and 30-day charts, the availability report, the alert list and the rollout list
 * with data. And never over a real installation's history.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { migrateStore } from '../db/migrate-store.ts';
import { openPostgres } from '../db/postgres/open.ts';
import { testDatabaseUrl } from '../db/postgres/test-database.ts';
import { createTestDatabase } from '../db/postgres/test-server.ts';
import { queryNumber } from '../db/test-query.ts';
import { parseDatabaseUrl, type DatabaseTarget } from '../db/url.ts';
import { importFleet as importInto, parseFleetJson } from '../fleet/import.ts';
import { openDatabase } from '../store/db.ts';
import { createFleetStore } from '../fleet/index.ts';
import { startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';
import { DemoSeedRefused, seedDemo } from './seed.ts';
import { ALERT_COLUMNS, SEED_TABLES } from './seed-db.ts';

const pgUrl = inject('pgUrl');

const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
const dirs: string[] = [];
const hubs: TestHub[] = [];
afterAll(async () => {
  for (const h of hubs) await h.close().catch(() => undefined);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-demo-seed-'));
  dirs.push(d);
  return d;
}

/** The reference fleet cut to its first stations (every terminal type among them), imported as `kiosk-fleet import` does. */
async function importFleet(dir: string, stations = 4): Promise<string[]> {
  const full = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'fixtures/guangzhou-fleet.json'), 'utf8')) as {
    stations: { id: string }[];
    terminals: { station: string; id: string }[];
    [k: string]: unknown;
  };
  const keep = new Set(full.stations.slice(0, stations).map((s) => s.id));
  const fleet = { ...full, stations: full.stations.filter((s) => keep.has(s.id)), terminals: full.terminals.filter((t) => keep.has(t.station)) };
  const { db } = openDatabase(dir);
  try {
    const engine = { kind: 'sqlite' as const, db };
    await importInto(engine, createFleetStore(engine), parseFleetJson(fleet), 'cli');
  } finally {
    db.close();
  }
  return fleet.terminals.map((t) => t.id);
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Where a test hub on `dir` keeps its data: on a KF_TEST_ENGINE=postgres run the PostgreSQL database test-support
 * gives that dir (the fleet imported into the dir's SQLite is copied there first, as `kiosk-fleet migrate-store`
 * does), else the dir's SQLite file (undefined).
 */
async function hubDatabase(dir: string, copyFleet: boolean): Promise<Extract<DatabaseTarget, { engine: 'postgres' }> | undefined> {
  const url = await testDatabaseUrl(dir, pgUrl);
  if (!url) return undefined;
  const target = parseDatabaseUrl(url);
  if (target.engine !== 'postgres') throw new Error('not a postgres URL');
  if (copyFleet) await migrateStore({ dataDir: dir, target });
  return target;
}

describe('demo-seed', () => {
  it('gives a real hub a month to show: both charts, the availability report, resolved alerts with notes, two rollouts', async () => {
    const dir = tempDir();
    const ids = await importFleet(dir);
    const database = await hubDatabase(dir, true);
    const r = await seedDemo({ dataDir: dir, ...(database ? { database } : {}) });
    expect(r.terminals).toBe(ids.length);
    expect(fs.existsSync(r.keys.privateKeyPath) && fs.existsSync(r.keys.publicKeyPath)).toBe(true);

    const hub = await startTestHub({ demo: true }, dir);
    hubs.push(hub);
    const get = async (p: string) => {
      const res = await hub.api(p);
      expect(res.status, p).toBe(200);
      return res.json() as Promise<Record<string, unknown>>;
    };
    expect(await get('/api/v1/health')).toMatchObject({ demo: true });

    // the terminal page's charts (dashboard/src/pages/terminal.tsx: 24 h in 5 min buckets, 30 days of rollups)
    const now = Date.now();
    const id = ids[0]!;
    const fields = 'cpuAvg,memPctAvg,diskPctAvg,tempAvg';
    const day = (await get(`/api/v1/terminals/${id}/telemetry?from=${iso(now - 86_400_000)}&to=${iso(now)}&bucket=5m&format=rows&fields=${fields}&limit=1000`)) as { items: number[][] };
    expect(day.items.length).toBeGreaterThan(200);
    // the 7-day chart buckets raw samples by the hour (a hub keeps them KF_RETENTION_DAYS, 7): a point for every
    // hour of the week, not only the last day's (issue 23)
    const week = (await get(`/api/v1/terminals/${id}/telemetry?from=${iso(now - 7 * 86_400_000)}&to=${iso(now)}&bucket=1h&format=rows&fields=${fields}&limit=1000`)) as { items: (number | string)[][] };
    expect(week.items.length).toBeGreaterThan(150);
    expect(Math.min(...week.items.map((row) => Date.parse(String(row[0]))))).toBeLessThan(now - 6.5 * 86_400_000);
    const month = (await get(`/api/v1/terminals/${id}/telemetry?from=${iso(now - 30 * 86_400_000)}&to=${iso(now)}&bucket=rollup&format=rows&fields=${fields}&limit=1000`)) as { items: (number | string)[][] };
    expect(month.items.length).toBeGreaterThan(600);
    // opening hours: the busiest hour of the month is far busier than the quietest
    const cpu = month.items.map((row) => Number(row[1]));
    expect(Math.max(...cpu)).toBeGreaterThan(3 * Math.min(...cpu));

    // the availability report over the month: data for every service, some downtime of each cause it names
    const report = (await get(`/api/v1/reports/availability?from=${iso(now - 30 * 86_400_000)}&to=${iso(now)}`)) as {
      city: { services: Record<string, { share: number | null; expectedSeconds: number; downtimeSeconds: Record<string, number> }> }[];
    };
    const services = Object.values(report.city[0]!.services);
    expect(services.length).toBeGreaterThan(0);
    for (const s of services) {
      expect(s.share).not.toBeNull();
      expect(s.share!).toBeGreaterThan(0.8);
      expect(s.share!).toBeLessThan(1);
      // "not enough data": online time without rollups stays a sliver (the current hour)
      expect(s.downtimeSeconds.noData).toBeLessThan(0.01 * s.expectedSeconds);
    }
    const total = (k: string) => services.reduce((n, s) => n + s.downtimeSeconds[k]!, 0);
    expect(total('offline')).toBeGreaterThan(0);
    expect(total('peripheralFault')).toBeGreaterThan(0);

    // alerts raised and resolved, some by a technician with a note
    const alerts = (await get('/api/v1/alerts?state=resolved&limit=500')) as { items: { state: string; resolved: { resolution: string | null; note: string | null } | null }[] };
    expect(alerts.items.length).toBeGreaterThan(0);
    expect(alerts.items.some((a) => a.resolved?.resolution === 'manual' && (a.resolved.note ?? '').length > 0)).toBe(true);
    expect(((await get('/api/v1/alerts')) as { items: unknown[] }).items).toEqual([]);

    // a finished rollout, and one waiting at its pilot station
    const rollouts = (await get('/api/v1/rollouts')) as { items: { id: string; status: string; wave: number; waves: { name: string; passed: string | null }[] }[] };
    expect(rollouts.items.filter((x) => x.status === 'completed')).toHaveLength(1);
    const waiting = rollouts.items.filter((x) => x.status === 'running');
    expect(waiting).toHaveLength(1);
    expect(waiting[0]!.wave).toBe(0);
    expect(waiting[0]!.waves[0]).toMatchObject({ name: 'pilot', passed: null });
    expect(((await get('/api/v1/releases')) as { items: { id: string }[] }).items.map((x) => x.id).sort()).toEqual(['app-3.2.1', 'app-3.3.0']);
  }, 240_000);

  it('refuses a database that holds history, and writes nothing', async () => {
    const dir = tempDir();
    // a real installation: one terminal that reported one sample
    const hub = await startTestHub({}, dir);
    hubs.push(hub);
    const { id, secret } = await hub.terminal('GZ-T-001-01');
    const c = await hub.connect(id, secret);
    await c.publishAsync(topicFor(id, 'telemetry'), telemetry(1), { qos: 1 });
    await until(async () => (await queryNumber(hub.engine, 'SELECT count(*) AS n FROM telemetry_samples')) === 1 || undefined, 20_000);
    await c.endAsync();
    await hub.close();

    const database = await hubDatabase(dir, false);
    const o = { dataDir: dir, ...(database ? { database } : {}) };
    await expect(seedDemo(o)).rejects.toThrow(DemoSeedRefused);
    await expect(seedDemo(o)).rejects.toThrow(/already has history \(telemetry_samples/);
    if (database) {
      const pg = await openPostgres(database, { max: 1 });
      try {
        expect(await queryNumber({ kind: 'postgres', pg }, 'SELECT count(*) AS n FROM rollups_hourly')).toBe(0);
        expect(await queryNumber({ kind: 'postgres', pg }, 'SELECT count(*) AS n FROM alerts')).toBe(0);
      } finally {
        await pg.close();
      }
    } else {
      const { db } = openDatabase(dir);
      try {
        expect(db.prepare('SELECT count(*) AS n FROM rollups_hourly').get()).toEqual({ n: 0 });
        expect(db.prepare('SELECT count(*) AS n FROM alerts').get()).toEqual({ n: 0 });
      } finally {
        db.close();
      }
    }
    expect(fs.existsSync(path.join(dir, 'hub.lock'))).toBe(false);
  }, 120_000);

  it('seeds a short history too (--days 2: no hot day, no outage, maybe no weekday)', async () => {
    const dir = tempDir();
    await importFleet(dir, 1);
    const r = await seedDemo({ dataDir: dir, days: 2 });
    expect(r.rollups).toBeGreaterThan(0);
    expect(r.rollouts.map((x) => x.status).sort()).toEqual(['completed', 'running']);
  }, 120_000);

  it('refuses a data dir without terminals', async () => {
    await expect(seedDemo({ dataDir: tempDir() })).rejects.toThrow(/import the fleet first/);
  });

  it.skipIf(!pgUrl)('on PostgreSQL writes the same rows as on SQLite for the same seed and time, into daily partitions', async () => {
    const dir = tempDir();
    await importFleet(dir, 3);
    // the same fleet on PostgreSQL, as a bureau that moved gets it
    const database = await createTestDatabase(pgUrl!);
    try {
      const target = parseDatabaseUrl(database.url);
      if (target.engine !== 'postgres') throw new Error('not a postgres URL');
      await migrateStore({ dataDir: dir, target });
      const now = Date.UTC(2026, 11, 7, 15, 37, 12);
      const onPg = await seedDemo({ dataDir: tempDir(), database: target, now, seed: 41, days: 10 });
      const onSqlite = await seedDemo({ dataDir: dir, now, seed: 41, days: 10 });
      const summary = (r: typeof onPg) => ({ ...r, ms: 0, keys: null });
      expect(summary(onPg)).toEqual(summary(onSqlite));
      expect(onPg.rawSamples).toBeGreaterThan(0);

      const { db } = openDatabase(dir);
      const pg = await openPostgres(target, { max: 1 });
      try {
        const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '__drizzle_migrations' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
        const sqliteCounts: Record<string, number> = {};
        const pgCounts: Record<string, number> = {};
        for (const t of tables) {
          sqliteCounts[t] = (db.prepare(`SELECT count(*) AS n FROM "${t}"`).get() as { n: number }).n;
          pgCounts[t] = (await pg.sql<{ n: number }[]>`select count(*)::bigint as n from ${pg.sql(t)}`)[0]!.n;
        }
        expect(pgCounts).toEqual(sqliteCounts);
        expect(sqliteCounts.rollups_hourly).toBe(onSqlite.rollups);

        // not just as many: the same rows (what the charts, the report and the alert list read)
        const same = async (table: string, columns: readonly string[], order: string) => {
          const a = db.prepare(`SELECT ${columns.join(', ')} FROM ${table} ORDER BY ${order}`).raw().all();
          const b = (await pg.sql.unsafe(`SELECT ${columns.join(', ')} FROM ${table} ORDER BY ${order}`).values()) as unknown[][];
          expect(b, table).toEqual(a);
        };
        await same('rollups_hourly', SEED_TABLES.rollups_hourly, 'terminal_id, hour');
        await same('telemetry_samples', SEED_TABLES.telemetry_samples, 'epoch_id, ts, seq');
        await same('presence_transitions', SEED_TABLES.presence_transitions, 'id');
        await same('events', SEED_TABLES.events, 'id');
        await same('alerts', ['id', ...ALERT_COLUMNS], 'id');

        // every sample and event sits in its day's partition, none in DEFAULT (whose days could get no partition)
        const [stray] = await pg.sql<{ n: number }[]>`
          select (select count(*) from telemetry_samples_default) + (select count(*) from events_default) as n`;
        expect(stray!.n).toBe(0);
      } finally {
        db.close();
        await pg.close();
      }
    } finally {
      await database.drop();
    }
  }, 240_000);
});
