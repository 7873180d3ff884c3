/**
 * Layered config: city → district → station → terminal layers, each versioned with its history; the effective
 * config of every terminal pushed (retained, on `config/desired`) whenever it changes; drift between what was pushed
 * and what the terminal reports.
 *
 * Invariants:
 * 1. Nothing invalid is saved or pushed: a layer is checked on its own (`validateLayer`), and every effective config
 *    it would produce is checked in full before the save; one bad terminal fails the whole write with its paths.
 * 2. A write names the layer version it was based on; any other current version → 409, nothing changes.
 * 3. A terminal's desired version only grows, and grows only when its effective config really changed (canonical
 *    JSON compare), so a no-op change does not make a thousand terminals re-apply.
 * 4. The layer, its history row and every affected terminal's desired config commit in one transaction; publishing
 *    follows, one batch at a time in commit order, so the broker's retained message is always the newest version.
 * 5. `reconcileAll` recomputes every active terminal from the stored layers (after a start, a move, an import):
 *    the database is the truth, the broker's retained store only a copy of it.
 * 6. Drift is derived, not stored: a terminal drifts when its applied version is below the desired one for longer
 *    than its grace period (the effective `alerts.thresholds.driftMinutes`, else the service default).
 * 7. Writes of this hub run one at a time (a mutex): the in-memory copy of every desired config and sync state, which
 *    the alert engine reads synchronously for each terminal it evaluates, changes only after a commit, and publishes
 *    queue in commit order. Across hubs the store's compare-and-set (layer version) and version + 1 (desired) hold.
 */
import { nodePath, type TerminalConfig } from '@kiosk-fleet/protocol';
import { Mutex } from 'async-mutex';
import { Counter } from 'prom-client';
import type { Broker } from '../broker/broker.ts';
import { badRequest, conflict, fieldsText, notFound } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { FleetStore } from '../fleet/store.ts';
import {
  canonical,
  diff,
  mergeLayers,
  validateEffective,
  validateLayer,
  type Change,
  type Effective,
  type Issue,
  type JsonObject,
  type Layer,
  type LayerRef,
} from './merge.ts';
import { DEFAULT_THRESHOLDS } from '../alerts/rules/types.ts';
import type { Tx } from '../db/engine.ts';
import type { ConfigLayerStore, DesiredRow, HistoryRow, Scope, SyncRow, TerminalPlace } from './store.ts';

/**
 * Drift grace when no layer sets `alerts.thresholds.driftMinutes`: the drift alert's own default, so a terminal is
 * listed as drifting exactly when its alert may open (one default, in alerts/rules/types.ts).
 */
export const DEFAULT_DRIFT_GRACE_MS = DEFAULT_THRESHOLDS.driftMinutes * 60_000;
/** At most this many per-terminal problems are listed in a 400 (a city-wide mistake would list a thousand). */
const MAX_TERMINAL_ISSUES = 20;

/** What a save changed, for the audit log (written inside the save's transaction: both commit or neither). */
export interface ConfigAuditChange {
  before: { version: number; config: JsonObject };
  after: { version: number; config: JsonObject; reason: string | null; changes: Change[]; pushed: number };
}

export interface ConfigLayersOptions {
  /** Drift grace when the effective config does not set `alerts.thresholds.driftMinutes`. */
  driftGraceMs?: number;
  /** Told about every terminal that got a new desired version (SSE). */
  onPushed?: (pushed: Pushed[]) => void;
  metrics?: Metrics;
}

export interface Pushed {
  terminalId: string;
  version: number;
}

export interface LayerView {
  scope: Scope;
  id: string;
  level: LayerRef['level'];
  version: number;
  config: JsonObject;
  updatedAt: number | null;
  updatedBy: string | null;
  reason: string | null;
}

export interface WriteOptions {
  expectedVersion?: number | undefined;
  by: string;
  reason?: string | null | undefined;
  /** Runs inside the save's transaction (the API writes the audit record here, with `tx`); a throw undoes the save. */
  audit?: ((change: ConfigAuditChange, tx: Tx) => unknown) | undefined;
}

export interface TerminalChange {
  terminalId: string;
  /** So that a dry run can be read station by station. */
  stationId: string;
  changes: Change[];
}

