/**
 * Availability over a period, per terminal, station, district and city: for each citizen service, the share of
 * time it was available, and its downtime by cause. Planned maintenance is counted apart and left out of the share.
 *
 * How each terminal's time is split (every instant falls in exactly one bucket, per service the terminal's type
 * offers):
 * - planned: the terminal, or a node above it, was in maintenance;
 * - offline: otherwise, presence was not online (offline or stale; also before the terminal's first connection);
 * - the rest is online time, taken hour by hour with that hour's rollup: the service was available for the share of
 *   samples it was available in; the remainder is a peripheral fault when some peripheral the service needs was not
 *   ok in every sample of the hour, else the kiosk app was down;
 * - noData: online time in an hour with no rollup (the current hour before the rollup job ran, or a terminal online
 *   without sending samples).
 * share = available / (time in the period − planned). A station's, district's or city's share is over terminal time:
 * the sum of its terminals' available time over the sum of their unplanned time, for the terminals offering it.
 */
import { nodePath, SERVICES, TERMINAL_TYPES, isTerminalType, type ServiceId } from '@kiosk-fleet/protocol';
import { HOUR_MS } from '../store/retention.ts';
import type { ReportMaintenance, ReportStore, ReportTerminal, TerminalHistory } from './store.ts';

/** Terminals whose history is read in one go (three statements on PostgreSQL). */
const PAGE = 500;

export interface Downtime {
  offline: number;
  peripheralFault: number;
  appDown: number;
  noData: number;
}

export interface ServiceAvailability {
  /** Terminals offering the service (of the row's; a station's ID card line counts only its ID-card machines). */
  terminals: number;
  /** Seconds of planned maintenance of those terminals (left out of expectedSeconds). */
  plannedSeconds: number;
  /** Seconds of unplanned time (the share's denominator). */
  expectedSeconds: number;
  availableSeconds: number;
  /** availableSeconds / expectedSeconds; null when there was no unplanned time. */
  share: number | null;
  downtimeSeconds: Downtime;
}

export interface AvailabilityRow {
  level: 'terminal' | 'station' | 'district' | 'city';
  id: string;
  terminals: number;
  periodSeconds: number;
  plannedSeconds: number;
  offlineSeconds: number;
  services: Partial<Record<ServiceId, ServiceAvailability>>;
}

export interface AvailabilityReport {
  node: string | null;
  from: string;
  to: string;
  terminals: AvailabilityRow[];
  stations: AvailabilityRow[];
  districts: AvailabilityRow[];
  city: AvailabilityRow[];
}

type Interval = [number, number];

