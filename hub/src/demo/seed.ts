/**
 * `kiosk-fleet demo-seed`: a month of history for the demo (`pnpm start`), written straight into the SQLite file of a
 * fresh data dir while no hub runs, so the first look at the dashboard shows what the product is for: charts with
 * opening hours in them, an availability report, alerts a technician resolved with a note, a finished rollout and
 * one waiting at its pilot station.
 *
 * Invariants:
 * - Never on a real installation: it holds the data dir's hub.lock while it writes (a hub cannot start meanwhile, and
 *   it refuses while one runs), and refuses a database that holds any telemetry, rollup, presence history, event,
 *   alert or rollout. It needs the terminals imported first (`kiosk-fleet import`): their secrets are not its business.
 * - Every row is what the hub itself would have stored: raw samples through the ingest's encoder
 *   (ingest/telemetry-codec.ts) under an outbox epoch of their own, with contiguous seqs and their stream counters;
 *   the rollups of the hours those samples cover computed by the hub's retention job (retention/service.ts) from
 *   them; older rollups computed from the same per-sample model with the same formulas (min/avg/max, share of
 *   samples each peripheral was ok, share each service was available per the catalog's `availableServices`).
 * - Raw samples are expensive (923 terminals × 30 days at 30 s is 80 M rows), so only the last `rawHours` have them
 *   (169: the 7-day chart, which buckets raw samples as a hub keeps them KF_RETENTION_DAYS, 7), one every `rawStepMs`
 *   (5 min) in the last `fineHours` (25: the 24 h chart) and one every `coarseStepMs` (15 min: four points to each of
 *   the 7-day chart's hourly buckets) before; rollups reach back `days`, each from 12 points an hour (one every 5
 *   minutes) before the raw samples, from the raw samples after.
 * - Presence transitions, events, alerts and rollups agree: a terminal offline has neither samples nor rollup points
 *   then, a peripheral in fault shows in the rollup's shares, in a fault and a recovery event, and (past the alert
 *   rule's threshold) in an alert with its history.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  availableServices,
  isTerminalType,
  PERIPHERALS,
  seededRandom,
  SERVICES,
  TERMINAL_TYPES,
  type PeripheralStatus,
  type Telemetry,
  type TerminalType,
} from '@kiosk-fleet/protocol';
import { acquireDataDirLock, hubHolding } from '../db/lock.ts';
import { openPostgres } from '../db/postgres/open.ts';
import type { DatabaseTarget } from '../db/url.ts';
import { createLogger } from '../log.ts';
import { ArtifactStore } from '../releases/artifact-store.ts';
import { parseTrustedKeys, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, writeKeyPair } from '../releases/keys.ts';
import { packRelease } from '../releases/pack.ts';
import { createReleaseStore } from '../releases/store.ts';
import { createRollout, DEFAULT_TOKEN_REFRESH_MS, type FleetTerminal, type RolloutSpec, type RolloutState } from '../rollouts/engine.ts';
import { createRolloutStore } from '../rollouts/store.ts';
import { openDatabase } from '../store/db.ts';
import { HOUR_MS } from '../retention/store.ts';
import { rollupOf } from '../retention/service.ts';
import { encodeSample, SAMPLE_COLUMNS } from '../ingest/telemetry-codec.ts';
import { postgresSeedDb, sqliteSeedDb, type Row, type SeedAlert, type SeedDb } from './seed-db.ts';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** Rollup points per hour: one every 5 minutes, as the raw samples. */
const POINTS = 12;
/** The outbox epoch the seeded streams are stored under (the simulator's agents make their own). */
export const DEMO_EPOCH = 'demo-seed';
/** Where the demo's release signing key pair is kept, under the data dir. */
export const DEMO_KEYS_DIR = 'release-keys';

export class DemoSeedRefused extends Error {
  override name = 'DemoSeedRefused';
}

export interface DemoSeedOptions {
  /** The release keys go here; on SQLite the database too. */
  dataDir: string;
  /** KF_DATABASE_URL parsed; SQLite (under `dataDir`) when absent. */
  database?: DatabaseTarget;
  now?: number;
  days?: number;
  rawHours?: number;
  rawStepMs?: number;
  fineHours?: number;
  coarseStepMs?: number;
  /** The bureau's zone: opening hours are local (KF_TIMEZONE). */
  timezone?: string;
  seed?: number;
  progress?: (line: string) => void;
}

export interface DemoSeedResult {
  terminals: number;
  rawSamples: number;
  rollups: number;
  transitions: number;
  events: number;
  alerts: number;
  releases: string[];
  rollouts: { id: string; status: string }[];
  keys: { privateKeyPath: string; publicKeyPath: string };
  ms: number;
}

interface Term {
  id: string;
  type: TerminalType;
  station: string;
  district: string;
  /** Deterministic per-terminal figures. */
  idx: number;
  cpuIdle: number;
  cpuBusy: number;
  memTotal: number;
  memBase: number;
  diskTotal: number;
  diskStart: number;
  diskPerDay: number;
  tempBase: number;
  sunny: boolean;
  busy: number;
  incidents: Incident[];
  offline: Spell[];
}

interface Incident {
  kind: 'peripheral' | 'app';
  peripheral?: string;
  status?: PeripheralStatus;
  code?: string;
  message?: string;
  from: number;
  to: number;
}

