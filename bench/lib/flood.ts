/**
 * The ingest load (scenarios/ingest.ts, scenarios/postgres.ts): terminals publish telemetry at QoS 1 as fast as they
 * are acknowledged, with IN_FLIGHT_TOTAL messages in flight over all of them (scenarios/ingest.ts's header says why
 * 4,000), from LOAD_PROCS load processes on the load core; measured after a warm-up, with the server's CPU and the
 * load's beside the rate, so that a load-bound figure shows as such.
 */
import { Load, type MergedRun } from './load.ts';
import { cpuMeter, rssBytes } from './proc.ts';
import { scale } from './report.ts';
import type { TerminalCred } from './terminals.ts';

const S = scale();
export const INGEST_DURATION_MS = Math.max(3000, Math.round(12000 * S));
export const INGEST_WARMUP_MS = Math.max(1000, Math.round(3000 * S));
export const INGEST_SIZES = (process.env.BENCH_INGEST_SIZES ?? '100,1000').split(',').map(Number);
export const IN_FLIGHT_TOTAL = Number(process.env.BENCH_INFLIGHT ?? 4000);
export const LOAD_PROCS = 4;

export interface FloodOptions {
  mqttPort: number;
  /** Several hubs of one installation (scenarios/cluster.ts): each terminal on one of them, spread evenly. */
  mqttPorts?: number[];
  /** The server under test: its CPU, per message, and its RSS. */
  serverPid: number | undefined;
  /** More processes of the server under test (the other hubs): their CPU and RSS are added to `serverPid`'s. */
  moreServerPids?: Array<number | undefined>;
  /** Other processes of the system under test (a database server's), metered apart. */
  otherPids?: () => number[];
  terminals: TerminalCred[];
  /** The run and its warm-up (default INGEST_DURATION_MS, INGEST_WARMUP_MS). */
  durationMs?: number;
  warmupMs?: number;
  /** A subscriber's count of delivered messages, sampled over the measured window. */
  countDelivered?: () => Promise<number>;
}

export interface FloodResult {
  /** In flight per terminal. */
  window: number;
  rate: number;
  p50: number;
  p99: number;
  max: number;
  serverCpu: number;
  /** CPU of `otherPids` together, percent of one core. */
  otherCpu: number;
  loadCpu: number;
  delivered: number | null;
  rssMb: number;
  lost: number;
  acked: number;
  /** Server CPU time per message (µs): unlike msgs/s, hardly moved by other processes competing for the core. */
  cpuUs: number;
  /** The same for the server and `otherPids` together. */
  systemCpuUs: number;
}

/** Connects the terminals, floods, closes them cleanly (also on failure). */
export async function flood(o: FloodOptions): Promise<FloodResult> {
  const n = o.terminals.length;
  const window = Math.max(1, Math.round(IN_FLIGHT_TOTAL / n));
  const durationMs = o.durationMs ?? INGEST_DURATION_MS;
  const warmupMs = o.warmupMs ?? INGEST_WARMUP_MS;
  let load: Load | null = null;
  try {
    load = await Load.start({
      port: o.mqttPort,
      ...(o.mqttPorts ? { ports: o.mqttPorts } : {}),
      terminals: o.terminals,
      processes: LOAD_PROCS,
      keepalive: 60,
      presence: false,
      subscribeConfig: false,
      connectConcurrency: 50,
      connectTimeoutMs: 30000,
      readyTimeoutMs: 120000,
    });
    if (load.connected.failed > 0) throw new Error(`${load.connected.failed} terminals failed to connect: ${load.connected.errors.join('; ')}`);
    const others = o.otherPids?.() ?? [];
    const servers = [o.serverPid, ...(o.moreServerPids ?? [])];
    const meter = cpuMeter([...servers, ...load.pids, process.pid]);
    const otherMeter = cpuMeter(others);
    // The subscriber's count is sampled over the same window as the acks (after warm-up, until the end).
    let c0: Promise<number> = Promise.resolve(0);
    let c1: Promise<number> = Promise.resolve(0);
    const tw = setTimeout(() => (c0 = o.countDelivered ? o.countDelivered() : c0), warmupMs);
    const te = setTimeout(() => (c1 = o.countDelivered ? o.countDelivered() : c1), durationMs);
    const tRun = performance.now();
    const r: MergedRun = await load.run({ mode: 'flood', window, durationMs, warmupMs, maxMessages: 50_000_000 });
    const runSeconds = (performance.now() - tRun) / 1000;
    clearTimeout(tw);
    clearTimeout(te);
    const all = meter.stop();
    // The server's processes summed into one figure, so that cpus[0] is the server and the rest the load, as before.
    const cpus = [all.slice(0, servers.length).reduce((a, b) => a + b, 0), ...all.slice(servers.length)];
    const otherCpu = otherMeter.stop().reduce((a, b) => a + (Number.isNaN(b) ? 0 : b), 0);
    const rss = servers.reduce((a: number, p) => a + rssBytes(p), 0);
    const delivered = o.countDelivered ? ((await c1) - (await c0)) / ((durationMs - warmupMs) / 1000) : null;
    const perMsg = (cpu: number) => ((cpu / 100) * runSeconds * 1e6) / Math.max(1, r.acked);
    return {
      window,
      rate: r.rate,
      p50: r.hist.quantile(0.5),
      p99: r.hist.quantile(0.99),
      max: r.hist.max,
      serverCpu: cpus[0] ?? 0,
      otherCpu,
      loadCpu: cpus.slice(1).reduce((a, b) => a + b, 0),
      delivered,
      rssMb: rss / 2 ** 20,
      lost: r.lost,
      acked: r.acked,
      cpuUs: perMsg(cpus[0] ?? 0),
      systemCpuUs: perMsg((cpus[0] ?? 0) + otherCpu),
    };
  } finally {
    await load?.close('clean');
  }
}
