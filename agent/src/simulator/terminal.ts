/**
 * One simulated terminal: the real Agent with an in-memory outbox, a simulated host and simulated drivers, plus
 * the levers the simulator (and tests, through the control port) pull: peripheral faults, network drops, power
 * losses, app crashes, citizen sessions.
 */
import { probesOfType, type PeripheralId, type PeripheralSample, type TerminalConfig } from '@kiosk-fleet/protocol';
import { Agent } from '../agent.ts';
import { MemoryConfigStore } from '../config-reconciler.ts';
import { MemoryExitRecorder } from '../exit-record.ts';
import { SimulatedHostProbe } from '../host/simulated.ts';
import type { Logger } from '../log.ts';
import { MemoryOutbox } from '../outbox/memory.ts';
import { MapProbeCatalog } from '../peripherals/probe-catalog.ts';
import { SimulatedDriver } from '../peripherals/simulated.ts';
import type { SimTerminalSpec } from './fleet.ts';
import { SimulatedUpdater } from './updater.ts';

export interface SimTerminalOptions {
  spec: SimTerminalSpec;
  hubUrl: string;
  password?: string | undefined;
  localAddress?: string | undefined;
  interval: number;
  logger: Logger;
  random: () => number;
  outboxMaxBytes: number;
  /** Milliseconds per state of the simulated updater (default 500). */
  updateStepMs?: number | undefined;
}

export class SimTerminal {
  readonly spec: SimTerminalSpec;
  readonly drivers = new Map<PeripheralId, SimulatedDriver>();
  readonly host: SimulatedHostProbe;
  readonly outbox: MemoryOutbox;
  readonly exitRecorder = new MemoryExitRecorder();
  readonly configStore = new MemoryConfigStore();
  agent: Agent;
  /** Off: power cut, or the agent restarting. */
  powered = true;
  appUp = true;
  appVersion: string;
  paperLeft: number;
  sessionUntil = 0;
  #timers = new Set<NodeJS.Timeout>();
  /** When the current fault of each peripheral clears by itself (0: a technician must come; see behaviour). */
  recoverAt = new Map<PeripheralId, number>();
  restarts = 0;
  /** Answers update/target without installing anything (simulator/updater.ts); outlives agent replacements. */
  readonly updater: SimulatedUpdater;
  /** Counters of the agents this terminal ran before (a power loss or restart-agent starts a new one). */
  #retired = { telemetry: 0, events: 0, results: 0, published: 0, connects: 0, refused: 0 };

  constructor(private readonly opts: SimTerminalOptions) {
    this.spec = opts.spec;
    this.host = new SimulatedHostProbe(opts.random);
    this.outbox = new MemoryOutbox({ maxBytes: opts.outboxMaxBytes, maxAgeMs: 7 * 86400_000 });
    for (const p of opts.spec.peripherals) this.drivers.set(p, new SimulatedDriver());
    this.paperLeft = Math.floor(200 + opts.random() * 800);
    this.appVersion = opts.random() < 0.8 ? '3.2.1' : '3.1.4';
    this.updater = new SimulatedUpdater({
      stepMs: opts.updateStepMs ?? 500,
      version: () => this.appVersion,
      installed: (version) => {
        this.appVersion = version;
        if (this.powered && this.appUp) this.agent.appHeartbeat(version);
      },
    });
    this.agent = this.#newAgent();
  }

