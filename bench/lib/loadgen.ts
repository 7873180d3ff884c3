/**
 * A load-generator process: many terminals over one source address, driven by its parent over IPC.
 *
 * parent → child: {type:'config', cfg}  then  {type:'run', ...RunSpec}  (any number)  then  {type:'close', how}
 * child → parent: {type:'connected', ...}, {type:'done', ...} after each run, {type:'event', ...} for config pushes
 *
 * Every loop is bounded in count and time; the process exits when its parent goes away.
 */
import { Backoff, jitter } from '../../agent/src/backoff.ts';
import { LiteClient } from './mqtt-lite.ts';
import { Histogram } from './stats.ts';
import { TerminalStreams, type TerminalCred } from './terminals.ts';
import { exitWithParent } from './proc.ts';

export interface LoadConfig {
  host: string;
  port: number;
  /**
   * Several hubs of one installation (issue 19), as an agent given a `KF_HUB_URL` list: `port` is then ignored. Each
   * terminal starts on one of them (spread evenly: terminal k of this process on hub k mod n) and keeps the others
   * in its own shuffled order after it. With `reconnect`, the agent's list policy (agent/src/mqtt-link.ts,
   * `#nextWait`): a lost connection is retried at its hub first, after a backoff step; a failed or refused attempt
   * moves on to the next hub after ~100 ms, and the backoff step is taken once per full round of the list.
   */
  ports?: number[];
  localAddress: string;
  terminals: TerminalCred[];
  keepalive: number;
  /** Publish retained online presence after connecting and set the will to offline presence. */
  presence: boolean;
  /**
   * Retain the presence messages (as agents do; default). The hub strips the retain flag from terminal → hub
   * messages, so for a bare broker standing in for it the baselines publish them unretained.
   */
  presenceRetain?: boolean;
  /** Subscribe each terminal to its config/desired topic, and answer each version with config/reported. */
  subscribeConfig: boolean;
  connectConcurrency: number;
  connectTimeoutMs: number;
  /** Give an attempt up when its TCP handshake is not answered within this (as the agent does). */
  handshakeTimeoutMs?: number;
  /**
   * Reconnect after an unexpected close, with the agent's own policy (agent/src/backoff.ts, imported: capped
   * exponential, equal jitter, 1 s doubling to 60 s, a stable connection's loss retried at most every 4-8 s for
   * two minutes), each terminal on its own timer.
   */
  reconnect?: { minMs: number; maxMs: number };
}

export type RunSpec =
  | { mode: 'flood'; window: number; durationMs: number; warmupMs: number; maxMessages: number }
  | { mode: 'report'; intervalMs: number; durationMs: number };

export interface RunResult {
  type: 'done';
  sent: number;
  acked: number;
  /** Acks counted inside the measured window (after warm-up). */
  ackedInWindow: number;
  windowMs: number;
  lost: number;
  hist: ReturnType<Histogram['toJSON']>;
  connected: number;
}

interface Term {
  s: TerminalStreams;
  c: LiteClient | null;
  secret: string | undefined;
  /** The agent's reconnect policy, with `reconnect`. */
  b: Backoff | null;
  /** With `ports`: this terminal's hubs in its order, and where in it the next attempt goes. */
  hubs: number[] | null;
  hub: number;
  /** Failed attempts since the last connection or the last full round of `hubs`. */
  roundFailures: number;
  /** The port of the current connection. */
  port: number;
  /** Closed for good by the scenario (`retire`): never reconnected, never reports. */
  retired: boolean;
}

/** The pause before the next hub of the list after an attempt failed: agent/src/mqtt-link.ts' NEXT_HUB_MS. */
const NEXT_HUB_MS = 100;

let cfg: LoadConfig;
const terms: Term[] = [];

function send(msg: unknown): void {
  process.send?.(msg);
}

let closing = false;
let reconnects = 0;
/** Reconnect attempts that failed, by cause: no CONNACK in time (given up), refused, closed before CONNACK. */
const failedAttempts = { timeout: 0, handshake: 0, other: 0 };
/** With `ports`: failed attempts that moved on to the next hub of the list. */
let moves = 0;

