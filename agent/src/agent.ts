/**
 * One terminal's agent: probes, outbox, MQTT link, command runner, config reconciler, kiosk-app state.
 * Real terminals and every simulated terminal run this same class; only the outbox, host probe, drivers and
 * stores are swapped.
 *
 * Invariants:
 * - Every sequenced message goes through the outbox first and is published from it, in append order, with QoS 1;
 *   it is deleted on PUBACK only. After every (re)connect the outbox is replayed from its oldest message.
 * - At most WINDOW messages are in flight, REPLAY_WINDOW while the outbox holds more than WINDOW (a replay after an
 *   outage); either way they go out in append order, and the hub stores each (stream, epoch, seq) once, so a window
 *   cut by a dropped link is simply replayed.
 * - Presence is published (retained) on every CONNACK, with this boot's id and the connection's number, which the
 *   will of that connection also carries; a graceful stop publishes `offline`/`clean` before DISCONNECT.
 * - Subscriptions are renewed after every CONNACK without a stored session (a restarted broker forgot them).
 * - The updater resumes its persisted state before the first connection (a kill mid-update is finished or rolled
 *   back from disk, not from the hub's word) and reports every state through the outbox like any other stream.
 */
import { randomBytes } from 'node:crypto';
import {
  downTopics,
  parsePayload,
  parseTopic,
  PERIPHERAL_IDS,
  presenceSchema,
  SCHEMA_VERSION,
  topicFor,
  type PeripheralId,
  type PeripheralSample,
  type Presence,
  type StreamKind,
  type TerminalConfig,
  type TerminalEvent,
  type UpdateTarget,
  type SelfTestResult,
} from '@kiosk-fleet/protocol';
import { jitter } from './backoff.ts';
import { CommandFailure, handleCommandMessage, type CommandOutcome, type Handlers } from './commands.ts';
import { ConfigReconciler, operationalSettings, type ConfigStore, type OperationalSettings } from './config-reconciler.ts';
import type { ExitRecorder, LastExit } from './exit-record.ts';
import type { HostProbe } from './host/probe.ts';
import type { Logger, LogRing } from './log.ts';
import { MqttLink, type LinkSettings } from './mqtt-link.ts';
import { OutboxRejectError, type DroppedCounts, type Outbox, type OutboxEntry, type StreamBody } from './outbox/outbox.ts';
import { runCommand } from './peripherals/command.ts';
import type { PeripheralDriver } from './peripherals/driver.ts';
import type { StatusReport } from './updater/updater.ts';
import { createDriver, MapProbeCatalog, type DriverSettings, type PeripheralSettings, type ProbeCatalog } from './peripherals/index.ts';

export const AGENT_VERSION = '0.1.0';
const WINDOW = 16;
/**
 * In flight while replaying a backlog. The hub acknowledges a message once its batch is committed (a few ms to
 * 25 ms), so 16 per round trip held a 100,000-message replay to 832 messages/s (bench `agent`); Aedes reads what a
 * client sent in socket-sized batches anyway, so a larger window costs the hub no more memory per client than one
 * socket read. Also the number of outbox rows read per query.
 */
const REPLAY_WINDOW = 256;
/** A probe that takes longer than this is reported as a fault: a wedged driver must not stall the sample. */
const PROBE_DEADLINE_MS = 30_000;
/** collect-logs stays well under the hub's default 64 KiB payload limit. */
const MAX_LOG_BYTES = 48 * 1024;

