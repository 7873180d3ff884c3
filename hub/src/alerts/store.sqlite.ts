/**
 * AlertStore on the hub's SQLite file: better-sqlite3 prepared statements, synchronous underneath (each method
 * finishes within its call). A `tx` is the same connection inside the caller's BEGIN, so methods ignore it.
 */
import { scopeClause } from '../auth/scope.ts';
import type { Tx } from '../db/engine.ts';
import { hubKey, SecretBox } from '../secrets.ts';
import type { Db } from '../store/db.ts';
import { scopedWhere } from '../store/where.ts';
import type {
  AlertFilter,
  AlertRow,
  AlertStore,
  DeliveryAttempt,
  DeliveryRow,
  HistoryRow,
  MaintenanceRow,
  MemberRow,
  NewAlert,
  NewDelivery,
  NewMaintenance,
  NewSilence,
  SilenceRow,
  SnapshotRow,
  UpdateStatusRow,
  WebhookRow,
} from './store.ts';

const ALERT_COLUMNS = `id, open_key AS openKey, subject_kind AS subjectKind, subject_id AS subjectId, node_id AS nodeId, rule, severity,
  state, title, details, opened_at AS openedAt, last_seen_at AS lastSeenAt, due_at AS dueAt, acknowledged_at AS acknowledgedAt,
  acknowledged_by AS acknowledgedBy, assigned_to AS assignedTo, assigned_at AS assignedAt, escalated_at AS escalatedAt,
  escalated_to AS escalatedTo, resolved_at AS resolvedAt, resolved_by AS resolvedBy, resolution, resolution_note AS resolutionNote,
  updated_at AS updatedAt`;

const MAINTENANCE_COLUMNS = `id, target_kind AS targetKind, target_id AS targetId, node_id AS nodeId, reason, starts_at AS startsAt,
  ends_at AS endsAt, created_by AS createdBy, created_at AS createdAt`;

const SILENCE_COLUMNS = 'id, node_id AS nodeId, rule, until, reason, created_by AS createdBy, created_at AS createdAt';

const WEBHOOK_COLUMNS = 'id, url, secret, enabled, created_by AS createdBy, created_at AS createdAt';

const DELIVERY_COLUMNS = `id, webhook_id AS webhookId, alert_id AS alertId, event, payload, status, attempts, next_at AS nextAt,
  last_status AS lastStatus, last_error AS lastError, created_at AS createdAt, delivered_at AS deliveredAt`;

function sqliteTx(tx: Tx | undefined): void {
  if (tx && tx.kind !== 'sqlite') throw new Error('a PostgreSQL transaction handed to a SQLite store');
}

export class SqliteAlertStore implements AlertStore {
  readonly #db: Db;
  readonly #s;
  /** Webhook secrets are stored sealed (`sealSecret` on insert, `openSecret` to sign); see secrets.ts, SecretBox. */
  readonly #box: SecretBox;

