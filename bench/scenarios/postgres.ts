/**
 * The hub on PostgreSQL (issue 18, "Benchmarks"), each figure beside a baseline of the same run:
 *  - ingest at 100 and 1,000 terminals, the load of scenarios/ingest.ts (lib/flood.ts: QoS 1 as fast as
 *    acknowledged, 4,000 in flight over all terminals), against a hub with KF_DATABASE_URL on the server below; the
 *    baseline is the raw writer (servers/pg-raw.ts: COPY into a temp table + INSERT … ON CONFLICT DO NOTHING, batches
 *    of 1,000, 2 connections) into the same tables of a fresh database;
 *  - API p99 (city summary, filtered list page, 24 h and 30-day charts; the routes and autocannon method of
 *    scenarios/api.ts, lib/cannon.ts) over 20,000 terminals × 30 days written straight into PostgreSQL
 *    (lib/history-postgres.ts: the same rows as the SQLite fixture, by COPY); baseline GET /api/v1/health;
 *  - bytes per stored sample: pg_total_relation_size of telemetry_samples' partitions (heap, TOAST, indexes) and of
 *    telemetry_epochs, over the rows they hold, for the hub's tables and the raw writer's.
 *
 * Where PostgreSQL runs: on this machine, durable (fsync, synchronous_commit, full_page_writes at their defaults),
 * every process of it pinned to the server core together with the system under test (the hub, or the raw writer),
 * the load generators on the other core: the issue's "PostgreSQL on the same 2 cores" as the hub. So the hub and its
 * database share one core, as they would on a small bureau's one machine, and the raw writer is measured the same way.
 *
 * Goals (issue 18): ≥ 20,000 samples/s stored at 1,000 terminals and ≥ 0.6× the raw writer; API p99 < 50 ms;
 * < 200 B per stored sample (a naive row measured 227 B).
 *
 * Until the hub serves on PostgreSQL (`serve` refuses a postgres:// URL while the stores are being ported), the hub
 * rows read "not run: <the hub's reason>" and the raw-writer and bytes-per-sample rows still run.
 */
import path from 'node:path';
import { flood, INGEST_DURATION_MS, INGEST_SIZES, INGEST_WARMUP_MS } from '../lib/flood.ts';
import { apiRoutes, cannon, cpuMsPerRequest, CANNON_CONNECTIONS, CANNON_DURATION_S, type CannonRow } from '../lib/cannon.ts';
import { hubAvailable, registerTerminals, startHub, type Hub } from '../lib/hub.ts';
import { writeHistoryPostgres } from '../lib/history-postgres.ts';
import { scaledFleet } from '../lib/fleet.ts';
import { benchClient, findPostgresBin, startBenchPostgres, telemetryUsage, type BenchPostgres, type TelemetryUsage } from '../lib/postgres.ts';
import { BENCH_DIR, SERVER_CORE, cpuMeter, hardTimeout, sleep, spawnNodeTs, stopChild, waitForLine } from '../lib/proc.ts';
import { Report, scale } from '../lib/report.ts';
import { Histogram, fmt, ratio, type Cell, type HistogramJson } from '../lib/stats.ts';

const S = scale();
const DURATION = INGEST_DURATION_MS;
const WARMUP = INGEST_WARMUP_MS;
const SIZES = INGEST_SIZES;
const RAW_CONNECTIONS = 2;
const RAW_BATCH = 1000;
const API_TERMINALS = Math.round(20000 * Math.min(1, S));
const API_RAW_TERMINALS = Math.round(API_TERMINALS / 10);
const GOAL_RATE = 20000;
const GOAL_VS_RAW = 0.6;
const GOAL_P99_MS = 50;
const GOAL_BYTES = 200;

hardTimeout(24 * 60 * 1000, 'postgres');
const report = new Report('postgres', 'The hub on PostgreSQL: ingest, API latency, bytes per sample (PostgreSQL on the server core with the hub)');

if (!findPostgresBin()) {
  report.note('PostgreSQL not installed (no /usr/lib/postgresql/<version>/bin/initdb): apt-get install postgresql; scenario skipped');
  report.save();
  process.exit(0);
}

