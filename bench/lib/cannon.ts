/**
 * The API load (scenarios/api.ts, scenarios/postgres.ts): autocannon with CANNON_CONNECTIONS connections on one
 * route for a while, after a few warm-up requests, with the hub's CPU (and any other process of the system under
 * test, e.g. PostgreSQL's) metered over the run; and the routes both scenarios ask, as the dashboard asks them.
 */
import autocannon from 'autocannon';
import { ADMIN_TOKEN, type Hub } from './hub.ts';
import { cpuMeter } from './proc.ts';
import { scale } from './report.ts';

export const CANNON_CONNECTIONS = 10;
export const CANNON_DURATION_S = Math.max(3, Math.round(10 * scale()));
const CHART_FIELDS = 'cpuAvg,memPctAvg,diskPctAvg,tempAvg';

export interface CannonRow {
  what: string;
  path: string;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  non2xx: number;
  bytes: number;
  hubCpu: number;
  /** CPU of the other processes metered (percent of one core, together); 0 when none. */
  otherCpu: number;
}

/** `route` is one path, or a function giving each request's path in turn (a different terminal each time). */
export async function cannon(hub: Hub, what: string, route: string | (() => string), otherPids: () => number[] = () => []): Promise<CannonRow> {
  const next = typeof route === 'string' ? () => route : route;
  // Warm the route (JIT, the database's page cache) so the figure is the steady state.
  for (let i = 0; i < 5; i++) await hub.api('GET', next());
  const meter = cpuMeter([hub.proc.pid]);
  const others = cpuMeter(otherPids());
  const r = await autocannon({
    url: `http://127.0.0.1:${hub.httpPort}${next()}`,
    connections: CANNON_CONNECTIONS,
    duration: CANNON_DURATION_S,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    ...(typeof route === 'string' ? {} : { requests: [{ setupRequest: (req) => ({ ...req, path: next() }) }] }),
  });
  const [cpu] = meter.stop();
  return {
    what,
    path: typeof route === 'string' ? route : `${next()} (a different terminal each request)`,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    bytes: r.throughput.average / Math.max(1, r.requests.average),
    hubCpu: cpu ?? 0,
    otherCpu: others.stop().reduce((a, b) => a + (Number.isNaN(b) ? 0 : b), 0),
  };
}

/**
 * The routes, in order: the health baseline, the four the goals are about, then references. `one` is a terminal with
 * raw samples, `rawIds` all of them, `district` a district's id, `now` the end of the history.
 */
export function apiRoutes(o: { now: number; one: string; rawIds: string[]; district: string }): Array<[string, string | (() => string)]> {
  const iso = (ms: number) => new Date(ms).toISOString();
  const { now, one, rawIds, district } = o;
  // The hub keeps a chart's finished buckets between requests (hub/src/queries/chart-cache.ts), so asking for one
  // terminal again and again measures the cached path, as a technician refreshing a terminal's page sees it. The
  // cold path (a terminal nobody looked at lately) is measured too: the 2,000 terminals with raw samples in turn,
  // more than the cache holds, so no request finds its buckets kept.
  let turn = 0;
  const chart24h = (id: string) => `/api/v1/terminals/${id}/telemetry?from=${iso(now - 86400_000)}&to=${iso(now)}&bucket=5m&format=rows&fields=${CHART_FIELDS}&limit=1000`;
  // The reference rows come last: the cold chart run churns the database's page cache and leaves garbage for the
  // next route's run to collect.
  return [
    ['health (baseline)', '/api/v1/health'],
    ['city summary', '/api/v1/nodes/GZ/summary'],
    ['terminal list: a district, online, page of 50', `/api/v1/terminals?node=${district}&presence=online&limit=50`],
    // The charts as the dashboard asks for them (dashboard/src/api.ts getTelemetry: the charted fields as rows).
    ['one terminal, 24 h chart (5 min buckets)', chart24h(one)],
    ['one terminal, 30 day chart (hourly rollups)', `/api/v1/terminals/${one}/telemetry?from=${iso(now - 30 * 86400_000)}&to=${iso(now)}&bucket=rollup&format=rows&fields=${CHART_FIELDS}&limit=1000`],
    ['(reference) 30 day chart as objects, every field', `/api/v1/terminals/${one}/telemetry?from=${iso(now - 30 * 86400_000)}&to=${iso(now)}&bucket=rollup&limit=1000`],
    ['(reference) 24 h chart, a different terminal each request (no kept buckets)', () => chart24h(rawIds[turn++ % rawIds.length]!)],
  ];
}

/** The hub's CPU time per request (ms): with 10 requests in flight, p99 ≈ 10 × this once the core is saturated. */
export function cpuMsPerRequest(r: CannonRow, cpu = r.hubCpu): number {
  return (cpu / 100 / Math.max(r.rps, 1e-9)) * 1000;
}