  constructor(db: Db) {
    this.#db = db;
    this.#box = new SecretBox(hubKey(db), 'alert_webhooks.secret');
    this.#s = {
      members: db.prepare(
        `SELECT t.id, t.type, t.station_id AS stationId, s.presence, s.services
         FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id WHERE t.state = 'active'`,
      ),
      snapshotOne: db.prepare(
        `SELECT t.id, t.type, t.station_id AS stationId, s.presence, s.presence_reason AS presenceReason, s.presence_since AS presenceSince,
           s.flapping, s.host, s.peripherals, s.services, s.flooding, s.credential_conflict AS credentialConflict
         FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id WHERE t.id = ? AND t.state = 'active'`,
      ),
      latestUpdate: db.prepare(
        `SELECT terminal_id AS terminalId, received_at AS at, version, error, state FROM update_status WHERE terminal_id = ?
         ORDER BY id DESC LIMIT 1`,
      ),
      transitionTimes: db.prepare('SELECT at FROM presence_transitions WHERE terminal_id = ? AND at > ? ORDER BY at').pluck(),
      openOf: db.prepare(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE subject_id = ? AND subject_kind = ? AND open_key IS NOT NULL`),
      openSubjects: db.prepare('SELECT DISTINCT subject_kind AS subjectKind, subject_id AS subjectId FROM alerts WHERE open_key IS NOT NULL'),
      seenAll: db.prepare('UPDATE alerts SET last_seen_at = ? WHERE open_key IS NOT NULL AND last_seen_at <= ?'),
      openCounts: db.prepare('SELECT severity, count(*) AS n FROM alerts WHERE open_key IS NOT NULL GROUP BY severity'),
      alert: db.prepare(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE id = ?`),
      insertAlert: db.prepare(
        `INSERT INTO alerts (open_key, subject_kind, subject_id, node_id, rule, severity, state, title, details, opened_at, last_seen_at,
           due_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?) ON CONFLICT (open_key) DO NOTHING RETURNING id`,
      ).pluck(),
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
      escalate: db.prepare(
        `UPDATE alerts SET escalated_at = ?, escalated_to = ?, updated_at = ? WHERE id = ? AND open_key IS NOT NULL AND acknowledged_at IS NULL
           AND escalated_at IS NULL`,
      ),
      commandOutcome: db.prepare('SELECT result, error FROM commands WHERE id = ?'),
      selfTestAlert: db
        .prepare("SELECT alert_id AS alertId FROM alert_history WHERE action = 'self-test' AND json_extract(data, '$.commandId') = ? LIMIT 1")
        .pluck(),
      insertHistory: db.prepare('INSERT INTO alert_history (alert_id, at, actor, action, note, data) VALUES (?, ?, ?, ?, ?, ?)'),
      history: db.prepare('SELECT id, alert_id AS alertId, at, actor, action, note, data FROM alert_history WHERE alert_id = ? ORDER BY id'),
      activeMaintenance: db.prepare(`SELECT ${MAINTENANCE_COLUMNS} FROM maintenance WHERE starts_at <= ? AND ends_at > ?`),
      maintenanceById: db.prepare(`SELECT ${MAINTENANCE_COLUMNS} FROM maintenance WHERE id = ?`),
      insertMaintenance: db.prepare(
        `INSERT INTO maintenance (target_kind, target_id, node_id, reason, starts_at, ends_at, created_by, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${MAINTENANCE_COLUMNS}`,
      ),
      endMaintenance: db.prepare('UPDATE maintenance SET ends_at = max(?, starts_at) WHERE id = ? AND ends_at > ?'),
      activeSilences: db.prepare(`SELECT ${SILENCE_COLUMNS} FROM alert_silences WHERE until > ?`),
      silenceById: db.prepare(`SELECT ${SILENCE_COLUMNS} FROM alert_silences WHERE id = ?`),
      insertSilence: db.prepare(
        `INSERT INTO alert_silences (node_id, rule, until, reason, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING ${SILENCE_COLUMNS}`,
      ),
      endSilence: db.prepare('UPDATE alert_silences SET until = ? WHERE id = ? AND until > ?'),
      webhooks: db.prepare(`SELECT ${WEBHOOK_COLUMNS} FROM alert_webhooks ORDER BY id`),
      webhook: db.prepare(`SELECT ${WEBHOOK_COLUMNS} FROM alert_webhooks WHERE id = ?`),
      insertWebhook: db.prepare(`INSERT INTO alert_webhooks (url, secret, enabled, created_by, created_at) VALUES (?, ?, 1, ?, ?) RETURNING ${WEBHOOK_COLUMNS}`),
      deleteWebhook: db.prepare('DELETE FROM alert_webhooks WHERE id = ?'),
      insertDelivery: db.prepare(
        `INSERT INTO alert_deliveries (webhook_id, alert_id, event, payload, status, attempts, next_at, created_at)
           VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)`,
      ),
      dueDeliveries: db.prepare(`SELECT ${DELIVERY_COLUMNS} FROM alert_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY id LIMIT ?`),
      leaseDelivery: db.prepare('UPDATE alert_deliveries SET next_at = ? WHERE id = ?'),
      nextDeliveryAt: db.prepare("SELECT min(next_at) FROM alert_deliveries WHERE status = 'pending'").pluck(),
      deliveryResult: db.prepare(
        `UPDATE alert_deliveries SET status = ?, attempts = attempts + 1, next_at = ?, last_status = ?, last_error = ?, delivered_at = ? WHERE id = ?`,
      ),
      deliveries: db.prepare(`SELECT ${DELIVERY_COLUMNS} FROM alert_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`),
      deliveryCounts: db.prepare('SELECT status, count(*) AS n FROM alert_deliveries WHERE webhook_id = ? GROUP BY status'),
      dropDeliveries: db.prepare('DELETE FROM alert_deliveries WHERE webhook_id = ?'),
    };
  }

  async sealSecret(plain: string): Promise<string> {
    return this.#box.seal(plain);
  }

  async openSecret(stored: string): Promise<string> {
    return this.#box.open(stored);
  }

  async sealPlainWebhookSecrets(): Promise<number> {
    const plain = (this.#db.prepare('SELECT id, secret FROM alert_webhooks').all() as { id: number; secret: string }[]).filter((w) => !SecretBox.isSealed(w.secret));
    const set = this.#db.prepare('UPDATE alert_webhooks SET secret = ? WHERE id = ? AND secret = ?');
    this.#db.transaction(() => {
      for (const w of plain) set.run(this.#box.seal(w.secret), w.id, w.secret);
    })();
    return plain.length;
  }

  async members(): Promise<MemberRow[]> {
    return this.#s.members.all() as MemberRow[];
  }

  async snapshots(ids: readonly string[]): Promise<Map<string, SnapshotRow>> {
    const out = new Map<string, SnapshotRow>();
    for (const id of ids) {
      const r = this.#s.snapshotOne.get(id) as SnapshotRow | undefined;
      if (r) out.set(id, r);
    }
    return out;
  }

  async latestUpdates(ids: readonly string[]): Promise<Map<string, UpdateStatusRow>> {
    const out = new Map<string, UpdateStatusRow>();
    for (const id of ids) {
      const r = this.#s.latestUpdate.get(id) as UpdateStatusRow | undefined;
      if (r) out.set(id, r);
    }
    return out;
  }

  async transitionTimes(terminalId: string, after: number): Promise<number[]> {
    return this.#s.transitionTimes.all(terminalId, after) as number[];
  }

  async commandOutcome(commandId: string): Promise<{ result: string | null; error: string | null } | undefined> {
    return this.#s.commandOutcome.get(commandId) as { result: string | null; error: string | null } | undefined;
  }

  async alert(id: number, tx?: Tx): Promise<AlertRow | undefined> {
    sqliteTx(tx);
    return this.#s.alert.get(id) as AlertRow | undefined;
  }

  async lockAlert(id: number, tx: Tx): Promise<AlertRow | undefined> {
    return this.alert(id, tx);
  }

  async openOf(subjects: { terminals: readonly string[]; nodes: readonly string[] }, tx?: Tx): Promise<AlertRow[]> {
    sqliteTx(tx);
    const out: AlertRow[] = [];
    for (const id of subjects.terminals) for (const a of this.#s.openOf.all(id, 'terminal') as AlertRow[]) out.push(a);
    for (const id of subjects.nodes) for (const a of this.#s.openOf.all(id, 'node') as AlertRow[]) out.push(a);
    return out.sort((a, b) => a.id - b.id);
  }

  async openSubjects(): Promise<{ subjectKind: 'terminal' | 'node'; subjectId: string }[]> {
    return this.#s.openSubjects.all() as { subjectKind: 'terminal' | 'node'; subjectId: string }[];
  }

  async openCounts(): Promise<{ severity: string; n: number }[]> {
    return this.#s.openCounts.all() as { severity: string; n: number }[];
  }

  async list(f: AlertFilter): Promise<AlertRow[]> {
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
    return this.#db
      .prepare(`SELECT ${ALERT_COLUMNS} FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ? OFFSET ?`)
      .all(...args, f.limit, f.offset) as AlertRow[];
  }

  async overdue(at: number, tx?: Tx): Promise<AlertRow[]> {
    sqliteTx(tx);
    return this.#s.overdue.all(at) as AlertRow[];
  }

  async insertAlert(a: NewAlert, tx?: Tx): Promise<number | null> {
    sqliteTx(tx);
    const id = this.#s.insertAlert.get(a.openKey, a.subjectKind, a.subjectId, a.nodeId, a.rule, a.severity, a.title, a.details, a.at, a.at, a.dueAt, a.at) as number | undefined;
    return id ?? null;
  }

  async refresh(id: number, c: { severity: string; title: string; details: string }, at: number, tx?: Tx): Promise<void> {
    sqliteTx(tx);
    this.#s.refresh.run(c.severity, c.title, c.details, at, at, id);
  }

  async markSeen(id: number, at: number, tx?: Tx): Promise<void> {
    sqliteTx(tx);
    this.#s.seen.run(at, id);
  }

  async markAllSeen(at: number, seenBefore: number, tx?: Tx): Promise<void> {
    sqliteTx(tx);
    this.#s.seenAll.run(at, seenBefore);
  }

  async resolve(id: number, r: { at: number; by: string; resolution: 'recovery' | 'manual'; note: string | null }, tx?: Tx): Promise<boolean> {
    sqliteTx(tx);
    return this.#s.resolve.run(r.at, r.by, r.resolution, r.note, r.at, id).changes > 0;
  }

  async acknowledge(id: number, at: number, by: string, tx?: Tx): Promise<void> {
    sqliteTx(tx);
    this.#s.acknowledge.run(at, by, at, id);
  }

  async assign(id: number, to: string, at: number, by: string, tx?: Tx): Promise<void> {
    sqliteTx(tx);
    this.#s.assign.run(to, at, at, by, at, id);
  }

  async touch(id: number, at: number, tx?: Tx): Promise<void> {
    sqliteTx(tx);
    this.#s.touch.run(at, id);
  }

  async escalate(id: number, at: number, to: string | null, tx?: Tx): Promise<boolean> {
    sqliteTx(tx);
    return this.#s.escalate.run(at, to, at, id).changes > 0;
  }

  async appendHistory(h: Omit<HistoryRow, 'id'>, tx?: Tx): Promise<void> {
    sqliteTx(tx);
    this.#s.insertHistory.run(h.alertId, h.at, h.actor, h.action, h.note, h.data);
  }

  async history(alertId: number, tx?: Tx): Promise<HistoryRow[]> {
    sqliteTx(tx);
    return this.#s.history.all(alertId) as HistoryRow[];
  }

  async selfTestAlert(commandId: string): Promise<number | undefined> {
    return this.#s.selfTestAlert.get(commandId) as number | undefined;
  }

  async activeMaintenance(at: number, tx?: Tx): Promise<MaintenanceRow[]> {
    sqliteTx(tx);
    return this.#s.activeMaintenance.all(at, at) as MaintenanceRow[];
  }

  async maintenance(id: number, tx?: Tx): Promise<MaintenanceRow | undefined> {
    sqliteTx(tx);
    return this.#s.maintenanceById.get(id) as MaintenanceRow | undefined;
  }

  async maintenanceList(scope: string | null, activeAt: number | null, limit: number): Promise<MaintenanceRow[]> {
    const w = scopedWhere('node_id', scope, activeAt === null ? undefined : { sql: 'ends_at > ?', arg: activeAt });
    return this.#db
      .prepare(`SELECT ${MAINTENANCE_COLUMNS} FROM maintenance ${w.sql} ORDER BY starts_at DESC, id DESC LIMIT ?`)
      .all(...w.args, limit) as MaintenanceRow[];
  }

  async addMaintenance(m: NewMaintenance, tx?: Tx): Promise<MaintenanceRow> {
    sqliteTx(tx);
    return this.#s.insertMaintenance.get(m.targetKind, m.targetId, m.nodeId, m.reason, m.startsAt, m.endsAt, m.createdBy, m.createdAt) as MaintenanceRow;
  }

  async endMaintenance(id: number, at: number, tx?: Tx): Promise<MaintenanceRow | undefined> {
    sqliteTx(tx);
    this.#s.endMaintenance.run(at, id, at);
    return this.#s.maintenanceById.get(id) as MaintenanceRow | undefined;
  }

  async activeSilences(at: number, tx?: Tx): Promise<SilenceRow[]> {
    sqliteTx(tx);
    return this.#s.activeSilences.all(at) as SilenceRow[];
  }

  async silence(id: number, tx?: Tx): Promise<SilenceRow | undefined> {
    sqliteTx(tx);
    return this.#s.silenceById.get(id) as SilenceRow | undefined;
  }

  async silenceList(scope: string | null, activeAt: number | null, limit: number): Promise<SilenceRow[]> {
    const w = scopedWhere('node_id', scope, activeAt === null ? undefined : { sql: 'until > ?', arg: activeAt });
    return this.#db.prepare(`SELECT ${SILENCE_COLUMNS} FROM alert_silences ${w.sql} ORDER BY id DESC LIMIT ?`).all(...w.args, limit) as SilenceRow[];
  }

  async addSilence(s: NewSilence, tx?: Tx): Promise<SilenceRow> {
    sqliteTx(tx);
    return this.#s.insertSilence.get(s.nodeId, s.rule, s.until, s.reason, s.createdBy, s.createdAt) as SilenceRow;
  }

  async endSilence(id: number, at: number, tx?: Tx): Promise<SilenceRow | undefined> {
    sqliteTx(tx);
    this.#s.endSilence.run(at, id, at);
    return this.#s.silenceById.get(id) as SilenceRow | undefined;
  }

  async webhooks(tx?: Tx): Promise<WebhookRow[]> {
    sqliteTx(tx);
    return this.#s.webhooks.all() as WebhookRow[];
  }

  async webhook(id: number, tx?: Tx): Promise<WebhookRow | undefined> {
    sqliteTx(tx);
    return this.#s.webhook.get(id) as WebhookRow | undefined;
  }

  async addWebhook(w: { url: string; secret: string; createdBy: string; createdAt: number }, tx?: Tx): Promise<WebhookRow> {
    sqliteTx(tx);
    return this.#s.insertWebhook.get(w.url, this.#box.seal(w.secret), w.createdBy, w.createdAt) as WebhookRow;
  }

  async deleteWebhook(id: number, tx?: Tx): Promise<boolean> {
    sqliteTx(tx);
    // one statement pair, atomic on its own when no caller's transaction is open
    return this.#db.transaction(() => {
      this.#s.dropDeliveries.run(id);
      return this.#s.deleteWebhook.run(id).changes > 0;
    })();
  }

  async queueDeliveries(rows: readonly NewDelivery[], tx?: Tx): Promise<void> {
    sqliteTx(tx);
    for (const d of rows) this.#s.insertDelivery.run(d.webhookId, d.alertId, d.event, d.payload, d.at, d.at);
  }

  async claimDue(at: number, limit: number, leaseUntil: number): Promise<DeliveryRow[]> {
    // synchronous: nothing else on this connection runs between the read and the lease
    const rows = this.#s.dueDeliveries.all(at, limit) as DeliveryRow[];
    for (const d of rows) this.#s.leaseDelivery.run(leaseUntil, d.id);
    return rows;
  }

  async nextDeliveryAt(): Promise<number | null> {
    return (this.#s.nextDeliveryAt.get() as number | null | undefined) ?? null;
  }

  async recordAttempt(id: number, a: DeliveryAttempt, tx?: Tx): Promise<void> {
    sqliteTx(tx);
    this.#s.deliveryResult.run(a.status, a.nextAt, a.lastStatus, a.lastError, a.deliveredAt, id);
  }

  async deliveries(webhookId: number, limit: number): Promise<DeliveryRow[]> {
    return this.#s.deliveries.all(webhookId, limit) as DeliveryRow[];
  }

  async deliveryCounts(webhookId: number): Promise<{ status: DeliveryRow['status']; n: number }[]> {
    return this.#s.deliveryCounts.all(webhookId) as { status: DeliveryRow['status']; n: number }[];
  }
}
