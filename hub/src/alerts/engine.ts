/**
 * The alert engine: reconciles the conditions the rules see with the alerts that are open, with an injected clock,
 * one terminal (and its station) at a time.
 *
 * What runs when: a terminal is evaluated again when something the rules judge it on changed (`markDirty`, from the
 * hub's change events: telemetry, presence, config, update status, registry), when a time-based rule may change its
 * mind about it (its deadline: offline or a peripheral in fault past the threshold, config drift past its grace, a
 * flapping window emptying), and when a maintenance or silence over it begins or ends; its station's rules run again
 * from a small in-memory record of every active terminal (type, station, presence, services). `evaluate()` is the
 * full pass: it rebuilds that record and evaluates every terminal, station and open alert (the first run, tests).
 * Measured with `pnpm bench connections` (19,000 terminals reporting every 30 s): the full pass every second took
 * a fifth of the hub's CPU and blocked the event loop for hundreds of milliseconds at a time.
 *
 * Invariants:
 * - One open alert per (subject, rule): a condition that persists refreshes its alert, it never opens a second one
 *   (and the unique `open_key` index backs this up).
 * - An open alert whose condition is gone is resolved by recovery (`resolution = 'recovery'`, kept in history).
 * - A subject in maintenance (the terminal, or a node above it) or under a silence of the rule opens nothing; an
 *   alert already open stays open until its condition clears or someone resolves it.
 * - An alert not acknowledged by its due time (opened + SLA of its severity) escalates once, to its district.
 * - Every change is written with its history row and its webhook deliveries in one transaction, and announced
 *   (live stream, webhook dispatcher) only after the commit.
 * - Runs of one engine never interleave (a mutex: the in-memory record is the run's), and two evaluations of one
 *   fault that do interleave (two hubs on one PostgreSQL database, a run racing a lifecycle action) still open it
 *   once: the unique `open_key` index with `insertAlert`'s ON CONFLICT DO NOTHING, the loser taking the open alert
 *   as the one it wanted. Lifecycle actions lock their alert, and the run locks the open alerts it reconciles, until
 *   the commit (store.ts), so an alert's history is written in the order its events committed: an alert resolved
 *   by hand while a run saw it recover is resolved once, and escalated at most once.
 * - Incremental equals full: once nothing is pending, a full pass at the same clock finds nothing to open, update,
 *   resolve or escalate (alerts.test.ts checks this after incremental runs). Evaluation is idempotent, so marking a
 *   terminal too often costs time, never correctness.
 */
import { isUnderNode, nodePath } from '@kiosk-fleet/protocol';
import { Mutex } from 'async-mutex';
import { transaction, type Engine, type Tx } from '../db/engine.ts';
import { conflict, badRequest, notFound } from '../errors.ts';
import type { Logger } from '../log.ts';
import {
  RULES,
  RULE_IDS,
  STATION_RULES,
  DEFAULT_SLA,
  MINUTE_MS,
  type Condition,
  type DriftView,
  type FailedUpdateView,
  type MemberView,
  type RuleId,
  type Sla,
  type Snapshot,
  type TerminalView,
  type Thresholds,
} from './rules/index.ts';
import type { AlertRow, AlertState, AlertStore, HistoryRow, MaintenanceRow, SilenceRow, SnapshotRow } from './store.ts';

export type AlertEvent = 'opened' | 'updated' | 'acknowledged' | 'assigned' | 'note' | 'self-test' | 'self-test-result' | 'escalated' | 'resolved';

export interface AlertChange {
  event: AlertEvent;
  alert: AlertRow;
  at: number;
}

/** Per terminal: thresholds and SLA from its effective config (config layers), defaults filled in. */
export interface TerminalSettings {
  thresholds: Thresholds;
  sla: Sla;
}

/** One terminal's config sync: its drift once past the grace period, and when that grace ends (null: in sync). */
export interface TerminalDrift {
  view: DriftView | null;
  graceEndsAt: number | null;
}

