/**
 * Offline detection: how long until the API shows a terminal offline, with the right reason, after
 *  - a clean close (the agent publishes offline presence and sends DISCONNECT), and
 *  - a network cut: the socket silently dropped, not closed. The terminals' load process is frozen with SIGSTOP, so
 *    its sockets stay open and send nothing, no FIN and no PINGREQ, exactly as behind a pulled cable; only the
 *    broker's keepalive (1.5 × the terminal's keepalive) can notice.
 * Baseline: the keepalive itself (the protocol's lower bound for a silent drop).
 *
 * Goal (issue 10): a close within 1 s, a silent drop within 1.5 × keepalive.
 */
import { Load } from '../lib/load.ts';
import { hubAvailable, registerTerminals, startHub, type Hub } from '../lib/hub.ts';
import { hardTimeout, sleep } from '../lib/proc.ts';
import { Report } from '../lib/report.ts';
import { fmt, ratio } from '../lib/stats.ts';
import type { TerminalCred } from '../lib/terminals.ts';

const KEEPALIVE_S = Number(process.env.BENCH_KEEPALIVE ?? 10);
const PER_CASE = 10;

hardTimeout(10 * 60 * 1000, 'offline');
const report = new Report('offline', `Offline detection (keepalive ${KEEPALIVE_S} s)`);

interface Seen {
  ms: number;
  state: string;
  reason: string | null;
}

async function presence(hub: Hub, id: string): Promise<{ state: string; reason: string | null }> {
  const r = await hub.api('GET', `/api/v1/terminals/${encodeURIComponent(id)}`);
  const p = (r.json as { presence?: { state: string; reason: string | null } }).presence;
  return p ?? { state: 'unknown', reason: null };
}

/** Polls every terminal every 50 ms until each is no longer online (bounded by `limitMs`). */
async function waitOffline(hub: Hub, ids: string[], t0: number, limitMs: number): Promise<Map<string, Seen>> {
  const seen = new Map<string, Seen>();
  while (seen.size < ids.length && performance.now() - t0 < limitMs) {
    await Promise.all(
      ids
        .filter((id) => !seen.has(id))
        .map(async (id) => {
          const p = await presence(hub, id);
          if (p.state !== 'online' && !seen.has(id)) seen.set(id, { ms: performance.now() - t0, ...p });
        }),
    );
    await sleep(50);
  }
  return seen;
}

async function startGroup(hub: Hub, creds: TerminalCred[]): Promise<Load> {
  const load = await Load.start({
    port: hub.mqttPort,
    terminals: creds,
    processes: 1,
    keepalive: KEEPALIVE_S,
    presence: true,
    subscribeConfig: true,
    connectConcurrency: 10,
    connectTimeoutMs: 30000,
    readyTimeoutMs: 60000,
  });
  // Until the hub shows every one online.
  const end = performance.now() + 20000;
  for (const c of creds) {
    while ((await presence(hub, c.id)).state !== 'online' && performance.now() < end) await sleep(50);
  }
  return load;
}

if (!hubAvailable()) {
  report.note('hub not runnable yet (hub/bin/kiosk-fleet.mjs missing): skipped');
  report.save();
  process.exit(0);
}

const hub = await startHub({});
const rows: Array<{ what: string; n: number; seen: Map<string, Seen>; goalMs: number; baseMs: number }> = [];
try {
  const creds = await registerTerminals(hub, PER_CASE * 2);
  const cleanIds = creds.slice(0, PER_CASE);
  const silentIds = creds.slice(PER_CASE);

  const clean = await startGroup(hub, cleanIds);
  const silent = await startGroup(hub, silentIds);

  process.stdout.write('offline: clean close …\n');
  let t0 = performance.now();
  const closing = clean.close('clean');
  const cleanSeen = await waitOffline(hub, cleanIds.map((c) => c.id), t0, 10000);
  await closing;
  rows.push({ what: 'clean close (offline presence + DISCONNECT)', n: PER_CASE, seen: cleanSeen, goalMs: 1000, baseMs: 0 });

  process.stdout.write('offline: silent drop (SIGSTOP) …\n');
  const pid = silent.pids[0]!;
  t0 = performance.now();
  process.kill(pid, 'SIGSTOP');
  const silentSeen = await waitOffline(hub, silentIds.map((c) => c.id), t0, KEEPALIVE_S * 3000 + 10000);
  process.kill(pid, 'SIGKILL');
  await silent.close('drop');
  rows.push({ what: 'network cut (socket silently dropped)', n: PER_CASE, seen: silentSeen, goalMs: 1500 * KEEPALIVE_S, baseMs: 1000 * KEEPALIVE_S });
} finally {
  await hub.stop();
}

report.table({
  title: `Seconds from the event until GET /api/v1/terminals/{id} shows the terminal offline (${PER_CASE} terminals each)`,
  columns: ['case', 'detected', 'p50 s', 'max s', 'vs keepalive', 'state / reason seen', 'goal'],
  rows: rows.map((r) => {
    const ms = [...r.seen.values()].map((s) => s.ms).sort((a, b) => a - b);
    const reasons = [...new Set([...r.seen.values()].map((s) => `${s.state}/${s.reason ?? '—'}`))].join(', ');
    const max = ms.length ? ms[ms.length - 1]! : NaN;
    return [r.what, `${ms.length}/${r.n}`, fmt((ms[Math.floor(ms.length / 2)] ?? NaN) / 1000, 2), fmt(max / 1000, 2), r.baseMs ? ratio(max, r.baseMs) : ratio(max, KEEPALIVE_S * 1000), reasons, `< ${fmt(r.goalMs / 1000, 1)} s`];
  }),
  notes: [
    `keepalive ${KEEPALIVE_S} s: the broker may wait 1.5 × keepalive = ${fmt(1.5 * KEEPALIVE_S, 1)} s of silence before it closes a connection ([MQTT-3.1.2-24]).`,
    'The API is polled every 50 ms per terminal, so figures include up to 50 ms of polling delay.',
  ],
});
for (const r of rows) {
  const ms = [...r.seen.values()].map((s) => s.ms);
  const max = ms.length === r.n ? Math.max(...ms) : Infinity;
  const expected = r.baseMs === 0 ? 'clean' : 'connection-lost';
  const right = [...r.seen.values()].every((s) => s.state === 'offline' && s.reason === expected);
  report.goal({ what: `offline after ${r.baseMs === 0 ? 'a clean close' : 'a silent drop'}, reason ${expected}`, target: `< ${fmt(r.goalMs / 1000, 1)} s`, value: `${Number.isFinite(max) ? fmt(max / 1000, 2) : 'not all'} s${right ? '' : ' (wrong reason)'}`, met: max < r.goalMs && right });
}
report.save();
process.exit(0);
