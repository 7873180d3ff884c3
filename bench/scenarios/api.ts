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
import { hubAvailable, registerTerminals, startHub } from '../lib/hub.ts';
import { apiRoutes, cannon, cpuMsPerRequest, CANNON_CONNECTIONS, CANNON_DURATION_S, type CannonRow } from '../lib/cannon.ts';
import { writeHistory } from '../lib/history.ts';
import { scaledFleet } from '../lib/fleet.ts';
import { tmpDir } from '../lib/brokers.ts';
import { hardTimeout, sleep } from '../lib/proc.ts';
import { Report, scale } from '../lib/report.ts';
import { fmt, ratio } from '../lib/stats.ts';

const S = scale();
const TERMINALS = Math.round(20000 * Math.min(1, S));
const RAW_TERMINALS = Math.round(TERMINALS / 10);
const DURATION_S = CANNON_DURATION_S;
const CONNECTIONS = CANNON_CONNECTIONS;

hardTimeout(25 * 60 * 1000, 'api');
const report = new Report('api', `API latency (${fmt(TERMINALS)} terminals, ${fmt(RAW_TERMINALS)} with 24 h of raw samples, 30 days of rollups for all)`);

if (!hubAvailable()) {
  report.note('hub not runnable yet (hub/bin/kiosk-fleet.mjs missing): skipped');
  report.save();
  process.exit(0);
}

const dataDir = tmpDir('api');
// Gigabytes: removed however the scenario ends.
process.on('exit', () => fs.rmSync(dataDir, { recursive: true, force: true }));
const rows: CannonRow[] = [];
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
  const district = fleet.districts[3]?.id ?? 'GZ';
  const routes = apiRoutes({ now, one, rawIds, district });
  for (const [what, route] of routes) {
    process.stdout.write(`api: ${what} …\n`);
    rows.push(await cannon(hub, what, route));
  }
  await hub.stop();
} finally {
  fs.rmSync(dataDir, { recursive: true, force: true });
}

const base = rows[0];
const cpuMs = (r: CannonRow) => cpuMsPerRequest(r);
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