interface Spell {
  from: number;
  to: number;
  reason: 'connection-lost' | 'power-loss' | 'reboot' | 'clean';
  planned?: boolean;
}

const TECHS = ['zhangwei', 'liqiang', 'chenjing', 'wanglei'];
const MANUAL_NOTES: Record<string, string[]> = {
  idCardReader: ['更换读卡器数据线，自检通过', '读卡模块重新插拔并清洁触点，自检通过', 'Replaced the card reader module; self-test passed'],
  receiptPrinter: ['补充热敏纸并清理卡纸', 'Paper roll replaced, jam cleared'],
  a4Printer: ['更换硒鼓，打印测试页正常', 'Toner replaced; test page OK'],
  camera: ['重新连接摄像头 USB，画面恢复', 'Camera cable reseated; picture back'],
  default: ['现场检修后恢复', 'Fixed on site; self-test passed'],
};
const CODES: Record<string, [string, string]> = {
  idCardReader: ['E_NO_RESPONSE', 'reader did not answer within 3000 ms'],
  receiptPrinter: ['PAPER_OUT', 'paper out'],
  a4Printer: ['TONER_EMPTY', 'toner empty'],
  camera: ['E_NO_DEVICE', 'camera not found on USB'],
};

/** Local hour (0-23) and weekday (0 = Sunday) of each hour, memoised: Intl is slow and a month has 720 hours. */
function localClock(tz: string): (ts: number) => { hour: number; dow: number } {
  const f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', hour: '2-digit', weekday: 'short' });
  const days: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
  const memo = new Map<number, { hour: number; dow: number }>();
  return (ts) => {
    const h = Math.floor(ts / HOUR_MS);
    let v = memo.get(h);
    if (!v) {
      const parts = f.formatToParts(new Date(h * HOUR_MS));
      v = { hour: Number(parts.find((p) => p.type === 'hour')!.value) % 24, dow: days[parts.find((p) => p.type === 'weekday')!.value] ?? 1 };
      memo.set(h, v);
    }
    return v;
  };
}

/**
 * Citizens at the terminals, 0-1: weekdays 08:00-18:00 with a morning and an afternoon peak and a lunch dip,
 * Saturday mornings half as busy, Sundays and nights nearly idle (the terminals stay on: some services run 24 h).
 */
function loadAt(hour: number, minute: number, dow: number): number {
  const x = hour + minute / 60;
  if (dow === 0) return x >= 9 && x < 16 ? 0.12 : 0.02;
  if (dow === 6) return x >= 9 && x < 13 ? 0.45 : x >= 13 && x < 17 ? 0.2 : 0.03;
  if (x < 7.5 || x >= 19) return 0.03;
  if (x < 8.5) return 0.25;
  if (x < 11.5) return 0.85 + 0.15 * Math.sin(((x - 8.5) / 3) * Math.PI);
  if (x < 13.5) return 0.5;
  if (x < 17.5) return 0.8 + 0.2 * Math.sin(((x - 13.5) / 4) * Math.PI);
  return 0.3;
}

