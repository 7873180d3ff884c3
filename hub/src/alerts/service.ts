/**
 * Alerts as the hub runs them: the engine soon after changes (the terminals they name) and on a timer (what fell
 * due, escalations, a slow sweep), thresholds and SLA from each terminal's effective config, changes on the live
 * stream and the webhooks, and the public shape of an alert (API and webhook body alike).
 */
import { selfTestResultSchema, type RenderOptions, type TerminalConfig } from '@kiosk-fleet/protocol';
import { Gauge, type Registry } from 'prom-client';
import type { AuthService } from '../auth/service.ts';
import type { ConfigLayers } from '../config-layers/service.ts';
import type { Change } from '../ingest/writer.ts';
import type { Engine } from '../db/engine.ts';
import type { Logger } from '../log.ts';
import type { FleetStore, NodeRow } from '../fleet/store.ts';
import { AlertEngine, isOverdue, type AlertChange, type TerminalSettings } from './engine.ts';
import { DEFAULT_SLA, DEFAULT_THRESHOLDS } from './rules/types.ts';
import { createAlertStore, type AlertRow, type AlertStore } from './store.ts';
import { alertText, bothLanguages } from './text.ts';
import { WebhookDispatcher, type WebhookOptions } from './webhooks.ts';

/** Changes gather this long before a run evaluates the terminals they name. */
const SOON_MS = 250;
/**
 * A run stops taking terminals after this much time and the rest wait for the next one, a few milliseconds later:
 * a storm of 19,000 presence changes never holds the event loop (and so acknowledgements and the API) for long.
 */
const RUN_BUDGET_MS = 20;
const CONTINUE_MS = 5;
/** Terminals swept per timer tick (engine.sweep): 19,000 every 16 minutes at the default 5 s. */
const SWEEP_PER_TICK = 100;
/** Change types that alter what the rules see of the terminal they name. */
const RELEVANT: ReadonlySet<Change['type']> = new Set(['presence', 'telemetry', 'config', 'update', 'terminal', 'security']);

export interface AlertsOptions {
  evaluateMs: number;
  startGraceMs: number;
  webhook?: Partial<WebhookOptions>;
  now?: () => number;
  /**
   * Whether this hub runs the evaluation (escalations included) and the webhook deliveries now: job leadership
   * (cluster/leader.ts, jobs 'alerts' and 'webhooks'). Default: always (one hub).
   */
  leads?: { alerts(): boolean; webhooks(): boolean };
  /** Times in webhook texts (`text.en`, `text.zh`) read in this zone (KF_TIMEZONE); default Asia/Shanghai. */
  timeZone?: string;
}

export interface AlertsDeps {
  /** The hub's database; the alert store is made on it (createAlertStore). */
  engine: Engine;
  log: Logger;
  registry: Pick<FleetStore, 'nodes'>;
  configLayers: Pick<ConfigLayers, 'desired' | 'driftCheck'>;
  auth?: Pick<AuthService, 'districtAdmins'>;
  metricsRegistry?: Registry | null;
  /** The live stream (hub `changed`). */
  emit(changes: Change[]): void;
  /** Presence transitions not on the live stream (a flapping terminal's): the rules still need to hear of them. */
  presence?: { readonly quiet: Set<(terminalId: string) => void> };
}

/**
 * Thresholds and SLA from a terminal's effective (desired) config; a value no layer sets keeps its default. The
 * config layers validated the config when it was saved (terminalConfigSchema), so it is read here as it is.
 */
export function settingsFrom(config: TerminalConfig | undefined): TerminalSettings {
  if (config === undefined) return DEFAULT_SETTINGS;
  let s = settingsByConfig.get(config);
  if (!s) {
    s = computeSettings(config);
    settingsByConfig.set(config, s);
  }
  return s;
}

/** Config layers share one frozen config object among the terminals with the same desired config: so do settings. */
const settingsByConfig = new WeakMap<TerminalConfig, TerminalSettings>();