export interface EngineDeps {
  /** What transactions run on (the store's database). */
  engine: Engine;
  store: AlertStore;
  log: Logger;
  now?: () => number;
  settings(terminalId: string): TerminalSettings;
  /** The config sync of one terminal (config layers); the drift rule applies its own minutes on top. */
  drift(terminalId: string, now: number): TerminalDrift;
  /** Usernames of the district admins of a district, for the escalation record. */
  districtAdmins?(districtId: string): string[] | Promise<string[]>;
  /** Inside the transaction that made the changes (webhook deliveries are queued here, on `tx`). */
  beforeCommit?(changes: AlertChange[], tx: Tx): void | Promise<void>;
  /** After each commit that changed alerts. */
  onChanges?(changes: AlertChange[]): void;
}

export interface EvaluateResult {
  opened: number;
  updated: number;
  resolved: number;
  escalated: number;
  suppressed: number;
}

export interface RunOptions {
  /** Stop taking terminals once a run has used this much wall time (the rest stay pending); default: no limit. */
  budgetMs?: number;
}

export const SYSTEM_ACTOR = 'system';
const SEEN_EVERY_MS = 60_000;
const OVERDUE_EVERY_MS = 1000;
/** The budget is checked every this many terminals. */
const BUDGET_STRIDE = 32;

const TERMINAL_RULE_IDS = RULE_IDS.filter((id) => STATION_RULES[id] === undefined);
const STATION_RULE_IDS = RULE_IDS.filter((id) => STATION_RULES[id] !== undefined);

export function openKey(c: Pick<Condition, 'subjectKind' | 'subjectId' | 'rule'>): string {
  return `${c.subjectKind}:${c.subjectId}|${c.rule}`;
}

function parseOr<T>(s: string | null, fallback: T): T {
  if (s === null) return fallback;
  try {
    return JSON.parse(s) as T;
  } catch {
    return fallback;
  }
}

/** What the engine keeps of every active terminal between runs. */
interface Member {
  id: string;
  type: string;
  stationId: string;
  presence: TerminalView['presence'];
  services: readonly string[] | null;
}

/** A maintenance or silence active at the last run, and what it covers. */
interface Window {
  terminalId: string | null;
  nodeId: string;
}

export class AlertEngine {
  readonly store: AlertStore;
  readonly now: () => number;
  readonly #deps: EngineDeps;
  /** One run at a time: a run reads and rewrites the in-memory record below across its awaits. */
  readonly #runs = new Mutex();
  #primed = false;
  readonly #members = new Map<string, Member>();
  readonly #stations = new Map<string, Set<string>>();
  /** Terminals and stations to evaluate at the next run. */
  readonly #dirty = new Set<string>();
  readonly #dirtyStations = new Set<string>();
  /** Terminal → when a time-based rule may next change its mind about it. */
  readonly #due = new Map<string, number>();
  /** Maintenance (`m<id>`) and silences (`s<id>`) active at the last run. */
  #windows = new Map<string, Window>();
  #lastSeenSweep = 0;
  /** Escalations are looked for at most once a second between full passes (SLAs are in minutes). */
  #lastOverdueCheck = -Infinity;
  /** Services lists as stored (JSON text): most terminals share a handful, kept once each. */
  readonly #servicesByText = new Map<string, readonly string[]>();
  #sweep: Iterator<string> | null = null;

  constructor(deps: EngineDeps) {
    this.#deps = deps;
    this.store = deps.store;
    this.now = deps.now ?? Date.now;
  }

  // ------------------------------------------------------------------------------------------ evaluation

