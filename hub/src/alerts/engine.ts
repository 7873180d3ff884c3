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
 * - Incremental equals full: once nothing is pending, a full pass at the same clock finds nothing to open, update,
 *   resolve or escalate (alerts.test.ts checks this after incremental runs). Evaluation is idempotent, so marking a
 *   terminal too often costs time, never correctness.
 */
import { isUnderNode, nodePath } from '@kiosk-fleet/protocol';
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
  store: AlertStore;
  log: Logger;
  now?: () => number;
  settings(terminalId: string): TerminalSettings;
  /** The config sync of one terminal (config layers); the drift rule applies its own minutes on top. */
  drift(terminalId: string, now: number): TerminalDrift;
  /** Usernames of the district admins of a district, for the escalation record. */
  districtAdmins?(districtId: string): string[];
  /** Inside the transaction that made the changes (webhook deliveries are queued here). */
  beforeCommit?(changes: AlertChange[]): void;
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

interface MemberRow {
  id: string;
  type: string;
  stationId: string;
  presence: string | null;
  services: string | null;
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

  /** The full pass: every active terminal, every station, every open alert. */
  evaluate(): EvaluateResult {
    this.#prime();
    this.#lastOverdueCheck = -Infinity;
    return this.run();
  }

  /**
   * Evaluates what is pending (marked, fallen due, under a maintenance or silence that began or ended), escalates
   * what is overdue. The first run is the full pass.
   */
  run(opts: RunOptions = {}): EvaluateResult {
    if (!this.#primed) this.#prime();
    const now = this.now();
    const started = performance.now();
    const budget = opts.budgetMs ?? Infinity;
    const maint = this.activeMaintenance(now);
    const silences = this.store.s.activeSilences.all(now) as SilenceRow[];
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
    let n = 0;
    for (const id of this.#dirty) {
      if (n++ % BUDGET_STRIDE === 0 && n > 1 && performance.now() - started > budget) break;
      this.#dirty.delete(id);
      terminals.add(id);
      const before = this.#members.get(id);
      const row = this.store.s.snapshotOne.get(id) as SnapshotRow | undefined;
      if (!row) {
        if (before) stations.add(before.stationId);
        this.#forget(id);
        gone.add(id);
        continue;
      }
      const settings = this.#deps.settings(id);
      const flap = this.#flapping(row, settings.thresholds, now);
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
      const failed = this.store.s.failedUpdate.get(id) as (FailedUpdateView & { state: string }) | undefined;
      if (failed?.state === 'failed') failedUpdates.push({ terminalId: failed.terminalId, at: failed.at, version: failed.version, error: failed.error });
      const due = Math.min(flap.due, this.#deadline(view, d, now));
      if (due < Infinity) this.#due.set(id, due);
      else this.#due.delete(id);
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
    return this.#reconcile(now, conds, { terminals, stations, gone }, maint, silences);
  }

  /** Rebuilds the in-memory record of every active terminal and marks everything for evaluation. */
  #prime(): void {
    this.#members.clear();
    this.#stations.clear();
    this.#due.clear();
    this.#dirty.clear();
    this.#dirtyStations.clear();
    this.#sweep = null;
    for (const r of this.store.s.members.all() as MemberRow[]) {
      this.#remember({ id: r.id, type: r.type, stationId: r.stationId, presence: (r.presence ?? 'unknown') as Member['presence'], services: this.#services(r.services) });
      this.#dirty.add(r.id);
    }
    for (const st of this.#stations.keys()) this.#dirtyStations.add(st);
    // open alerts of subjects that are gone (decommissioned terminals, stations left empty) are resolved too
    for (const a of this.store.s.openSubjects.all() as { subjectKind: string; subjectId: string }[]) {
      (a.subjectKind === 'terminal' ? this.#dirty : this.#dirtyStations).add(a.subjectId);
    }
    const now = this.now();
    this.#windows = this.#windowMap(this.activeMaintenance(now), this.store.s.activeSilences.all(now) as SilenceRow[]);
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
  #flapping(r: SnapshotRow, thresholds: Thresholds, now: number): { flapping: boolean; due: number } {
    const flap = thresholds.flapping;
    if (!flap) return { flapping: r.flapping === 1, due: Infinity };
    const windowMs = flap.windowMinutes * MINUTE_MS;
    const at = (this.store.s.transitionTimes.all(r.id, now - windowMs) as { at: number }[]).map((x) => x.at);
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
  #reconcile(
    now: number,
    conds: readonly Condition[],
    scope: { terminals: ReadonlySet<string>; stations: ReadonlySet<string>; gone: ReadonlySet<string> },
    maint: readonly MaintenanceRow[],
    silences: readonly SilenceRow[],
  ): EvaluateResult {
    const changes: AlertChange[] = [];
    const result: EvaluateResult = { opened: 0, updated: 0, resolved: 0, escalated: 0, suppressed: 0 };
    this.store.db.transaction(() => {
      const open = new Map<string, AlertRow>();
      for (const id of scope.terminals) for (const a of this.store.s.openOf.all(id, 'terminal') as AlertRow[]) open.set(a.openKey!, a);
      for (const id of scope.stations) for (const a of this.store.s.openOf.all(id, 'node') as AlertRow[]) open.set(a.openKey!, a);
      const present = new Set<string>();
      for (const c of conds) {
        const key = openKey(c);
        if (present.has(key)) continue;
        present.add(key);
        const existing = open.get(key);
        if (existing) {
          const details = JSON.stringify(c.details);
          if (existing.details !== details || existing.severity !== c.severity || existing.title !== c.title) {
            this.store.s.refresh.run(c.severity, c.title, details, now, now, existing.id);
            changes.push({ event: 'updated', alert: this.#get(existing.id), at: now });
            result.updated++;
          } else if (now - existing.lastSeenAt >= SEEN_EVERY_MS) {
            // a coarse "still there" mark: writing every open alert on every run would be write traffic for nothing
            this.store.s.seen.run(now, existing.id);
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
        const { id } = this.store.s.insertAlert.get(key, c.subjectKind, c.subjectId, c.nodeId, c.rule, c.severity, c.title, JSON.stringify(c.details), now, now, due, now) as { id: number };
        this.#history(id, now, SYSTEM_ACTOR, 'opened', null, { severity: c.severity, details: c.details });
        changes.push({ event: 'opened', alert: this.#get(id), at: now });
        result.opened++;
      }
      for (const [key, a] of open) {
        if (present.has(key)) continue;
        // A decommissioned terminal's alerts close too, but the history says why: it did not get better, it went.
        const gone = a.subjectKind === 'terminal' && scope.gone.has(a.subjectId);
        this.store.s.resolve.run(now, SYSTEM_ACTOR, 'recovery', gone ? 'terminal decommissioned' : null, now, a.id);
        this.#history(a.id, now, SYSTEM_ACTOR, 'resolved', null, gone ? { resolution: 'recovery', reason: 'decommissioned' } : { resolution: 'recovery' });
        changes.push({ event: 'resolved', alert: this.#get(a.id), at: now });
        result.resolved++;
      }
      let overdue: AlertRow[] = [];
      // (a clock set back must not stop the checks until it catches up)
      if (Math.abs(now - this.#lastOverdueCheck) >= OVERDUE_EVERY_MS) {
        overdue = this.store.s.overdue.all(now) as AlertRow[];
        this.#lastOverdueCheck = now;
      }
      for (const a of overdue) {
        const district = districtOf(a.nodeId);
        const admins = district ? (this.#deps.districtAdmins?.(district) ?? []) : [];
        this.store.s.escalate.run(now, district, now, a.id);
        this.#history(a.id, now, SYSTEM_ACTOR, 'escalated', null, { to: district, admins, dueAt: new Date(a.dueAt).toISOString() });
        changes.push({ event: 'escalated', alert: this.#get(a.id), at: now });
        result.escalated++;
      }
      if (this.pending === 0 && now - this.#lastSeenSweep >= SEEN_EVERY_MS) {
        this.store.s.seenAll.run(now, now - SEEN_EVERY_MS);
        this.#lastSeenSweep = now;
      }
      if (changes.length > 0) this.#deps.beforeCommit?.(changes);
    })();
    this.#announce(changes);
    return result;
  }

  // ------------------------------------------------------------------------------------------ lifecycle

  alert(id: number): AlertRow | undefined {
    return this.store.s.alert.get(id) as AlertRow | undefined;
  }

  history(id: number): HistoryRow[] {
    return this.store.s.history.all(id) as HistoryRow[];
  }

  acknowledge(id: number, actor: string, note: string | null = null): AlertRow {
    return this.#act(id, (a, now) => {
      if (a.state === 'resolved') throw conflict(`alert ${id} is resolved`, { state: a.state });
      if (a.acknowledgedAt !== null) throw conflict(`alert ${id} was already acknowledged by ${a.acknowledgedBy}`, { state: a.state });
      this.store.s.acknowledge.run(now, actor, now, id);
      this.#history(id, now, actor, 'acknowledged', note, null);
      return 'acknowledged';
    });
  }

  assign(id: number, to: string, actor: string, note: string | null = null): AlertRow {
    return this.#act(id, (a, now) => {
      if (a.state === 'resolved') throw conflict(`alert ${id} is resolved`, { state: a.state });
      this.store.s.assign.run(to, now, now, actor, now, id);
      this.#history(id, now, actor, 'assigned', note, { to, from: a.assignedTo });
      return 'assigned';
    });
  }

  resolve(id: number, actor: string, note: string): AlertRow {
    if (note.trim() === '') throw badRequest('invalid-request', 'resolving by hand needs a note', { path: ['note'] });
    return this.#act(id, (a, now) => {
      if (a.state === 'resolved') throw conflict(`alert ${id} is already resolved`, { state: a.state });
      this.store.s.resolve.run(now, actor, 'manual', note, now, id);
      this.#history(id, now, actor, 'resolved', note, { resolution: 'manual' });
      // a condition that persists opens a new alert at the next run
      if (a.subjectKind === 'terminal') this.markDirty(a.subjectId);
      else if (this.#primed) this.#dirtyStations.add(a.subjectId);
      return 'resolved';
    });
  }

  note(id: number, actor: string, note: string): AlertRow {
    return this.#act(id, (_a, now) => {
      this.store.s.touch.run(now, id);
      this.#history(id, now, actor, 'note', note, null);
      return 'note';
    });
  }

  /** Records a self-test command sent for the alert; its result is read from the command when the alert is shown. */
  selfTest(id: number, actor: string, commandId: string): AlertRow {
    return this.#act(id, (_a, now) => {
      this.store.s.touch.run(now, id);
      this.#history(id, now, actor, 'self-test', null, { commandId });
      return 'self-test';
    });
  }

  /**
   * A command finished: when it was a self-test run for an alert, its outcome goes into the alert's history (the
   * full result stays on the command). Returns the alert id, or null when the command was not an alert's.
   */
  selfTestDone(commandId: string, status: string, summary: unknown): number | null {
    const row = this.store.s.selfTestAlert.get(commandId) as { alertId: number } | undefined;
    if (!row) return null;
    this.#act(row.alertId, (_a, now) => {
      this.store.s.touch.run(now, row.alertId);
      this.#history(row.alertId, now, SYSTEM_ACTOR, 'self-test-result', null, { commandId, status, summary });
      return 'self-test-result';
    });
    return row.alertId;
  }

  #act(id: number, fn: (a: AlertRow, now: number) => AlertEvent): AlertRow {
    const now = this.now();
    let event: AlertEvent = 'note';
    const row = this.store.db.transaction(() => {
      const a = this.alert(id);
      if (!a) throw notFound('alert', String(id));
      event = fn(a, now);
      const row = this.#get(id);
      this.#deps.beforeCommit?.([{ event, alert: row, at: now }]);
      return row;
    })();
    this.#announce([{ event, alert: row, at: now }]);
    return row;
  }

  // ------------------------------------------------------------------------------------------ maintenance, silences

  activeMaintenance(now = this.now()): MaintenanceRow[] {
    return this.store.s.activeMaintenance.all(now, now) as MaintenanceRow[];
  }

  addMaintenance(m: { targetKind: 'terminal' | 'node'; targetId: string; nodeId: string; reason: string; startsAt: number; endsAt: number }, actor: string): MaintenanceRow {
    const now = this.now();
    if (m.endsAt <= m.startsAt) throw badRequest('invalid-request', 'endsAt must be after startsAt', { path: ['endsAt'] });
    if (m.endsAt <= now) throw badRequest('invalid-request', 'endsAt must be in the future', { path: ['endsAt'] });
    const { id } = this.store.s.insertMaintenance.get(m.targetKind, m.targetId, m.nodeId, m.reason, m.startsAt, m.endsAt, actor, now) as { id: number };
    return this.store.s.maintenanceById.get(id) as MaintenanceRow;
  }

  /** Ends a maintenance now (a planned end in the past stays as it was). */
  endMaintenance(id: number): MaintenanceRow {
    const now = this.now();
    const m = this.store.s.maintenanceById.get(id) as MaintenanceRow | undefined;
    if (!m) throw notFound('maintenance', String(id));
    this.store.s.endMaintenance.run(Math.max(now, m.startsAt), id, now);
    return this.store.s.maintenanceById.get(id) as MaintenanceRow;
  }

  addSilence(s: { nodeId: string; rule: RuleId | '*'; until: number; reason: string | null }, actor: string): SilenceRow {
    const now = this.now();
    if (s.until <= now) throw badRequest('invalid-request', 'until must be in the future', { path: ['until'] });
    const { id } = this.store.s.insertSilence.get(s.nodeId, s.rule, s.until, s.reason, actor, now) as { id: number };
    return this.store.s.silenceById.get(id) as SilenceRow;
  }

  endSilence(id: number): SilenceRow {
    const now = this.now();
    if (!this.store.s.silenceById.get(id)) throw notFound('silence', String(id));
    this.store.s.endSilence.run(now, id, now);
    return this.store.s.silenceById.get(id) as SilenceRow;
  }

  // ------------------------------------------------------------------------------------------ helpers

  #get(id: number): AlertRow {
    return this.store.s.alert.get(id) as AlertRow;
  }

  #history(id: number, at: number, actor: string, action: string, note: string | null, data: unknown): void {
    this.store.s.insertHistory.run(id, at, actor, action, note, data === null ? null : JSON.stringify(data));
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