export interface DryRun {
  /** Terminals whose effective config would change, and how. */
  terminals: TerminalChange[];
  /** Affected terminals whose effective config stays the same. */
  unchanged: number;
}

export interface SyncState {
  desiredVersion: number;
  desiredAt: number | null;
  appliedVersion: number;
  appliedAt: number | null;
  rejected: { version: number; reason: string | null; at: number | null } | null;
  /** in-sync: applied ≥ desired; pending: not yet reported; rejected: the terminal refused the desired version. */
  status: 'in-sync' | 'pending' | 'rejected';
  /** Out of sync for longer than the grace period: since when (the desired version's time). */
  drift: { since: number; graceMs: number } | null;
}

export interface DriftItem extends SyncState {
  terminalId: string;
  stationId: string;
  presence: string | null;
}

/** What the alert engine needs of one terminal's sync: its drift once past the grace, and when that grace ends. */
export interface DriftCheck {
  drift: { since: number; desiredVersion: number; appliedVersion: number; status: 'pending' | 'rejected' } | null;
  /** Out of sync but still within the grace: when it ends. Null when in sync or already drifting. */
  graceEndsAt: number | null;
}

/** A terminal's desired config as cached: `config` is shared by every terminal with the same text, frozen. */
interface CachedDesired {
  version: number;
  config: TerminalConfig;
  updatedAt: number;
  text: string;
}

/** A desired version written, with its config as pushed and as stored. */
type Written = Pushed & { config: JsonObject; text: string };

interface ParsedLayer {
  version: number;
  config: JsonObject;
}

/** What the alert engine's drift check needs of a terminal's reports, kept in memory (`noteReported`). */
interface Reported {
  appliedVersion: number;
  rejectedVersion: number;
}

export class ConfigLayers {
  readonly store: ConfigLayerStore;
  readonly #graceMs: number;
  #publishing: Promise<void> = Promise.resolve();
  readonly #counters: { pushed: Counter; invalid: Counter } | null;
  /** Invariant 7: one write (save, reconcile) at a time. */
  readonly #writing = new Mutex();
  /** Terminals whose stored layers give an invalid effective config; warned about once, not every reconcile. */
  readonly #invalidWarned = new Set<string>();
  /**
   * Every terminal's desired config (absent: none), read once by `load` and replaced after each commit of a save or
   * reconcile (`#remember`; this service is the only writer of desired_config). The alert engine reads thresholds from
   * it for every terminal it evaluates: from SQL and JSON.parse each time, that was 5 % of the hub's CPU in `pnpm
   * bench connections` (19,000 terminals), and on PostgreSQL it would be a round trip per terminal.
   */
  readonly #desired = new Map<string, CachedDesired>();
  /** The highest applied and rejected version of each terminal that reported one (`load`, then `noteReported`). */
  readonly #reported = new Map<string, Reported>();
  /** Parsed (frozen) and canonical forms of each distinct desired config text: a station's terminals share one. */
  readonly #texts = new Map<string, { config: TerminalConfig; canonical: string }>();
  #loaded: Promise<void> | null = null;
  /** The last terminal id the periodic sweep reached ('' = start over). */
  #sweepCursor = '';

  constructor(
    store: ConfigLayerStore,
    private readonly registry: Pick<FleetStore, 'node' | 'terminal' | 'terminals' | 'requireTerminal'>,
    private readonly broker: Pick<Broker, 'publish'>,
    private readonly log: Logger,
    private readonly opts: ConfigLayersOptions = {},
  ) {
    this.store = store;
    this.#graceMs = opts.driftGraceMs ?? DEFAULT_DRIFT_GRACE_MS;
    const registers = opts.metrics ? [opts.metrics.registry] : [];
    this.#counters = opts.metrics
      ? {
          pushed: new Counter({ name: 'kf_config_pushed_total', help: 'Desired config versions published to terminals', registers }),
          invalid: new Counter({
            name: 'kf_config_invalid_total',
            help: 'Config writes or reconciles refused because a layer or an effective config failed the schema',
            labelNames: ['where'] as const,
            registers,
          }),
        }
      : null;
  }