  /** Something the rules judge this terminal on changed: it is evaluated (with its station) at the next run. */
  markDirty(terminalId: string): void {
    if (this.#primed) this.#dirty.add(terminalId);
  }

  /** Terminals and stations waiting for a run. */
  get pending(): number {
    return this.#dirty.size + this.#dirtyStations.size;
  }

  /**
   * A backstop for changes no event announced (rows pruned by retention, a write made straight to the database):
   * the next `n` terminals in turn are evaluated at the next run, so every terminal is looked at now and then.
   */
  sweep(n: number): void {
    if (!this.#primed || this.#members.size === 0) return;
    for (let i = 0; i < n && i < this.#members.size; i++) {
      let next = this.#sweep?.next();
      if (!next || next.done) {
        this.#sweep = this.#members.keys();
        next = this.#sweep.next();
      }
      if (next.done) return;
      this.#dirty.add(next.value);
    }
  }

  /**
   * Drops the in-memory record: the next run rebuilds it from the database and is a full pass (a hub that became
   * the alerts' leader, whose record is stale or was never built).
   */
  forget(): void {
    this.#primed = false;
  }

  /** Resolves once no run is in progress. */
  idle(): Promise<void> {
    return this.#runs.waitForUnlock();
  }

  /** The full pass: every active terminal, every station, every open alert. */
  evaluate(): Promise<EvaluateResult> {
    return this.#runs.runExclusive(async () => {
      await this.#prime();
      this.#lastOverdueCheck = -Infinity;
      return this.#run({});
    });
  }

  /**
   * Evaluates what is pending (marked, fallen due, under a maintenance or silence that began or ended), escalates
   * what is overdue. The first run is the full pass.
   */
  run(opts: RunOptions = {}): Promise<EvaluateResult> {
    return this.#runs.runExclusive(() => this.#run(opts));
  }