interface IngestRow {
  target: string;
  n: number;
  window: number | null;
  rate: number;
  p50: number;
  p99: number;
  max: number;
  serverCpu: number;
  pgCpu: number;
  /** CPU time of the writer (hub or raw writer) and PostgreSQL together per stored sample, µs. */
  cpuUs: number;
  loadCpu: number | null;
  rssMb: number | null;
  note: string;
  /** The hub's: samples acknowledged over the run, and rows in telemetry_samples after it. */
  acked?: number;
  stored?: number;
}

/** Why the hub is not measured (it refused PostgreSQL, or is missing); null while it has not refused. */
let hubRefused: string | null = hubAvailable() ? null : 'hub/bin/kiosk-fleet.mjs missing';

/**
 * A hub on `url`; null once it has refused (the reason kept for every hub row after). A refusal is told from a
 * failure mid-run by when it happens: before the hub said it was ready.
 */
async function hubOn(url: string): Promise<Hub | null> {
  if (hubRefused) return null;
  try {
    return await startHub({ env: { KF_DATABASE_URL: url } });
  } catch (err) {
    const said = (err as Error).message.replace(/\s+/g, ' ');
    report.note(`hub on PostgreSQL: ${said}`);
    // For the table cells: what the hub said, without the prefixes, to its first clause.
    const reason = said.replace(/^hub: exited \(\w+\) before it was ready: /, '').replace(/^kiosk-fleet: (invalid configuration: )?/, '').split(/; /)[0]!;
    hubRefused = `the hub did not start: ${reason.length > 200 ? `${reason.slice(0, 199)}…` : reason}`;
    return null;
  }
}

async function rawWriter(pg: BenchPostgres, n: number): Promise<{ row: IngestRow; usage: TelemetryUsage }> {
  const db = await pg.database('kf_bench_raw');
  try {
    const proc = spawnNodeTs(path.join(BENCH_DIR, 'servers/pg-raw.ts'), [db.url, String(n), String(RAW_BATCH), String(DURATION), '50000000', String(RAW_CONNECTIONS)], { core: SERVER_CORE });
    await waitForLine(proc, (_l, j) => ((j as { msg?: string })?.msg === 'started' ? true : undefined), 60000, 'raw writer');
    // Metered from the start of the writing: the writer and PostgreSQL's processes, its two backends included.
    const meter = cpuMeter([proc.pid]);
    const pgMeter = cpuMeter(pg.pids());
    const res = await waitForLine(
      proc,
      (_l, j) => ((j as { msg?: string })?.msg === 'result' ? (j as { rate: number; rows: number; seconds: number; hist: HistogramJson; maxBatchMs: number }) : undefined),
      DURATION + 60000,
      'raw writer',
    );
    const [cpu] = meter.stop();
    const pgCpu = pgMeter.stop().reduce((a, b) => a + (Number.isNaN(b) ? 0 : b), 0);
    await stopChild(proc);
    const h = Histogram.from(res.hist);
    const row: IngestRow = {
      target: `raw writer: COPY + INSERT … ON CONFLICT DO NOTHING (batch ${fmt(RAW_BATCH)}, ${RAW_CONNECTIONS} connections)`,
      n,
      window: null,
      rate: res.rate,
      p50: h.quantile(0.5),
      p99: h.quantile(0.99),
      max: res.maxBatchMs,
      serverCpu: cpu ?? 0,
      pgCpu,
      cpuUs: ((((cpu ?? 0) + pgCpu) / 100) * res.seconds * 1e6) / Math.max(1, res.rows),
      loadCpu: null,
      rssMb: null,
      note: '',
    };
    return { row, usage: await telemetryUsage(db.url) };
  } finally {
    await db.drop();
  }
}

const HUB_LABEL = 'hub (validated, committed) on PostgreSQL';

async function hubIngest(pg: BenchPostgres, n: number): Promise<{ row: IngestRow; usage: TelemetryUsage } | null> {
  const db = await pg.database('kf_bench_hub');
  try {
    const hub = await hubOn(db.url);
    if (!hub) return null;
    let row: IngestRow;
    try {
      const creds = await registerTerminals(hub, n);
      const f = await flood({ mqttPort: hub.mqttPort, serverPid: hub.proc.pid, otherPids: pg.pids, terminals: creds });
      row = {
        target: HUB_LABEL,
        n,
        window: f.window,
        rate: f.rate,
        p50: f.p50,
        p99: f.p99,
        max: f.max,
        serverCpu: f.serverCpu,
        pgCpu: f.otherCpu,
        cpuUs: f.systemCpuUs,
        loadCpu: f.loadCpu,
        rssMb: f.rssMb,
        note: [f.lost ? `${fmt(f.lost)} unacked at close` : '', `${fmt(f.acked)} acknowledged`].filter(Boolean).join('; '),
        acked: f.acked,
      };
    } finally {
      await hub.stop();
    }
    // An acknowledged sample must be a stored sample: count the rows.
    const usage = await telemetryUsage(db.url);
    row.note += `, ${fmt(usage.samples)} rows in telemetry_samples`;
    row.stored = usage.samples;
    return { row, usage };
  } finally {
    await db.drop();
  }
}

