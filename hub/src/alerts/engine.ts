/**
 * The alert engine: reconciles the conditions the rules see now with the alerts that are open, on a timer and soon
 * after changes, with an injected clock.
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
 */
import { nodePath } from '@kiosk-fleet/protocol';
import { conflict, badRequest, notFound } from '../errors.ts';
import type { Logger } from '../log.ts';
import { RULES, RULE_IDS, DEFAULT_SLA, MINUTE_MS, type Condition, type DriftView, type RuleId, type Sla, type Snapshot, type TerminalView, type Thresholds } from './rules/index.ts';
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

export interface EngineDeps {
  store: AlertStore;
  log: Logger;
  now?: () => number;
  settings(terminalId: string): TerminalSettings;
  /** Drifting terminals (config layers); the drift rule applies its own minutes on top. */
  drift(now: number): DriftView[];
  /** Usernames of the district admins of a district, for the escalation record. */
  districtAdmins?(districtId: string): string[];
  /** Inside the transaction that made the changes (webhook deliveries are queued here). */
  beforeCommit?(changes: AlertChange[]): void;
  /** After each commit that changed alerts. */
  onChanges?(changes: AlertChange[]): void;
}

export interface EvaluateResult {
  opened: number;
  resolved: number;
  escalated: number;
  suppressed: number;
}

export const SYSTEM_ACTOR = 'system';
const SEEN_EVERY_MS = 60_000;

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

export class AlertEngine {
  readonly store: AlertStore;
  readonly now: () => number;
  readonly #deps: EngineDeps;

  constructor(deps: EngineDeps) {
    this.#deps = deps;
    this.store = deps.store;
    this.now = deps.now ?? Date.now;
  }

  // ------------------------------------------------------------------------------------------ evaluation

  snapshot(now: number): Snapshot {
    const maint = this.activeMaintenance(now);
    const rows = this.store.s.snapshot.all() as SnapshotRow[];
    const terminals: TerminalView[] = rows.map((r) => {
      const thresholds = this.#deps.settings(r.id).thresholds;
      const flap = thresholds.flapping;
      // A flapping threshold set down the tree is counted here; without one, presence's hub-wide flag decides.
      const flapping = flap
        ? (this.store.s.transitionsSince.get(r.id, now - flap.windowMinutes * MINUTE_MS) as { n: number }).n > flap.transitions
        : r.flapping === 1;
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
        services: parseOr<string[] | null>(r.services, null),
        thresholds,
        inMaintenance: inMaintenance(maint, r.id, r.stationId),
      };
    });
    return { now, terminals, drift: this.#deps.drift(now), failedUpdates: this.store.s.failedUpdates.all() as Snapshot['failedUpdates'] };
  }

  /** Every rule over the current state. A rule that throws is logged and skipped (the others still run). */
  conditions(snap: Snapshot): Condition[] {
    const out: Condition[] = [];
    for (const id of RULE_IDS) {
      try {
        out.push(...RULES[id](snap));
      } catch (err) {
        this.#deps.log.error({ err, rule: id }, 'alert rule failed');
      }
    }
    return out;
  }

  evaluate(): EvaluateResult {
    const now = this.now();
    const snap = this.snapshot(now);
    const conds = this.conditions(snap);
    const maint = this.activeMaintenance(now);
    const silences = this.store.s.activeSilences.all(now) as SilenceRow[];
    const changes: AlertChange[] = [];
    const result: EvaluateResult = { opened: 0, resolved: 0, escalated: 0, suppressed: 0 };
    this.store.db.transaction(() => {
      const open = new Map((this.store.s.openAlerts.all() as AlertRow[]).map((a) => [a.openKey!, a]));
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
      const active = new Set(snap.terminals.map((t) => t.id));
      for (const [key, a] of open) {
        if (present.has(key)) continue;
        // A decommissioned terminal's alerts close too, but the history says why: it did not get better, it went.
        const gone = a.subjectKind === 'terminal' && !active.has(a.subjectId);
        this.store.s.resolve.run(now, SYSTEM_ACTOR, 'recovery', gone ? 'terminal decommissioned' : null, now, a.id);
        this.#history(a.id, now, SYSTEM_ACTOR, 'resolved', null, gone ? { resolution: 'recovery', reason: 'decommissioned' } : { resolution: 'recovery' });
        changes.push({ event: 'resolved', alert: this.#get(a.id), at: now });
        result.resolved++;
      }
      for (const a of this.store.s.overdue.all(now) as AlertRow[]) {
        const district = districtOf(a.nodeId);
        const admins = district ? (this.#deps.districtAdmins?.(district) ?? []) : [];
        this.store.s.escalate.run(now, district, now, a.id);
        this.#history(a.id, now, SYSTEM_ACTOR, 'escalated', null, { to: district, admins, dueAt: new Date(a.dueAt).toISOString() });
        changes.push({ event: 'escalated', alert: this.#get(a.id), at: now });
        result.escalated++;
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
