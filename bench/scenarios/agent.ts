/**
 * Agent footprint: one real agent (`kiosk-fleet-agent run` with the systemd unit's node flags; pinned to the load
 * core, the hub on the other), idle, then replaying an on-disk outbox of 100,000 telemetry messages: RSS, CPU, replay
 * rate (counted as samples the hub stored, from its API). Baseline in the same run: a bare mqtt.js client (what the agent is built on) with the
 * same credentials, idle and then publishing the same number from memory with the agent's replay window (256).
 *
 * Goal (issue 10): under 60 MB RSS idle (median of BENCH_AGENT_IDLE_RUNS=3 idle runs), replay at least 2,000 messages a second.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { tmpDir } from '../lib/brokers.ts';
import { hubAvailable, registerTerminals, startHub, type Hub } from '../lib/hub.ts';
import { scaledFleet } from '../lib/fleet.ts';
import { BENCH_DIR, LOAD_CORE, ROOT, cpuMeter, hardTimeout, rssBytes, sleep, spawnNodeTs, spawnPinned, stopChild, waitForLine } from '../lib/proc.ts';
import { Report, scale } from '../lib/report.ts';
import { fmt, ratio } from '../lib/stats.ts';

const S = scale();
const COUNT = Math.max(2000, Math.round(100_000 * Math.min(1, S)));
const IDLE_MS = Math.max(15000, Math.round(30000 * S));
const REPLAY_LIMIT_MS = Math.max(30000, Math.round(150_000 * S));
/**
 * Idle runs of the agent (each a fresh process and data dir); the median is reported. One run's RSS depends on
 * whether V8 has collected its start-up garbage by the end of the window (±3 MB between runs on a busy machine).
 */
const IDLE_RUNS = Math.max(1, Number(process.env.BENCH_AGENT_IDLE_RUNS ?? 3));
const AGENT_BIN = path.join(ROOT, 'agent/bin/kiosk-fleet-agent.mjs');
/** The node flags a terminal runs the agent with: those of the systemd unit's ExecStart. */
const UNIT_FLAGS = (/^ExecStart=\S*node((?: --\S+)*) /m.exec(fs.readFileSync(path.join(ROOT, 'agent/packaging/kiosk-fleet-agent.service'), 'utf8'))?.[1] ?? '')
  .trim()
  .split(' ')
  .filter(Boolean);

hardTimeout(20 * 60 * 1000, 'agent');
const report = new Report('agent', `Agent footprint (idle, and replaying a ${fmt(COUNT)}-message outbox)`);

interface Phase {
  rssMb: number;
  peakRssMb: number;
  cpu: number;
  stored: number;
  seconds: number;
}

async function stored(hub: Hub, id: string): Promise<number> {
  const r = await hub.api('GET', `/api/v1/terminals/${encodeURIComponent(id)}`);
  const streams = (r.json as { streams?: Array<{ stream: string; count: number }> }).streams ?? [];
  return streams.filter((s) => s.stream === 'telemetry').reduce((a, s) => a + s.count, 0);
}

/** Watches a process for `ms` (or until `done`): RSS now and at peak, CPU %, samples the hub stored meanwhile. */
async function watch(proc: ChildProcess, hub: Hub, id: string, ms: number, done?: (stored: number) => boolean): Promise<Phase> {
  const s0 = await stored(hub, id);
  const meter = cpuMeter([proc.pid]);
  const t0 = performance.now();
  let peak = rssBytes(proc.pid);
  let n = s0;
  while (performance.now() - t0 < ms) {
    await sleep(250);
    peak = Math.max(peak, rssBytes(proc.pid));
    n = await stored(hub, id);
    if (done?.(n - s0)) break;
  }
  const [cpu] = meter.stop();
  return { rssMb: rssBytes(proc.pid) / 2 ** 20, peakRssMb: peak / 2 ** 20, cpu: cpu ?? 0, stored: n - s0, seconds: (performance.now() - t0) / 1000 };
}