export interface AgentOptions extends LinkSettings {
  terminalId: string;
  hubUrl: string;
  /** Local defaults of the operational settings, until a pushed config governs. */
  defaults: { telemetryInterval: number; logLevel: string; peripherals: PeripheralSettings };
  restartAppCommand?: string[] | undefined;
  rebootCommand?: string[] | undefined;
  appVersion?: string | undefined;
  /** Seconds without an app heartbeat before the app counts as down. */
  appHeartbeatTimeout: number;
  /** Report the kiosk app's state (when a kiosk app talks to us: local API on, or simulated). */
  monitorApp: boolean;
  outbox: Outbox;
  host: HostProbe;
  exitRecorder: ExitRecorder;
  configStore: ConfigStore;
  logger: Logger;
  logRing?: LogRing | undefined;
  /**
   * The terminal's probe catalog (peripherals/probe-catalog.ts), read again before each config is checked and
   * applied, so a catalog file changed on the terminal counts from the next config on. Absent: no probes, and a
   * config naming one is refused.
   */
  probes?: (() => ProbeCatalog) | undefined;
  /** Drivers for the simulator; real agents build them from settings. */
  driverFactory?: ((id: PeripheralId, settings: DriverSettings) => PeripheralDriver) | undefined;
  /** Called after the result of restart-agent / reboot is delivered; the process owner acts on it. */
  onRestartRequested?: ((what: 'agent' | 'reboot') => void) | undefined;
  bootId?: string | undefined;
  /** Builds the updater over this agent (updater/index.ts createAgentUpdater; the simulator's simulated one); each
   * status goes to `report`. Absent: update/target is logged and ignored. */
  updater?: ((agent: Agent, report: (s: StatusReport) => void) => AgentUpdater) | undefined;
}

/** What the agent core drives of an updater (updater/updater.ts Updater). */
export interface AgentUpdater {
  resume(): unknown;
  run(signal: AbortSignal): Promise<void>;
  setTarget(target: UpdateTarget): void;
  nudge(): void;
}

type EventInput = Omit<StreamBody<'events'>, 'kind'> & { kind: TerminalEvent['kind'] };

export class Agent {
  readonly terminalId: string;
  readonly bootId: string;
  readonly link: MqttLink;
  readonly counters = { telemetry: 0, events: 0, results: 0, malformed: 0, rejectedOutbox: 0, published: 0 };
  #lastExit: LastExit = { cause: 'unknown' };
  #drivers = new Map<PeripheralId, PeripheralDriver>();
  #lastStatus = new Map<string, PeripheralSample>();
  #reads = new Map<string, { reads: number; failedReads: number }>();
  #interval: number;
  #sampleTimer: NodeJS.Timeout | null = null;
  #appTimer: NodeJS.Timeout | null = null;
  #running = false;
  #cursor = 0;
  #inflight = new Set<number>();
  /** Read from the outbox (ids after #cursor's at the time), not yet sent; #aheadAt is the next to send. */
  #ahead: OutboxEntry[] = [];
  #aheadAt = 0;
  #backlog = false;
  #generation = 0;
  #acked = new Map<number, () => void>();
  #afterResult = new Map<string, () => void>();
  #reconciler: ConfigReconciler;
  #app = { lastHeartbeat: 0, up: false, seen: false, version: undefined as string | undefined, sessionActive: false, sessionSince: 0, ok: 0, failed: 0 };
  #sessionWaiters: (() => void)[] = [];
  #sampling: Promise<void> | null = null;
  #updater: AgentUpdater | null;
  #updaterStop: AbortController | null = null;

