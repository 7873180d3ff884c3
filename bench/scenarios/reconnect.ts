/**
 * Reconnect storm: the hub restarted (SIGTERM, then started again on the same ports and data) with 19,000
 * terminals connected. The terminals reconnect with the agent's own policy (agent/src/backoff.ts: capped exponential
 * backoff with equal jitter, 1 s doubling to 60 s, at most 8 s for the first two minutes after a stable connection
 * was lost) and report telemetry every 30 s throughout. A city-wide config layer is in place, so each terminal's
 * SUBSCRIBE gets its retained desired config (and the terminal reports it applied). Measured: seconds until the API shows every terminal online again, and the API's
 * latency meanwhile (the city summary, polled to count, and a terminal-list page and a terminal's detail probed
 * continuously). Baseline in the same run: the same API requests with the fleet connected and quiet.
 *
 * Goal (issue 10): all back within 30 s, API p99 under 200 ms during the storm.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONNECT_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS } from '../../agent/src/backoff.ts';
import { Load } from '../lib/load.ts';
import { hubAvailable, registerTerminals, startHub, type Hub } from '../lib/hub.ts';
import { cpuMeter, hardTimeout, sleep } from '../lib/proc.ts';
import { Report, scale } from '../lib/report.ts';
import { Histogram, fmt, ratio } from '../lib/stats.ts';
import { scaledFleet } from '../lib/fleet.ts';
import { tmpDir } from '../lib/brokers.ts';
import { mainProfile, profileTables, summarize, timeline } from '../lib/profile.ts';

const S = scale();
const N = Number(process.env.BENCH_CONNECTIONS ?? Math.round(19000 * Math.min(1, S)));
const PROCS = Math.max(4, Math.ceil(N / 4000));
const LIMIT_MS = 120_000;
/**
 * BENCH_RECONNECT_PROFILE=1: the restarted hub runs under the V8 profiler, and the report adds where its time went in
 * the storm and a timeline of it (busy, GC, the longest stretch the event loop was away). Not a figure: the profiler
 * slows the hub down.
 */
const PROFILE_DIR = process.env.BENCH_RECONNECT_PROFILE === '1' ? tmpDir('profile') : undefined;
/** The kernel's cap on the hub's accept queue (the hub asks for 32,768; hub/README.md, "Deploying"). */
const SOMAXCONN = (() => {
  try {
    return Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
  } catch {
    return NaN;
  }
})();
if (SOMAXCONN < 32768) {
  process.stdout.write(
    `reconnect: net.core.somaxconn is ${SOMAXCONN}: the restarted hub's accept queue holds at most that many handshakes (a deployed hub raises it: hub/README.md, "Deploying"; \`sudo sysctl -w net.core.somaxconn=32768\` to measure that)\n`,
  );
}

hardTimeout(20 * 60 * 1000, 'reconnect');
const report = new Report('reconnect', `Reconnect storm (${fmt(N)} terminals, hub restarted)`);

async function online(hub: Hub, h: Histogram): Promise<number> {
  const t = performance.now();
  const r = await hub.api('GET', '/api/v1/nodes/GZ/summary').catch(() => null);
  if (!r || r.status !== 200) return -1;
  h.record(performance.now() - t);
  return (r.json as { totals: { online: number } }).totals.online;
}

/** Probes the API continuously (one request at a time per route) until `stop` is set; latencies into `h`. */
function probe(hub: Hub, routes: string[], h: Histogram, errors: { n: number }, stop: { v: boolean }): Promise<void> {
  return Promise.all(
    routes.map(async (route) => {
      while (!stop.v) {
        const t = performance.now();
        try {
          const r = await hub.api('GET', route);
          if (r.status === 200) h.record(performance.now() - t);
          else errors.n++;
        } catch {
          errors.n++;
          await sleep(100);
        }
        await sleep(20);
      }
    }),
  ).then(() => undefined);
}

if (!hubAvailable()) {
  report.note('hub not runnable yet (hub/bin/kiosk-fleet.mjs missing): skipped');
  report.save();
  process.exit(0);
}

