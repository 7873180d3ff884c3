/**
 * API latency under load (autocannon, 10 connections), with the reference fleet scaled to 20,000 terminals,
 * 24 hours of raw samples at 30 s for 2,000 of them and 30 days of hourly rollups for all, written straight into
 * the database: the city summary, a filtered page of the terminal list, one terminal's 24-hour and 30-day charts.
 * Baseline in the same run: GET /api/v1/health on the same server with the same auth (the framework's floor).
 *
 * Goal (issue 10): p99 under 50 ms each.
 */
import path from 'node:path';
import fs from 'node:fs';
import autocannon from 'autocannon';
import { hubAvailable, registerTerminals, startHub, ADMIN_TOKEN, type Hub } from '../lib/hub.ts';
import { writeHistory } from '../lib/history.ts';
import { scaledFleet } from '../lib/fleet.ts';
import { tmpDir } from '../lib/brokers.ts';
import { cpuMeter, hardTimeout, sleep } from '../lib/proc.ts';
import { Report, scale } from '../lib/report.ts';
import { fmt, ratio } from '../lib/stats.ts';

const S = scale();
const TERMINALS = Math.round(20000 * Math.min(1, S));
const RAW_TERMINALS = Math.round(TERMINALS / 10);
const DURATION_S = Math.max(3, Math.round(10 * S));
const CONNECTIONS = 10;
const CHART_FIELDS = 'cpuAvg,memPctAvg,diskPctAvg,tempAvg';

hardTimeout(25 * 60 * 1000, 'api');
const report = new Report('api', `API latency (${fmt(TERMINALS)} terminals, ${fmt(RAW_TERMINALS)} with 24 h of raw samples, 30 days of rollups for all)`);

interface Row {
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
}