async function api(pg: BenchPostgres): Promise<CannonRow[] | null> {
  const db = await pg.database('kf_bench_api');
  try {
    const fleet = scaledFleet(API_TERMINALS);
    let hub = await hubOn(db.url);
    if (!hub) return null;
    process.stdout.write(`postgres: importing ${fmt(API_TERMINALS)} terminals …\n`);
    try {
      await registerTerminals(hub, API_TERMINALS, fleet);
    } finally {
      await hub.stop();
    }
    const ids = fleet.terminals.map((t) => t.id);
    const rawIds = ids.filter((_, i) => i % Math.round(API_TERMINALS / API_RAW_TERMINALS) === 0).slice(0, API_RAW_TERMINALS);
    process.stdout.write(`postgres: writing history (${fmt(rawIds.length)} × 24 h raw, ${fmt(ids.length)} × 30 days rollups) …\n`);
    const now = Date.now();
    const hist = await writeHistoryPostgres({ url: db.url, terminalIds: ids, rawIds, rawHours: 24, intervalS: 30, rollupDays: 30, now });
    const sql = benchClient(db.url);
    const [size] = await sql<Array<{ bytes: number }>>`select pg_database_size(current_database())::int8 as bytes`;
    await sql.end({ timeout: 2 });
    report.note(`API history written in ${fmt(hist.seconds)} s: ${fmt(hist.rawRows)} raw samples, ${fmt(hist.rollupRows)} hourly rollups; database ${fmt((size?.bytes ?? 0) / 2 ** 20)} MB`);
    // A fresh data dir again: on PostgreSQL the fleet lives in the database alone (issue 18's contract).
    hub = await hubOn(db.url);
    if (!hub) return null;
    const rows: CannonRow[] = [];
    try {
      await sleep(3000); // whatever the hub does at start (retention, rollups) settles first
      const district = fleet.districts[3]?.id ?? 'GZ';
      for (const [what, route] of apiRoutes({ now, one: rawIds[Math.floor(rawIds.length / 2)]!, rawIds, district })) {
        process.stdout.write(`postgres: api ${what} …\n`);
        rows.push(await cannon(hub, what, route, pg.pids));
      }
    } finally {
      await hub.stop();
    }
    return rows;
  } finally {
    await db.drop();
  }
}

const pg = await startBenchPostgres();
let pgStopped = false;
const stopPg = async () => {
  if (pgStopped) return;
  pgStopped = true;
  await pg.stop();
};
// pg_ctl daemonises the server, so it is no child of ours for lib/proc.ts to kill: stopped on any exit (its stop is
// synchronous underneath, so it runs to the end inside an 'exit' handler too).
process.on('exit', () => void stopPg().catch(() => {}));

const ingest: IngestRow[] = [];
const usage: Array<{ target: string; u: TelemetryUsage }> = [];
let apiRows: CannonRow[] | null = null;
try {
  for (const n of SIZES) {
    process.stdout.write(`postgres: raw writer × ${n} terminals …\n`);
    try {
      const r = await rawWriter(pg, n);
      ingest.push(r.row);
      if (n === Math.max(...SIZES)) usage.push({ target: `raw writer, ${fmt(n)} terminals`, u: r.usage });
    } catch (err) {
      report.note(`raw writer × ${n}: failed: ${(err as Error).message}`);
    }
    process.stdout.write(`postgres: hub × ${n} terminals …\n`);
    try {
      const r = await hubIngest(pg, n);
      if (r) {
        ingest.push(r.row);
        if (n === Math.max(...SIZES)) usage.push({ target: `hub, ${fmt(n)} terminals`, u: r.usage });
      }
    } catch (err) {
      report.note(`hub × ${n}: failed: ${(err as Error).message}`);
    }
  }
  process.stdout.write('postgres: API …\n');
  try {
    apiRows = await api(pg);
  } catch (err) {
    report.note(`API: failed: ${(err as Error).message}`);
  }
} finally {
  await stopPg();
}

