/**
 * Retention: raw telemetry is kept KF_RETENTION_DAYS; before it goes, each completed hour is rolled up per terminal
 * (min/avg/max of each metric, share of samples each peripheral was ok, share each citizen service was available),
 * and rollups, events and presence history are kept 400 days. The rollups are computed here from the hour's raw
 * rows, the same code on both engines. Pruning is the store's (store.ts): on SQLite deletes in chunks of 5000 rows
 * (short transactions, so ingest keeps committing between them), then free pages returned to the OS
 * (auto_vacuum = INCREMENTAL), so the file's size stays bounded; on PostgreSQL whole daily partitions dropped.
 */
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { CLOCK_SKEW_MS } from '../ingest/index.ts';
import { CPU_SCALE, servicesOf, statusesOf, TEMP_SCALE } from '../ingest/telemetry-codec.ts';
import { HOUR_MS, type PartitionsMade, type RetentionStore, type RollupRow, type SampleRow } from './store.ts';

export const ROLLUP_DAYS = 400;
const DAY_MS = 86_400_000;
/**
 * PostgreSQL: daily partitions are made this many days ahead, at start and at every run. A day's partition cannot be
 * made once rows of it sit in the DEFAULT partition (a clock ahead), so it must exist before its first sample.
 */
export const PARTITION_DAYS_AHEAD = 3;

class Agg {
  min = Infinity;
  max = -Infinity;
  sum = 0;
  n = 0;
  add(v: number | null): void {
    if (v === null || !Number.isFinite(v)) return;
    this.min = Math.min(this.min, v);
    this.max = Math.max(this.max, v);
    this.sum += v;
    this.n++;
  }
  out(): [number | null, number | null, number | null] {
    return this.n === 0 ? [null, null, null] : [this.min, this.sum / this.n, this.max];
  }
}

/** What the rollup reads of a raw sample (values stored scaled, ingest/telemetry-codec.ts). */
export type RollupSample = Omit<SampleRow, 'terminalId' | 'type'>;

/**
 * One terminal's hour rolled up: min/avg/max of each metric, the share of samples each peripheral was ok and each
 * citizen service was available. The retention job's arithmetic, also used by the demo seed (demo/seed.ts), so a
 * seeded rollup is the one the job would have written: same values in the same order, same floats, same JSON.
 */
export function rollupOf(terminalId: string, hour: number, samples: readonly RollupSample[]): RollupRow {
  const cpu = new Agg(), mem = new Agg(), disk = new Agg(), temp = new Agg();
  const pOk = new Map<string, number>(), pN = new Map<string, number>(), svc = new Map<string, number>();
  for (const r of samples) {
    cpu.add(r.cpu / CPU_SCALE);
    mem.add(r.memTotal > 0 ? (100 * r.memUsed) / r.memTotal : null);
    disk.add(r.diskTotal > 0 ? (100 * r.diskUsed) / r.diskTotal : null);
    temp.add(r.temp === null ? null : r.temp / TEMP_SCALE);
    for (const [pid, status] of Object.entries(statusesOf(r.pstat, r.pnote))) {
      pN.set(pid, (pN.get(pid) ?? 0) + 1);
      if (status === 'ok') pOk.set(pid, (pOk.get(pid) ?? 0) + 1);
    }
    for (const sv of servicesOf(r.services) ?? []) svc.set(sv, (svc.get(sv) ?? 0) + 1);
  }
  const n = samples.length;
  const share = (m: Map<string, number>, d: (k: string) => number, keys: Iterable<string>) =>
    JSON.stringify(Object.fromEntries([...keys].map((k) => [k, (m.get(k) ?? 0) / d(k)])));
  const [cpuMin, cpuAvg, cpuMax] = cpu.out();
  const [memPctMin, memPctAvg, memPctMax] = mem.out();
  const [diskPctMin, diskPctAvg, diskPctMax] = disk.out();
  const [tempMin, tempAvg, tempMax] = temp.out();
  return {
    terminalId,
    hour,
    samples: n,
    cpuMin,
    cpuAvg,
    cpuMax,
    memPctMin,
    memPctAvg,
    memPctMax,
    diskPctMin,
    diskPctAvg,
    diskPctMax,
    tempMin,
    tempAvg,
    tempMax,
    peripheralOk: share(pOk, (k) => pN.get(k) ?? 1, pN.keys()),
    services: share(svc, () => n, svc.keys()),
  };
}

export class Retention {
  /** The run in progress: on PostgreSQL a run awaits the server, and the next period's must not overlap it. */
  #running: Promise<{ rolledUp: number; telemetry: number; other: number }> | null = null;