/** Deterministic noise in [-1, 1) for (terminal, time, channel): raw samples and rollup points agree. */
function noise(i: number, t: number, ch: number): number {
  let h = Math.imul(i + 0x9e3779b1, 0x85ebca6b) ^ Math.imul(Math.floor(t / 1000) + ch * 0x27d4eb2f, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return ((h >>> 0) / 0x1_0000_0000) * 2 - 1;
}

const overlaps = (a: { from: number; to: number }, from: number, to: number) => a.from < to && a.to > from;
function inside(xs: readonly { from: number; to: number }[], t: number): boolean {
  for (let i = 0; i < xs.length; i++) if (t >= xs[i]!.from && t < xs[i]!.to) return true;
  return false;
}

export async function seedDemo(o: DemoSeedOptions): Promise<DemoSeedResult> {
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const say = (line: string) => {
    const c = process.cpuUsage(cpu0);
    o.progress?.(`${line} (${((Date.now() - t0) / 1000).toFixed(1)} s, CPU ${((c.user + c.system) / 1e6).toFixed(1)} s)`);
  };
  const holder = hubHolding(o.dataDir);
  if (holder) throw new DemoSeedRefused(`a hub (pid ${holder.pid}) is serving ${o.dataDir}: stop it first`);
  const lock = acquireDataDirLock(o.dataDir);
  try {
    if (o.database?.engine === 'postgres') {
      const pg = await openPostgres(o.database, { max: 2 });
      try {
        return await seed(postgresSeedDb(pg.sql, { kind: 'postgres', pg }), o, say, t0);
      } finally {
        await pg.close();
      }
    }
    const { db } = openDatabase(o.dataDir);
    try {
      return await seed(sqliteSeedDb(db), o, say, t0);
    } finally {
      db.close();
    }
  } finally {
    lock.release();
  }
}

async function refuseHistory(sdb: SeedDb): Promise<void> {
  const table = await sdb.firstNonEmpty(['telemetry_samples', 'rollups_hourly', 'presence_transitions', 'events', 'alerts', 'rollouts']);
  if (table !== null) {
    throw new DemoSeedRefused(`the database already has history (${table} is not empty): demo-seed only writes into a fresh database`);
  }
}

const COL = Object.fromEntries(SAMPLE_COLUMNS.split(/\s*,\s*/).map((c, i) => [c, i]));

/**
 * The rollup of one terminal's hour of stored samples (encodeSample's columns), computed as the retention job
 * computes it from the table: the same values in the same order, so the same floats and the same JSON.
 */
export function rollupOfSamples(terminalId: string, hour: number, samples: readonly (readonly unknown[])[]): Row {
  const r = rollupOf(
    terminalId,
    hour,
    samples.map((x) => ({
      cpu: x[COL.cpu!] as number,
      memUsed: x[COL.mem_used!] as number,
      memTotal: x[COL.mem_total!] as number,
      diskUsed: x[COL.disk_used!] as number,
      diskTotal: x[COL.disk_total!] as number,
      temp: x[COL.temp!] as number | null,
      pstat: x[COL.pstat!] as number,
      pnote: x[COL.pnote!] as string | null,
      services: x[COL.services!] as number | null,
    })),
  );
  return [r.terminalId, r.hour, r.samples, r.cpuMin, r.cpuAvg, r.cpuMax, r.memPctMin, r.memPctAvg, r.memPctMax, r.diskPctMin, r.diskPctAvg, r.diskPctMax, r.tempMin, r.tempAvg, r.tempMax, r.peripheralOk, r.services];
}

async function seed(sdb: SeedDb, o: DemoSeedOptions, say: (line: string) => void, t0: number): Promise<DemoSeedResult> {
  await refuseHistory(sdb);
  const now = o.now ?? Date.now();
  const days = o.days ?? 30;
  const rawHours = o.rawHours ?? 7 * 24 + 1;
  const rawStep = o.rawStepMs ?? 5 * MINUTE_MS;
  const fineHours = o.fineHours ?? 25;
  const coarseStep = o.coarseStepMs ?? 15 * MINUTE_MS;
  const clock = localClock(o.timezone ?? 'Asia/Shanghai');
  const random = seededRandom(o.seed ?? 923);
  const between = (a: number, b: number) => a + (b - a) * random();
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

  const start = Math.floor((now - days * DAY_MS) / HOUR_MS) * HOUR_MS;
  // a short history (--days) has raw samples from its first hour on
  const rawStart = Math.max(start, Math.floor((now - rawHours * HOUR_MS) / HOUR_MS) * HOUR_MS);
  const fineStart = Math.max(rawStart, Math.floor((now - fineHours * HOUR_MS) / HOUR_MS) * HOUR_MS);

  const rows = await sdb.activeTerminals();
  if (rows.length === 0) throw new DemoSeedRefused('no terminals in the database: import the fleet first (kiosk-fleet import fixtures/guangzhou-fleet.json)');

  // Opening-hour starts for faults: a technician's month is weekday daytime faults, mostly.
  const openingStart = (): number => {
    // bounded: a short --days over a weekend has no opening hour at all
    for (let tries = 0; ; tries++) {
      // times are whole milliseconds, as the schema keeps them (PostgreSQL's bigint takes nothing else)
      const t = Math.round(between(start + DAY_MS, now - 2 * HOUR_MS));
      const c = clock(t);
      if ((c.dow !== 0 && c.hour >= 8 && c.hour < 17) || tries >= 200) return t;
    }
  };

  // Hot afternoons: three days of the month, city-wide weather; terminals in the sun get the worst of it.
  const hotDays = new Set<number>();
  // days 1 … days-2: the first and the last (partial) day have none, so a short --days has fewer
  while (hotDays.size < Math.min(3, days - 2)) hotDays.add(Math.floor(between(1, days - 1)));
  const dayIndex = (t: number) => Math.floor((t - start) / DAY_MS);

  const terms: Term[] = rows.filter((r) => isTerminalType(r.type)).map((r, idx) => {
    const type = r.type as TerminalType;
    const periph = TERMINAL_TYPES[type].peripherals as readonly string[];
    const incidents: Incident[] = [];
    const nFaults = random() < 0.05 ? 2 : random() < 0.3 ? 1 : 0;
    for (let k = 0; k < nFaults; k++) {
      const p = random() < 0.5 ? 'idCardReader' : pick(periph.filter((x) => x !== 'touchscreen'));
      const [code, message] = CODES[p] ?? ['E_NO_RESPONSE', 'device did not answer'];
      const from = openingStart();
      const long = random() < 0.3;
      incidents.push({ kind: 'peripheral', peripheral: p, status: 'fault', code, message, from, to: Math.min(now - 10 * MINUTE_MS, Math.round(from + (long ? between(90, 480) : between(8, 60)) * MINUTE_MS)) });
    }
    if (random() < 0.1) {
      const from = openingStart();
      incidents.push({ kind: 'app', from, to: Math.round(from + between(5, 30) * MINUTE_MS) });
    }
    const offline: Spell[] = [];
    if (random() < 0.25) {
      const from = Math.round(between(start + DAY_MS, now - 3 * HOUR_MS));
      offline.push({ from, to: Math.round(from + between(12, 300) * MINUTE_MS), reason: pick(['connection-lost', 'power-loss', 'reboot'] as const) });
    }
    const big = random() < 0.4;
    return {
      id: r.id,
      type,
      station: r.station,
      district: r.station.split('-').slice(0, 2).join('-'),
      idx,
      cpuIdle: between(2, 6),
      cpuBusy: between(20, 45),
      memTotal: (random() < 0.6 ? 8 : 4) * 1024 ** 3,
      memBase: between(30, 50),
      diskTotal: (big ? 128 : 64) * 1024 ** 3,
      diskStart: between(25, 65),
      diskPerDay: random() < 0.03 ? between(0.8, 1.1) : between(0.02, 0.3),
      tempBase: between(33, 40),
      sunny: random() < 0.06,
      busy: between(0.6, 1.3),
      incidents,
      offline,
    };
  });

  // A station's network outage one weekday afternoon, and a planned maintenance night at another station.
  const stations = [...new Set(terms.map((t) => t.station))].sort();
  const outageStation = stations[Math.floor(stations.length / 3)]!;
  const maintStation = stations[Math.floor((2 * stations.length) / 3)]!;
  let outageFrom = Math.floor((now - 9 * DAY_MS) / HOUR_MS) * HOUR_MS;
  while (clock(outageFrom).dow === 0 || clock(outageFrom).dow === 6 || clock(outageFrom).hour !== 14) outageFrom += HOUR_MS;
  let maintFrom = Math.floor((now - 12 * DAY_MS) / HOUR_MS) * HOUR_MS;
  while (clock(maintFrom).dow !== 0 || clock(maintFrom).hour !== 1) maintFrom += HOUR_MS;
  // a short history (--days) may not reach back to them
  const withOutage = outageFrom > start + DAY_MS;
  const withMaint = maintFrom > start + DAY_MS;
  for (const t of terms) {
    if (withOutage && t.station === outageStation) t.offline.push({ from: outageFrom + 10 * MINUTE_MS, to: outageFrom + 3.5 * HOUR_MS, reason: 'connection-lost' });
    if (withMaint && t.station === maintStation) t.offline.push({ from: maintFrom + 5 * MINUTE_MS, to: maintFrom + 2.5 * HOUR_MS, reason: 'clean', planned: true });
    t.offline.sort((a, b) => a.from - b.from);
    // a fault or an app crash while offline would be invisible: keep them apart
    t.incidents = t.incidents.filter((i) => !t.offline.some((s) => overlaps(s, i.from - 30 * MINUTE_MS, i.to + 30 * MINUTE_MS)));
  }

  // What every terminal shares at a moment (citizens' rhythm, the afternoon sun, the weather), memoised per 5 minutes:
  // the rollups alone ask for it 7.7 million times.
  const slots = new Map<number, [load: number, afternoon: number, hot: number]>();
  const slotAt = (ts: number) => {
    const k = Math.floor(ts / (5 * MINUTE_MS));
    let v = slots.get(k);
    if (!v) {
      const c = clock(ts);
      const minute = Math.floor((ts % HOUR_MS) / MINUTE_MS);
      const x = c.hour + minute / 60;
      const afternoon = x >= 11 && x < 19 ? Math.sin(((x - 11) / 8) * Math.PI) : 0;
      v = [loadAt(c.hour, minute, c.dow), afternoon, hotDays.has(dayIndex(ts)) ? 1 : 0];
      slots.set(k, v);
    }
    return v;
  };
  const hostAt = (t: Term, ts: number) => {
    const [base, afternoon, hotDay] = slotAt(ts);
    const load = Math.min(1, base * t.busy);
    const cpu = Math.max(0.5, Math.min(99, t.cpuIdle + (t.cpuBusy - t.cpuIdle) * load + 4 * noise(t.idx, ts, 1)));
    const memPct = Math.max(10, Math.min(97, t.memBase + 18 * load + 3 * noise(t.idx, ts, 2)));
    const diskPct = Math.min(97, t.diskStart + (t.diskPerDay * (ts - start)) / DAY_MS);
    const hot = hotDay * (t.sunny ? 32 : 12) * afternoon;
    const temp = t.tempBase + 6 * load + 3 * afternoon + hot + 0.8 * noise(t.idx, ts, 3);
    return { cpu, memPct, diskPct, temp, load };
  };

  const statusesAt = (t: Term, ts: number): { statuses: Record<string, PeripheralStatus>; appUp: boolean; active: Incident[] } => {
    const statuses: Record<string, PeripheralStatus> = {};
    for (const p of TERMINAL_TYPES[t.type].peripherals) statuses[p] = 'ok';
    let appUp = true;
    const active: Incident[] = [];
    for (const i of t.incidents) {
      if (ts < i.from || ts >= i.to) continue;
      active.push(i);
      if (i.kind === 'app') appUp = false;
      else statuses[i.peripheral!] = i.status!;
    }
    return { statuses, appUp, active };
  };

  // ---------------------------------------------------------------- rollups before the raw window
  say(`rollups: ${terms.length} terminals × ${Math.round((rawStart - start) / HOUR_MS)} hours`);
  await sdb.partitions(start, now + DAY_MS);
  const allOk = new Map<string, [string, string]>();
  const quietShares = (type: TerminalType): [string, string] => {
    let v = allOk.get(type);
    if (!v) {
      // key order as the retention job writes them: the codec's catalog order (statusesOf), services in SERVICE_CODES order
      const ok = Object.fromEntries(TERMINAL_TYPES[type].peripherals.map((p) => [p, 1]));
      const sv = Object.fromEntries(availableServices(type, Object.fromEntries(TERMINAL_TYPES[type].peripherals.map((p) => [p, 'ok' as const]))).map((s) => [s, 1]));
      v = [JSON.stringify(sortByCatalog(ok)), JSON.stringify(sortServices(sv))];
      allOk.set(type, v);
    }
    return v;
  };
  let rollups = 0;
  const step = HOUR_MS / POINTS;
  await sdb.phase(async (sink) => {
    const rollupRows = sink('rollups_hourly');
    for (const t of terms) {
      for (let h = start; h < rawStart; h += HOUR_MS) {
        const busyHour = t.incidents.some((i) => overlaps(i, h, h + HOUR_MS));
        const offHour = t.offline.some((sp) => overlaps(sp, h, h + HOUR_MS));
        let n = 0;
        let cMin = Infinity, cMax = -Infinity, cSum = 0, mMin = Infinity, mMax = -Infinity, mSum = 0, dMin = Infinity, dMax = -Infinity, dSum = 0, tMin = Infinity, tMax = -Infinity, tSum = 0;
        const pOk = new Map<string, number>();
        const svc = new Map<string, number>();
        for (let k = 0; k < POINTS; k++) {
          const ts = h + k * step;
          if (offHour && inside(t.offline, ts)) continue;
          n++;
          const x = hostAt(t, ts);
          // the stored precision: cpu × 100, °C × 10 (telemetry-codec.ts)
          const cpu = Math.round(x.cpu * 100) / 100, temp = Math.round(x.temp * 10) / 10;
          cMin = Math.min(cMin, cpu); cMax = Math.max(cMax, cpu); cSum += cpu;
          mMin = Math.min(mMin, x.memPct); mMax = Math.max(mMax, x.memPct); mSum += x.memPct;
          dMin = Math.min(dMin, x.diskPct); dMax = Math.max(dMax, x.diskPct); dSum += x.diskPct;
          tMin = Math.min(tMin, temp); tMax = Math.max(tMax, temp); tSum += temp;
          if (busyHour) {
            const s = statusesAt(t, ts);
            for (const [p, st] of Object.entries(s.statuses)) pOk.set(p, (pOk.get(p) ?? 0) + (st === 'ok' ? 1 : 0));
            for (const sv of availableServices(t.type, s.statuses, s.appUp)) svc.set(sv, (svc.get(sv) ?? 0) + 1);
          }
        }
        if (n === 0) continue; // offline the whole hour: the hub has nothing to roll up
        let shares: [string, string];
        if (busyHour) {
          const ok = Object.fromEntries([...pOk].map(([p, c]) => [p, c / n]));
          const sv = Object.fromEntries([...svc].map(([s, c]) => [s, c / n]));
          shares = [JSON.stringify(sortByCatalog(ok)), JSON.stringify(sortServices(sv))];
        } else shares = quietShares(t.type);
        rollupRows.add([t.id, h, n, cMin, cSum / n, cMax, mMin, mSum / n, mMax, dMin, dSum / n, dMax, tMin, tSum / n, tMax, ...shares]);
        rollups++;
      }
      await rollupRows.tick();
    }
  });

  const quietLists = new Map<TerminalType, string[]>();
  const quietServices = (type: TerminalType): string[] => {
    let v = quietLists.get(type);
    if (!v) quietLists.set(type, (v = availableServices(type, Object.fromEntries(TERMINAL_TYPES[type].peripherals.map((p) => [p, 'ok' as const])))));
    return v;
  };

  // ---------------------------------------------------------------- raw samples of the last hours
  say(
    `raw samples: ${terms.length} terminals × ${Math.round((fineStart - rawStart) / coarseStep)} steps of ${coarseStep / MINUTE_MS} min` +
      ` + ${Math.round((now - fineStart) / rawStep)} of ${rawStep / MINUTE_MS} min`,
  );
  const epochIds = await sdb.epochKeys(terms.map((t) => t.id), DEMO_EPOCH);
  let rawSamples = 0;
  // The hours the raw samples cover are rolled up as the hub's retention job would have (rollupOfSamples), up to the
  // current hour, which it leaves until it is complete.
  const currentHour = Math.floor(now / HOUR_MS) * HOUR_MS;
  await sdb.phase(async (sink) => {
    const sampleRows = sink('telemetry_samples');
    const streamRows = sink('streams');
    const rollupRows = sink('rollups_hourly');
    for (const t of terms) {
      const epochId = epochIds[t.idx]!;
      let seq = 0;
      let hour = rawStart;
      let hourSamples: unknown[][] = [];
      const closeHour = () => {
        if (hourSamples.length > 0 && hour < currentHour) {
          rollupRows.add(rollupOfSamples(t.id, hour, hourSamples));
          rollups++;
        }
        hourSamples = [];
      };
      let bootAt = start - between(0, 20) * DAY_MS;
      for (const s of t.offline) if (s.to <= rawStart && s.reason !== 'connection-lost') bootAt = s.to;
      for (let ts = rawStart; ts < now; ts += ts < fineStart ? coarseStep : rawStep) {
        const spell = t.offline.find((s) => ts >= s.from && ts < s.to);
        if (spell) {
          if (spell.reason !== 'connection-lost') bootAt = spell.to;
          continue;
        }
        const h = Math.floor(ts / HOUR_MS) * HOUR_MS;
        if (h !== hour) {
          closeHour();
          hour = h;
        }
        const x = hostAt(t, ts);
        const s = statusesAt(t, ts);
        const txOk = Math.round(x.load * 8 * (1 + noise(t.idx, ts, 4) * 0.5));
        const failed = txOk > 0 && noise(t.idx, ts, 5) > 0.9 ? 1 : 0;
        const peripherals: Telemetry['peripherals'] = {};
        for (const [p, st] of Object.entries(s.statuses)) {
          const inc = s.active.find((i) => i.peripheral === p);
          peripherals[p] = { status: st, ...(inc?.code ? { code: inc.code, message: inc.message! } : {}) };
          if (p === 'idCardReader') Object.assign(peripherals[p]!, { reads: st === 'ok' ? txOk : 0, failedReads: st === 'ok' ? failed : 3 });
        }
        const sample: Telemetry = {
          v: 1,
          epoch: DEMO_EPOCH,
          seq: ++seq,
          ts: new Date(ts).toISOString(),
          host: {
            cpu: Math.round(x.cpu * 100) / 100,
            memUsed: Math.round((t.memTotal * x.memPct) / 100 / 1024) * 1024,
            memTotal: t.memTotal,
            diskUsed: Math.round((t.diskTotal * x.diskPct) / 100 / 1024) * 1024,
            diskTotal: t.diskTotal,
            tempC: Math.round(x.temp * 10) / 10,
            uptime: Math.round((ts - bootAt) / 1000),
          },
          peripherals,
          app: { up: s.appUp, version: '3.2.1', sessionActive: x.load > 0.5 && noise(t.idx, ts, 6) > 0, transactionsOk: s.appUp ? txOk : 0, transactionsFailed: s.appUp ? failed : 0 },
        } as Telemetry;
        const services = s.active.length === 0 ? quietServices(t.type) : availableServices(t.type, s.statuses, s.appUp);
        const recvDelay = 40 + Math.round(200 * Math.abs(noise(t.idx, ts, 7)));
        const encoded = encodeSample(sample, services);
        sampleRows.add([epochId, ts, seq, recvDelay, 0, ...(encoded as Row)]);
        hourSamples.push(encoded);
        rawSamples++;
      }
      closeHour();
      if (seq > 0) streamRows.add([t.id, 'telemetry', DEMO_EPOCH, 1, seq, seq, now]);
      await sampleRows.tick();
      await rollupRows.tick();
    }
  });
  await sdb.setMeta('rollup_until', String(currentHour));

  // ---------------------------------------------------------------- presence, events, maintenance
  say('presence history, events, maintenance');
  let transitions = 0;
  let events = 0;
  // installed before the month: the report starts at a terminal's creation
  await sdb.installedBy(start - DAY_MS);
  await sdb.phase(async (sink) => {
    const transitionRows = sink('presence_transitions');
    const eventRows = sink('events');
    const streamRows = sink('streams');
    for (const t of terms) {
      const addr = `10.${20 + (t.idx % 200)}.${Math.floor(t.idx / 200)}.${10 + (t.idx % 240)}`;
      let conn = 1;
      transitionRows.add([t.id, start, 'unknown', 'online', 'connected', `boot-${t.idx}-0`, conn, addr]);
      transitions++;
      for (const s of t.offline) {
        transitionRows.add([t.id, s.from, 'online', 'offline', s.reason, `boot-${t.idx}-${conn}`, conn, null]);
        transitionRows.add([t.id, s.to, 'offline', 'online', 'connected', `boot-${t.idx}-${conn + 1}`, conn + 1, addr]);
        conn++;
        transitions += 2;
      }
      // the demo's hub was stopped when the seed ran; the simulator's terminals come back when it starts
      transitionRows.add([t.id, now, 'online', 'offline', 'hub-restart', null, null, null]);
      transitions++;
      let seq = 0;
      const ev = (at: number, kind: string, severity: string, peripheral: string | null, code: string | null, message: string | null) => {
        eventRows.add([t.id, DEMO_EPOCH, ++seq, at, at + 80, 0, kind, severity, peripheral, code, message, null]);
        events++;
      };
      for (const i of [...t.incidents].sort((a, b) => a.from - b.from)) {
        if (i.kind === 'app') {
          ev(i.from, 'app.crash', 'critical', null, 'EXIT_1', 'kiosk app exited with code 1');
          ev(i.to, 'app.up', 'info', null, null, null);
        } else {
          ev(i.from, 'peripheral.fault', i.peripheral === 'idCardReader' ? 'critical' : 'warning', i.peripheral!, i.code ?? null, i.message ?? null);
          ev(i.to, 'peripheral.recovered', 'info', i.peripheral!, null, null);
        }
      }
      if (seq > 0) streamRows.add([t.id, 'events', DEMO_EPOCH, 1, seq, seq, now]);
      await transitionRows.tick();
      await eventRows.tick();
    }
    if (withMaint) {
      sink('maintenance').add(['node', maintStation, maintStation, '网络设备升级 / network switch upgrade', maintFrom, maintFrom + 3 * HOUR_MS, 'admin', maintFrom - 3 * DAY_MS]);
    }
  });
  await sdb.offlineSince(terms.map((t) => t.id), now);

  // ---------------------------------------------------------------- alerts raised and resolved
  say('alerts');
  const alertList = seedAlerts(terms, { now, start, hotDays, hostAt, random });
  await sdb.alerts(alertList);
  const alerts = alertList.length;

  // ---------------------------------------------------------------- releases and rollouts
  say('release keys, releases, rollouts');
  const keysDir = path.join(o.dataDir, DEMO_KEYS_DIR);
  const keyPaths = fs.existsSync(path.join(keysDir, PRIVATE_KEY_FILE))
    ? { privateKeyPath: path.join(keysDir, PRIVATE_KEY_FILE), publicKeyPath: path.join(keysDir, PUBLIC_KEY_FILE) }
    : writeKeyPair(keysDir);
  const { releases, rollouts } = await seedRollouts(sdb, terms, keyPaths, { now, start });

  const result: DemoSeedResult = { terminals: terms.length, rawSamples, rollups, transitions, events, alerts, releases, rollouts, keys: keyPaths, ms: Date.now() - t0 };
  say(`done in ${(result.ms / 1000).toFixed(1)} s`);
  return result;
}

const CATALOG_ORDER = new Map<string, number>(
  ['idCardReader', 'fingerprintScanner', 'camera', 'receiptPrinter', 'a4Printer', 'touchscreen', 'documentScanner', 'paymentTerminal', 'qrScanner', 'travelDocReader', 'visionTester'].map((p, i) => [p, i]),
);
function sortByCatalog(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (CATALOG_ORDER.get(a) ?? 99) - (CATALOG_ORDER.get(b) ?? 99)));
}
const SERVICE_ORDER = new Map<string, number>(Object.keys(SERVICES).map((s, i) => [s, i]));
function sortServices(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (SERVICE_ORDER.get(a) ?? 99) - (SERVICE_ORDER.get(b) ?? 99)));
}