  async #run(opts: RunOptions): Promise<EvaluateResult> {
    if (!this.#primed) await this.#prime();
    const now = this.now();
    const started = performance.now();
    const budget = opts.budgetMs ?? Infinity;
    const [maint, silences] = await Promise.all([this.activeMaintenance(now), this.store.activeSilences(now)]);
    this.#windowChanges(maint, silences);
    for (const [id, at] of this.#due) {
      if (at > now) continue;
      this.#due.delete(id);
      this.#dirty.add(id);
    }

    const views: TerminalView[] = [];
    const drift: DriftView[] = [];
    const failedUpdates: FailedUpdateView[] = [];
    const terminals = new Set<string>();
    const gone = new Set<string>();
    const stations = new Set<string>();
    // Terminals are read a stride at a time (one query each on PostgreSQL), the budget checked between strides.
    while (this.#dirty.size > 0) {
      if (terminals.size > 0 && performance.now() - started > budget) break;
      const ids: string[] = [];
      for (const id of this.#dirty) {
        ids.push(id);
        if (ids.length === BUDGET_STRIDE) break;
      }
      for (const id of ids) this.#dirty.delete(id);
      const [rows, updates] = await Promise.all([this.store.snapshots(ids), this.store.latestUpdates(ids)]);
      for (const id of ids) {
        terminals.add(id);
        const before = this.#members.get(id);
        const row = rows.get(id);
        if (!row) {
          if (before) stations.add(before.stationId);
          this.#forget(id);
          gone.add(id);
          continue;
        }
        const settings = this.#deps.settings(id);
        const flap = await this.#flapping(row, settings.thresholds, now);
        const view = this.#view(row, settings.thresholds, flap.flapping, maint);
        // Station rules judge only what a member record holds (type, station, presence, services; maintenance marks
        // its stations itself): a sample that changed none of it leaves the station as it was. Evaluating the station
        // on every sample ran the rules over all of its terminals (about 100 at 19,000 terminals) 633 times a second.
        if (!before || memberChanged(before, view)) {
          stations.add(view.stationId);
          if (before) stations.add(before.stationId);
        }
        this.#remember(view);
        views.push(view);
        const d = this.#deps.drift(id, now);
        if (d.view) drift.push(d.view);
        const failed = updates.get(id);
        if (failed?.state === 'failed') failedUpdates.push({ terminalId: failed.terminalId, at: failed.at, version: failed.version, error: failed.error });
        const due = Math.min(flap.due, this.#deadline(view, d, now));
        if (due < Infinity) this.#due.set(id, due);
        else this.#due.delete(id);
      }
    }
    for (const st of this.#dirtyStations) stations.add(st);
    this.#dirtyStations.clear();

    const conds: Condition[] = [];
    if (views.length > 0) {
      const snap: Snapshot = { now, terminals: views, drift, failedUpdates };
      for (const id of TERMINAL_RULE_IDS) this.#apply(id, () => RULES[id](snap), conds);
    }
    const members: MemberView[] = [];
    for (const st of stations) {
      for (const id of this.#stations.get(st) ?? []) {
        const m = this.#members.get(id)!;
        members.push({ id: m.id, type: m.type, stationId: m.stationId, presence: m.presence, services: m.services, inMaintenance: inMaintenance(maint, m.id, m.stationId) });
      }
    }
    if (members.length > 0) for (const id of STATION_RULE_IDS) this.#apply(id, () => STATION_RULES[id]!({ now, terminals: members }), conds);
    try {
      return await this.#reconcile(now, conds, { terminals, stations, gone }, maint, silences);
    } catch (err) {
      // Nothing of it committed (a deadlock two hubs ran into, a connection lost): what this run took is evaluated
      // again by the next one, not left to a change or the slow sweep.
      for (const id of terminals) this.#dirty.add(id);
      for (const st of stations) this.#dirtyStations.add(st);
      throw err;
    }
  }

  /** Rebuilds the in-memory record of every active terminal and marks everything for evaluation. */
  async #prime(): Promise<void> {
    this.#members.clear();
    this.#stations.clear();
    this.#due.clear();
    this.#dirty.clear();
    this.#dirtyStations.clear();
    this.#sweep = null;
    const [members, openSubjects] = await Promise.all([this.store.members(), this.store.openSubjects()]);
    for (const r of members) {
      this.#remember({ id: r.id, type: r.type, stationId: r.stationId, presence: (r.presence ?? 'unknown') as Member['presence'], services: this.#services(r.services) });
      this.#dirty.add(r.id);
    }
    for (const st of this.#stations.keys()) this.#dirtyStations.add(st);
    // open alerts of subjects that are gone (decommissioned terminals, stations left empty) are resolved too
    for (const a of openSubjects) {
      (a.subjectKind === 'terminal' ? this.#dirty : this.#dirtyStations).add(a.subjectId);
    }
    const now = this.now();
    const [maint, silences] = await Promise.all([this.activeMaintenance(now), this.store.activeSilences(now)]);
    this.#windows = this.#windowMap(maint, silences);
    this.#primed = true;
  }

  #services(text: string | null): readonly string[] | null {
    if (text === null) return null;
    let v = this.#servicesByText.get(text);
    if (v === undefined) {
      v = Object.freeze(parseOr<string[] | null>(text, null) ?? []);
      if (this.#servicesByText.size > 10_000) this.#servicesByText.clear();
      this.#servicesByText.set(text, v);
    }
    return v;
  }

  #remember(v: Pick<TerminalView, 'id' | 'type' | 'stationId' | 'presence' | 'services'>): void {
    const before = this.#members.get(v.id);
    if (before && before.stationId !== v.stationId) this.#stations.get(before.stationId)?.delete(v.id);
    this.#members.set(v.id, { id: v.id, type: v.type, stationId: v.stationId, presence: v.presence, services: v.services });
    let set = this.#stations.get(v.stationId);
    if (!set) this.#stations.set(v.stationId, (set = new Set()));
    set.add(v.id);
  }

  #forget(id: string): void {
    const m = this.#members.get(id);
    if (m) {
      const set = this.#stations.get(m.stationId);
      set?.delete(id);
      if (set?.size === 0) this.#stations.delete(m.stationId);
    }
    this.#members.delete(id);
    this.#due.delete(id);
  }

  #view(r: SnapshotRow, thresholds: Thresholds, flapping: boolean, maint: readonly MaintenanceRow[]): TerminalView {
    const host = parseOr<{ diskUsed?: number; diskTotal?: number; tempC?: number | null } | null>(r.host, null);
    return {
      id: r.id,
      type: r.type,
      stationId: r.stationId,
      presence: (r.presence ?? 'unknown') as TerminalView['presence'],
      presenceReason: r.presenceReason,
      presenceSince: r.presenceSince,
      flapping,
      host: host ? { diskUsed: host.diskUsed ?? 0, diskTotal: host.diskTotal ?? 0, tempC: host.tempC ?? null } : null,
      peripherals: parseOr(r.peripherals, null),
      services: this.#services(r.services),
      thresholds,
      inMaintenance: inMaintenance(maint, r.id, r.stationId),
      flooding: parseOr(r.flooding, null),
      credentialConflict: parseOr(r.credentialConflict, null),
    };
  }