async function connectOne(t: Term): Promise<void> {
  t.s.connSeq++;
  const port = t.hubs ? t.hubs[t.hub]! : cfg.port;
  t.c = await LiteClient.connect({
    host: cfg.host,
    port,
    localAddress: cfg.localAddress,
    clientId: t.s.id,
    username: t.s.id,
    password: t.secret,
    keepalive: cfg.keepalive,
    connectTimeoutMs: cfg.connectTimeoutMs,
    ...(cfg.handshakeTimeoutMs ? { handshakeTimeoutMs: cfg.handshakeTimeoutMs } : {}),
    ...(cfg.presence ? { will: { topic: t.s.presenceTopic, payload: t.s.presence('offline', 'connection-lost'), qos: 1 as const, retain: cfg.presenceRetain !== false } } : {}),
  });
  t.port = port;
  t.roundFailures = 0;
  if (cfg.presence) t.c.publish(t.s.presenceTopic, t.s.presence('online'), 1, cfg.presenceRetain !== false);
  if (cfg.subscribeConfig) {
    const c = t.c;
    const s = t.s;
    c.onPublish = (p) => {
      if (p.topic !== s.desiredTopic) return;
      const version = (JSON.parse(p.payload.toString('utf8')) as { version?: number }).version ?? 0;
      // Reported once the broker acknowledged the report (for the hub: once it committed it).
      c.publish(s.reportedTopic, s.configReported(version), 1, false, () => send({ type: 'event', kind: 'config-applied', id: s.id, version, at: Date.now() }));
    };
    c.subscribe([s.desiredTopic], 1);
  }
  if (cfg.reconnect) {
    const c = t.c;
    const b = (t.b ??= new Backoff(cfg.reconnect));
    b.connected();
    c.onClose = () => {
      if (closing || t.retired || t.c !== c) return;
      b.lost();
      scheduleReconnect(t, b, nextWait(t, b, true));
    };
  }
}

/**
 * After a connection ended (`hadConnected`) or an attempt failed: where the next attempt goes and when. Without
 * `ports` (one hub): a backoff step, as before. With them: agent/src/mqtt-link.ts' `#nextWait` (the bench terminals'
 * credentials are valid, so its wait for refused credentials has no counterpart here).
 */
function nextWait(t: Term, b: Backoff, hadConnected: boolean): number {
  if (!t.hubs || t.hubs.length === 1 || hadConnected) return b.next();
  t.roundFailures++;
  t.hub = (t.hub + 1) % t.hubs.length;
  moves++;
  if (t.roundFailures < t.hubs.length) return jitter(NEXT_HUB_MS, 0.5);
  t.roundFailures = 0;
  return b.next();
}

function scheduleReconnect(t: Term, b: Backoff, ms: number): void {
  setTimeout(() => {
    if (closing || t.retired) return;
    connectOne(t).then(
      () => {
        reconnects++;
      },
      (err: unknown) => {
        if (/no CONNACK within/.test(String(err))) failedAttempts.timeout++;
        else if (/no TCP handshake within/.test(String(err))) failedAttempts.handshake++;
        else failedAttempts.other++;
        scheduleReconnect(t, b, nextWait(t, b, false));
      },
    );
  }, ms);
}

async function connectAll(): Promise<void> {
  const t0 = performance.now();
  let failed = 0;
  const errors: string[] = [];
  const connectTimes = new Histogram();
  let next = 0;
  const worker = async () => {
    while (next < terms.length) {
      const t = terms[next++]!;
      const started = performance.now();
      try {
        await connectOne(t);
        connectTimes.record(performance.now() - started);
      } catch (err) {
        failed++;
        if (errors.length < 5) errors.push((err as Error).message);
        // Several hubs: a terminal whose first hub failed goes on down its list, as an agent does (one hub: counted
        // as failed only, as before).
        if (t.hubs && cfg.reconnect) {
          const b = (t.b ??= new Backoff(cfg.reconnect));
          scheduleReconnect(t, b, nextWait(t, b, false));
        }
      }
    }
  };
  let ok = 0;
  const progress = setInterval(() => send({ type: 'progress', ok: (ok = next - failed), failed, errors }), 5000);
  await Promise.all(Array.from({ length: Math.max(1, cfg.connectConcurrency) }, worker));
  clearInterval(progress);
  void ok;
  send({ type: 'connected', ok: terms.length - failed, failed, errors, ms: performance.now() - t0, connectHist: connectTimes.toJSON() });
}

