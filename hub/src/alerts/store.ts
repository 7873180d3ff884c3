/** All SQL of alerts, their history, maintenance, silences, webhooks and deliveries. */
import { scopeClause } from '../auth/scope.ts';
import { hubKey, SecretBox } from '../secrets.ts';
import type { Db } from '../store/db.ts';
import { scopedWhere } from '../store/where.ts';
import type { RuleId, Severity } from './rules/types.ts';

export type AlertState = 'open' | 'acknowledged' | 'assigned' | 'resolved';

export interface AlertRow {
  id: number;
  openKey: string | null;
  subjectKind: 'terminal' | 'node';
  subjectId: string;
  nodeId: string;
  rule: RuleId;
  severity: Severity;
  state: AlertState;
  title: string;
  details: string;
  openedAt: number;
  lastSeenAt: number;
  dueAt: number;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
  assignedTo: string | null;
  assignedAt: number | null;
  escalatedAt: number | null;
  escalatedTo: string | null;
  resolvedAt: number | null;
  resolvedBy: string | null;
  resolution: 'recovery' | 'manual' | null;
  resolutionNote: string | null;
  updatedAt: number;
}

export interface HistoryRow {
  id: number;
  alertId: number;
  at: number;
  actor: string;
  action: string;
  note: string | null;
  data: string | null;
}

export interface MaintenanceRow {
  id: number;
  targetKind: 'terminal' | 'node';
  targetId: string;
  nodeId: string;
  reason: string;
  startsAt: number;
  endsAt: number;
  createdBy: string;
  createdAt: number;
}

export interface SilenceRow {
  id: number;
  nodeId: string;
  rule: string;
  until: number;
  reason: string | null;
  createdBy: string;
  createdAt: number;
}

export interface WebhookRow {
  id: number;
  url: string;
  secret: string;
  enabled: number;
  createdBy: string;
  createdAt: number;
}

export interface DeliveryRow {
  id: number;
  webhookId: number;
  alertId: number;
  event: string;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAt: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  deliveredAt: number | null;
}

export interface SnapshotRow {
  id: string;
  type: string;
  stationId: string;
  presence: string | null;
  presenceReason: string | null;
  presenceSince: number | null;
  flapping: number | null;
  host: string | null;
  peripherals: string | null;
  services: string | null;
  /** JSON while the terminal floods / its credentials are in use from two addresses (services/security.ts). */
  flooding: string | null;
  credentialConflict: string | null;
}

export interface AlertFilter {
  /** Only alerts whose node lies under this one (the caller's scope, or ?node=). */
  scopes: string[];
  states?: AlertState[] | undefined;
  severities?: Severity[] | undefined;
  rule?: string | undefined;
  subject?: string | undefined;
  overdueAt?: number | undefined;
  /** queue: severity, then oldest first; else newest first. */
  sort: 'queue' | 'newest';
  offset: number;
  limit: number;
}

const ALERT_COLUMNS = `id, open_key AS openKey, subject_kind AS subjectKind, subject_id AS subjectId, node_id AS nodeId, rule, severity,
  state, title, details, opened_at AS openedAt, last_seen_at AS lastSeenAt, due_at AS dueAt, acknowledged_at AS acknowledgedAt,
  acknowledged_by AS acknowledgedBy, assigned_to AS assignedTo, assigned_at AS assignedAt, escalated_at AS escalatedAt,
  escalated_to AS escalatedTo, resolved_at AS resolvedAt, resolved_by AS resolvedBy, resolution, resolution_note AS resolutionNote,
  updated_at AS updatedAt`;

const MAINTENANCE_COLUMNS = `id, target_kind AS targetKind, target_id AS targetId, node_id AS nodeId, reason, starts_at AS startsAt,
  ends_at AS endsAt, created_by AS createdBy, created_at AS createdAt`;

const DELIVERY_COLUMNS = `id, webhook_id AS webhookId, alert_id AS alertId, event, payload, status, attempts, next_at AS nextAt,
  last_status AS lastStatus, last_error AS lastError, created_at AS createdAt, delivered_at AS deliveredAt`;

export class AlertStore {
  readonly s;
  /** Webhook secrets are stored sealed (`sealSecret` on insert, `openSecret` to sign); see secrets.ts, SecretBox. */
  readonly #box: SecretBox;