let hub = await startHub({ keepData: true });
const dataDir = hub.dataDir;
let load: Load | null = null;
try {
  const fleet = scaledFleet(N);
  const creds = await registerTerminals(hub, N, fleet);
  // As in a deployed fleet, a city-wide config layer: every terminal has a desired config, which the broker keeps
  // retained and sends on each terminal's SUBSCRIBE (the load reports it applied, as agents do).
  const cur = await hub.api('GET', '/api/v1/config/nodes/GZ');
  const layer = await hub.api('PUT', '/api/v1/config/nodes/GZ', {
    config: { announcement: { zh: '系统维护通知', en: 'bench: city layer' } },
    expectedVersion: (cur.json as { version?: number }).version ?? 0,
    reason: 'benchmark',
  });
  if (layer.status !== 200) throw new Error(`PUT /config/nodes/GZ: ${layer.status} ${JSON.stringify(layer.json).slice(0, 300)}`);
  const one = creds[Math.floor(N / 2)]!.id;
  const routes = [`/api/v1/terminals?node=${fleet.districts[3]!.id}&presence=online&limit=50`, `/api/v1/terminals/${one}`];
  process.stdout.write(`reconnect: connecting ${fmt(N)} …\n`);
  load = await Load.start({
    port: hub.mqttPort,
    terminals: creds,
    processes: PROCS,
    keepalive: 60,
    presence: true,
    subscribeConfig: true,
    connectConcurrency: 50,
    // As the agent: an attempt whose SYN went unanswered for 2 s, or without CONNACK after 30 s, is given up and
    // retried by the policy below.
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    readyTimeoutMs: 300000,
    reconnect: { minMs: 1000, maxMs: 60000 },
  });
  // The terminals report every 30 s throughout, as agents do (and across the restart, on their new connections):
  // a terminal silent for 3 intervals is shown stale, not online, so a fleet that only connected would drift out of
  // the online count during a long storm for a reason that is not the storm's. Not awaited: it outlasts the storm.
  void load.run({ mode: 'report', intervalMs: 30_000, durationMs: 10 * 60_000 }, 11 * 60_000).catch(() => undefined);
  const quietSummary = new Histogram();
  let end = performance.now() + LIMIT_MS;
  while ((await online(hub, quietSummary)) < N && performance.now() < end) await sleep(500);

  // Baseline: the same probes with the fleet connected and quiet.
  const quiet = new Histogram();
  const quietErr = { n: 0 };
  const stopQuiet = { v: false };
  const q = probe(hub, routes, quiet, quietErr, stopQuiet);
  for (let i = 0; i < 10; i++) {
    await online(hub, quietSummary);
    await sleep(500);
  }
  stopQuiet.v = true;
  await q;

  const atStop = await load.status();
  process.stdout.write('reconnect: restarting the hub …\n');
  const { mqttPort, httpPort } = hub;
  const tStop = performance.now();
  await hub.stop();
  const downMs = performance.now() - tStop;
  const tSpawn = performance.now();
  hub = await startHub({
    dataDir,
    keepData: true,
    mqttPort,
    httpPort,
    ...(PROFILE_DIR ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, '--cpu-prof-interval=500'] } : {}),
  });
  const tReady = performance.now();
  const meter = cpuMeter([hub.proc.pid, ...load.pids]);
  const storm = new Histogram();
  const stormSummary = new Histogram();
  const stormErr = { n: 0 };
  const stop = { v: false };
  const p = probe(hub, routes, storm, stormErr, stop);
  let back = -1;
  let lastOnline = 0;
  /** Terminals online in the API by whole seconds after the new hub was ready (the first poll in each second). */
  const curve: number[] = [];
  /** The same for terminals connected as the load side sees them (CONNACK received), polled alongside. */
  const loadCurve: number[] = [];
  end = performance.now() + LIMIT_MS;
  while (performance.now() < end) {
    lastOnline = await online(hub, stormSummary);
    const sec = Math.floor((performance.now() - tReady) / 1000);
    while (curve.length <= sec) curve.push(lastOnline);
    if (loadCurve.length <= sec) {
      const connected = (await load.status()).connected;
      while (loadCurve.length <= sec) loadCurve.push(connected);
    }
    if (lastOnline >= N) {
      back = performance.now();
      break;
    }
    await sleep(250);
  }
  stop.v = true;
  await p;
  const cpus = meter.stop();
  const st = await load.status();
  const fromReady = back < 0 ? NaN : (back - tReady) / 1000;
  const fromStop = back < 0 ? NaN : (back - tStop) / 1000;
  const quietAll = new Histogram();
  quietAll.merge(quiet);
  quietAll.merge(quietSummary);
  const stormAll = new Histogram();
  stormAll.merge(storm);
  stormAll.merge(stormSummary);
  report.table({
    title: `Hub restarted with ${fmt(N)} terminals connected`,
    columns: ['measure', 'value'],
    rows: [
      ['net.core.somaxconn (caps the hub\'s accept queue of 32,768)', fmt(SOMAXCONN)],
      ['hub stop (SIGTERM → exited) + start (→ ready), s', fmt((tReady - tStop) / 1000, 1)],
      ['of which stopping, s', fmt(downMs / 1000, 1)],
      ['all online in the API, s after the new hub was ready', back < 0 ? `not within ${LIMIT_MS / 1000} s (${fmt(lastOnline)} online)` : fmt(fromReady, 1)],
      ['all online in the API, s after SIGTERM', back < 0 ? '—' : fmt(fromStop, 1)],
      ['terminals connected at the end (load side)', fmt(st.connected)],
      ['connections made from the stop on (load side)', fmt(st.reconnects - atStop.reconnects)],
      ['attempts given up without CONNACK / refused or closed, from the stop on', `${fmt(st.timedOut - atStop.timedOut)} / ${fmt(st.failed - atStop.failed)}`],
      ['attempts given up without a TCP handshake (SYN unanswered), from the stop on', fmt(st.noHandshake - atStop.noHandshake)],
      ['online in the API 5 / 10 / 15 / 20 / 25 / 30 s after ready', [5, 10, 15, 20, 25, 30].map((s) => (s < curve.length ? fmt(curve[s]!) : fmt(N))).join(' / ')],
      ['connected (load side) 5 / 10 / 15 / 20 / 25 / 30 s after ready', [5, 10, 15, 20, 25, 30].map((s) => (s < loadCurve.length ? fmt(loadCurve[s]!) : '—')).join(' / ')],
      ['hub CPU % during the storm', fmt(cpus[0], 0)],
      ['hub CPU ms per reconnected terminal', fmt((((cpus[0] ?? 0) / 100) * ((performance.now() - tReady) / 1000) * 1000) / Math.max(1, st.reconnects - atStop.reconnects), 2)],
      ['load CPU % during the storm', fmt(cpus.slice(1).reduce((a, b) => a + b, 0), 0)],
    ],
  });
  report.table({
    title: 'API latency, quiet fleet (baseline) vs during the storm',
    columns: ['requests', 'quiet p50 ms', 'quiet p99 ms', 'storm p50 ms', 'storm p99 ms', 'storm p99 vs quiet', 'storm max ms', 'storm errors'],
    rows: [
      ['terminal list page + terminal detail', fmt(quiet.quantile(0.5), 1), fmt(quiet.quantile(0.99), 1), fmt(storm.quantile(0.5), 1), fmt(storm.quantile(0.99), 1), ratio(storm.quantile(0.99), quiet.quantile(0.99)), fmt(storm.max, 0), fmt(stormErr.n)],
      ['city summary (polled to count online)', fmt(quietSummary.quantile(0.5), 1), fmt(quietSummary.quantile(0.99), 1), fmt(stormSummary.quantile(0.5), 1), fmt(stormSummary.quantile(0.99), 1), ratio(stormSummary.quantile(0.99), quietSummary.quantile(0.99)), fmt(stormSummary.max, 0), '—'],
      ['all', fmt(quietAll.quantile(0.5), 1), fmt(quietAll.quantile(0.99), 1), fmt(stormAll.quantile(0.5), 1), fmt(stormAll.quantile(0.99), 1), ratio(stormAll.quantile(0.99), quietAll.quantile(0.99)), fmt(stormAll.max, 0), fmt(stormErr.n)],
    ],
    notes: ['A city-wide config layer is in place: each terminal gets its retained desired config on SUBSCRIBE and reports it applied.', 'Reconnect policy as the agent (agent/src/backoff.ts, imported by the load generators): an attempt whose TCP handshake went unanswered is given up after 2 s, one without CONNACK after 30 s; first retry after 0.5-1 s, each further one after half to all of a step doubling from 1 s, capped at 8 s for the first two minutes after a stable connection was lost (60 s after that).'],
  });
  if (PROFILE_DIR) {
    await hub.stop();
    const file = mainProfile(PROFILE_DIR);
    if (file) {
      const kept = path.join(os.tmpdir(), 'kf-bench-reconnect.cpuprofile');
      fs.copyFileSync(file, kept);
      process.stdout.write(`reconnect: the restarted hub's profile is kept in ${kept}\n`);
      const readyAt = tReady - tSpawn;
      const what = `the restarted hub from its start to the end of the storm (profiler on; ready ${fmt(readyAt / 1000, 1)} s after its spawn)`;
      for (const t of profileTables(summarize(file, 15), what)) report.table(t);
      report.table({
        title: 'The restarted hub, second by second (profiler on): busy, GC, and the longest stretch without an idle sample',
        columns: ['s after spawn', 'busy ms', 'GC ms', 'longest busy ms', 'heaviest (inclusive ms)'],
        rows: timeline(file, 1000).map((b) => [fmt(b.atMs / 1000, 0), Math.round(b.busyMs), Math.round(b.gcMs), Math.round(b.longestBusyMs), b.top.join('; ')]),
      });
    }
  }
  report.goal({ what: `all ${fmt(N)} back online after a hub restart`, target: '≤ 30 s', value: back < 0 ? 'not within 120 s' : `${fmt(fromReady, 1)} s`, met: back >= 0 && fromReady <= 30 });
  report.goal({ what: 'API p99 during the storm', target: '< 200 ms', value: `${fmt(stormAll.quantile(0.99), 1)} ms`, met: stormAll.quantile(0.99) < 200 });
} finally {
  await load?.close('drop');
  await hub.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
report.save();
process.exit(0);