async function run(spec: RunSpec): Promise<void> {
  const hist = new Histogram();
  let sent = 0;
  let acked = 0;
  let ackedInWindow = 0;
  let lost = 0;
  const t0 = performance.now();
  const end = t0 + spec.durationMs;
  const live = terms.filter((t) => t.c?.connected);

  if (spec.mode === 'flood') {
    const windowStart = t0 + spec.warmupMs;
    let stopped = false;
    const pump = (t: Term) => {
      const c = t.c!;
      while (!stopped && c.connected && c.inflight < spec.window && sent < spec.maxMessages) {
        const at = performance.now();
        sent++;
        c.publish(t.s.telemetryTopic, t.s.telemetry(), 1, false, () => {
          const now = performance.now();
          if (!c.connected && c.closed) {
            lost++;
            return;
          }
          acked++;
          if (at >= windowStart && now <= end) {
            ackedInWindow++;
            hist.record(now - at);
          }
          if (!stopped && now < end) pump(t);
        });
      }
    };
    for (const t of live) pump(t);
    // Until the time is up, or every message of the count was sent and acknowledged.
    while (performance.now() < end && !(sent >= spec.maxMessages && live.every((t) => (t.c?.inflight ?? 0) === 0))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    stopped = true;
    // Drain: wait (bounded) for the acks still in flight so the next run starts clean.
    const drainEnd = performance.now() + 15000;
    while (live.some((t) => (t.c?.inflight ?? 0) > 0) && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 50));
    send({ type: 'done', sent, acked, ackedInWindow, windowMs: spec.durationMs - spec.warmupMs, lost, hist: hist.toJSON(), connected: live.filter((t) => t.c?.connected).length } satisfies RunResult);
    return;
  }

  // report: each terminal publishes one sample every interval, at a random phase, as an agent does.
  const timers: NodeJS.Timeout[] = [];
  for (const t of live) {
    const fire = () => {
      const c = t.c;
      if (!c?.connected || performance.now() >= end) return;
      const at = performance.now();
      sent++;
      c.publish(t.s.telemetryTopic, t.s.telemetry(), 1, false, () => {
        if (c.closed) {
          lost++;
          return;
        }
        acked++;
        ackedInWindow++;
        hist.record(performance.now() - at);
      });
    };
    const first = setTimeout(() => {
      fire();
      timers.push(setInterval(fire, spec.intervalMs));
    }, Math.random() * spec.intervalMs);
    timers.push(first);
  }
  await new Promise<void>((r) => setTimeout(r, spec.durationMs));
  for (const t of timers) clearInterval(t);
  const drainEnd = performance.now() + 10000;
  while (live.some((t) => (t.c?.inflight ?? 0) > 0) && performance.now() < drainEnd) await new Promise((r) => setTimeout(r, 50));
  send({ type: 'done', sent, acked, ackedInWindow, windowMs: spec.durationMs, lost, hist: hist.toJSON(), connected: live.filter((t) => t.c?.connected).length } satisfies RunResult);
}

/** The last `count` terminals of this process stop as an agent stops (offline presence, DISCONNECT), for good. */
function retire(count: number): number {
  const chosen = terms.slice(Math.max(0, terms.length - count)).filter((t) => !t.retired);
  for (const t of chosen) {
    t.retired = true;
    if (cfg.presence && t.c?.connected) t.c.publish(t.s.presenceTopic, t.s.presence('offline', 'clean'), 1, cfg.presenceRetain !== false);
    t.c?.end();
  }
  return chosen.length;
}

function close(how: 'clean' | 'drop'): void {
  closing = true;
  for (const t of terms) {
    if (how === 'clean') {
      // As the agent stops: offline presence (reason clean), then DISCONNECT so the broker drops the will.
      if (cfg.presence && t.c?.connected) t.c.publish(t.s.presenceTopic, t.s.presence('offline', 'clean'), 1, cfg.presenceRetain !== false);
      t.c?.end();
    } else t.c?.destroy();
  }
  setTimeout(() => process.exit(0), how === 'clean' ? 500 : 50);
}

exitWithParent();
process.on('disconnect', () => process.exit(0));
process.on('message', (m: { type: string; cfg?: LoadConfig; how?: 'clean' | 'drop'; count?: number; port?: number } & Partial<RunSpec>) => {
  if (m.type === 'config') {
    cfg = m.cfg!;
    const ports = cfg.ports?.length ? cfg.ports : null;
    cfg.terminals.forEach((t, k) => {
      // Terminal k starts on hub k mod n, the others after it in its own shuffled order (the agent shuffles its list).
      const hubs = ports ? [ports[k % ports.length]!, ...shuffle(ports.filter((_, i) => i !== k % ports.length))] : null;
      terms.push({ s: new TerminalStreams(t.id), c: null, secret: t.secret, b: null, hubs, hub: 0, roundFailures: 0, port: hubs?.[0] ?? cfg.port, retired: false });
    });
    void connectAll();
  } else if (m.type === 'run') {
    void run(m as unknown as RunSpec);
  } else if (m.type === 'close') {
    close(m.how ?? 'clean');
  } else if (m.type === 'status') {
    const perPort: Record<number, number> = {};
    for (const t of terms) if (t.c?.connected) perPort[t.port] = (perPort[t.port] ?? 0) + 1;
    send({ type: 'status', connected: terms.filter((t) => t.c?.connected).length, reconnects, timedOut: failedAttempts.timeout, noHandshake: failedAttempts.handshake, failed: failedAttempts.other, moves, perPort });
  } else if (m.type === 'retire') {
    send({ type: 'retired', n: retire(m.count ?? 0) });
  } else if (m.type === 'ids') {
    send({ type: 'ids', ids: terms.filter((t) => t.c?.connected && t.port === m.port).map((t) => t.s.id) });
  }
});
send({ type: 'ready' });

function shuffle<T>(items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