  constructor(
    private readonly store: RetentionStore,
    private readonly retentionDays: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /**
   * Rolls up completed hours not rolled up yet, oldest first, at most `maxHours` hours with data per run (each hour
   * is one short transaction; the job runs every few minutes and catches up). Empty stretches are skipped in one
   * step, and nothing older than the rollups' own retention is looked at (a terminal with a broken clock must not
   * send the job through 500,000 empty hours). A sample arriving for an hour already rolled up stays in raw only.
   * Returns the (terminal, hour) rows written.
   */
  async rollup(now = Date.now(), maxHours = 48): Promise<number> {
    const lastDone = Number((await this.store.meta('rollup_until')) ?? NaN);
    const floor = Math.floor((now - ROLLUP_DAYS * DAY_MS) / HOUR_MS) * HOUR_MS;
    const currentHour = Math.floor(now / HOUR_MS) * HOUR_MS;
    let hour: number;
    if (Number.isFinite(lastDone)) {
      hour = Math.max(floor, lastDone);
    } else {
      // The first run starts at the first sample inside the window, not at the table's oldest ts (a terminal clock).
      const first = await this.store.nextSampleTs(floor);
      if (first === null) return 0;
      hour = Math.floor(first / HOUR_MS) * HOUR_MS;
    }
    let written = 0;
    let hoursWithData = 0;
    for (; hour < currentHour && hoursWithData < maxHours; hour += HOUR_MS) {
      const rows = await this.store.hourSamples(hour, hour + HOUR_MS);
      if (rows.length === 0) {
        const next = await this.store.nextSampleTs(hour + HOUR_MS);
        const nextHour = next === null ? currentHour : Math.min(currentHour, Math.floor(next / HOUR_MS) * HOUR_MS);
        await this.store.setMeta('rollup_until', String(nextHour));
        hour = nextHour - HOUR_MS;
        continue;
      }
      hoursWithData++;
      const out: RollupRow[] = [];
      let i = 0;
      while (i < rows.length) {
        const id = rows[i]!.terminalId;
        const from = i;
        while (i < rows.length && rows[i]!.terminalId === id) i++;
        out.push(rollupOf(id, hour, rows.slice(from, i)));
        written++;
      }
      // The hour's rows and the cursor past it in one transaction.
      await this.store.writeRollups(out, hour + HOUR_MS);
    }
    return written;
  }

  /** Deletes what is past retention; returns rows deleted per table. */
  async prune(now = Date.now()): Promise<{ telemetry: number; other: number }> {
    const until = Number((await this.store.meta('rollup_until')) ?? NaN);
    const { telemetry, other, partitionsDropped } = await this.store.prune({
      raw: now - this.retentionDays * DAY_MS,
      long: now - ROLLUP_DAYS * DAY_MS,
      skewMs: CLOCK_SKEW_MS,
      rolledUpUntil: Number.isFinite(until) ? until : null,
    });
    this.metrics.pruned.inc({ table: 'telemetry' }, telemetry);
    this.metrics.pruned.inc({ table: 'other' }, other);
    if (telemetry + other > 0 || partitionsDropped.length > 0) {
      this.log.info({ telemetry, other, ...(partitionsDropped.length > 0 ? { partitionsDropped } : {}) }, 'pruned');
    }
    return { telemetry, other };
  }

  /**
   * PostgreSQL: the daily partitions of telemetry and events from today to PARTITION_DAYS_AHEAD days ahead (the hub
   * calls this at start, before ingest; `run` again every time). SQLite: nothing.
   */
  async preparePartitions(now = Date.now()): Promise<PartitionsMade> {
    const made = await this.store.preparePartitions(now, now + PARTITION_DAYS_AHEAD * DAY_MS);
    if (made.created.length > 0) this.log.info({ partitions: made.created }, 'daily partitions made');
    // Nothing is lost: those days' rows stay in the DEFAULT partition and go by receive time.
    if (made.skipped.length > 0) this.log.warn({ partitions: made.skipped }, 'daily partitions not made: their days already have rows in the DEFAULT partition');
    return made;
  }

  /** Rollups first: a raw sample is never pruned before the hour it belongs to was rolled up. */
  run(now = Date.now()): Promise<{ rolledUp: number; telemetry: number; other: number }> {
    this.#running ??= (async () => {
      try {
        await this.preparePartitions(now);
        const rolledUp = await this.rollup(now);
        return { rolledUp, ...(await this.prune(now)) };
      } finally {
        this.#running = null;
      }
    })();
    return this.#running;
  }
}