  /**
   * Reads every desired config and sync state into memory: before `desired` and `driftCheck` answer (the hub awaits
   * it at start, before the alert engine runs). Writes await it too.
   */
  load(): Promise<void> {
    this.#loaded ??= (async () => {
      const [desired, sync] = await Promise.all([this.store.allDesired(), this.store.allSync()]);
      for (const d of desired) this.#desired.set(d.terminalId, this.#cache(d));
      for (const r of sync) this.#reported.set(r.terminalId, { appliedVersion: r.appliedVersion, rejectedVersion: r.rejectedVersion });
    })().catch((err: unknown) => {
      this.#loaded = null;
      throw err;
    });
    return this.#loaded;
  }

  /**
   * A terminal's config report, committed by ingest (its `config` change): kept for `driftCheck`. The highest version
   * of each kind wins, as in the store, so a replayed or late report changes nothing.
   */
  noteReported(terminalId: string, version: number, status: 'applied' | 'rejected'): void {
    const r = this.#reported.get(terminalId) ?? { appliedVersion: 0, rejectedVersion: 0 };
    if (status === 'applied') r.appliedVersion = Math.max(r.appliedVersion, version);
    else r.rejectedVersion = Math.max(r.rejectedVersion, version);
    this.#reported.set(terminalId, r);
  }

  /**
   * Another hub wrote desired configs (cluster/feed-hub.ts), or a terminal subscribed: the stored desired config of
   * these terminals (all, without ids) replaces the copy in memory where its version is newer, and is published
   * (retained) through this hub's broker, in order with this hub's own pushes. Under the write lock, so a save or
   * reconcile of this hub compares with the newest version. Not told to `onPushed`: the hub that wrote it did that.
   */
  async refreshDesired(terminalIds?: readonly string[]): Promise<number> {
    await this.load();
    const published = await this.#writing.runExclusive(async () => {
      const rows = !terminalIds
        ? await this.store.allDesired()
        : terminalIds.length > 200
          ? await this.store.allDesired().then((all) => {
              const wanted = new Set(terminalIds);
              return all.filter((r) => wanted.has(r.terminalId));
            })
          : (await Promise.all(terminalIds.map((id) => this.store.desired(id)))).filter((r): r is DesiredRow => r !== undefined);
      const newer: Written[] = [];
      for (const r of rows) {
        const cached = this.#desired.get(r.terminalId);
        if (cached && cached.version >= r.version) continue;
        const c = this.#cache(r);
        this.#desired.set(r.terminalId, c);
        newer.push({ terminalId: r.terminalId, version: r.version, config: c.config as unknown as JsonObject, text: r.config });
      }
      return { n: newer.length, done: this.#publish(newer, false) };
    });
    await published.done;
    return published.n;
  }

  /** The reported versions read again from the table (after the feed missed reports stored by other hubs). */
  async reloadReported(): Promise<void> {
    const sync = await this.store.allSync();
    for (const r of sync) this.#reported.set(r.terminalId, { appliedVersion: r.appliedVersion, rejectedVersion: r.rejectedVersion });
  }

  // ---------------------------------------------------------------------------------------------- reads

  /** The current version of a layer (version 0 and `{}` when none was ever saved). 404 for an unknown target. */
  async layer(scope: Scope, id: string): Promise<LayerView> {
    const level = await this.#level(scope, id);
    const row = await this.store.layer(scope, id);
    return {
      scope,
      id,
      level,
      version: row?.version ?? 0,
      config: row ? (JSON.parse(row.config) as JsonObject) : {},
      updatedAt: row?.updatedAt ?? null,
      updatedBy: row?.updatedBy ?? null,
      reason: row?.reason ?? null,
    };
  }

  /** Versions before `before` (newest first). */
  async history(scope: Scope, id: string, before: number | null, limit: number): Promise<(HistoryRow & { changes: Change[] })[]> {
    await this.#level(scope, id);
    const rows = await this.store.history(scope, id, before ?? Number.MAX_SAFE_INTEGER, limit + 1);
    const out: (HistoryRow & { changes: Change[] })[] = [];
    // each entry carries its diff against the version before it, which may be just past the page
    for (const [i, r] of rows.slice(0, limit).entries()) {
      const prev = rows[i + 1] ?? (r.version > 1 ? await this.store.historyVersion(scope, id, r.version - 1) : undefined);
      out.push({ ...r, changes: diff(prev ? (JSON.parse(prev.config) as JsonObject) : {}, JSON.parse(r.config) as JsonObject) });
    }
    return out;
  }

  /** Differences between two saved versions of a layer (version 0 is the empty layer). */
  async diffVersions(scope: Scope, id: string, from: number, to: number): Promise<Change[]> {
    await this.#level(scope, id);
    const load = async (v: number): Promise<JsonObject> => {
      if (v === 0) return {};
      const r = await this.store.historyVersion(scope, id, v);
      if (!r) throw notFound(`version of ${scope} ${id}`, String(v));
      return JSON.parse(r.config) as JsonObject;
    };
    return diff(await load(from), await load(to));
  }

  /** The effective config of a terminal from the stored layers, with the layer of each value. */
  async effective(terminalId: string): Promise<Effective & { layers: LayerRef[] }> {
    const t = await this.registry.requireTerminal(terminalId);
    const layers = this.#chain({ id: t.id, stationId: t.stationId }, await this.#layerMap());
    return { ...mergeLayers(layers), layers: layers.map(({ level, id, version }) => ({ level, id, version })) };
  }

  /**
   * What a layer inherits: the merge of the layers above it (not its own), with the layer of each value. The config
   * form shows it as each field's placeholder; a district operator may not read the city's layer, but sees here what
   * it gives their district, as their terminals do.
   */
  async inherited(scope: Scope, id: string): Promise<Effective> {
    await this.#level(scope, id);
    const stationId = scope === 'terminal' ? (await this.registry.requireTerminal(id)).stationId : id;
    // a node's "station" here is the node itself: the chain walks nodePath(id), then drops the layer's own
    const chain = this.#chain({ id: '', stationId }, await this.#layerMap()).filter((l) => l.level !== 'terminal' && !(scope === 'node' && l.id === id));
    return mergeLayers(chain);
  }

  /**
   * The desired config of a terminal, from memory (after `load`; the config object is shared and frozen). Synchronous:
   * the alert engine asks for every terminal it evaluates.
   */
  desired(terminalId: string): { readonly version: number; readonly config: TerminalConfig; readonly updatedAt: number } | null {
    return this.#desired.get(terminalId) ?? null;
  }

  #cache(r: DesiredRow): CachedDesired {
    return { version: r.version, config: this.#text(r.config).config, updatedAt: r.updatedAt, text: r.config };
  }

  #text(text: string): { config: TerminalConfig; canonical: string } {
    let t = this.#texts.get(text);
    if (!t) {
      const config = deepFreeze(JSON.parse(text) as TerminalConfig);
      t = { config, canonical: canonical(config) };
      if (this.#texts.size > 10_000) this.#texts.clear();
      this.#texts.set(text, t);
    }
    return t;
  }

  /** One terminal's sync as the alert engine sees it, from memory (after `load`): synchronous, as `desired`. */
  driftCheck(terminalId: string, now = Date.now()): DriftCheck {
    const d = this.#desired.get(terminalId);
    if (!d) return { drift: null, graceEndsAt: null };
    const r = this.#reported.get(terminalId);
    const s: SyncRow | undefined = r && { terminalId, ...r, appliedAt: null, rejectedReason: null, rejectedAt: null };
    const state = this.#syncState({ version: d.version, updatedAt: d.updatedAt, grace: () => this.#graceOf(d.config) }, s, now);
    if (state.status === 'in-sync') return { drift: null, graceEndsAt: null };
    if (!state.drift) return { drift: null, graceEndsAt: d.updatedAt + this.#graceOf(d.config) };
    return { drift: { since: state.drift.since, desiredVersion: state.desiredVersion, appliedVersion: state.appliedVersion, status: state.status }, graceEndsAt: null };
  }

  /** Desired vs reported of one terminal. */
  async sync(terminalId: string, now = Date.now()): Promise<SyncState> {
    await this.registry.requireTerminal(terminalId);
    const [d, s] = await Promise.all([this.store.desired(terminalId), this.store.sync(terminalId)]);
    return this.#syncState(d && { version: d.version, updatedAt: d.updatedAt, grace: () => this.#grace(d.config) }, s, now);
  }

  /** Terminals under a node (or all) whose applied config lags the desired one for longer than their grace. */
  async drift(nodeId: string | null, now = Date.now()): Promise<DriftItem[]> {
    if (nodeId !== null && !(await this.registry.node(nodeId))) throw notFound('node', nodeId);
    const rows = await this.store.lagging(nodeId);
    const out: DriftItem[] = [];
    for (const r of rows) {
      const state = this.#syncState(
        { version: r.version, updatedAt: r.updatedAt, grace: () => this.#grace(r.config) },
        r.appliedVersion === null
          ? undefined
          : { terminalId: r.terminalId, appliedVersion: r.appliedVersion, appliedAt: r.appliedAt, rejectedVersion: r.rejectedVersion ?? 0, rejectedReason: r.rejectedReason, rejectedAt: r.rejectedAt },
        now,
      );
      if (state.drift) out.push({ terminalId: r.terminalId, stationId: r.stationId, presence: r.presence, ...state });
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------- writes

  /** What saving `config` as the layer would change, terminal by terminal; 400 (with paths) when it is invalid. */
  async dryRun(scope: Scope, id: string, config: unknown): Promise<DryRun> {
    const plan = await this.#plan(scope, id, config);
    return {
      terminals: plan.changes.map((c) => ({ terminalId: c.terminal.id, stationId: c.terminal.stationId, changes: diff(c.before, c.after) })),
      unchanged: plan.unchanged,
    };
  }

  /** Saves a new version of a layer and pushes the effective config to every terminal it changes. */
  async setLayer(scope: Scope, id: string, config: unknown, w: WriteOptions): Promise<{ layer: LayerView; pushed: Pushed[] }> {
    await this.load();
    const { committed, published } = await this.#writing.runExclusive(async () => {
      // planned under the lock: from the layers and desired configs no other save of this hub changes meanwhile
      const plan = await this.#plan(scope, id, config);
      const now = Date.now();
      const reason = w.reason ?? null;
      const stale = (version: number) => conflict(`the ${scope} config of ${id} changed since you read it (now version ${version})`, { version }, {
        code: 'error.config-stale',
        params: { version },
      });
      const committed = await this.store.transaction(async (tx) => {
        const current = await this.store.layer(scope, id, tx);
        const currentVersion = current?.version ?? 0;
        if (w.expectedVersion !== undefined && w.expectedVersion !== currentVersion) throw stale(currentVersion);
        const version = currentVersion + 1;
        const text = JSON.stringify(plan.layer);
        const pushed = await this.#writeDesired(plan.changes.map((c) => ({ terminal: c.terminal, after: c.after })), now, tx);
        const layer = { scope, targetId: id, version, config: text, updatedAt: now, updatedBy: w.by, reason, pushed: pushed.length };
        // another hub saved it between our read and this write (PostgreSQL)
        if (!(await this.store.saveLayer(layer, currentVersion, tx))) throw stale((await this.store.layer(scope, id))?.version ?? currentVersion);
        const before = current ? (JSON.parse(current.config) as JsonObject) : {};
        await w.audit?.(
          {
            before: { version: currentVersion, config: before },
            after: { version, config: plan.layer, reason, changes: diff(before, plan.layer), pushed: pushed.length },
          },
          tx,
        );
        return { version, pushed };
      });
      this.#remember(committed.pushed, now);
      this.log.info({ scope, id, version: committed.version, by: w.by, pushed: committed.pushed.length }, 'config layer saved');
      return { committed, published: this.#publish(committed.pushed) };
    });
    await published;
    return { layer: await this.layer(scope, id), pushed: committed.pushed.map(({ terminalId, version }) => ({ terminalId, version })) };
  }

  /**
   * Recomputes every active terminal (or those given) from the stored layers and pushes what changed. Run at start,
   * periodically and after placement changes: a moved or newly registered terminal gets its station's config.
   */
  async reconcile(terminalIds?: readonly string[]): Promise<Pushed[]> {
    // One read for all of them (an import places hundreds at once), not one round trip each.
    const terminals: TerminalPlace[] = terminalIds
      ? (await this.registry.terminals(terminalIds)).flatMap((t) => (t.state === 'active' ? [{ id: t.id, stationId: t.stationId }] : []))
      : await this.store.activeTerminals();
    return this.#reconcile(terminals);
  }

  /**
   * The periodic backstop (changes no event announced: a fleet imported by `kiosk-fleet import` into the running hub's
   * database, a station changed with the sqlite3 shell): the next `n` active terminals in id order, the cursor
   * wrapping after the last. Reconciling all 19,000 in one go took 50 ms on an idle hub and 85–165 ms during a
   * reconnect storm, every 10 s, with the event loop (acknowledgements, the API) waiting; a slice of 2,000 a second
   * covers them as often in about a tenth of that at a time.
   */
  async sweep(n: number): Promise<Pushed[]> {
    const terminals = await this.store.activeTerminalsAfter(this.#sweepCursor, n);
    this.#sweepCursor = terminals.length < n ? '' : terminals[terminals.length - 1]!.id;
    return terminals.length === 0 ? [] : this.#reconcile(terminals);
  }

  async #reconcile(terminals: readonly TerminalPlace[]): Promise<Pushed[]> {
    await this.load();
    const { pushed, published } = await this.#writing.runExclusive(async () => {
      const updates = await this.#reconcileUpdates(terminals);
      if (updates.length === 0) return { pushed: [], published: this.#publish([]) };
      const now = Date.now();
      const pushed = await this.store.transaction((tx) => this.#writeDesired(updates, now, tx));
      this.#remember(pushed, now);
      if (pushed.length > 0) this.log.info({ pushed: pushed.length }, 'effective config reconciled');
      return { pushed, published: this.#publish(pushed) };
    });
    await published;
    return pushed.map(({ terminalId, version }) => ({ terminalId, version }));
  }

  /** The terminals (of those given) whose effective config differs from their desired one, and that config. */
  async #reconcileUpdates(terminals: readonly TerminalPlace[]): Promise<{ terminal: TerminalPlace; after: JsonObject }[]> {
    const layers = await this.#layerMap();
    // Terminals without a layer of their own share their station's effective config: merged once per station. With
    // 19,000 terminals and a city layer, merging and canonicalising per terminal every 10 s was the
    // reconcile's whole cost.
    const byStation = new Map<string, { after: JsonObject; canonical: string }>();
    const updates: { terminal: TerminalPlace; after: JsonObject }[] = [];
    for (const t of terminals) {
      const own = layers.has(`terminal:${t.id}`);
      let eff = own ? undefined : byStation.get(t.stationId);
      if (!eff) {
        const merged = mergeLayers(this.#chain(t, layers)).config;
        eff = { after: merged, canonical: canonical(merged) };
        if (!own) byStation.set(t.stationId, eff);
      }
      const after = eff.after;
      const d = this.#desired.get(t.id);
      if (d ? this.#text(d.text).canonical === eff.canonical : Object.keys(after).length === 0) continue;
      const issues = validateEffective(after);
      if (issues.length > 0) {
        // e.g. a terminal moved under a station whose layers clash with its own: it keeps its last desired config
        if (!this.#invalidWarned.has(t.id)) {
          this.#invalidWarned.add(t.id);
          this.#counters?.invalid.inc({ where: 'reconcile' });
          this.log.warn({ terminalId: t.id, issues: issues.slice(0, 5) }, 'effective config invalid; the terminal keeps its last desired config');
        }
        continue;
      }
      this.#invalidWarned.delete(t.id);
      updates.push({ terminal: t, after });
    }
    return updates;
  }

  // ---------------------------------------------------------------------------------------------- internals

  async #level(scope: Scope, id: string): Promise<LayerRef['level']> {
    if (scope === 'terminal') {
      await this.registry.requireTerminal(id);
      return 'terminal';
    }
    const n = await this.registry.node(id);
    if (!n) throw notFound('node', id);
    return n.level;
  }

  /** Every stored layer, parsed once (a city-wide change merges the same few layers for a thousand terminals). */
  async #layerMap(): Promise<Map<string, ParsedLayer>> {
    const rows = await this.store.allLayers();
    return new Map(rows.map((l) => [`${l.scope}:${l.targetId}`, { version: l.version, config: JSON.parse(l.config) as JsonObject }]));
  }

  #chain(t: TerminalPlace, layers: Map<string, ParsedLayer>, override?: { scope: Scope; id: string; config: JsonObject }): Layer[] {
    const out: Layer[] = [];
    const levels = ['city', 'district', 'station'] as const;
    const add = (scope: Scope, id: string, level: Layer['level']): void => {
      if (override && override.scope === scope && override.id === id) {
        out.push({ level, id, version: (layers.get(`${scope}:${id}`)?.version ?? 0) + 1, config: override.config });
        return;
      }
      const row = layers.get(`${scope}:${id}`);
      if (row) out.push({ level, id, version: row.version, config: row.config });
    };
    nodePath(t.stationId).forEach((nid, i) => add('node', nid, levels[i]!));
    add('terminal', t.id, 'terminal');
    return out;
  }

  /** Validates a candidate layer and works out each affected terminal's effective config before and after. */
  async #plan(scope: Scope, id: string, config: unknown) {
    await this.#level(scope, id);
    const layerIssues = validateLayer(config);
    if (layerIssues.length > 0) {
      this.#counters?.invalid.inc({ where: 'layer' });
      this.log.info({ scope, id, issues: layerIssues.slice(0, 5) }, 'config refused: invalid layer');
      throw invalid(`the config is invalid: ${summary(layerIssues)}`, layerIssues.map((i) => ({ path: ['config', ...i.path], message: i.message })));
    }
    const layer = config as JsonObject;
    const layers = await this.#layerMap();
    let affected: TerminalPlace[];
    if (scope === 'terminal') {
      const t = await this.registry.requireTerminal(id);
      affected = t.state === 'active' ? [{ id: t.id, stationId: t.stationId }] : [];
    } else {
      affected = await this.store.terminalsUnder(id);
    }
    const changes: { terminal: TerminalPlace; before: JsonObject; after: JsonObject }[] = [];
    const issues: (Issue & { terminalId: string })[] = [];
    let bad = 0;
    let unchanged = 0;
    // terminals of one station without a terminal layer share their effective config: check each chain once
    const checked = new Map<string, Issue[]>();
    for (const t of affected) {
      const after = mergeLayers(this.#chain(t, layers, { scope, id, config: layer })).config;
      const key = canonical(after);
      let problems = checked.get(key);
      if (!problems) {
        problems = validateEffective(after);
        checked.set(key, problems);
      }
      if (problems.length > 0) {
        bad++;
        if (issues.length < MAX_TERMINAL_ISSUES) for (const p of problems) issues.push({ terminalId: t.id, path: ['config', ...p.path], message: p.message });
        continue;
      }
      const before = mergeLayers(this.#chain(t, layers)).config;
      if (canonical(before) === key) unchanged++;
      else changes.push({ terminal: t, before, after });
    }
    if (bad > 0) {
      this.#counters?.invalid.inc({ where: 'effective' });
      this.log.info({ scope, id, terminals: bad, issues: issues.slice(0, 5) }, 'config refused: invalid effective config');
      throw invalid(
        `the config would give ${bad} terminal(s) an invalid effective config: ${summary(issues)}`,
        issues.slice(0, MAX_TERMINAL_ISSUES * 4),
        bad,
      );
    }
    return { layer, changes, unchanged };
  }

  /**
   * Inside a transaction, under the write lock: a new desired version for each terminal whose effective config differs
   * from its desired one (compared with the copy in memory, exact under the lock), written in one batch.
   */
  async #writeDesired(updates: readonly { terminal: TerminalPlace; after: JsonObject }[], now: number, tx: Tx): Promise<Written[]> {
    const changed: { terminalId: string; after: JsonObject; text: string }[] = [];
    // a terminal named twice (registered and moved in one batch of changes) gets one new version, not two
    const seen = new Set<string>();
    for (const u of updates) {
      if (seen.has(u.terminal.id)) continue;
      seen.add(u.terminal.id);
      const d = this.#desired.get(u.terminal.id);
      if (d && this.#text(d.text).canonical === canonical(u.after)) continue;
      changed.push({ terminalId: u.terminal.id, after: u.after, text: JSON.stringify(u.after) });
    }
    await this.#dropWrittenElsewhere(changed, tx);
    const versions = await this.store.putDesired(changed.map((c) => ({ terminalId: c.terminalId, config: c.text })), now, tx);
    return changed.map((c, i) => ({ terminalId: c.terminalId, version: versions[i]!.version, config: c.after, text: c.text }));
  }

  /**
   * Another hub of the installation may have written these terminals' desired config since this hub's copy was
   * updated (its feed message not heard yet): a sweep here would then write the same config again as a new version.
   * The stored rows decide; those already holding the config are dropped from `changed` (the copy and this hub's
   * retained message follow when the feed message arrives: `refreshDesired`).
   */
  async #dropWrittenElsewhere(changed: { terminalId: string; after: JsonObject; text: string }[], tx: Tx): Promise<void> {
    if (changed.length === 0) return;
    const ids = changed.map((c) => c.terminalId);
    const stored = ids.length > 200
      ? await this.store.allDesired(tx).then((all) => {
          const wanted = new Set(ids);
          return all.filter((r) => wanted.has(r.terminalId));
        })
      : (await Promise.all(ids.map((id) => this.store.desired(id, tx)))).filter((r): r is DesiredRow => r !== undefined);
    const byId = new Map(stored.map((r) => [r.terminalId, r]));
    for (let i = changed.length - 1; i >= 0; i--) {
      const c = changed[i]!;
      const r = byId.get(c.terminalId);
      if (!r || (this.#desired.get(c.terminalId)?.version ?? 0) >= r.version) continue;
      if (this.#text(r.config).canonical === canonical(c.after)) changed.splice(i, 1);
    }
  }

  /** After the commit of `#writeDesired`'s transaction: the copy in memory follows (a rollback leaves it as it was). */
  #remember(written: readonly Written[], now: number): void {
    for (const w of written) this.#desired.set(w.terminalId, this.#cache({ terminalId: w.terminalId, version: w.version, config: w.text, updatedAt: now }));
  }

  /** Publishes batches in commit order (invariant 4); a failed publish is logged, the database still holds it. */
  #publish(batch: readonly Written[], announce = true): Promise<void> {
    if (batch.length === 0) return this.#publishing;
    this.#publishing = this.#publishing.then(async () => {
      await Promise.all(
        batch.map((p) =>
          this.broker.publish(p.terminalId, 'config/desired', { v: 1, version: p.version, config: p.config }).then(
            () => this.#counters?.pushed.inc(),
            (err: unknown) => this.log.error({ err, terminalId: p.terminalId }, 'config publish failed'),
          ),
        ),
      );
    });
    const done = this.#publishing;
    if (announce) this.opts.onPushed?.(batch.map(({ terminalId, version }) => ({ terminalId, version })));
    return done;
  }

  #syncState(d: { version: number; updatedAt: number; grace: () => number } | undefined, s: SyncRow | undefined, now: number): SyncState {
    const desiredVersion = d?.version ?? 0;
    const appliedVersion = s?.appliedVersion ?? 0;
    const rejected = s && s.rejectedVersion > 0 ? { version: s.rejectedVersion, reason: s.rejectedReason, at: s.rejectedAt } : null;
    const base = { desiredVersion, desiredAt: d?.updatedAt ?? null, appliedVersion, appliedAt: s?.appliedAt ?? null, rejected };
    if (!d || appliedVersion >= desiredVersion) return { ...base, status: 'in-sync', drift: null };
    const status = rejected && rejected.version >= desiredVersion ? 'rejected' : 'pending';
    const graceMs = d.grace();
    return { ...base, status, drift: now - d.updatedAt >= graceMs ? { since: d.updatedAt, graceMs } : null };
  }

  #grace(config: string): number {
    try {
      return this.#graceOf(JSON.parse(config) as TerminalConfig);
    } catch {
      return this.#graceMs;
    }
  }

  #graceOf(config: TerminalConfig): number {
    const m = config.alerts?.thresholds?.driftMinutes;
    return typeof m === 'number' ? m * 60_000 : this.#graceMs;
  }
}

function summary(issues: readonly Issue[]): string {
  const shown = issues.slice(0, 3).map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
  return shown.join('; ') + (issues.length > 3 ? `; and ${issues.length - 3} more` : '');
}

function invalid(message: string, issues: unknown[], terminals?: number) {
  const paths = issues.map((i) => ({ path: (i as { path?: PropertyKey[] }).path ?? [] }));
  return badRequest('invalid-config', message, { issues, ...(terminals === undefined ? {} : { terminals }) }, fieldsText('error.invalid-config', paths));
}

/** Freezes a parsed JSON value in place: a cached config is shared by many terminals and must not be changed. */
function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