/** `route` is one path, or a function giving each request's path in turn (a different terminal each time). */
async function cannon(hub: Hub, what: string, route: string | (() => string)): Promise<Row> {
  const next = typeof route === 'string' ? () => route : route;
  // Warm the route (JIT, SQLite page cache) so the figure is the steady state.
  for (let i = 0; i < 5; i++) await hub.api('GET', next());
  const meter = cpuMeter([hub.proc.pid]);
  const r = await autocannon({
    url: `http://127.0.0.1:${hub.httpPort}${next()}`,
    connections: CONNECTIONS,
    duration: DURATION_S,
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
  };
}

if (!hubAvailable()) {
  report.note('hub not runnable yet (hub/bin/kiosk-fleet.mjs missing): skipped');
  report.save();
  process.exit(0);
}

const dataDir = tmpDir('api');
// Gigabytes: removed however the scenario ends.
process.on('exit', () => fs.rmSync(dataDir, { recursive: true, force: true }));
const rows: Row[] = [];
try {
  const fleet = scaledFleet(TERMINALS);
  let hub = await startHub({ dataDir });
  process.stdout.write(`api: importing ${fmt(TERMINALS)} terminals …\n`);
  await registerTerminals(hub, TERMINALS, fleet);
  await hub.stop();
  const ids = fleet.terminals.map((t) => t.id);
  const rawIds = ids.filter((_, i) => i % Math.round(TERMINALS / RAW_TERMINALS) === 0).slice(0, RAW_TERMINALS);
  process.stdout.write(`api: writing history (${fmt(rawIds.length)} × 24 h raw, ${fmt(ids.length)} × 30 days rollups) …\n`);
  const now = Date.now();
  const hist = writeHistory({ dbFile: path.join(dataDir, 'kiosk-fleet.db'), terminalIds: ids, rawIds, rawHours: 24, intervalS: 30, rollupDays: 30, now });
  report.note(`history written in ${fmt(hist.seconds)} s: ${fmt(hist.rawRows)} raw samples, ${fmt(hist.rollupRows)} hourly rollups; database ${fmt(fs.statSync(path.join(dataDir, 'kiosk-fleet.db')).size / 2 ** 20)} MB`);

  hub = await startHub({ dataDir });
  await sleep(3000); // whatever the hub does at start (retention, rollups) settles first
  const one = rawIds[Math.floor(rawIds.length / 2)]!;
  const iso = (ms: number) => new Date(ms).toISOString();
  const district = fleet.districts[3]?.id ?? 'GZ';
  // The hub keeps a chart's finished buckets between requests (hub/src/queries/chart-cache.ts), so asking for one
  // terminal again and again measures the cached path, as a technician refreshing a terminal's page sees it. The
  // cold path (a terminal nobody looked at lately) is measured too: the 2,000 terminals with raw samples in turn,
  // more than the cache holds, so no request finds its buckets kept.
  let turn = 0;
  const chart24h = (id: string) => `/api/v1/terminals/${id}/telemetry?from=${iso(now - 86400_000)}&to=${iso(now)}&bucket=5m&format=rows&fields=${CHART_FIELDS}&limit=1000`;
  // The reference rows come last: the cold chart run churns SQLite's page cache and leaves garbage for the next
  // route's run to collect.
  const routes: Array<[string, string | (() => string)]> = [
    ['health (baseline)', '/api/v1/health'],
    ['city summary', '/api/v1/nodes/GZ/summary'],
    ['terminal list: a district, online, page of 50', `/api/v1/terminals?node=${district}&presence=online&limit=50`],
    // The charts as the dashboard asks for them (dashboard/src/api.ts getTelemetry: the charted fields as rows).
    ['one terminal, 24 h chart (5 min buckets)', chart24h(one)],
    ['one terminal, 30 day chart (hourly rollups)', `/api/v1/terminals/${one}/telemetry?from=${iso(now - 30 * 86400_000)}&to=${iso(now)}&bucket=rollup&format=rows&fields=${CHART_FIELDS}&limit=1000`],
    ['(reference) 30 day chart as objects, every field', `/api/v1/terminals/${one}/telemetry?from=${iso(now - 30 * 86400_000)}&to=${iso(now)}&bucket=rollup&limit=1000`],
    ['(reference) 24 h chart, a different terminal each request (no kept buckets)', () => chart24h(rawIds[turn++ % rawIds.length]!)],
  ];
  for (const [what, route] of routes) {
    process.stdout.write(`api: ${what} …\n`);
    rows.push(await cannon(hub, what, route));
  }
  await hub.stop();
} finally {
  fs.rmSync(dataDir, { recursive: true, force: true });
}

const base = rows[0];
/** The hub's CPU time per request: with 10 requests in flight, p99 ≈ 10 × this once the core is saturated. */
const cpuMs = (r: Row) => (r.hubCpu / 100 / Math.max(r.rps, 1e-9)) * 1000;
report.table({
  title: `autocannon, ${CONNECTIONS} connections, ${DURATION_S} s per route, hub on its own core`,
  columns: ['request', 'req/s', 'p50 ms', 'p99 ms', 'p99 vs health', 'max ms', 'bytes / response', 'non-2xx', 'errors', 'hub CPU %', 'hub CPU ms / request', 'vs health'],
  rows: rows.map((r) => [r.what, fmt(r.rps), fmt(r.p50, 1), fmt(r.p99, 1), ratio(r.p99, base?.p99), fmt(r.max, 0), fmt(r.bytes), fmt(r.non2xx), fmt(r.errors), fmt(r.hubCpu), fmt(cpuMs(r), 2), ratio(cpuMs(r), base ? cpuMs(base) : NaN)]),
  notes: rows.map((r) => `${r.what}: GET ${r.path.replace(/from=[^&]+&to=[^&]+/, 'from=…&to=…')}`),
});
for (const r of rows.slice(1).filter((x) => !x.what.startsWith('(reference)'))) {
  report.goal({ what: `API p99: ${r.what}`, target: '< 50 ms', value: `${fmt(r.p99, 1)} ms${r.non2xx ? ` (${fmt(r.non2xx)} non-2xx!)` : ''}`, met: r.p99 < 50 && r.non2xx === 0 });
}
report.save();
process.exit(0);