function startAgent(hub: Hub, id: string, dataDir: string, secretFile: string): ChildProcess {
  return spawnPinned(process.execPath, [...UNIT_FLAGS, AGENT_BIN, 'run'], {
    core: LOAD_CORE,
    env: {
      KF_HUB_URL: `mqtt://127.0.0.1:${hub.mqttPort}`,
      KF_TERMINAL_ID: id,
      KF_SECRET_FILE: secretFile,
      KF_AGENT_DATA_DIR: dataDir,
      KF_LOCAL_API_PORT: '0',
      KF_TELEMETRY_INTERVAL: '30',
      KF_LOG_LEVEL: 'warn',
    },
    stderr: 'pipe',
  });
}

if (!hubAvailable() || !fs.existsSync(AGENT_BIN)) {
  report.note('hub or agent not runnable yet: skipped');
  report.save();
  process.exit(0);
}

const work = tmpDir('agent');
const hub = await startHub({});
const rows: Array<{ what: string; idle: Phase | null; replay: Phase | null }> = [];
try {
  const [cred] = await registerTerminals(hub, 1, scaledFleet(1));
  const id = cred!.id;
  const secretFile = path.join(work, 'secret');
  fs.writeFileSync(secretFile, `${cred!.secret}\n`, { mode: 0o600 });

  // The floors, in plain JavaScript, idle only: node alone, node + mqtt.js (its defaults, and without its number
  // cache as the agent runs it).
  const floors = [
    ['bare', 'node alone (floor, idle only)'],
    ['mqtt', 'node + mqtt.js, plain JS (floor, idle only)'],
    ['mqtt-nocache', 'node + mqtt.js, writeCache: false (floor, idle only)'],
  ] as const;
  for (const [mode, what] of floors) {
    process.stdout.write(`agent: ${what} …\n`);
    const floor = spawnPinned(process.execPath, [path.join(BENCH_DIR, 'servers/mqttjs-idle.mjs'), `mqtt://127.0.0.1:${hub.mqttPort}`, id, cred!.secret!, mode], { core: LOAD_CORE });
    await waitForLine(floor, (_l, j) => ((j as { msg?: string })?.msg === 'connected' ? true : undefined), 30000, 'mqtt.js floor');
    const floorIdle = await watch(floor, hub, id, Math.min(IDLE_MS, 10000));
    await stopChild(floor);
    rows.push({ what, idle: floorIdle, replay: null });
  }

  // Baseline: bare mqtt.js.
  process.stdout.write('agent: mqtt.js baseline …\n');
  const base = spawnNodeTs(path.join(BENCH_DIR, 'servers/mqttjs-client.ts'), [`mqtt://127.0.0.1:${hub.mqttPort}`, id, cred!.secret!, String(IDLE_MS), String(COUNT)], { core: LOAD_CORE });
  await waitForLine(base, (_l, j) => ((j as { msg?: string })?.msg === 'connected' ? true : undefined), 30000, 'mqtt.js client');
  const baseIdle = await watch(base, hub, id, IDLE_MS - 1000);
  await sleep(1500);
  const baseReplay = await watch(base, hub, id, REPLAY_LIMIT_MS, (n) => n >= COUNT);
  await stopChild(base);
  rows.push({ what: 'bare mqtt.js client + tsx (baseline)', idle: baseIdle, replay: baseReplay });

  // The agent, idle: an empty outbox, one sample every 30 s; IDLE_RUNS runs, the median reported.
  const idleRuns: Phase[] = [];
  for (let i = 0; i < IDLE_RUNS; i++) {
    process.stdout.write(`agent: idle (${i + 1}/${IDLE_RUNS}) …\n`);
    const idleAgent = startAgent(hub, id, path.join(work, `idle-${i}`), secretFile);
    await sleep(5000); // start-up (the first probes) is not idling
    idleRuns.push(await watch(idleAgent, hub, id, IDLE_MS));
    await stopChild(idleAgent, 10000);
  }
  const agentIdle = [...idleRuns].sort((x, y) => x.rssMb - y.rssMb)[Math.floor(idleRuns.length / 2)]!;
  if (idleRuns.length > 1) report.note(`agent idle RSS, ${idleRuns.length} runs (median reported): ${idleRuns.map((r) => fmt(r.rssMb, 1)).join(', ')} MB`);

  // The agent, replaying: a fresh data dir whose outbox holds COUNT messages.
  process.stdout.write(`agent: filling an outbox with ${fmt(COUNT)} …\n`);
  const replayDir = path.join(work, 'replay');
  fs.mkdirSync(replayDir, { recursive: true });
  const fill = spawnNodeTs(path.join(BENCH_DIR, 'servers/fill-outbox.ts'), [path.join(replayDir, 'outbox.sqlite'), String(COUNT)], { core: LOAD_CORE });
  const filled = await waitForLine(fill, (_l, j) => ((j as { msg?: string })?.msg === 'filled' ? (j as { bytes: number }) : undefined), 120000, 'fill outbox');
  await stopChild(fill);
  report.note(`outbox: ${fmt(COUNT)} telemetry messages, ${fmt(filled.bytes / 2 ** 20, 1)} MB of payload`);
  process.stdout.write('agent: replaying …\n');
  const replayAgent = startAgent(hub, id, replayDir, secretFile);
  const agentReplay = await watch(replayAgent, hub, id, REPLAY_LIMIT_MS, (n) => n >= COUNT);
  await stopChild(replayAgent, 10000);
  rows.push({ what: 'agent (kiosk-fleet-agent run)', idle: agentIdle, replay: agentReplay });
} finally {
  await hub.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

const b = rows.find((r) => r.what.startsWith('bare'))!;
const rate = (p: Phase | null) => (p ? p.stored / p.seconds : NaN);
report.table({
  title: `One terminal, hub on the other core; idle ${Math.round(IDLE_MS / 1000)} s, replay of ${fmt(COUNT)} (stopped after ${Math.round(REPLAY_LIMIT_MS / 1000)} s)`,
  columns: ['client', 'idle RSS MB', 'vs mqtt.js + tsx', 'idle CPU %', 'replay: stored', 'replay s', 'replay msgs/s', 'vs mqtt.js', 'replay peak RSS MB', 'replay CPU %'],
  rows: rows.map((r) => [
    r.what,
    fmt(r.idle?.rssMb, 1),
    ratio(r.idle?.rssMb, b.idle?.rssMb),
    fmt(r.idle?.cpu, 1),
    fmt(r.replay?.stored),
    fmt(r.replay?.seconds, 1),
    fmt(rate(r.replay)),
    r.replay ? ratio(rate(r.replay), rate(b.replay)) : '—',
    fmt(r.replay?.peakRssMb, 1),
    fmt(r.replay?.cpu, 0),
  ]),
  notes: [
    `The agent runs as the systemd unit runs it (node ${UNIT_FLAGS.join(' ')}): its bin starts the pre-built bundle (agent/dist, no TypeScript loader; the local API and the updater, off here, are not loaded). The mqtt.js baseline runs through tsx and imports the protocol package (zod); the floor rows show node alone and node + mqtt.js in plain JavaScript.`,
    'replay msgs/s: telemetry samples the hub stored (its API\'s per-stream counts) per second; the hub acknowledges a message only once it is committed.',
  ],
});
const a = rows.find((r) => r.what.startsWith('agent'));
if (a) {
  report.goal({ what: 'agent RSS idle', target: '< 60 MB', value: `${fmt(a.idle?.rssMb, 1)} MB`, met: (a.idle?.rssMb ?? Infinity) < 60 });
  report.goal({ what: 'agent outbox replay rate', target: '≥ 2,000 msgs/s', value: `${fmt(rate(a.replay))} msgs/s`, met: rate(a.replay) >= 2000 });
}
report.save();
process.exit(0);