function seedAlerts(
  terms: Term[],
  m: {
    now: number;
    start: number;
    hotDays: Set<number>;
    hostAt: (t: Term, ts: number) => { temp: number };
    random: () => number;
  },
): SeedAlert[] {
  const out: SeedAlert[] = [];
  const SLA = { critical: 15, major: 60, minor: 240 } as const;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(m.random() * xs.length)]!;
  const add = (
    t: Term,
    rule: string,
    severity: keyof typeof SLA,
    title: string,
    details: unknown,
    openedAt: number,
    endAt: number,
    manual: { note: string } | null,
  ) => {
    const tech = pick(TECHS);
    const ackAt = manual ? Math.min(endAt, Math.round(openedAt + (2 + m.random() * 12) * MINUTE_MS)) : null;
    const resolvedAt = manual ? Math.round(endAt + (2 + m.random() * 8) * MINUTE_MS) : endAt;
    const alert: Row = [
      null, 'terminal', t.id, t.station, rule, severity, 'resolved', title, JSON.stringify(details), openedAt, resolvedAt, openedAt + SLA[severity] * MINUTE_MS,
      ackAt, manual ? tech : null, manual ? tech : null, ackAt, resolvedAt, manual ? tech : 'system', manual ? 'manual' : 'recovery', manual?.note ?? null, resolvedAt,
    ];
    const history: Row[] = [[openedAt, 'system', 'opened', null, JSON.stringify({ severity, details })]];
    if (manual && ackAt !== null) {
      history.push([ackAt, tech, 'acknowledged', '已收到，前往现场', null]);
      history.push([ackAt, tech, 'assigned', null, JSON.stringify({ to: tech, from: null })]);
      history.push([resolvedAt, tech, 'resolved', manual.note, JSON.stringify({ resolution: 'manual' })]);
    } else {
      history.push([resolvedAt, 'system', 'resolved', null, JSON.stringify({ resolution: 'recovery' })]);
    }
    out.push({ alert, history });
  };
  {
    for (const t of terms) {
      for (const i of t.incidents) {
        if (i.kind !== 'peripheral' || i.to - i.from < 5 * MINUTE_MS) continue;
        const name = (PERIPHERALS as Record<string, { en: string }>)[i.peripheral!]?.en ?? i.peripheral!;
        const long = i.to - i.from > 45 * MINUTE_MS;
        const notes = MANUAL_NOTES[i.peripheral!] ?? MANUAL_NOTES.default!;
        add(
          t, 'peripheral-fault', i.peripheral === 'idCardReader' ? 'critical' : 'major', `${t.id}: ${name} in fault`,
          { peripherals: [{ id: i.peripheral, since: new Date(i.from).toISOString(), code: i.code ?? null, message: i.message ?? null }] },
          i.from + 5 * MINUTE_MS, i.to, long ? { note: pick(notes) } : null,
        );
      }
      for (const s of t.offline) {
        if (s.planned || s.to - s.from < 10 * MINUTE_MS) continue;
        add(
          t, 'offline', 'major', `${t.id} offline since ${new Date(s.from).toISOString()}`,
          { presence: 'offline', reason: s.reason, since: new Date(s.from).toISOString() },
          s.from + 10 * MINUTE_MS, s.to, s.to - s.from > 2 * HOUR_MS ? { note: s.reason === 'power-loss' ? '站点断电，已恢复供电' : '网络运营商线路故障，已修复 / carrier line repaired' } : null,
        );
      }
      // hot afternoons: the temperature rule (70 °C) fires where the sun reaches a terminal
      for (const d of m.hotDays) {
        let from: number | null = null;
        let peak = 0;
        const day = m.start + d * DAY_MS;
        for (let ts = day; ts < day + DAY_MS && ts < m.now; ts += 5 * MINUTE_MS) {
          if (inside(t.offline, ts)) continue;
          const temp = m.hostAt(t, ts).temp;
          if (temp > 70) {
            from ??= ts;
            peak = Math.max(peak, temp);
          } else if (from !== null && temp < 66) {
            add(t, 'temperature', 'major', `${t.id}: ${Math.round(peak * 10) / 10} °C`, { tempC: Math.round(peak * 10) / 10, limit: 70 }, from, ts, m.random() < 0.5 ? { note: '加装遮阳帘 / sunshade fitted' } : null);
            from = null;
            peak = 0;
          }
        }
      }
    }
  }
  return out;
}

