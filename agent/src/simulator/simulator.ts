/**
 * The fleet simulator: many virtual terminals in one process, each its own MQTT connection through the same Agent
 * code as a real terminal. Connections are opened at a bounded rate (a thousand CONNECTs in the same millisecond
 * is a load test of its own), progress is logged while connecting, and a summary line every few seconds.
 */
import type { Logger } from '../log.ts';
import { tick } from './behaviour.ts';
import type { SimTerminalSpec } from './fleet.ts';
import { SimTerminal } from './terminal.ts';

export interface SimulatorOptions {
  terminals: SimTerminalSpec[];
  hubUrl: string;
  secrets: Record<string, string>;
  interval: number;
  localAddresses: string[];
  /** Connections opened per second. */
  ramp: number;
  chaos: number;
  summaryEveryMs: number;
  logger: Logger;
  random?: () => number;
  outboxMaxBytes?: number;
  alwaysOpen?: boolean;
  /** Milliseconds per state of each terminal's simulated updater (default 500). */
  updateStepMs?: number;
}

export interface SimulatorSummary {
  terminals: number;
  started: number;
  connected: number;
  powered: number;
  telemetry: number;
  events: number;
  results: number;
  published: number;
  pending: number;
  faults: number;
  sessions: number;
  reconnects: number;
  refused: number;
}

export class Simulator {
  readonly terminals = new Map<string, SimTerminal>();
  #tickTimer: NodeJS.Timeout | null = null;
  #summaryTimer: NodeJS.Timeout | null = null;
  #lastTick = Date.now();
  #stopped = false;
  #started = 0;
  #random: () => number;

  constructor(private readonly opts: SimulatorOptions) {
    this.#random = opts.random ?? Math.random;
    opts.terminals.forEach((spec, i) => {
      const localAddress = opts.localAddresses.length ? opts.localAddresses[i % opts.localAddresses.length] : undefined;
      this.terminals.set(
        spec.id,
        new SimTerminal({
          spec,
          hubUrl: opts.hubUrl,
          password: opts.secrets[spec.id],
          localAddress,
          interval: opts.interval,
          logger: opts.logger,
          random: this.#random,
          outboxMaxBytes: opts.outboxMaxBytes ?? 4 * 1024 * 1024,
          updateStepMs: opts.updateStepMs,
        }),
      );
    });
  }

  get chaos(): number {
    return this.opts.chaos;
  }
  set chaos(v: number) {
    this.opts.chaos = v;
  }

  /** Starts every terminal at the ramp rate; resolves when all are started (not necessarily connected). */
  async start(): Promise<void> {
    const log = this.opts.logger;
    const all = [...this.terminals.values()];
    const missing = all.filter((t) => this.opts.secrets[t.spec.id] === undefined).length;
    if (missing) log.warn({ terminals: missing }, 'no secret for some terminals: they connect without a password (fine for a bare broker, refused by the hub; use --provision)');
    this.#lastTick = Date.now();
    this.#tickTimer = setInterval(() => this.#tick(), 1000);
    const progress = setInterval(() => log.info({ started: this.#started, connected: this.connectedCount(), total: all.length }, `connecting: ${this.connectedCount()}/${all.length} connected, ${this.#started} started`), 1000);
    const batch = Math.max(1, Math.ceil(this.opts.ramp / 10));
    try {
      for (let i = 0; i < all.length && !this.#stopped; i += batch) {
        await Promise.all(all.slice(i, i + batch).map((t) => t.start()));
        this.#started = Math.min(all.length, i + batch);
        if (i + batch < all.length) await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      clearInterval(progress);
    }
    log.info({ started: this.#started, connected: this.connectedCount() }, `all ${all.length} terminals started`);
    this.#summaryTimer = setInterval(() => {
      const s = this.summary();
      log.info(
        { summary: s },
        `${s.connected}/${s.terminals} online · ${s.telemetry} telemetry · ${s.events} events · ${s.results} results · ${s.pending} pending · ${s.faults} faults · ${s.sessions} sessions · ${s.reconnects} reconnects`,
      );
    }, this.opts.summaryEveryMs);
  }

  connectedCount(): number {
    let n = 0;
    for (const t of this.terminals.values()) if (t.connected) n += 1;
    return n;
  }

  summary(): SimulatorSummary {
    const s: SimulatorSummary = { terminals: this.terminals.size, started: this.#started, connected: 0, powered: 0, telemetry: 0, events: 0, results: 0, published: 0, pending: 0, faults: 0, sessions: 0, reconnects: 0, refused: 0 };
    for (const t of this.terminals.values()) {
      if (t.connected) s.connected += 1;
      if (t.powered) s.powered += 1;
      const c = t.counters();
      s.telemetry += c.telemetry;
      s.events += c.events;
      s.results += c.results;
      s.published += c.published;
      s.pending += t.outbox.stats().count;
      for (const d of t.drivers.values()) if (d.state.status === 'fault' || d.state.status === 'absent') s.faults += 1;
      if (t.agent.sessionActive) s.sessions += 1;
      s.reconnects += Math.max(0, c.connects - 1);
      s.refused += c.refused;
    }
    return s;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#tickTimer) clearInterval(this.#tickTimer);
    if (this.#summaryTimer) clearInterval(this.#summaryTimer);
    await Promise.all([...this.terminals.values()].map((t) => t.stop().catch(() => undefined)));
  }

  #tick(): void {
    const now = Date.now();
    const dt = (now - this.#lastTick) / 1000;
    this.#lastTick = now;
    for (const t of this.terminals.values()) {
      if (!t.agent.running && t.powered) continue; // not started yet
      tick(t, { now, dt, chaos: this.opts.chaos, random: this.#random, alwaysOpen: this.opts.alwaysOpen ?? false });
    }
  }
}