  constructor(readonly db: Db) {
    this.#box = new SecretBox(hubKey(db), 'alert_webhooks.secret');
    this.s = {
      members: db.prepare(
        `SELECT t.id, t.type, t.station_id AS stationId, s.presence, s.services
         FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id WHERE t.state = 'active'`,
      ),
      snapshotOne: db.prepare(
        `SELECT t.id, t.type, t.station_id AS stationId, s.presence, s.presence_reason AS presenceReason, s.presence_since AS presenceSince,
           s.flapping, s.host, s.peripherals, s.services, s.flooding, s.credential_conflict AS credentialConflict
         FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id WHERE t.id = ? AND t.state = 'active'`,
      ),
      failedUpdate: db.prepare(
        `SELECT terminal_id AS terminalId, received_at AS at, version, error, state FROM update_status WHERE terminal_id = ?
         ORDER BY id DESC LIMIT 1`,
      ),
      transitionTimes: db.prepare('SELECT at FROM presence_transitions WHERE terminal_id = ? AND at > ? ORDER BY at'),
      openOf: db.prepare(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE subject_id = ? AND subject_kind = ? AND open_key IS NOT NULL`),
      openSubjects: db.prepare('SELECT DISTINCT subject_kind AS subjectKind, subject_id AS subjectId FROM alerts WHERE open_key IS NOT NULL'),
      seenAll: db.prepare('UPDATE alerts SET last_seen_at = ? WHERE open_key IS NOT NULL AND last_seen_at <= ?'),
      openCounts: db.prepare('SELECT severity, count(*) AS n FROM alerts WHERE open_key IS NOT NULL GROUP BY severity'),
      alert: db.prepare(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE id = ?`),
      insertAlert: db.prepare(
        `INSERT INTO alerts (open_key, subject_kind, subject_id, node_id, rule, severity, state, title, details, opened_at, last_seen_at,
           due_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?) RETURNING id`,
      ),
      seen: db.prepare('UPDATE alerts SET last_seen_at = ? WHERE id = ?'),
      refresh: db.prepare('UPDATE alerts SET severity = ?, title = ?, details = ?, last_seen_at = ?, updated_at = ? WHERE id = ?'),
      resolve: db.prepare(
        `UPDATE alerts SET state = 'resolved', open_key = NULL, resolved_at = ?, resolved_by = ?, resolution = ?, resolution_note = ?,
           updated_at = ? WHERE id = ? AND open_key IS NOT NULL`,
      ),
      acknowledge: db.prepare(
        "UPDATE alerts SET state = CASE WHEN state = 'open' THEN 'acknowledged' ELSE state END, acknowledged_at = ?, acknowledged_by = ?, updated_at = ? WHERE id = ?",
      ),
      assign: db.prepare(
        `UPDATE alerts SET state = 'assigned', assigned_to = ?, assigned_at = ?, acknowledged_at = coalesce(acknowledged_at, ?),
           acknowledged_by = coalesce(acknowledged_by, ?), updated_at = ? WHERE id = ?`,
      ),
      touch: db.prepare('UPDATE alerts SET updated_at = ? WHERE id = ?'),
      overdue: db.prepare(
        `SELECT ${ALERT_COLUMNS} FROM alerts WHERE open_key IS NOT NULL AND acknowledged_at IS NULL AND escalated_at IS NULL AND due_at <= ?`,
      ),
      escalate: db.prepare('UPDATE alerts SET escalated_at = ?, escalated_to = ?, updated_at = ? WHERE id = ?'),
      commandOutcome: db.prepare('SELECT result, error FROM commands WHERE id = ?'),
      selfTestAlert: db.prepare(
        "SELECT alert_id AS alertId FROM alert_history WHERE action = 'self-test' AND json_extract(data, '$.commandId') = ? LIMIT 1",
      ),
      insertHistory: db.prepare('INSERT INTO alert_history (alert_id, at, actor, action, note, data) VALUES (?, ?, ?, ?, ?, ?)'),
      history: db.prepare(
        'SELECT id, alert_id AS alertId, at, actor, action, note, data FROM alert_history WHERE alert_id = ? ORDER BY id',
      ),
      activeMaintenance: db.prepare(`SELECT ${MAINTENANCE_COLUMNS} FROM maintenance WHERE starts_at <= ? AND ends_at > ?`),
      maintenanceOverlapping: db.prepare(`SELECT ${MAINTENANCE_COLUMNS} FROM maintenance WHERE starts_at < ? AND ends_at > ?`),
      maintenanceById: db.prepare(`SELECT ${MAINTENANCE_COLUMNS} FROM maintenance WHERE id = ?`),
      insertMaintenance: db.prepare(
        `INSERT INTO maintenance (target_kind, target_id, node_id, reason, starts_at, ends_at, created_by, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      ),
      endMaintenance: db.prepare('UPDATE maintenance SET ends_at = ? WHERE id = ? AND ends_at > ?'),
      activeSilences: db.prepare(
        'SELECT id, node_id AS nodeId, rule, until, reason, created_by AS createdBy, created_at AS createdAt FROM alert_silences WHERE until > ?',
      ),
      silenceById: db.prepare(
        'SELECT id, node_id AS nodeId, rule, until, reason, created_by AS createdBy, created_at AS createdAt FROM alert_silences WHERE id = ?',
      ),
      insertSilence: db.prepare(
        'INSERT INTO alert_silences (node_id, rule, until, reason, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
      ),
      endSilence: db.prepare('UPDATE alert_silences SET until = ? WHERE id = ? AND until > ?'),
      webhooks: db.prepare('SELECT id, url, secret, enabled, created_by AS createdBy, created_at AS createdAt FROM alert_webhooks ORDER BY id'),
      webhook: db.prepare('SELECT id, url, secret, enabled, created_by AS createdBy, created_at AS createdAt FROM alert_webhooks WHERE id = ?'),
      insertWebhook: db.prepare('INSERT INTO alert_webhooks (url, secret, enabled, created_by, created_at) VALUES (?, ?, 1, ?, ?) RETURNING id'),
      deleteWebhook: db.prepare('DELETE FROM alert_webhooks WHERE id = ?'),
      insertDelivery: db.prepare(
        `INSERT INTO alert_deliveries (webhook_id, alert_id, event, payload, status, attempts, next_at, created_at)
           VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)`,
      ),
      dueDeliveries: db.prepare(`SELECT ${DELIVERY_COLUMNS} FROM alert_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY id LIMIT ?`),
      nextDeliveryAt: db.prepare("SELECT min(next_at) AS at FROM alert_deliveries WHERE status = 'pending'"),
      deliveryResult: db.prepare(
        `UPDATE alert_deliveries SET status = ?, attempts = attempts + 1, next_at = ?, last_status = ?, last_error = ?, delivered_at = ? WHERE id = ?`,
      ),
      deliveries: db.prepare(`SELECT ${DELIVERY_COLUMNS} FROM alert_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`),
      deliveryCounts: db.prepare('SELECT status, count(*) AS n FROM alert_deliveries WHERE webhook_id = ? GROUP BY status'),
      dropDeliveries: db.prepare('DELETE FROM alert_deliveries WHERE webhook_id = ?'),
    };
  }

  sealSecret(plain: string): string {
    return this.#box.seal(plain);
  }

  openSecret(stored: string): string {
    return this.#box.open(stored);
  }

  /** Seals the webhook secrets stored in plain text (before sealing existed); returns how many. */
  sealPlainWebhookSecrets(): number {
    const plain = (this.db.prepare('SELECT id, secret FROM alert_webhooks').all() as { id: number; secret: string }[]).filter((w) => !SecretBox.isSealed(w.secret));
    const set = this.db.prepare('UPDATE alert_webhooks SET secret = ? WHERE id = ? AND secret = ?');
    this.db.transaction(() => {
      for (const w of plain) set.run(this.#box.seal(w.secret), w.id, w.secret);
    })();
    return plain.length;
  }

  list(f: AlertFilter): AlertRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.scopes.length > 0) {
      const parts = f.scopes.map((sc) => scopeClause('node_id', sc));
      where.push(`(${parts.map((p) => p.sql).join(' AND ')})`);
      for (const p of parts) args.push(...p.args);
    }
    if (f.states?.length) {
      where.push(`state IN (${f.states.map(() => '?').join(', ')})`);
      args.push(...f.states);
    }
    if (f.severities?.length) {
      where.push(`severity IN (${f.severities.map(() => '?').join(', ')})`);
      args.push(...f.severities);
    }
    if (f.rule !== undefined) {
      where.push('rule = ?');
      args.push(f.rule);
    }
    if (f.subject !== undefined) {
      where.push('subject_id = ?');
      args.push(f.subject);
    }
    if (f.overdueAt !== undefined) {
      where.push('open_key IS NOT NULL AND acknowledged_at IS NULL AND due_at <= ?');
      args.push(f.overdueAt);
    }
    const order =
      f.sort === 'queue'
        ? "CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 ELSE 2 END, opened_at, id"
        : 'opened_at DESC, id DESC';
    return this.db
      .prepare(`SELECT ${ALERT_COLUMNS} FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ? OFFSET ?`)
      .all(...args, f.limit, f.offset) as AlertRow[];
  }

  maintenanceList(scope: string | null, activeAt: number | null, limit: number): MaintenanceRow[] {
    const w = scopedWhere('node_id', scope, activeAt === null ? undefined : { sql: 'ends_at > ?', arg: activeAt });
    return this.db
      .prepare(`SELECT ${MAINTENANCE_COLUMNS} FROM maintenance ${w.sql} ORDER BY starts_at DESC, id DESC LIMIT ?`)
      .all(...w.args, limit) as MaintenanceRow[];
  }

  silenceList(scope: string | null, activeAt: number | null, limit: number): SilenceRow[] {
    const w = scopedWhere('node_id', scope, activeAt === null ? undefined : { sql: 'until > ?', arg: activeAt });
    return this.db
      .prepare(
        `SELECT id, node_id AS nodeId, rule, until, reason, created_by AS createdBy, created_at AS createdAt FROM alert_silences
         ${w.sql} ORDER BY id DESC LIMIT ?`,
      )
      .all(...w.args, limit) as SilenceRow[];
  }
}