function computeSettings(config: TerminalConfig | undefined): TerminalSettings {
  const th = config?.alerts?.thresholds ?? {};
  const sl = config?.alerts?.sla ?? {};
  return {
    thresholds: {
      offlineMinutes: th.offlineMinutes ?? DEFAULT_THRESHOLDS.offlineMinutes,
      peripheralFaultMinutes: th.peripheralFaultMinutes ?? DEFAULT_THRESHOLDS.peripheralFaultMinutes,
      diskPercent: th.diskPercent ?? DEFAULT_THRESHOLDS.diskPercent,
      temperatureC: th.temperatureC ?? DEFAULT_THRESHOLDS.temperatureC,
      driftMinutes: th.driftMinutes ?? DEFAULT_THRESHOLDS.driftMinutes,
      flapping: th.flapping,
    },
    sla: { critical: sl.critical ?? DEFAULT_SLA.critical, major: sl.major ?? DEFAULT_SLA.major, minor: sl.minor ?? DEFAULT_SLA.minor },
  };
}

const DEFAULT_SETTINGS = computeSettings(undefined);

/** ISO 8601-like local time with its zone's offset: a duty system's reader and a log agree on the instant. */
const TIME_FORMAT = (timeZone = 'Asia/Shanghai') =>
  new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'shortOffset' });

/**
 * Which peripherals a self-test found not ok (what a queue shows at a glance), read from the agent's result
 * (protocol's selfTestResultSchema); an error's text, or any other result, as it came (cut to 200 characters).
 */
export function summarize(json: string | null): unknown {
  if (json === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return json.slice(0, 200);
  }
  const r = selfTestResultSchema.safeParse(v);
  if (r.success) {
    const ids = new Set([...r.data.failing, ...Object.entries(r.data.peripherals).filter(([, p]) => p.status !== 'ok').map(([id]) => id)]);
    const notOk = [...ids].map((id) => {
      const p = r.data.peripherals[id];
      return { id, status: p?.status ?? 'fault', ...(p?.code ? { code: p.code } : {}) };
    });
    return { passed: r.data.passed && notOk.length === 0, notOk };
  }
  return typeof v === 'string' ? v.slice(0, 200) : v;
}

export class Alerts {
  readonly store: AlertStore;
  readonly engine: AlertEngine;
  readonly webhooks: WebhookDispatcher;
  readonly now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #soon: NodeJS.Timeout | null = null;
  #graceTimer: NodeJS.Timeout | null = null;
  #started = false;
  #closed = false;
  #listener: ((changes: Change[]) => void) | null = null;
  #quiet: ((terminalId: string) => void) | null = null;
  /**
   * The tree, for the station and district names of an alert's view, which the engine renders inside its transaction
   * (webhook bodies). Nodes are never renamed or removed, so the copy only needs to grow: read when made and again
   * after a terminal is placed (its station may be new), before any alert about that terminal can exist.
   */
  #nodes = new Map<string, NodeRow>();

  constructor(
    private readonly deps: AlertsDeps,
    private readonly opts: AlertsOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.store = createAlertStore(deps.engine);
    // Retries are a matter of wall-clock time (a receiver coming back), whatever clock the rules run on.
    this.webhooks = new WebhookDispatcher(this.store, deps.log, deps.metricsRegistry ?? null, opts.webhook ?? {}, Date.now, opts.leads?.webhooks);
    const store = this.store;
    new Gauge({
      name: 'kf_alerts_open',
      help: 'Alerts not resolved, by severity',
      labelNames: ['severity'],
      registers: deps.metricsRegistry ? [deps.metricsRegistry] : [],
      async collect() {
        // a database that does not answer (PostgreSQL restarting) keeps the last counts; /metrics still answers
        const counts = await store.openCounts().catch((err: unknown) => {
          deps.log.warn({ err }, 'open alert counts not read');
          return null;
        });
        if (counts === null) return;
        this.reset();
        for (const r of counts) this.set({ severity: r.severity }, r.n);
      },
    });
    this.engine = new AlertEngine({
      engine: deps.engine,
      store: this.store,
      log: deps.log,
      now: this.now,
      settings: (id) => settingsFrom(deps.configLayers.desired(id)?.config),
      drift: (id, now) => {
        const d = deps.configLayers.driftCheck(id, now);
        return { view: d.drift ? { terminalId: id, ...d.drift } : null, graceEndsAt: d.graceEndsAt };
      },
      districtAdmins: async (district) => (await deps.auth?.districtAdmins(district)) ?? [],
      beforeCommit: async (changes, tx) => {
        // 'updated' (a figure in the details moved) is for live views only; a duty system hears of real transitions.
        const real = changes.filter((ch) => ch.event !== 'updated');
        await this.webhooks.enqueue(real.map((ch) => ({ alertId: ch.alert.id, event: ch.event, payload: () => this.webhookBody(ch) })), tx);
      },
      onChanges: (changes) => this.#announce(changes),
    });
  }