/** Sorted, merged. */
function union(xs: Interval[]): Interval[] {
  const s = xs.filter(([a, b]) => b > a).sort((p, q) => p[0] - q[0]);
  const out: Interval[] = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function overlap(xs: readonly Interval[], a: number, b: number): number {
  let n = 0;
  for (const [x, y] of xs) n += Math.max(0, Math.min(b, y) - Math.max(a, x));
  return n;
}

/** Offline time within [a, b) that is not planned. */
function minus(xs: readonly Interval[], planned: readonly Interval[], a: number, b: number): number {
  let n = 0;
  for (const [x, y] of xs) {
    const lo = Math.max(a, x);
    const hi = Math.min(b, y);
    if (hi > lo) n += hi - lo - overlap(planned, lo, hi);
  }
  return n;
}

function offlineIntervals(h: TerminalHistory, from: number, to: number): Interval[] {
  let state = h.stateBefore ?? 'unknown';
  let at = from;
  const out: Interval[] = [];
  for (const t of h.transitions) {
    if (state !== 'online') out.push([at, t.at]);
    state = t.state;
    at = t.at;
  }
  if (state !== 'online') out.push([at, to]);
  return union(out);
}

function emptyService(): ServiceAvailability {
  return { terminals: 0, plannedSeconds: 0, expectedSeconds: 0, availableSeconds: 0, share: null, downtimeSeconds: { offline: 0, peripheralFault: 0, appDown: 0, noData: 0 } };
}

/** The part of [from, to) the terminal existed in. */
function spanOf(t: ReportTerminal, from: number, to: number): { a: number; b: number } {
  return { a: Math.max(from, t.createdAt), b: Math.min(to, t.decommissionedAt ?? to) };
}

function terminalRow(h: TerminalHistory, t: ReportTerminal, maint: readonly ReportMaintenance[], from: number, to: number): AvailabilityRow {
  const { a, b } = spanOf(t, from, to);
  const path = new Set(nodePath(t.stationId));
  const planned = union(
    maint.filter((m) => (m.targetKind === 'terminal' ? m.targetId === t.id : path.has(m.targetId))).map((m) => [Math.max(a, m.startsAt), Math.min(b, m.endsAt)] as Interval),
  );
  const offline = offlineIntervals(h, a, b);
  const services = isTerminalType(t.type) ? (TERMINAL_TYPES[t.type].services as readonly ServiceId[]) : [];
  // milliseconds while summing; seconds on the way out
  const acc = new Map<ServiceId, { expected: number; available: number; offline: number; peripheralFault: number; appDown: number; noData: number }>();
  for (const sv of services) acc.set(sv, { expected: 0, available: 0, offline: 0, peripheralFault: 0, appDown: 0, noData: 0 });
  const rollups = new Map(h.rollups.map((r) => [r.hour, r]));
  let plannedTotal = 0;
  let offlineTotal = 0;
  for (let h = Math.floor(a / HOUR_MS) * HOUR_MS; h < b; h += HOUR_MS) {
    const lo = Math.max(a, h);
    const hi = Math.min(b, h + HOUR_MS);
    if (hi <= lo) continue;
    const pl = overlap(planned, lo, hi);
    const off = minus(offline, planned, lo, hi);
    const online = hi - lo - pl - off;
    plannedTotal += pl;
    offlineTotal += off;
    const r = rollups.get(h);
    const shares = r ? (JSON.parse(r.services) as Record<string, number>) : null;
    const pOk = r ? (JSON.parse(r.peripheralOk) as Record<string, number>) : null;
    for (const sv of services) {
      const x = acc.get(sv)!;
      x.expected += hi - lo - pl;
      x.offline += off;
      if (online <= 0) continue;
      if (!shares || !pOk) {
        x.noData += online;
        continue;
      }
      const share = shares[sv] ?? 0;
      const up = online * share;
      x.available += up;
      const needs: readonly string[] = SERVICES[sv].needs;
      if (needs.some((p) => (pOk[p] ?? 0) < 1)) x.peripheralFault += online - up;
      else x.appDown += online - up;
    }
  }
  const out: AvailabilityRow['services'] = {};
  for (const [sv, x] of acc) {
    out[sv] = {
      terminals: 1,
      plannedSeconds: plannedTotal / 1000,
      expectedSeconds: x.expected / 1000,
      availableSeconds: x.available / 1000,
      share: x.expected > 0 ? x.available / x.expected : null,
      downtimeSeconds: { offline: x.offline / 1000, peripheralFault: x.peripheralFault / 1000, appDown: x.appDown / 1000, noData: x.noData / 1000 },
    };
  }
  return { level: 'terminal', id: t.id, terminals: 1, periodSeconds: (b - a) / 1000, plannedSeconds: plannedTotal / 1000, offlineSeconds: offlineTotal / 1000, services: out };
}

function aggregate(level: AvailabilityRow['level'], id: string, rows: AvailabilityRow[]): AvailabilityRow {
  const out: AvailabilityRow = { level, id, terminals: rows.length, periodSeconds: 0, plannedSeconds: 0, offlineSeconds: 0, services: {} };
  for (const r of rows) {
    out.periodSeconds += r.periodSeconds;
    out.plannedSeconds += r.plannedSeconds;
    out.offlineSeconds += r.offlineSeconds;
    for (const [sv, x] of Object.entries(r.services) as [ServiceId, ServiceAvailability][]) {
      const y = (out.services[sv] ??= emptyService());
      y.terminals += x.terminals;
      y.plannedSeconds += x.plannedSeconds;
      y.expectedSeconds += x.expectedSeconds;
      y.availableSeconds += x.availableSeconds;
      for (const k of Object.keys(y.downtimeSeconds) as (keyof Downtime)[]) y.downtimeSeconds[k] += x.downtimeSeconds[k];
    }
  }
  for (const y of Object.values(out.services)) y.share = y.expectedSeconds > 0 ? y.availableSeconds / y.expectedSeconds : null;
  return out;
}

/** The report for the terminals under `nodeId` (null: all), or for one terminal. */
export async function availability(store: ReportStore, q: { nodeId: string | null; terminalId?: string; from: number; to: number }): Promise<AvailabilityReport> {
  const terms =
    q.terminalId !== undefined ? [await store.terminal(q.terminalId)].filter((t): t is ReportTerminal => t !== undefined) : await store.terminals(q.nodeId, q.from, q.to);
  const maint = await store.maintenance(q.from, q.to);
  const rows: AvailabilityRow[] = [];
  for (let i = 0; i < terms.length; i += PAGE) {
    const page = terms.slice(i, i + PAGE);
    const spans = page.map((t) => {
      const { a, b } = spanOf(t, q.from, q.to);
      return { id: t.id, from: a, to: b, rollupsFrom: Math.floor(a / HOUR_MS) * HOUR_MS };
    });
    const histories = await store.histories(spans);
    page.forEach((t, j) => rows.push(terminalRow(histories[j]!, t, maint, q.from, q.to)));
  }
  const group = (level: AvailabilityRow['level'], key: (t: ReportTerminal) => string | undefined) => {
    const m = new Map<string, AvailabilityRow[]>();
    terms.forEach((t, i) => {
      const k = key(t);
      if (k === undefined) return;
      const list = m.get(k) ?? [];
      list.push(rows[i]!);
      m.set(k, list);
    });
    return [...m].sort(([x], [y]) => x.localeCompare(y)).map(([k, rs]) => aggregate(level, k, rs));
  };
  return {
    node: q.nodeId,
    from: new Date(q.from).toISOString(),
    to: new Date(q.to).toISOString(),
    terminals: rows,
    stations: group('station', (t) => t.stationId),
    districts: group('district', (t) => nodePath(t.stationId)[1]),
    city: group('city', (t) => nodePath(t.stationId)[0]),
  };
}

const CSV_HEADER = [
  'level', 'id', 'service', 'terminals', 'expected_s', 'available_s', 'available_share', 'offline_s', 'peripheral_fault_s', 'app_down_s', 'no_data_s', 'planned_s',
];

function num(n: number): string {
  // Seconds to the millisecond, shares to 6 places: enough for a spreadsheet, stable for a diff.
  return String(Math.round(n * 1e6) / 1e6);
}

/**
 * One line per (level, id, service), RFC 4180 quoting where needed. `terminals` and `planned_s` are of the terminals
 * offering that service, like the seconds beside them (a station's ID card line counts its ID-card machines only).
 */
export function availabilityCsv(r: AvailabilityReport): string {
  const lines = [CSV_HEADER.join(',')];
  for (const row of [...r.city, ...r.districts, ...r.stations, ...r.terminals]) {
    for (const [sv, x] of Object.entries(row.services) as [ServiceId, ServiceAvailability][]) {
      const cells = [
        row.level, row.id, sv, String(x.terminals), num(x.expectedSeconds), num(x.availableSeconds), x.share === null ? '' : num(x.share),
        num(x.downtimeSeconds.offline), num(x.downtimeSeconds.peripheralFault), num(x.downtimeSeconds.appDown), num(x.downtimeSeconds.noData), num(x.plannedSeconds),
      ];
      lines.push(cells.map((c) => (/[",\n]/.test(c) ? `"${c.replaceAll('"', '""')}"` : c)).join(','));
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}