  /**
   * A flapping threshold set down the tree is counted here (and the flag clears once enough transitions left the
   * window: that moment is the deadline); without one, presence's hub-wide flag decides.
   */
  async #flapping(r: SnapshotRow, thresholds: Thresholds, now: number): Promise<{ flapping: boolean; due: number }> {
    const flap = thresholds.flapping;
    if (!flap) return { flapping: r.flapping === 1, due: Infinity };
    const windowMs = flap.windowMinutes * MINUTE_MS;
    const at = await this.store.transitionTimes(r.id, now - windowMs);
    if (at.length <= flap.transitions) return { flapping: false, due: Infinity };
    return { flapping: true, due: at[at.length - flap.transitions - 1]! + windowMs };
  }

  /** When a time-based rule may next change its mind about this terminal (Infinity: only a change will). */
  #deadline(t: TerminalView, d: TerminalDrift, now: number): number {
    let due = Infinity;
    const later = (at: number): void => {
      if (at > now && at < due) due = at;
    };
    if ((t.presence === 'offline' || t.presence === 'stale') && t.presenceSince !== null) later(t.presenceSince + t.thresholds.offlineMinutes * MINUTE_MS);
    if (t.peripherals && t.presence !== 'offline') {
      for (const p of Object.values(t.peripherals)) if (p.status === 'fault') later(p.since + t.thresholds.peripheralFaultMinutes * MINUTE_MS);
    }
    if (d.graceEndsAt !== null) later(d.graceEndsAt);
    if (d.view) later(d.view.since + t.thresholds.driftMinutes * MINUTE_MS);
    return due;
  }

  /** Maintenance and silences that began or ended since the last run: what they cover is evaluated again. */
  #windowChanges(maint: readonly MaintenanceRow[], silences: readonly SilenceRow[]): void {
    const now = this.#windowMap(maint, silences);
    for (const [k, w] of now) if (!this.#windows.has(k)) this.#markUnder(w);
    for (const [k, w] of this.#windows) if (!now.has(k)) this.#markUnder(w);
    this.#windows = now;
  }

  #windowMap(maint: readonly MaintenanceRow[], silences: readonly SilenceRow[]): Map<string, Window> {
    const out = new Map<string, Window>();
    for (const m of maint) out.set(`m${m.id}`, m.targetKind === 'terminal' ? { terminalId: m.targetId, nodeId: m.nodeId } : { terminalId: null, nodeId: m.targetId });
    for (const s of silences) out.set(`s${s.id}`, { terminalId: null, nodeId: s.nodeId });
    return out;
  }

  #markUnder(w: Window): void {
    if (w.terminalId !== null) {
      this.#dirty.add(w.terminalId);
      const m = this.#members.get(w.terminalId);
      this.#dirtyStations.add(m?.stationId ?? w.nodeId);
      return;
    }
    for (const [st, ids] of this.#stations) {
      if (!isUnderNode(st, w.nodeId)) continue;
      this.#dirtyStations.add(st);
      for (const id of ids) this.#dirty.add(id);
    }
  }

  /** Runs one rule. A rule that throws is logged and skipped (the others still run). */
  #apply(id: RuleId, rule: () => Condition[], out: Condition[]): void {
    try {
      for (const c of rule()) out.push(c);
    } catch (err) {
      this.#deps.log.error({ err, rule: id }, 'alert rule failed');
    }
  }

  /**
   * Opens, refreshes and resolves the alerts of the subjects evaluated (their terminals and stations), escalates the
   * overdue ones, and marks every other open alert as still seen (their conditions held at their last evaluation).
   */
  async #reconcile(
    now: number,
    conds: readonly Condition[],
    scope: { terminals: ReadonlySet<string>; stations: ReadonlySet<string>; gone: ReadonlySet<string> },
    maint: readonly MaintenanceRow[],
    silences: readonly SilenceRow[],
  ): Promise<EvaluateResult> {
    const result: EvaluateResult = { opened: 0, updated: 0, resolved: 0, escalated: 0, suppressed: 0 };
    const changes = await transaction(this.#deps.engine, async (tx) => {
      const changes: AlertChange[] = [];
      const open = new Map<string, AlertRow>();
      for (const a of await this.store.openOf({ terminals: [...scope.terminals], nodes: [...scope.stations] }, tx)) open.set(a.openKey!, a);
      const present = new Set<string>();
      for (const c of conds) {
        const key = openKey(c);
        if (present.has(key)) continue;
        present.add(key);
        const existing = open.get(key);
        if (existing) {
          const details = JSON.stringify(c.details);
          if (existing.details !== details || existing.severity !== c.severity || existing.title !== c.title) {
            await this.store.refresh(existing.id, { severity: c.severity, title: c.title, details }, now, tx);
            changes.push({ event: 'updated', alert: await this.#get(existing.id, tx), at: now });
            result.updated++;
          } else if (now - existing.lastSeenAt >= SEEN_EVERY_MS) {
            // a coarse "still there" mark: writing every open alert on every run would be write traffic for nothing
            await this.store.markSeen(existing.id, now, tx);
          }
          continue;
        }
        const terminalId = c.subjectKind === 'terminal' ? c.subjectId : null;
        if (inMaintenance(maint, terminalId, c.nodeId) || silenced(silences, c.rule, c.nodeId)) {
          result.suppressed++;
          continue;
        }
        const sla = terminalId ? this.#deps.settings(terminalId).sla : DEFAULT_SLA;
        const due = now + sla[c.severity] * MINUTE_MS;
        const id = await this.store.insertAlert(
          { openKey: key, subjectKind: c.subjectKind, subjectId: c.subjectId, nodeId: c.nodeId, rule: c.rule, severity: c.severity, title: c.title, details: JSON.stringify(c.details), at: now, dueAt: due },
          tx,
        );
        // null: another evaluation (another hub) opened this fault since we looked; its alert is the one
        if (id === null) continue;
        await this.#history(id, now, SYSTEM_ACTOR, 'opened', null, { severity: c.severity, details: c.details }, tx);
        changes.push({ event: 'opened', alert: await this.#get(id, tx), at: now });
        result.opened++;
      }
      for (const [key, a] of open) {
        if (present.has(key)) continue;
        // A decommissioned terminal's alerts close too, but the history says why: it did not get better, it went.
        const gone = a.subjectKind === 'terminal' && scope.gone.has(a.subjectId);
        if (!(await this.store.resolve(a.id, { at: now, by: SYSTEM_ACTOR, resolution: 'recovery', note: gone ? 'terminal decommissioned' : null }, tx))) continue;
        await this.#history(a.id, now, SYSTEM_ACTOR, 'resolved', null, gone ? { resolution: 'recovery', reason: 'decommissioned' } : { resolution: 'recovery' }, tx);
        changes.push({ event: 'resolved', alert: await this.#get(a.id, tx), at: now });
        result.resolved++;
      }
      let overdue: AlertRow[] = [];
      // (a clock set back must not stop the checks until it catches up)
      if (Math.abs(now - this.#lastOverdueCheck) >= OVERDUE_EVERY_MS) {
        overdue = await this.store.overdue(now, tx);
        this.#lastOverdueCheck = now;
      }
      for (const a of overdue) {
        const district = districtOf(a.nodeId);
        if (!(await this.store.escalate(a.id, now, district, tx))) continue;
        const admins = district ? ((await this.#deps.districtAdmins?.(district)) ?? []) : [];
        await this.#history(a.id, now, SYSTEM_ACTOR, 'escalated', null, { to: district, admins, dueAt: new Date(a.dueAt).toISOString() }, tx);
        changes.push({ event: 'escalated', alert: await this.#get(a.id, tx), at: now });
        result.escalated++;
      }
      if (this.pending === 0 && now - this.#lastSeenSweep >= SEEN_EVERY_MS) {
        await this.store.markAllSeen(now, now - SEEN_EVERY_MS, tx);
        this.#lastSeenSweep = now;
      }
      if (changes.length > 0) await this.#deps.beforeCommit?.(changes, tx);
      return changes;
    });
    this.#announce(changes);
    return result;
  }

  // ------------------------------------------------------------------------------------------ lifecycle

  alert(id: number): Promise<AlertRow | undefined> {
    return this.store.alert(id);
  }

  history(id: number): Promise<HistoryRow[]> {
    return this.store.history(id);
  }

  acknowledge(id: number, actor: string, note: string | null = null): Promise<AlertRow> {
    return this.#act(id, async (a, now, tx) => {
      if (a.state === 'resolved') throw conflict(`alert ${id} is resolved`, { state: a.state });
      if (a.acknowledgedAt !== null) throw conflict(`alert ${id} was already acknowledged by ${a.acknowledgedBy}`, { state: a.state });
      await this.store.acknowledge(id, now, actor, tx);
      await this.#history(id, now, actor, 'acknowledged', note, null, tx);
      return 'acknowledged';
    });
  }

  assign(id: number, to: string, actor: string, note: string | null = null): Promise<AlertRow> {
    return this.#act(id, async (a, now, tx) => {
      if (a.state === 'resolved') throw conflict(`alert ${id} is resolved`, { state: a.state });
      await this.store.assign(id, to, now, actor, tx);
      await this.#history(id, now, actor, 'assigned', note, { to, from: a.assignedTo }, tx);
      return 'assigned';
    });
  }

  async resolve(id: number, actor: string, note: string): Promise<AlertRow> {
    if (note.trim() === '') throw badRequest('invalid-request', 'resolving by hand needs a note', { path: ['note'] });
    return this.#act(id, async (a, now, tx) => {
      if (a.state === 'resolved') throw conflict(`alert ${id} is already resolved`, { state: a.state });
      await this.store.resolve(id, { at: now, by: actor, resolution: 'manual', note }, tx);
      await this.#history(id, now, actor, 'resolved', note, { resolution: 'manual' }, tx);
      // a condition that persists opens a new alert at the next run
      if (a.subjectKind === 'terminal') this.markDirty(a.subjectId);
      else if (this.#primed) this.#dirtyStations.add(a.subjectId);
      return 'resolved';
    });
  }

  note(id: number, actor: string, note: string): Promise<AlertRow> {
    return this.#act(id, async (_a, now, tx) => {
      await this.store.touch(id, now, tx);
      await this.#history(id, now, actor, 'note', note, null, tx);
      return 'note';
    });
  }

  /**
   * Records the self-test commands sent for the alert (one per terminal: a station alert tests each terminal that
   * should offer the lost service); each result is read from its command when the alert is shown.
   */
  selfTest(id: number, actor: string, commands: readonly { commandId: string; terminalId: string }[]): Promise<AlertRow> {
    return this.#act(id, async (_a, now, tx) => {
      await this.store.touch(id, now, tx);
      for (const c of commands) await this.#history(id, now, actor, 'self-test', null, c, tx);
      return 'self-test';
    });
  }

  /**
   * A command finished: when it was a self-test run for an alert, its outcome goes into the alert's history (the
   * full result stays on the command). Returns the alert id, or null when the command was not an alert's.
   */
  async selfTestDone(commandId: string, status: string, summary: unknown): Promise<number | null> {
    const alertId = await this.store.selfTestAlert(commandId);
    if (alertId === undefined) return null;
    await this.#act(alertId, async (_a, now, tx) => {
      await this.store.touch(alertId, now, tx);
      await this.#history(alertId, now, SYSTEM_ACTOR, 'self-test-result', null, { commandId, status, summary }, tx);
      return 'self-test-result';
    });
    return alertId;
  }

  /** Reads, checks and changes the alert under its lock, queues the webhooks in the same transaction, announces after. */
  async #act(id: number, fn: (a: AlertRow, now: number, tx: Tx) => Promise<AlertEvent>): Promise<AlertRow> {
    const now = this.now();
    const change = await transaction(this.#deps.engine, async (tx) => {
      const a = await this.store.lockAlert(id, tx);
      if (!a) throw notFound('alert', String(id));
      const event = await fn(a, now, tx);
      const ch: AlertChange = { event, alert: await this.#get(id, tx), at: now };
      await this.#deps.beforeCommit?.([ch], tx);
      return ch;
    });
    this.#announce([change]);
    return change.alert;
  }

  // ------------------------------------------------------------------------------------------ maintenance, silences

  activeMaintenance(now = this.now()): Promise<MaintenanceRow[]> {
    return this.store.activeMaintenance(now);
  }

  async addMaintenance(
    m: { targetKind: 'terminal' | 'node'; targetId: string; nodeId: string; reason: string; startsAt: number; endsAt: number },
    actor: string,
    tx?: Tx,
  ): Promise<MaintenanceRow> {
    const now = this.now();
    if (m.endsAt <= m.startsAt) throw badRequest('invalid-request', 'endsAt must be after startsAt', { path: ['endsAt'] });
    if (m.endsAt <= now) throw badRequest('invalid-request', 'endsAt must be in the future', { path: ['endsAt'] });
    return this.store.addMaintenance({ ...m, createdBy: actor, createdAt: now }, tx);
  }

  /** Ends a maintenance now (a planned end in the past stays as it was). */
  async endMaintenance(id: number, tx?: Tx): Promise<MaintenanceRow> {
    const m = await this.store.endMaintenance(id, this.now(), tx);
    if (!m) throw notFound('maintenance', String(id));
    return m;
  }

  async addSilence(s: { nodeId: string; rule: RuleId | '*'; until: number; reason: string | null }, actor: string, tx?: Tx): Promise<SilenceRow> {
    const now = this.now();
    if (s.until <= now) throw badRequest('invalid-request', 'until must be in the future', { path: ['until'] });
    return this.store.addSilence({ ...s, createdBy: actor, createdAt: now }, tx);
  }

  async endSilence(id: number, tx?: Tx): Promise<SilenceRow> {
    const x = await this.store.endSilence(id, this.now(), tx);
    if (!x) throw notFound('silence', String(id));
    return x;
  }

  // ------------------------------------------------------------------------------------------ helpers

  async #get(id: number, tx: Tx): Promise<AlertRow> {
    return (await this.store.alert(id, tx))!;
  }

  #history(id: number, at: number, actor: string, action: string, note: string | null, data: unknown, tx: Tx): Promise<void> {
    return this.store.appendHistory({ alertId: id, at, actor, action, note, data: data === null ? null : JSON.stringify(data) }, tx);
  }

  #announce(changes: AlertChange[]): void {
    if (changes.length === 0) return;
    try {
      this.#deps.onChanges?.(changes);
    } catch (err) {
      this.#deps.log.error({ err }, 'alert change listener failed');
    }
  }
}