  /** Before start: the node tree read (names in views and webhook bodies); webhook secrets an older hub stored in plain text sealed. */
  async init(): Promise<this> {
    await this.#loadNodes();
    const sealed = await this.store.sealPlainWebhookSecrets();
    if (sealed > 0) this.deps.log.info({ webhooks: sealed }, 'webhook secrets stored in plain text are now encrypted at rest');
    return this;
  }

  async #loadNodes(): Promise<void> {
    for (const n of await this.deps.registry.nodes()) this.#nodes.set(n.id, n);
  }

  #readNodes(): void {
    this.#loadNodes().catch((err: unknown) => this.deps.log.error({ err }, 'alerts: reading the node tree failed'));
  }

  /** The public shape of an alert. */
  view(a: AlertRow, now = this.now()) {
    const station = this.#nodes.get(a.nodeId);
    const district = station?.parentId ? this.#nodes.get(station.parentId) : undefined;
    const details = JSON.parse(a.details) as unknown;
    return {
      id: a.id,
      rule: a.rule,
      severity: a.severity,
      state: a.state,
      title: a.title,
      /** The title as a code with parameters (protocol's TEXTS), for readers in another language; null: unknown rule. */
      text: alertText(a.rule, a.subjectId, details),
      subject: { kind: a.subjectKind, id: a.subjectId },
      terminalId: a.subjectKind === 'terminal' ? a.subjectId : null,
      nodeId: a.nodeId,
      // No street address is kept for a station; its name (after the subdistrict) is what a technician drives to.
      station: station ? { id: station.id, name: { zh: station.nameZh, en: station.nameEn } } : null,
      district: district ? { id: district.id, name: { zh: district.nameZh, en: district.nameEn } } : null,
      details,
      openedAt: new Date(a.openedAt).toISOString(),
      lastSeenAt: new Date(a.lastSeenAt).toISOString(),
      ageSeconds: Math.max(0, Math.floor(((a.resolvedAt ?? now) - a.openedAt) / 1000)),
      dueAt: new Date(a.dueAt).toISOString(),
      overdue: isOverdue(a, now),
      acknowledged: a.acknowledgedAt === null ? null : { at: new Date(a.acknowledgedAt).toISOString(), by: a.acknowledgedBy },
      assignedTo: a.assignedTo,
      assignedAt: a.assignedAt === null ? null : new Date(a.assignedAt).toISOString(),
      escalated: a.escalatedAt === null ? null : { at: new Date(a.escalatedAt).toISOString(), to: a.escalatedTo },
      resolved:
        a.resolvedAt === null
          ? null
          : { at: new Date(a.resolvedAt).toISOString(), by: a.resolvedBy, resolution: a.resolution, note: a.resolutionNote },
      updatedAt: new Date(a.updatedAt).toISOString(),
    };
  }

  webhookBody(ch: AlertChange) {
    const alert = this.view(ch.alert, ch.at);
    return { event: `alert.${ch.event}`, at: new Date(ch.at).toISOString(), alert: { ...alert, text: bothLanguages(alert.text, this.textOptions) } };
  }

  /** How webhook texts render names and times: nodes by their names, times in the hub's zone. */
  readonly textOptions: RenderOptions = {
    node: (id) => {
      const n = this.#nodes.get(id);
      return n ? { zh: n.nameZh, en: n.nameEn } : undefined;
    },
    time: (iso) => {
      const d = new Date(iso);
      return Number.isNaN(d.getTime()) ? iso : TIME_FORMAT(this.opts.timeZone).format(d);
    },
  };

  #announce(changes: AlertChange[]): void {
    this.deps.emit(
      changes.map((ch) => ({
        type: 'alert' as const,
        terminalId: ch.alert.subjectKind === 'terminal' ? ch.alert.subjectId : '',
        nodeId: ch.alert.nodeId,
        at: ch.at,
        data: { id: ch.alert.id, event: ch.event, rule: ch.alert.rule, severity: ch.alert.severity, state: ch.alert.state, title: ch.alert.title, text: alertText(ch.alert.rule, ch.alert.subjectId, JSON.parse(ch.alert.details)) },
      })),
    );
    this.webhooks.kick();
  }

  async #commandDone(c: Change): Promise<void> {
    const d = c.data as { id?: string; status?: string } | undefined;
    if (!d?.id || (d.status !== 'ok' && d.status !== 'error' && d.status !== 'expired')) return;
    try {
      const cmd = await this.store.commandOutcome(d.id);
      await this.engine.selfTestDone(d.id, d.status, cmd ? summarize(cmd.result ?? cmd.error) : null);
    } catch (err) {
      this.deps.log.error({ err, commandId: d.id }, 'self-test result not attached');
    }
  }

  /**
   * Runs what is pending now (no-op before start() and within the start grace); the first run is the full pass.
   * Never rejects: a failed run is logged and what it did not take stays pending.
   */
  async evaluate(): Promise<void> {
    if (!this.#started || this.opts.leads?.alerts() === false) return;
    try {
      await this.engine.run({ budgetMs: RUN_BUDGET_MS });
    } catch (err) {
      this.deps.log.error({ err }, 'alert evaluation failed');
    }
    if (this.engine.pending > 0) this.#schedule(CONTINUE_MS);
  }

  #schedule(ms: number): void {
    if (this.#soon || this.#closed) return;
    this.#soon = setTimeout(() => {
      this.#soon = null;
      void this.evaluate();
    }, ms);
    this.#soon.unref();
  }

  /** Evaluation soon after changes (of the terminals they name) and on a timer (deadlines, escalation, the sweep). */
  start(bus: { on(e: 'changes', l: (c: Change[]) => void): unknown }): void {
    this.#graceTimer = setTimeout(() => {
      this.#started = true;
      void this.evaluate();
    }, this.opts.startGraceMs);
    this.#graceTimer.unref();
    this.#timer = setInterval(() => {
      if (this.opts.leads?.alerts() === false) return;
      this.engine.sweep(SWEEP_PER_TICK);
      void this.evaluate();
    }, this.opts.evaluateMs);
    this.#timer.unref();
    this.#listener = (changes) => {
      // Our own changes do not call for another run; a burst of telemetry collapses into one run.
      let marked = false;
      if (changes.some((c) => c.type === 'terminal')) this.#readNodes();
      for (const c of changes) {
        if (c.type === 'command') void this.#commandDone(c);
        else if (RELEVANT.has(c.type) && c.terminalId !== '') {
          this.engine.markDirty(c.terminalId);
          marked = true;
        }
      }
      if (marked && this.#started) this.#schedule(SOON_MS);
    };
    bus.on('changes', this.#listener);
    this.#quiet = (id) => {
      this.engine.markDirty(id);
      if (this.#started) this.#schedule(SOON_MS);
    };
    this.deps.presence?.quiet.add(this.#quiet);
    this.webhooks.kick();
  }

  /**
   * This hub became the alerts' leader: what the engine kept in memory (terminals, deadlines, windows) may be stale
   * or empty, so the next run is the full pass over what is stored (opening only what is not open already: the
   * unique open key), at once unless the start grace still runs.
   */
  takeOver(): void {
    this.engine.forget();
    void this.evaluate();
  }

  async close(bus?: { off(e: 'changes', l: (c: Change[]) => void): unknown }): Promise<void> {
    this.#closed = true;
    for (const t of [this.#timer, this.#soon, this.#graceTimer]) if (t) clearTimeout(t);
    if (this.#listener) bus?.off('changes', this.#listener);
    if (this.#quiet) this.deps.presence?.quiet.delete(this.#quiet);
    // a run in flight finishes before the database goes
    await this.engine.idle();
    await this.webhooks.close();
  }
}