const notRun = (what: string): Cell[] => [what, `not run: ${hubRefused ?? 'failed (see the notes)'}`];

for (const n of SIZES) {
  const mine = ingest.filter((r) => r.n === n);
  const raw = mine.find((r) => r.target.startsWith('raw'));
  const columns = ['target', 'in flight / terminal', 'samples/s stored', 'vs raw writer', 'lag p50 ms', 'lag p99 ms', 'lag max ms', 'writer CPU %', 'PostgreSQL CPU %', 'CPU µs / sample (writer + PostgreSQL)', 'vs raw writer', 'load CPU %', 'writer RSS MB'];
  const rows: Cell[][] = mine.map((r) => [
    r.target,
    r.window ?? '—',
    fmt(r.rate),
    ratio(r.rate, raw?.rate),
    fmt(r.p50, 1),
    fmt(r.p99, 1),
    fmt(r.max, 1),
    fmt(r.serverCpu),
    fmt(r.pgCpu),
    fmt(r.cpuUs, 1),
    ratio(r.cpuUs, raw?.cpuUs),
    r.loadCpu === null ? '—' : fmt(r.loadCpu),
    r.rssMb === null ? '—' : fmt(r.rssMb),
  ]);
  if (!mine.some((r) => r.target === HUB_LABEL)) rows.push([...notRun(HUB_LABEL), ...Array<Cell>(columns.length - 2).fill(null)]);
  report.table({
    title: `Ingest on PostgreSQL, ${fmt(n)} terminals, interleaved (${Math.round(DURATION / 1000)} s, hub: first ${Math.round(WARMUP / 1000)} s not counted)`,
    columns,
    rows,
    notes: [
      'lag: the hub publish→PUBACK, which it sends only after the commit (publish→committed); raw writer: row made→its batch committed.',
      'CPU: percent of one core. The writer (the hub, or the raw writer) and every PostgreSQL process are pinned to core 0, the load (4 processes) to core 1. PostgreSQL CPU: the server\'s processes during the run, its backends included.',
      'Every commit durable: PostgreSQL runs with fsync, synchronous_commit and full_page_writes at their defaults.',
      ...mine.filter((r) => r.note).map((r) => `${r.target}: ${r.note}`),
    ],
  });
  // The goals are about the largest size (1,000 terminals unless BENCH_INGEST_SIZES says otherwise).
  if (n !== Math.max(...SIZES)) continue;
  const hub = mine.find((r) => r.target === HUB_LABEL);
  const notMeasured = `not run: ${hubRefused ?? 'failed (see the notes)'}`;
  // An acknowledged sample must be a stored one: a hub acknowledging what is not in PostgreSQL meets no goal.
  const lost = hub && (hub.stored ?? 0) < (hub.acked ?? 0) ? ` (only ${fmt(hub.stored)} of ${fmt(hub.acked)} acknowledged samples in telemetry_samples!)` : '';
  report.goal({
    what: `hub on PostgreSQL, stored samples/s, ${fmt(n)} terminals`,
    target: `≥ ${fmt(GOAL_RATE)}`,
    value: hub ? `${fmt(hub.rate)}${lost}` : notMeasured,
    met: hub ? hub.rate >= GOAL_RATE && !lost : null,
  });
  report.goal({
    what: `hub on PostgreSQL vs the raw writer, ${fmt(n)} terminals`,
    target: `≥ ${GOAL_VS_RAW}×`,
    value: hub ? `${ratio(hub.rate, raw?.rate)}${lost}` : notMeasured,
    met: hub && raw ? hub.rate / raw.rate >= GOAL_VS_RAW && !lost : null,
  });
}