  constructor(private readonly opts: AgentOptions) {
    this.terminalId = opts.terminalId;
    this.bootId = opts.bootId ?? randomBytes(9).toString('base64url');
    this.#interval = opts.defaults.telemetryInterval;
    this.link = new MqttLink({
      url: opts.hubUrl,
      clientId: opts.terminalId,
      password: opts.password,
      ca: opts.ca,
      caSource: opts.caSource,
      localAddress: opts.localAddress,
      keepalive: opts.keepalive,
      reconnectMinMs: opts.reconnectMinMs,
      reconnectMaxMs: opts.reconnectMaxMs,
      authRetryMs: opts.authRetryMs,
      will: (connSeq) => ({ topic: topicFor(this.terminalId, 'presence'), payload: this.#presence('offline', connSeq, 'connection-lost') }),
      logger: opts.logger,
    });
    this.#reconciler = new ConfigReconciler(
      opts.configStore,
      {
        check: (config) => this.#probeProblem(config),
        apply: (config) => this.#applyOperational(config),
        report: (version, status, reason) => this.#append('config/reported', { version, status, ...(reason ? { reason: reason.slice(0, 500) } : {}) }),
      },
      opts.logger,
    );
    this.link.on('up', ({ sessionPresent }) => this.#onUp(sessionPresent));
    this.link.on('down', () => {
      this.#generation += 1;
      this.#resetWindow();
    });
    this.link.on('message', (topic, payload) => this.#onMessage(topic, payload));
    this.#updater = opts.updater?.(this, (s) => void this.#append('update/status', s)) ?? null;
  }

  get logger(): Logger {
    return this.opts.logger;
  }
  get lastExit(): LastExit {
    return this.#lastExit;
  }
  get telemetryInterval(): number {
    return this.#interval;
  }
  get appliedConfig(): { version: number; config: TerminalConfig } | null {
    return this.#reconciler.applied;
  }
  /** The settings in force: the applied config's, else the local defaults (windows and update policy included). */
  get operational(): OperationalSettings {
    return operationalSettings(this.#reconciler.applied?.config ?? null, this.opts.defaults);
  }
  get sessionActive(): boolean {
    return this.#app.sessionActive;
  }
  get running(): boolean {
    return this.#running;
  }
  /** When the kiosk app last sent a heartbeat (ms), 0 if never: the updater's app health check. */
  get lastAppHeartbeat(): number {
    return this.#app.lastHeartbeat;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#lastExit = this.opts.exitRecorder.start(this.bootId);
    this.#applyOperational(this.#reconciler.applied?.config ?? null);
    this.logger.info({ bootId: this.bootId, lastExit: this.#lastExit.cause, epoch: this.opts.outbox.epoch, pending: this.opts.outbox.stats().count }, 'agent started');
    this.#event({ kind: 'agent.start', severity: this.#lastExit.cause === 'clean' || this.#lastExit.cause === 'first-start' ? 'info' : 'warning', data: { bootId: this.bootId, lastExit: this.#lastExit.cause } });
    if (this.#updater) {
      this.#updater.resume();
      this.#updaterStop = new AbortController();
      this.#updater.run(this.#updaterStop.signal).catch((err: unknown) => this.logger.error({ err }, 'updater stopped'));
    }
    this.link.start();
    // the first sample comes soon after start (jittered), so a fleet restarted together does not sample together
    this.#scheduleSample(jitter(Math.min(this.#interval * 1000, 2000), 0.5));
    if (this.opts.monitorApp) {
      this.#appTimer = setInterval(() => this.#checkApp(), Math.max(250, (this.opts.appHeartbeatTimeout * 1000) / 4));
    }
  }

  /** Graceful stop: offline presence, DISCONNECT, clean-exit marker. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#clearTimers();
    this.#updaterStop?.abort();
    await this.#sampling?.catch(() => undefined);
    await this.link.stop({ topic: topicFor(this.terminalId, 'presence'), payload: this.#presence('offline', Math.max(1, this.link.connSeq), 'clean') });
    this.opts.exitRecorder.stopped('clean');
    this.logger.info('agent stopped');
  }

  /** An abrupt end (simulated power loss): no goodbye, no marker, the broker publishes the will. */
  halt(): void {
    this.#running = false;
    this.#clearTimers();
    this.#updaterStop?.abort();
    this.link.cut({ stop: true });
  }

  // ------------------------------------------------------------------ the kiosk app (local API, simulator)

  appHeartbeat(version?: string): void {
    const wasUp = this.#app.up;
    this.#app.lastHeartbeat = Date.now();
    this.#app.up = true;
    this.#app.seen = true;
    if (version) this.#app.version = version;
    if (!wasUp) this.#event({ kind: 'app.up', severity: 'info', ...(version ? { data: { version } } : {}) });
  }

  /** The app crashed or stopped (also what a missed heartbeat means). */
  appDown(reason: 'heartbeat-timeout' | 'crash' = 'heartbeat-timeout'): void {
    if (!this.#app.up) return;
    this.#app.up = false;
    this.#endSession();
    this.#event({ kind: reason === 'crash' ? 'app.crash' : 'app.down', severity: 'critical', message: reason === 'crash' ? 'kiosk app crashed' : 'kiosk app heartbeat missed' });
  }

  beginSession(): void {
    if (!this.#app.sessionActive) this.#app.sessionSince = Date.now();
    this.#app.sessionActive = true;
  }

  endSession(): void {
    this.#endSession();
  }

  recordTransaction(t: { service: string; ok: boolean; code?: string | undefined }): void {
    if (t.ok) this.#app.ok += 1;
    else {
      this.#app.failed += 1;
      this.#event({ kind: 'transaction.failed', severity: 'warning', ...(t.code ? { code: t.code } : {}), data: { service: t.service } });
    }
  }

  recordRead(peripheral: PeripheralId, ok: boolean): void {
    const c = this.#reads.get(peripheral) ?? { reads: 0, failedReads: 0 };
    c.reads += 1;
    if (!ok) c.failedReads += 1;
    this.#reads.set(peripheral, c);
  }

  /** Resolves when no citizen session is active, or rejects at `deadline`. */
  waitForNoSession(deadline: number): Promise<void> {
    if (!this.#app.sessionActive) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#sessionWaiters = this.#sessionWaiters.filter((w) => w !== done);
        reject(new CommandFailure('E_SESSION_ACTIVE', 'a citizen session is still active; not restarting (use force)'));
      }, Math.max(0, deadline - Date.now()));
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.#sessionWaiters.push(done);
    });
  }

  status(): Record<string, unknown> {
    return {
      terminalId: this.terminalId,
      bootId: this.bootId,
      connected: this.link.connected,
      connSeq: this.link.connSeq,
      outbox: { epoch: this.opts.outbox.epoch, ...this.opts.outbox.stats() },
      telemetryInterval: this.#interval,
      configVersion: this.#reconciler.applied?.version ?? 0,
      app: { up: this.#app.up, sessionActive: this.#app.sessionActive, version: this.#app.version ?? null },
      peripherals: Object.fromEntries(this.#lastStatus),
      lastExit: this.#lastExit,
    };
  }

  // ------------------------------------------------------------------ probing

  /** Probe every peripheral now and emit events for status changes (the simulator calls it after a change). */
  async checkPeripherals(): Promise<Record<string, PeripheralSample>> {
    const entries = await Promise.all(
      [...this.#drivers].map(async ([id, driver]) => [id, await probeWithDeadline(driver)] as const),
    );
    const now: Record<string, PeripheralSample> = {};
    for (const [id, sample] of entries) {
      this.#transition(id, sample);
      now[id] = sample;
    }
    return now;
  }

  /** Take one telemetry sample now (also what the timer does). */
  sampleNow(): Promise<void> {
    const run = (async () => {
      const [host, peripherals] = await Promise.all([this.opts.host.sample(), this.checkPeripherals()]);
      for (const [id, s] of Object.entries(peripherals)) {
        const c = this.#reads.get(id);
        if (c || s.reads !== undefined || id === 'idCardReader') {
          peripherals[id] = { ...s, reads: (s.reads ?? 0) + (c?.reads ?? 0), failedReads: (s.failedReads ?? 0) + (c?.failedReads ?? 0) };
        }
      }
      this.#reads.clear();
      const dropped = this.#takeDropped();
      const app = this.opts.monitorApp
        ? {
            up: this.#app.up,
            ...(this.#app.version ? { version: this.#app.version.slice(0, 64) } : {}),
            sessionActive: this.#app.sessionActive,
            transactionsOk: this.#app.ok,
            transactionsFailed: this.#app.failed,
          }
        : undefined;
      this.#app.ok = 0;
      this.#app.failed = 0;
      this.#append('telemetry', { host, peripherals, ...(app ? { app } : {}), ...(dropped ? { dropped } : {}) });
      this.opts.exitRecorder.alive();
    })();
    this.#sampling = run;
    return run.finally(() => {
      if (this.#sampling === run) this.#sampling = null;
    });
  }

  #transition(id: string, s: PeripheralSample): void {
    const prev = this.#lastStatus.get(id);
    this.#lastStatus.set(id, s);
    const peripheral = (PERIPHERAL_IDS as readonly string[]).includes(id) ? (id as PeripheralId) : undefined;
    const bad = (x: PeripheralSample | undefined): boolean => x?.status === 'fault' || x?.status === 'absent';
    const base = { ...(peripheral ? { peripheral } : {}), ...(s.code ? { code: s.code } : {}), ...(s.message ? { message: s.message } : {}) };
    if (s.code !== prev?.code && s.code === 'PAPER_LOW') this.#event({ kind: 'paper.low', severity: 'warning', ...base });
    if (bad(s) && !bad(prev)) {
      if (s.code === 'PAPER_OUT') this.#event({ kind: 'paper.out', severity: 'critical', ...base });
      else this.#event({ kind: 'peripheral.fault', severity: 'critical', ...base, data: { status: s.status } });
    } else if (!bad(s) && bad(prev) && s.status !== 'unknown') {
      this.#event({ kind: 'peripheral.recovered', severity: 'info', ...(peripheral ? { peripheral } : {}), data: { status: s.status } });
    }
  }

  #scheduleSample(ms: number): void {
    if (!this.#running) return;
    if (this.#sampleTimer) clearTimeout(this.#sampleTimer);
    this.#sampleTimer = setTimeout(() => {
      this.#sampleTimer = null;
      this.sampleNow()
        .catch((err: unknown) => this.logger.error({ err }, 'telemetry sample failed'))
        .finally(() => this.#scheduleSample(jitter(this.#interval * 1000)));
    }, ms);
  }

  #checkApp(): void {
    if (this.#app.up && Date.now() - this.#app.lastHeartbeat > this.opts.appHeartbeatTimeout * 1000) this.appDown('heartbeat-timeout');
  }

  #endSession(): void {
    this.#app.sessionActive = false;
    const waiters = this.#sessionWaiters;
    this.#sessionWaiters = [];
    for (const w of waiters) w();
    // an install waiting for the citizen to finish may go now
    this.#updater?.nudge();
  }

  // ------------------------------------------------------------------ outbox → MQTT

  /**
   * What the outbox dropped since the last report, taken while the link is up, at each sample: the report (an
   * `outbox.dropped` event and the sample's `dropped`) is itself appended to a full outbox and may push out more,
   * which the next sample reports. Taken once at reconnect, those waited for the reconnect after (5 dropped, 4
   * reported). Taken and appended in one synchronous step, so no count lives only in memory.
   */
  #takeDropped(): DroppedCounts | undefined {
    if (!this.link.connected) return undefined;
    const dropped = this.opts.outbox.takeDropped();
    if (!dropped.telemetry && !dropped.events) return undefined;
    this.logger.warn({ dropped }, 'outbox dropped messages (full, or too old) before the hub could take them');
    this.#event({ kind: 'outbox.dropped', severity: 'warning', data: { ...dropped } });
    return dropped;
  }

  #event(e: EventInput): void {
    this.#append('events', e as StreamBody<'events'>);
  }

  #append<K extends StreamKind>(kind: K, body: StreamBody<K>): OutboxEntry | null {
    let entry: OutboxEntry;
    try {
      entry = this.opts.outbox.append(kind, body);
    } catch (err) {
      this.counters.rejectedOutbox += 1;
      if (err instanceof OutboxRejectError) this.logger.error({ kind, reason: err.message }, 'message failed its schema; not sent');
      else this.logger.error({ err, kind }, 'outbox write failed');
      return null;
    }
    if (kind === 'telemetry') this.counters.telemetry += 1;
    else if (kind === 'events') this.counters.events += 1;
    else if (kind === 'commands/result') this.counters.results += 1;
    this.#pump();
    return entry;
  }

  /** Fill the in-flight window from the outbox, in append order, reading it REPLAY_WINDOW rows at a time. */
  #pump(): void {
    if (!this.link.connected) return;
    const gen = this.#generation;
    for (;;) {
      if (this.#inflight.size >= (this.#backlog ? REPLAY_WINDOW : WINDOW)) return;
      if (this.#aheadAt >= this.#ahead.length) {
        this.#ahead = this.opts.outbox.pending(this.#cursor, REPLAY_WINDOW);
        this.#aheadAt = 0;
        this.#backlog = this.#ahead.length + this.#inflight.size > WINDOW;
        if (this.#ahead.length === 0) return;
        continue;
      }
      const e = this.#ahead[this.#aheadAt++]!;
      this.#cursor = e.id;
      this.#inflight.add(e.id);
      this.link.publish(this.#topic(e.kind), e.payload).then(
        () => {
          this.opts.outbox.ack(e.id);
          this.counters.published += 1;
          this.#acked.get(e.id)?.();
          if (gen !== this.#generation) return;
          this.#inflight.delete(e.id);
          this.#pump();
        },
        () => {
          // the link dropped: the 'down' handler resets the window; the next connection replays from the start
        },
      );
    }
  }

  #resetWindow(): void {
    this.#inflight.clear();
    this.#ahead = [];
    this.#aheadAt = 0;
    this.#backlog = false;
  }

  #topics = new Map<StreamKind, string>();
  #topic(kind: StreamKind): string {
    let t = this.#topics.get(kind);
    if (t === undefined) this.#topics.set(kind, (t = topicFor(this.terminalId, kind)));
    return t;
  }

  /** Resolves once the message is acknowledged, or after `timeoutMs`. */
  #delivered(id: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#acked.delete(id);
        resolve(false);
      }, timeoutMs);
      this.#acked.set(id, () => {
        clearTimeout(timer);
        this.#acked.delete(id);
        resolve(true);
      });
    });
  }

  #onUp(sessionPresent: boolean): void {
    this.#generation += 1;
    this.#resetWindow();
    this.#cursor = 0;
    const gen = this.#generation;
    this.link
      .publish(topicFor(this.terminalId, 'presence'), this.#presence('online', this.link.connSeq), true)
      .catch((err: unknown) => this.logger.debug({ err: (err as Error).message }, 'presence not acknowledged'));
    if (!sessionPresent) {
      this.link.subscribe(downTopics(this.terminalId)).catch((err: unknown) => {
        this.logger.error({ err: (err as Error).message }, 'subscribe failed; reconnecting');
        if (gen === this.#generation) this.link.cut();
      });
    }
    this.#pump();
    this.#updater?.nudge();
  }

  #presence(state: 'online' | 'offline', connSeq: number, reason?: 'clean' | 'connection-lost'): string {
    const p: Presence = {
      v: SCHEMA_VERSION,
      state,
      bootId: this.bootId,
      connSeq: Math.max(1, connSeq),
      ts: new Date().toISOString(),
      ...(reason ? { reason } : {}),
      agentVersion: AGENT_VERSION,
      ...(this.#app.version ?? this.opts.appVersion ? { appVersion: (this.#app.version ?? this.opts.appVersion ?? '').slice(0, 64) } : {}),
      uptime: Math.min(10 * 365 * 86400, Math.round(this.opts.host.uptimeSeconds())),
      interval: Math.max(1, Math.round(this.#interval)),
      lastExit: this.#lastExit,
    };
    return JSON.stringify(presenceSchema.parse(p));
  }

  // ------------------------------------------------------------------ hub → terminal

  #onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t || t.terminalId !== this.terminalId) {
      this.logger.warn({ topic }, 'message on a topic that is not ours; ignored');
      return;
    }
    if (t.kind === 'commands') {
      void handleCommandMessage(payload, {
        handlers: this.#handlers(),
        markSeen: (id) => this.opts.outbox.markCommandSeen(id),
        respond: (id, outcome) => this.#respond(id, outcome),
        onMalformed: (reason) => {
          this.counters.malformed += 1;
          this.logger.warn({ reason }, 'malformed command');
        },
      });
    } else if (t.kind === 'config/desired') {
      const parsed = parsePayload('config/desired', payload);
      if (!parsed.ok) {
        this.counters.malformed += 1;
        this.logger.warn({ reason: parsed.reason, message: parsed.message.slice(0, 500) }, 'malformed config/desired');
        const version = readVersion(payload);
        if (version !== null) this.#reconciler.refuse(version, `${parsed.reason}: ${parsed.message}`);
        return;
      }
      void this.#reconciler.offer(parsed.value);
    } else if (t.kind === 'update/target') {
      if (!this.#updater) {
        this.logger.warn('update target received, but the updater is off (no KF_UPDATE_PUBKEY); ignored');
        return;
      }
      const parsed = parsePayload('update/target', payload);
      if (!parsed.ok) {
        this.counters.malformed += 1;
        this.logger.warn({ reason: parsed.reason, message: parsed.message.slice(0, 500) }, 'malformed update/target');
        return;
      }
      this.#updater.setTarget(parsed.value);
    }
  }

  #respond(id: string, outcome: CommandOutcome): void {
    const entry = this.#append('commands/result', {
      id,
      status: outcome.status,
      ...(outcome.status === 'ok' ? { result: outcome.result } : {}),
      ...(outcome.status === 'error' ? { error: outcome.error } : {}),
    });
    const after = this.#afterResult.get(id);
    if (after) {
      this.#afterResult.delete(id);
      // restart/reboot only once the hub holds the result (or after 10 s): the result must not die with us
      void (entry ? this.#delivered(entry.id, 10_000) : Promise.resolve(false)).then(after);
    }
  }

  #handlers(): Handlers {
    return {
      ping: async () => ({ pong: true, bootId: this.bootId, uptime: Math.round(process.uptime()), outbox: this.opts.outbox.stats() }),
      'self-test': async () => {
        const [host, peripherals] = await Promise.all([this.opts.host.sample(), this.checkPeripherals()]);
        const failing = Object.entries(peripherals).filter(([, s]) => s.status !== 'ok').map(([id]) => id);
        const result = { passed: failing.length === 0, failing, host, peripherals, app: { up: this.#app.up, sessionActive: this.#app.sessionActive } };
        // The hub reads this shape (protocol's selfTestResultSchema) to name the failing peripherals on an alert.
        return result satisfies SelfTestResult;
      },
      'collect-logs': async ({ lines }) => {
        const all = this.opts.logRing?.tail(lines) ?? [];
        const out: string[] = [];
        let bytes = 0;
        for (let i = all.length - 1; i >= 0; i--) {
          const line = all[i] ?? '';
          bytes += Buffer.byteLength(line) + 8;
          if (bytes > MAX_LOG_BYTES) break;
          out.unshift(line);
        }
        return { lines: out, truncated: out.length < all.length };
      },
      'restart-app': async ({ force }, cmd) => {
        const argv = this.opts.restartAppCommand;
        if (!argv) throw new CommandFailure('E_NOT_CONFIGURED', 'no restartAppCommand configured on this terminal');
        const waited = this.#app.sessionActive;
        if (!force) await this.waitForNoSession(Date.parse(cmd.expiresAt));
        const run = await runCommand(argv, 60_000);
        if (run.spawnError || run.timedOut || run.exitCode !== 0) {
          throw new CommandFailure('E_RESTART_FAILED', run.spawnError ?? (run.timedOut ? 'restart command timed out' : `restart command exited with ${run.exitCode ?? run.signal}`));
        }
        return { restarted: true, waitedForSession: waited && !force, forced: force };
      },
      'restart-agent': async (_args, cmd) => {
        this.#afterResult.set(cmd.id, () => this.opts.onRestartRequested?.('agent'));
        return { restarting: true };
      },
      reboot: async (_args, cmd) => {
        if (!this.opts.rebootCommand) throw new CommandFailure('E_NOT_CONFIGURED', 'reboot is off on this terminal (no rebootCommand configured)');
        const argv = this.opts.rebootCommand;
        this.#afterResult.set(cmd.id, () => {
          this.opts.onRestartRequested?.('reboot');
          void runCommand(argv, 60_000).then((run) => this.logger.info({ exitCode: run.exitCode }, 'reboot command ran'));
        });
        return { rebooting: true };
      },
    };
  }

  #catalog(): ProbeCatalog {
    return this.opts.probes?.() ?? new MapProbeCatalog([]);
  }

  /** A pushed probe name this terminal's catalog lacks: the config is refused, naming it (the last one keeps running). */
  #probeProblem(config: TerminalConfig): string | null {
    const named = Object.entries(config.peripherals ?? {}).filter(([, s]) => s?.driver === 'command' && s.probe);
    if (named.length === 0) return null;
    const catalog = this.#catalog();
    for (const [id, s] of named) {
      if (catalog.get(s!.probe!)) continue;
      const known = catalog.names();
      return `peripherals.${id}.probe: unknown probe ${JSON.stringify(s!.probe)}: not in this terminal's probe catalog (${catalog.sources.join(', ') || 'none'}); known: ${known.length ? known.join(', ') : 'none'}`.slice(0, 500);
    }
    return null;
  }

  #applyOperational(config: TerminalConfig | null): void {
    const op = operationalSettings(config, this.opts.defaults);
    const interval = op.telemetryInterval;
    const level = op.logLevel;
    const settings: PeripheralSettings = op.peripherals;
    const drivers = new Map<PeripheralId, PeripheralDriver>();
    const catalog = this.opts.driverFactory ? null : this.#catalog();
    for (const [id, s] of Object.entries(settings) as [PeripheralId, DriverSettings | undefined][]) {
      if (!s) continue;
      const existing = this.#drivers.get(id);
      if (!catalog) {
        drivers.set(id, this.opts.driverFactory!(id, s));
        continue;
      }
      // the catalog's argv is part of what the driver runs: an edited catalog file makes a new driver
      const key = JSON.stringify([s, s.driver === 'command' && s.probe ? (catalog.get(s.probe) ?? null) : null]);
      if (existing && driverSettingsSeen.get(existing) === key) {
        drivers.set(id, existing);
      } else {
        const driver = createDriver(s, catalog);
        driverSettingsSeen.set(driver, key);
        drivers.set(id, driver);
      }
    }
    this.#drivers = drivers;
    for (const id of this.#lastStatus.keys()) if (!drivers.has(id as PeripheralId)) this.#lastStatus.delete(id);
    this.logger.level = level;
    // a new maintenance window or update policy may let a waiting install go
    this.#updater?.nudge();
    if (interval !== this.#interval) {
      this.#interval = interval;
      if (this.#sampleTimer) this.#scheduleSample(jitter(interval * 1000));
    }
  }

  #clearTimers(): void {
    if (this.#sampleTimer) clearTimeout(this.#sampleTimer);
    if (this.#appTimer) clearInterval(this.#appTimer);
    this.#sampleTimer = null;
    this.#appTimer = null;
  }
}

const driverSettingsSeen = new WeakMap<PeripheralDriver, string>();

function probeWithDeadline(driver: PeripheralDriver): Promise<PeripheralSample> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<PeripheralSample>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'fault', code: 'E_PROBE_TIMEOUT', message: `${driver.driver} probe did not answer` }), PROBE_DEADLINE_MS);
  });
  return Promise.race([
    driver.probe().catch((err: unknown) => ({ status: 'unknown' as const, code: 'E_PROBE', message: String((err as Error).message).slice(0, 500) })),
    deadline,
  ]).finally(() => clearTimeout(timer));
}

function readVersion(payload: Buffer): number | null {
  try {
    const v = (JSON.parse(payload.toString('utf8')) as { version?: unknown }).version;
    return Number.isInteger(v) && (v as number) >= 1 ? (v as number) : null;
  } catch {
    return null;
  }
}