  #newAgent(): Agent {
    const o = this.opts;
    return new Agent({
      terminalId: this.spec.id,
      hubUrl: o.hubUrl,
      password: o.password,
      localAddress: o.localAddress,
      keepalive: 60,
      reconnectMinMs: 1000,
      reconnectMaxMs: 60_000,
      authRetryMs: 300_000,
      defaults: {
        telemetryInterval: o.interval,
        logLevel: 'warn',
        peripherals: Object.fromEntries(this.spec.peripherals.map((p) => [p, { driver: 'simulated' as const }])),
      },
      appVersion: this.appVersion,
      // restart-app really runs a (harmless) program, after the citizen session like on a real terminal
      restartAppCommand: ['true'],
      appHeartbeatTimeout: 30,
      monitorApp: true,
      outbox: this.outbox,
      host: this.host,
      exitRecorder: this.exitRecorder,
      configStore: this.configStore,
      logger: o.logger.child({ terminalId: this.spec.id }),
      // whatever driver a pushed config names, a simulated terminal keeps its simulated devices (and runs no probe);
      // it knows the probe names of its type, so a name outside them is refused as on a real terminal
      probes: () => this.#probes,
      driverFactory: (id) => this.#driver(id),
      onRestartRequested: (what) => {
        if (what === 'agent') void this.restartAgent();
      },
      updater: (agent, report) => this.updater.attach(agent, report),
    });
  }

  get #probes(): MapProbeCatalog {
    const names = Object.values(probesOfType(this.spec.type)).flat();
    return new MapProbeCatalog(names.map((name) => ({ name, command: [], file: 'simulated' })), ['the type catalog']);
  }

  #driver(id: PeripheralId): SimulatedDriver {
    let d = this.drivers.get(id);
    if (!d) {
      d = new SimulatedDriver();
      this.drivers.set(id, d);
    }
    return d;
  }

  /** Cumulative over every agent this terminal ran: what it produced and published since the simulator started. */
  counters(): { telemetry: number; events: number; results: number; published: number; connects: number; refused: number } {
    const c = this.agent.counters;
    const l = this.agent.link.stats;
    const r = this.#retired;
    return {
      telemetry: r.telemetry + c.telemetry,
      events: r.events + c.events,
      results: r.results + c.results,
      published: r.published + c.published,
      connects: r.connects + l.connects,
      refused: r.refused + l.refused,
    };
  }

  #replaceAgent(): void {
    this.#retired = this.counters();
    this.agent = this.#newAgent();
  }

  get connected(): boolean {
    return this.powered && this.agent.link.connected;
  }

  get config(): TerminalConfig | null {
    return this.agent.appliedConfig?.config ?? null;
  }

  async start(): Promise<void> {
    await this.agent.start();
    this.agent.appHeartbeat(this.appVersion);
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    if (this.powered) await this.agent.stop();
    this.powered = false;
  }

  /** Set a peripheral's state; the fault/recovery event goes out at once, and a sample follows. */
  async setPeripheral(id: PeripheralId, state: PeripheralSample, opts: { sample?: boolean } = {}): Promise<void> {
    this.#driver(id).set(state);
    if (!this.powered) return;
    await this.agent.checkPeripherals();
    if (opts.sample) await this.agent.sampleNow();
  }

  peripheral(id: PeripheralId): PeripheralSample {
    return this.#driver(id).state;
  }

  /** The network goes away for `ms` (the broker publishes the will) and comes back. */
  networkDrop(ms: number): void {
    if (!this.powered) return;
    this.agent.link.cut({ holdMs: ms });
  }

  /** The power goes: no goodbye; after `ms` the machine boots, a new agent (new boot id) starts. */
  powerLoss(ms: number): void {
    if (!this.powered) return;
    this.powered = false;
    this.agent.halt();
    this.exitRecorder.powerLost();
    this.sessionUntil = 0;
    this.#later(ms, async () => {
      this.host.rebooted();
      this.#replaceAgent();
      this.powered = true;
      this.appUp = true;
      await this.start();
    });
  }

  /** The kiosk app crashes; it comes back after `ms` (its watchdog restarts it). */
  appCrash(ms: number): void {
    if (!this.powered || !this.appUp) return;
    this.appUp = false;
    this.sessionUntil = 0;
    this.agent.appDown('crash');
    this.#later(ms, () => {
      this.appUp = true;
      if (this.powered) this.agent.appHeartbeat(this.appVersion);
    });
  }

  async restartAgent(): Promise<void> {
    if (!this.powered) return;
    this.restarts += 1;
    await this.agent.stop();
    this.#replaceAgent();
    await this.start();
  }

  #later(ms: number, fn: () => void | Promise<void>): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      void Promise.resolve(fn()).catch((err: unknown) => this.opts.logger.error({ err, terminalId: this.spec.id }, 'simulated action failed'));
    }, ms);
    this.#timers.add(t);
  }
}