if (apiRows) {
  const base = apiRows[0];
  report.table({
    title: `API on PostgreSQL (${fmt(API_TERMINALS)} terminals, ${fmt(API_RAW_TERMINALS)} with 24 h of raw samples, 30 days of rollups for all): autocannon, ${CANNON_CONNECTIONS} connections, ${CANNON_DURATION_S} s per route`,
    columns: ['request', 'req/s', 'p50 ms', 'p99 ms', 'p99 vs health', 'max ms', 'bytes / response', 'non-2xx', 'errors', 'hub CPU %', 'PostgreSQL CPU %', 'hub + PostgreSQL CPU ms / request', 'vs health'],
    rows: apiRows.map((r) => {
      const ms = cpuMsPerRequest(r, r.hubCpu + r.otherCpu);
      return [r.what, fmt(r.rps), fmt(r.p50, 1), fmt(r.p99, 1), ratio(r.p99, base?.p99), fmt(r.max, 0), fmt(r.bytes), fmt(r.non2xx), fmt(r.errors), fmt(r.hubCpu), fmt(r.otherCpu), fmt(ms, 2), ratio(ms, base ? cpuMsPerRequest(base, base.hubCpu + base.otherCpu) : NaN)];
    }),
    notes: apiRows.map((r) => `${r.what}: GET ${r.path.replace(/from=[^&]+&to=[^&]+/, 'from=…&to=…')}`),
  });
  for (const r of apiRows.slice(1).filter((x) => !x.what.startsWith('(reference)'))) {
    report.goal({ what: `API p99 on PostgreSQL: ${r.what}`, target: `< ${GOAL_P99_MS} ms`, value: `${fmt(r.p99, 1)} ms${r.non2xx ? ` (${fmt(r.non2xx)} non-2xx!)` : ''}`, met: r.p99 < GOAL_P99_MS && r.non2xx === 0 });
  }
} else {
  report.table({ title: 'API on PostgreSQL', columns: ['request', 'result'], rows: [notRun('city summary, list page, 24 h and 30-day charts')] });
  for (const what of ['city summary', 'terminal list: a district, online, page of 50', 'one terminal, 24 h chart (5 min buckets)', 'one terminal, 30 day chart (hourly rollups)']) {
    report.goal({ what: `API p99 on PostgreSQL: ${what}`, target: `< ${GOAL_P99_MS} ms`, value: `not run: ${hubRefused ?? 'failed (see the notes)'}`, met: null });
  }
}

const perSample = (u: TelemetryUsage) => (u.samples ? u.bytes / u.samples : NaN);
const rawUsage = usage.find((x) => x.target.startsWith('raw'));
report.table({
  title: 'Bytes per stored sample on PostgreSQL (telemetry_samples\' partitions with their indexes and TOAST, and telemetry_epochs)',
  columns: ['target', 'samples', 'telemetry + indexes MB', 'bytes / sample', 'vs raw writer'],
  rows: [
    ...usage.map(({ target, u }): Cell[] => [target, fmt(u.samples), fmt(u.bytes / 2 ** 20, 1), fmt(perSample(u)), ratio(perSample(u), rawUsage ? perSample(rawUsage.u) : NaN)]),
    ...(usage.some((x) => x.target.startsWith('hub')) ? [] : [[...notRun('hub'), null, null, null]]),
  ],
  notes: [
    'pg_total_relation_size after VACUUM ANALYZE (so the visibility and free-space maps a running server has count too), over count(*) of telemetry_samples; the raw writer writes the hub\'s encoding of the same sample into the hub\'s tables.',
    ...usage.map(
      ({ target, u }) =>
        `${target}, per sample: ${u.perObject.map((o) => `${o.name} ${fmt(o.bytes / Math.max(1, u.samples), 1)} B (heap ${fmt(o.heap / Math.max(1, u.samples), 1)}, indexes ${fmt(o.indexes / Math.max(1, u.samples), 1)})`).join(', ')}`,
    ),
  ],
});
const hubUsage = usage.find((x) => x.target.startsWith('hub'));
const goalUsage = hubUsage ?? rawUsage;
report.goal({
  what: hubUsage ? 'bytes per stored sample on PostgreSQL (the hub\'s)' : 'bytes per stored sample on PostgreSQL (the raw writer\'s rows in the hub\'s tables; the hub not run)',
  target: `< ${GOAL_BYTES}`,
  value: goalUsage ? (goalUsage.u.samples ? fmt(perSample(goalUsage.u)) : 'no samples stored') : 'not measured',
  met: goalUsage?.u.samples ? perSample(goalUsage.u) < GOAL_BYTES : null,
});
report.save();
process.exit(0);