async function seedRollouts(
  sdb: SeedDb,
  terms: Term[],
  keys: { privateKeyPath: string; publicKeyPath: string },
  m: { now: number; start: number },
): Promise<{ releases: string[]; rollouts: { id: string; status: string }[] }> {
  const log = createLogger('silent');
  const trusted = parseTrustedKeys(keys.publicKeyPath);
  const artifacts = await new ArtifactStore({ store: createReleaseStore(sdb.engine), trustedKeys: trusted, maxUploadBytes: 64 * 1024 * 1024, logger: log }).init();
  const types = Object.keys(TERMINAL_TYPES);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-demo-release-'));
  const releases: { id: string; version: string }[] = [];
  try {
    for (const [version, at] of [['3.2.1', m.start + 5 * DAY_MS], ['3.3.0', m.now - 2 * DAY_MS]] as const) {
      const dir = path.join(tmp, `bundle-${version}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'VERSION'), `${version}\n`);
      fs.writeFileSync(path.join(dir, 'README.txt'), `Kiosk app ${version} (a demo bundle: the simulated terminals install it without running it)\n`);
      const packed = await packRelease({ dir, version, kind: 'app', terminalTypes: types, keyPath: keys.privateKeyPath, outDir: path.join(tmp, 'out'), now: new Date(at) });
      const r = await artifacts.ingest({
        manifestB64: fs.readFileSync(packed.manifestPath).toString('base64'),
        signatureB64: fs.readFileSync(packed.signaturePath, 'utf8'),
        body: [fs.readFileSync(packed.artifactPath)],
        uploadedAt: new Date(at + HOUR_MS).toISOString(),
        actor: 'admin',
      });
      releases.push({ id: r.record.id, version });
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  const fleet: FleetTerminal[] = terms.map((t) => ({ id: t.id, type: t.type, ancestors: [t.station, t.district, t.station.split('-')[0]!] }));
  const districts = [...new Set(terms.map((t) => t.district))].sort();
  const pilot = terms[0]!.station;
  const store = createRolloutStore(sdb.engine);
  const out: { id: string; status: string }[] = [];
  const specFor = (id: string, rel: { id: string; version: string }, soakMs: number): RolloutSpec => ({
    id,
    release: { id: rel.id, version: rel.version, terminalTypes: types },
    scope: { nodeIds: ['GZ'] },
    waves: [
      { kind: 'pilot', name: 'pilot', stations: [pilot] },
      { kind: 'share', name: `${districts[0]} 20 %`, nodeId: districts[0]!, ratio: 0.2 },
      { kind: 'nodes', name: 'districts', nodeIds: districts.slice(0, 3) },
      { kind: 'rest', name: 'city' },
    ],
    gate: { successRatio: 0.95, soakMs, failureRateTolerance: 0.05 },
    maxInFlight: 50,
    inFlightTimeoutMs: 30 * MINUTE_MS,
    waveTimeoutMs: null,
    urgent: false,
    tokenRefreshMs: DEFAULT_TOKEN_REFRESH_MS,
  });

  // 1. app-3.2.1, three weeks ago: every wave passed its gate, every terminal committed and soaked.
  {
    const created = releases[0]!;
    const at = m.start + 6 * DAY_MS;
    const spec = specFor('r-demo-321', created, 60 * MINUTE_MS);
    const first = createRollout(spec, fleet, at).state;
    const terminals: RolloutState['terminals'] = {};
    for (const [id, p] of Object.entries(first.terminals)) {
      const t0 = at + p.wave * DAY_MS + 10 * MINUTE_MS;
      terminals[id] = { wave: p.wave, phase: 'soaked', targetedAt: t0, sentAt: t0, committedAt: t0 + 40 * MINUTE_MS, error: null };
    }
    const state: RolloutState = {
      status: 'completed',
      wave: spec.waves.length - 1,
      waveStartedAt: at + (spec.waves.length - 1) * DAY_MS,
      pauseReason: null,
      passed: spec.waves.map((_, i) => ({ wave: i, at: at + i * DAY_MS + 2 * HOUR_MS, by: 'gate' as const })),
      terminals,
      createdAt: at,
      updatedAt: at + (spec.waves.length - 1) * DAY_MS + 2 * HOUR_MS,
    };
    await store.save({ v: 1, spec, state, createdBy: 'admin' });
    out.push({ id: spec.id, status: state.status });
  }
  // 2. app-3.3.0, started an hour ago: at its pilot station, which soaks a day before the first district wave.
  //    Its pilot terminals are left pending, so the hub's first tick sends them the target and the simulator's
  //    terminals install it while one watches.
  {
    const rel = releases[1]!;
    const at = m.now - HOUR_MS;
    const spec = specFor('r-demo-330', rel, DAY_MS);
    const state = createRollout(spec, fleet, at).state;
    for (const p of Object.values(state.terminals)) {
      p.phase = 'pending';
      p.targetedAt = null;
      p.sentAt = null;
    }
    await store.save({ v: 1, spec, state, createdBy: 'admin' });
    out.push({ id: spec.id, status: state.status });
  }
  return { releases: releases.map((r) => r.id), rollouts: out };
}