/** Whether a terminal's evaluation changed anything its station's rules read. */
function memberChanged(m: Member, v: Pick<TerminalView, 'type' | 'stationId' | 'presence' | 'services'>): boolean {
  if (m.type !== v.type || m.stationId !== v.stationId || m.presence !== v.presence) return true;
  const a = m.services;
  const b = v.services;
  if (a === b) return false;
  if (a === null || b === null || a.length !== b.length) return true;
  return a.some((sv, i) => sv !== b[i]);
}

/** The district above a station (or the district itself); null for the city. */
export function districtOf(nodeId: string): string | null {
  return nodePath(nodeId)[1] ?? null;
}

export function inMaintenance(active: readonly MaintenanceRow[], terminalId: string | null, nodeId: string): boolean {
  if (active.length === 0) return false;
  const ancestors = new Set(nodePath(nodeId));
  return active.some((m) => (m.targetKind === 'terminal' ? m.targetId === terminalId : ancestors.has(m.targetId)));
}

export function silenced(active: readonly SilenceRow[], rule: string, nodeId: string): boolean {
  if (active.length === 0) return false;
  const ancestors = new Set(nodePath(nodeId));
  return active.some((s) => (s.rule === '*' || s.rule === rule) && ancestors.has(s.nodeId));
}

export function isOverdue(a: Pick<AlertRow, 'state' | 'acknowledgedAt' | 'dueAt'>, now: number): boolean {
  return a.state !== 'resolved' && a.acknowledgedAt === null && now >= a.dueAt;
}

export type { AlertState };
