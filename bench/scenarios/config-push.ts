/**
 * Config push: a city-level config change with 1,000 (then 19,000) terminals online: time until every one has
 * reported it applied (the terminal answers each desired config with config/reported; it counts once the
 * broker acknowledged that report, which for the hub means committed). On the hub the change is one
 * `PUT /api/v1/config/nodes/GZ`; the hub merges the layers and publishes each terminal's effective config.
 * Baseline in the same run: bare Aedes publishing the same number of retained desired configs from in-process
 * (what the push costs the broker alone), to the same terminals, answered the same way.
 *
 * Goal (issue 10): 1,000 within 2 s.
 */
import { Load } from '../lib/load.ts';
import { startAedesBare, type Server } from '../lib/brokers.ts';
import { hubAvailable, registerTerminals, startHub, type Hub } from '../lib/hub.ts';
import { cpuMeter, hardTimeout, sleep } from '../lib/proc.ts';
import { Report, scale } from '../lib/report.ts';
import { Histogram, fmt, ratio } from '../lib/stats.ts';
import { syntheticIds, type TerminalCred } from '../lib/terminals.ts';
import { scaledFleet } from '../lib/fleet.ts';

const S = scale();
const SIZES = (process.env.BENCH_PUSH_SIZES ?? `1000,${Math.round(19000 * Math.min(1, S))}`).split(',').map(Number);
const LIMIT_MS = 120_000;

hardTimeout(25 * 60 * 1000, 'config-push');
const report = new Report('config-push', 'Config push (city-level change, every terminal online)');

interface Row {
  target: string;
  n: number;
  applied: number;
  p50: number;
  p99: number;
  all: number;
  requestMs: number | null;
  serverCpu: number;
}

async function measure(target: 'aedes' | 'hub', n: number): Promise<Row> {
  let server: Server;
  let creds: TerminalCred[];
  if (target === 'aedes') {
    server = await startAedesBare();
    creds = syntheticIds(n).map((id) => ({ id }));
  } else {
    server = await startHub({});
    creds = await registerTerminals(server, n, scaledFleet(n));
  }
  let load: Load | null = null;
  try {
    load = await Load.start({
      port: server.mqttPort,
      terminals: creds,
      processes: Math.max(4, Math.ceil(n / 4000)),
      keepalive: 60,
      presence: true,
      presenceRetain: target === 'hub',
      subscribeConfig: true,
      connectConcurrency: 50,
      connectTimeoutMs: 60000,
      readyTimeoutMs: 300000,
    });
    const seen = new Map<string, number>();
    let pushAt = Infinity;
    const lag = new Histogram();
    let last = 0;
    load.onEvent((e) => {
      if (e.kind !== 'config-applied') return;
      const id = e.id as string;
      const at = e.at as number;
      if (at < pushAt || seen.has(id)) return;
      seen.set(id, at);
      lag.record(at - pushAt);
      last = Math.max(last, at);
    });
    await sleep(3000); // subscriptions settled; anything pushed at connect has been answered
    const meter = cpuMeter([server.proc.pid]);
    let requestMs: number | null = null;
    let put: Promise<void> = Promise.resolve();
    let putError: string | null = null;
    let putNote: string | null = null;
    pushAt = Date.now();
    if (target === 'hub') {
      const hub = server as Hub;
      const cur = await hub.api('GET', '/api/v1/config/nodes/GZ');
      const version = (cur.json as { version?: number }).version ?? 0;
      pushAt = Date.now();
      const t = performance.now();
      // Not awaited before watching the reports: the request may return after the terminals have answered.
      put = hub.api('PUT', '/api/v1/config/nodes/GZ', { config: { announcement: { zh: '系统维护通知', en: `bench ${pushAt}` } }, expectedVersion: version, reason: 'benchmark' }).then(
        (r) => {
          requestMs = performance.now() - t;
          if (r.status !== 200) putError = `PUT /config/nodes/GZ: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`;
        },
        (err: unknown) => {
          // The push may well go on without the response (the connection dropped, not the change): keep watching.
          putNote = `PUT /config/nodes/GZ: no response; the request failed after ${Math.round((performance.now() - t) / 1000)} s (${(err as Error).message}${(err as { cause?: { code?: string } }).cause?.code ? `: ${(err as { cause: { code: string } }).cause.code}` : ''})`;
        },
      );
    } else {
      const a = server as Awaited<ReturnType<typeof startAedesBare>>;
      a.proc.send({ type: 'push', ids: creds.map((c) => c.id), version: 2 });
    }
    const end = performance.now() + LIMIT_MS;
    while (seen.size < n && performance.now() < end && putError === null) await sleep(50);
    const [cpu] = meter.stop();
    await put;
    if (putError) report.note(`hub × ${fmt(n)}: ${putError}`);
    if (putNote) report.note(`hub × ${fmt(n)}: ${putNote}`);
    return {
      target: target === 'hub' ? 'hub (PUT /api/v1/config/nodes/GZ)' : 'bare Aedes, in-process publish (baseline)',
      n,
      applied: seen.size,
      p50: lag.quantile(0.5),
      p99: lag.quantile(0.99),
      all: seen.size === n ? last - pushAt : NaN,
      requestMs,
      serverCpu: cpu ?? 0,
    };
  } finally {
    if (server.proc.exitCode !== null || server.proc.signalCode !== null) {
      crashed.push(`${target} × ${fmt(n)}: the server process exited during the run (${server.proc.exitCode ?? server.proc.signalCode}); the table's row ends there`);
    }
    await load?.close('clean');
    await server.stop();
  }
}
const crashed: string[] = [];

const rows: Row[] = [];
for (const n of SIZES) {
  for (const t of ['aedes', 'hub'] as const) {
    if (t === 'hub' && !hubAvailable()) {
      report.note('hub not runnable yet: hub rows skipped');
      continue;
    }
    process.stdout.write(`config-push: ${t} × ${fmt(n)} …\n`);
    try {
      rows.push(await measure(t, n));
    } catch (err) {
      report.note(`${t} × ${n}: failed: ${(err as Error).message}`);
    }
  }
}
for (const c of crashed) report.note(c);
report.table({
  title: 'From the change until each terminal\'s report of it was acknowledged',
  columns: ['target', 'terminals', 'reported', 'p50 ms', 'p99 ms', 'all ms', 'vs baseline', 'API request ms', 'server CPU %'],
  rows: rows.map((r) => {
    const base = rows.find((b) => b.n === r.n && b.target.startsWith('bare'));
    return [r.target, fmt(r.n), fmt(r.applied), fmt(r.p50), fmt(r.p99), Number.isNaN(r.all) ? `not all in ${LIMIT_MS / 1000} s` : fmt(r.all), ratio(r.all, base?.all), r.requestMs === null ? '—' : fmt(r.requestMs), fmt(r.serverCpu)];
  }),
  notes: ['Terminals answer each desired config at once with config/reported (applied); the time is taken when its PUBACK arrives.'],
});
for (const r of rows.filter((x) => x.target.startsWith('hub'))) {
  report.goal({
    what: `config change reported applied by all ${fmt(r.n)}`,
    target: r.n <= 1000 ? '≤ 2 s' : '(no goal; reported)',
    value: Number.isNaN(r.all) ? `${fmt(r.applied)} of ${fmt(r.n)} in ${LIMIT_MS / 1000} s` : `${fmt(r.all / 1000, 2)} s`,
    met: r.n <= 1000 ? !Number.isNaN(r.all) && r.all <= 2000 : null,
  });
}
report.save();
process.exit(0);
