/**
 * Retention: raw telemetry is kept KF_RETENTION_DAYS; before it goes, each completed hour is rolled up per terminal
 * (min/avg/max of each metric, share of samples each peripheral was ok, share each citizen service was available),
 * and rollups, events and presence history are kept 400 days. Pruning deletes in chunks of 5000 rows (short
 * transactions, so ingest keeps committing between them) and then returns free pages to the OS
 * (auto_vacuum = INCREMENTAL), so the file's size stays bounded.
 */
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { CLOCK_SKEW_MS } from '../ingest/index.ts';
import { HOUR_MS, type RetentionStore } from '../store/retention.ts';
import { CPU_SCALE, servicesOf, statusesOf, TEMP_SCALE } from '../store/telemetry-codec.ts';

export const ROLLUP_DAYS = 400;
const DAY_MS = 86_400_000;

interface SampleRow {
  terminalId: string;
  /** Stored scaled (store/telemetry-codec.ts). */
  cpu: number;
  memUsed: number;
  memTotal: number;
  diskUsed: number;
  diskTotal: number;
  temp: number | null;
  pstat: number;
  pnote: string | null;
  services: number | null;
  type: string;
}

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

export class Retention {
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
  rollup(now = Date.now(), maxHours = 48): number {
    const lastDone = Number(this.store.meta('rollup_until') ?? NaN);
    const floor = Math.floor((now - ROLLUP_DAYS * DAY_MS) / HOUR_MS) * HOUR_MS;
    const currentHour = Math.floor(now / HOUR_MS) * HOUR_MS;
    let hour: number;
    if (Number.isFinite(lastDone)) {
      hour = Math.max(floor, lastDone);
    } else {
      // The first run starts at the first sample inside the window, not at the table's oldest ts (a terminal clock).
      const first = (this.store.s.nextSample.get(floor) as { ts: number | null }).ts;
      if (first === null) return 0;
      hour = Math.floor(first / HOUR_MS) * HOUR_MS;
    }
    let written = 0;
    let hoursWithData = 0;
    for (; hour < currentHour && hoursWithData < maxHours; hour += HOUR_MS) {
      const rows = this.store.s.hourSamples.all(hour, hour + HOUR_MS) as SampleRow[];
      if (rows.length === 0) {
        const next = (this.store.s.nextSample.get(hour + HOUR_MS) as { ts: number | null }).ts;
        const nextHour = next === null ? currentHour : Math.min(currentHour, Math.floor(next / HOUR_MS) * HOUR_MS);
        this.store.setMeta('rollup_until', String(nextHour));
        hour = nextHour - HOUR_MS;
        continue;
      }
      hoursWithData++;
      this.store.db.transaction(() => {
        let i = 0;
        while (i < rows.length) {
          const id = rows[i]!.terminalId;
          const cpu = new Agg(), mem = new Agg(), disk = new Agg(), temp = new Agg();
          const pOk = new Map<string, number>(), pN = new Map<string, number>(), svc = new Map<string, number>();
          let n = 0;
          for (; i < rows.length && rows[i]!.terminalId === id; i++) {
            const r = rows[i]!;
            n++;
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
          const share = (m: Map<string, number>, d: (k: string) => number, keys: Iterable<string>) =>
            JSON.stringify(Object.fromEntries([...keys].map((k) => [k, (m.get(k) ?? 0) / d(k)])));
          this.store.s.upsertRollup.run(
            id,
            hour,
            n,
            ...cpu.out(),
            ...mem.out(),
            ...disk.out(),
            ...temp.out(),
            share(pOk, (k) => pN.get(k) ?? 1, pN.keys()),
            share(svc, () => n, svc.keys()),
          );
          written++;
        }
        this.store.setMeta('rollup_until', String(hour + HOUR_MS));
      })();
    }
    return written;
  }

  /** Deletes what is past retention; returns rows deleted per table. */
  prune(now = Date.now()): { telemetry: number; other: number } {
    const rawCutoff = now - this.retentionDays * DAY_MS;
    const longCutoff = now - ROLLUP_DAYS * DAY_MS;
    let telemetry = 0;
    for (const epoch of this.store.s.epochs.all() as number[]) {
      for (const [st, args] of [
        [this.store.s.pruneTelemetry, { epoch, cutoff: rawCutoff, skew: CLOCK_SKEW_MS }],
        [this.store.s.pruneSkewed, { epoch, cutoff: rawCutoff }],
      ] as const) {
        for (;;) {
          const n = st.run(args).changes;
          telemetry += n;
          if (n < 5000) break;
        }
      }
    }
    let other = this.store.s.pruneRollups.run(longCutoff).changes;
    for (;;) {
      const n = this.store.s.pruneEvents.run(longCutoff).changes;
      other += n;
      if (n === 0) break;
    }
    other += this.store.s.pruneTransitions.run(longCutoff).changes;
    for (const st of this.store.s.pruneStreamTables) other += st.run(longCutoff).changes;
    this.metrics.pruned.inc({ table: 'telemetry' }, telemetry);
    this.metrics.pruned.inc({ table: 'other' }, other);
    if (telemetry + other > 0) {
      this.store.db.pragma('incremental_vacuum');
      this.store.db.pragma('wal_checkpoint(TRUNCATE)');
      this.log.info({ telemetry, other }, 'pruned');
    }
    return { telemetry, other };
  }

  /** Rollups first: a raw sample is never pruned before the hour it belongs to was rolled up. */
  run(now = Date.now()): { rolledUp: number; telemetry: number; other: number } {
    const rolledUp = this.rollup(now);
    return { rolledUp, ...this.prune(now) };
  }
}
