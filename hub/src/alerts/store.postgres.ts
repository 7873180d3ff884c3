/**
 * AlertStore on PostgreSQL (postgres.js tagged templates; `pgSql` runs a method in the caller's transaction when it
 * hands one). Same SQL shapes as store.sqlite.ts; what differs:
 * - batches are one statement (`= any(array)` reads, a multi-row insert of deliveries), not one round trip per row;
 * - `lockAlert` and `openOf` with a transaction take the rows `FOR UPDATE` (in id order, so two evaluations locking
 *   overlapping sets cannot deadlock): SQLite's one writer serialises them already;
 * - the hub key lives in `meta` like on SQLite, made once by whichever hub starts first (ON CONFLICT DO NOTHING).
 */
import type { Sql, TransactionSql } from 'postgres';
import { escapeLike } from '../auth/scope.ts';
import { pgSql, type Tx } from '../db/engine.ts';
import type { PostgresDb } from '../db/postgres/open.ts';
import { newKey, SecretBox } from '../secrets.ts';
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

const ALERT_COLUMNS = `id, open_key AS "openKey", subject_kind AS "subjectKind", subject_id AS "subjectId", node_id AS "nodeId", rule,
  severity, state, title, details, opened_at AS "openedAt", last_seen_at AS "lastSeenAt", due_at AS "dueAt",
  acknowledged_at AS "acknowledgedAt", acknowledged_by AS "acknowledgedBy", assigned_to AS "assignedTo", assigned_at AS "assignedAt",
  escalated_at AS "escalatedAt", escalated_to AS "escalatedTo", resolved_at AS "resolvedAt", resolved_by AS "resolvedBy", resolution,
  resolution_note AS "resolutionNote", updated_at AS "updatedAt"`;

const MAINTENANCE_COLUMNS = `id, target_kind AS "targetKind", target_id AS "targetId", node_id AS "nodeId", reason, starts_at AS "startsAt",
  ends_at AS "endsAt", created_by AS "createdBy", created_at AS "createdAt"`;

const SILENCE_COLUMNS = 'id, node_id AS "nodeId", rule, until, reason, created_by AS "createdBy", created_at AS "createdAt"';

const WEBHOOK_COLUMNS = 'id, url, secret, enabled, created_by AS "createdBy", created_at AS "createdAt"';

const DELIVERY_COLUMNS = `id, webhook_id AS "webhookId", alert_id AS "alertId", event, payload, status, attempts, next_at AS "nextAt",
  last_status AS "lastStatus", last_error AS "lastError", created_at AS "createdAt", delivered_at AS "deliveredAt"`;

const HISTORY_COLUMNS = 'id, alert_id AS "alertId", at, actor, action, note, data';

type Q = Sql | TransactionSql;

/** "node column under scope": the node itself or anything below it (auth/scope.ts's scopeClause, in postgres.js). */
function under(sql: Q, scope: string) {
  return sql`(node_id = ${scope} OR node_id LIKE ${`${escapeLike(scope)}-%`} ESCAPE '\\')`;
}

export class PostgresAlertStore implements AlertStore {
  readonly #pg: PostgresDb;
  #box: Promise<SecretBox> | null = null;

  constructor(pg: PostgresDb) {
    this.#pg = pg;
  }

  #sql(tx?: Tx): Q {
    return pgSql(this.#pg.sql, tx);
  }

  #secretBox(): Promise<SecretBox> {
    this.#box ??= (async () => {
      const sql = this.#pg.sql;
      await sql`INSERT INTO meta (key, value) VALUES ('secret_key', ${newKey()}) ON CONFLICT (key) DO NOTHING`;
      const [row] = await sql<{ value: string }[]>`SELECT value FROM meta WHERE key = 'secret_key'`;
      return new SecretBox(row!.value, 'alert_webhooks.secret');
    })().catch((err: unknown) => {
      this.#box = null;
      throw err;
    });
    return this.#box;
  }

  async sealSecret(plain: string): Promise<string> {
    return (await this.#secretBox()).seal(plain);
  }

  async openSecret(stored: string): Promise<string> {
    return (await this.#secretBox()).open(stored);
  }

  async sealPlainWebhookSecrets(): Promise<number> {
    const box = await this.#secretBox();
    const rows = await this.#pg.sql<{ id: number; secret: string }[]>`SELECT id, secret FROM alert_webhooks`;
    const plain = rows.filter((w) => !SecretBox.isSealed(w.secret));
    if (plain.length === 0) return 0;
    await this.#pg.sql.begin(async (sql) => {
      for (const w of plain) await sql`UPDATE alert_webhooks SET secret = ${box.seal(w.secret)} WHERE id = ${w.id} AND secret = ${w.secret}`;
    });
    return plain.length;
  }

  async members(): Promise<MemberRow[]> {
    return [
      ...(await this.#pg.sql<MemberRow[]>`
        SELECT t.id, t.type, t.station_id AS "stationId", s.presence, s.services
        FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id WHERE t.state = 'active'`),
    ];
  }

  async snapshots(ids: readonly string[]): Promise<Map<string, SnapshotRow>> {
    const out = new Map<string, SnapshotRow>();
    if (ids.length === 0) return out;
    const sql = this.#pg.sql;
    const rows = await sql<SnapshotRow[]>`
      SELECT t.id, t.type, t.station_id AS "stationId", s.presence, s.presence_reason AS "presenceReason",
        s.presence_since AS "presenceSince", s.flapping, s.host, s.peripherals, s.services, s.flooding,
        s.credential_conflict AS "credentialConflict"
      FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id
      WHERE t.id = any(${sql.array([...ids])}::text[]) AND t.state = 'active'`;
    for (const r of rows) out.set(r.id, r);
    return out;
  }

  async latestUpdates(ids: readonly string[]): Promise<Map<string, UpdateStatusRow>> {
    const out = new Map<string, UpdateStatusRow>();
    if (ids.length === 0) return out;
    const sql = this.#pg.sql;
    const rows = await sql<UpdateStatusRow[]>`
      SELECT DISTINCT ON (terminal_id) terminal_id AS "terminalId", received_at AS at, version, error, state
      FROM update_status WHERE terminal_id = any(${sql.array([...ids])}::text[]) ORDER BY terminal_id, id DESC`;
    for (const r of rows) out.set(r.terminalId, r);
    return out;
  }

  async transitionTimes(terminalId: string, after: number): Promise<number[]> {
    const rows = await this.#pg.sql<{ at: number }[]>`
      SELECT at FROM presence_transitions WHERE terminal_id = ${terminalId} AND at > ${after} ORDER BY at`;
    return rows.map((r) => r.at);
  }

  async commandOutcome(commandId: string): Promise<{ result: string | null; error: string | null } | undefined> {
    const [row] = await this.#pg.sql<{ result: string | null; error: string | null }[]>`SELECT result, error FROM commands WHERE id = ${commandId}`;
    return row;
  }

  async alert(id: number, tx?: Tx): Promise<AlertRow | undefined> {
    const sql = this.#sql(tx);
    const [row] = await sql<AlertRow[]>`SELECT ${sql.unsafe(ALERT_COLUMNS)} FROM alerts WHERE id = ${id}`;
    return row;
  }

  async lockAlert(id: number, tx: Tx): Promise<AlertRow | undefined> {
    const sql = this.#sql(tx);
    const [row] = await sql<AlertRow[]>`SELECT ${sql.unsafe(ALERT_COLUMNS)} FROM alerts WHERE id = ${id} FOR UPDATE`;
    return row;
  }

  async openOf(subjects: { terminals: readonly string[]; nodes: readonly string[] }, tx?: Tx): Promise<AlertRow[]> {
    if (subjects.terminals.length === 0 && subjects.nodes.length === 0) return [];
    const sql = this.#sql(tx);
    return [
      ...(await sql<AlertRow[]>`
        SELECT ${sql.unsafe(ALERT_COLUMNS)} FROM alerts
        WHERE open_key IS NOT NULL AND (
          (subject_kind = 'terminal' AND subject_id = any(${sql.array([...subjects.terminals])}::text[]))
          OR (subject_kind = 'node' AND subject_id = any(${sql.array([...subjects.nodes])}::text[])))
        ORDER BY id ${tx ? sql`FOR UPDATE` : sql``}`),
    ];
  }

  async openSubjects(): Promise<{ subjectKind: 'terminal' | 'node'; subjectId: string }[]> {
    return [
      ...(await this.#pg.sql<{ subjectKind: 'terminal' | 'node'; subjectId: string }[]>`
        SELECT DISTINCT subject_kind AS "subjectKind", subject_id AS "subjectId" FROM alerts WHERE open_key IS NOT NULL`),
    ];
  }

  async openCounts(): Promise<{ severity: string; n: number }[]> {
    return [...(await this.#pg.sql<{ severity: string; n: number }[]>`
      SELECT severity, count(*)::int AS n FROM alerts WHERE open_key IS NOT NULL GROUP BY severity`)];
  }

  async list(f: AlertFilter): Promise<AlertRow[]> {
    const sql = this.#pg.sql;
    const where = [sql`TRUE`];
    for (const sc of f.scopes) where.push(under(sql, sc));
    if (f.states?.length) where.push(sql`state = any(${sql.array([...f.states])}::text[])`);
    if (f.severities?.length) where.push(sql`severity = any(${sql.array([...f.severities])}::text[])`);
    if (f.rule !== undefined) where.push(sql`rule = ${f.rule}`);
    if (f.subject !== undefined) where.push(sql`subject_id = ${f.subject}`);
    if (f.overdueAt !== undefined) where.push(sql`open_key IS NOT NULL AND acknowledged_at IS NULL AND due_at <= ${f.overdueAt}`);
    const order =
      f.sort === 'queue'
        ? sql`CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 ELSE 2 END, opened_at, id`
        : sql`opened_at DESC, id DESC`;
    const cond = where.flatMap((w, i) => (i === 0 ? [w] : [sql`AND`, w]));
    return [...(await sql<AlertRow[]>`
      SELECT ${sql.unsafe(ALERT_COLUMNS)} FROM alerts WHERE ${cond} ORDER BY ${order} LIMIT ${f.limit} OFFSET ${f.offset}`)];
  }

  async overdue(at: number, tx?: Tx): Promise<AlertRow[]> {
    const sql = this.#sql(tx);
    // In a transaction, only rows nobody else holds (another hub escalating them, a technician acknowledging): they
    // are this run's to escalate, and waiting for them could close a lock cycle with that other transaction.
    return [...(await sql<AlertRow[]>`
      SELECT ${sql.unsafe(ALERT_COLUMNS)} FROM alerts
      WHERE open_key IS NOT NULL AND acknowledged_at IS NULL AND escalated_at IS NULL AND due_at <= ${at} ORDER BY id
      ${tx ? sql`FOR UPDATE SKIP LOCKED` : sql``}`)];
  }

  async insertAlert(a: NewAlert, tx?: Tx): Promise<number | null> {
    const sql = this.#sql(tx);
    const [row] = await sql<{ id: number }[]>`
      INSERT INTO alerts (open_key, subject_kind, subject_id, node_id, rule, severity, state, title, details, opened_at, last_seen_at,
        due_at, updated_at)
      VALUES (${a.openKey}, ${a.subjectKind}, ${a.subjectId}, ${a.nodeId}, ${a.rule}, ${a.severity}, 'open', ${a.title}, ${a.details},
        ${a.at}, ${a.at}, ${a.dueAt}, ${a.at})
      ON CONFLICT (open_key) DO NOTHING RETURNING id`;
    return row?.id ?? null;
  }

  async refresh(id: number, c: { severity: string; title: string; details: string }, at: number, tx?: Tx): Promise<void> {
    await this.#sql(tx)`
      UPDATE alerts SET severity = ${c.severity}, title = ${c.title}, details = ${c.details}, last_seen_at = ${at}, updated_at = ${at}
      WHERE id = ${id}`;
  }

  async markSeen(id: number, at: number, tx?: Tx): Promise<void> {
    await this.#sql(tx)`UPDATE alerts SET last_seen_at = ${at} WHERE id = ${id}`;
  }

  async markAllSeen(at: number, seenBefore: number, tx?: Tx): Promise<void> {
    // rows another transaction holds are skipped, not waited for: whoever holds them is evaluating them right now
    await this.#sql(tx)`
      UPDATE alerts SET last_seen_at = ${at}
      WHERE id IN (SELECT id FROM alerts WHERE open_key IS NOT NULL AND last_seen_at <= ${seenBefore} FOR UPDATE SKIP LOCKED)`;
  }

  async resolve(id: number, r: { at: number; by: string; resolution: 'recovery' | 'manual'; note: string | null }, tx?: Tx): Promise<boolean> {
    const res = await this.#sql(tx)`
      UPDATE alerts SET state = 'resolved', open_key = NULL, resolved_at = ${r.at}, resolved_by = ${r.by}, resolution = ${r.resolution},
        resolution_note = ${r.note}, updated_at = ${r.at}
      WHERE id = ${id} AND open_key IS NOT NULL`;
    return res.count > 0;
  }

  async acknowledge(id: number, at: number, by: string, tx?: Tx): Promise<void> {
    await this.#sql(tx)`
      UPDATE alerts SET state = CASE WHEN state = 'open' THEN 'acknowledged' ELSE state END, acknowledged_at = ${at},
        acknowledged_by = ${by}, updated_at = ${at}
      WHERE id = ${id}`;
  }

  async assign(id: number, to: string, at: number, by: string, tx?: Tx): Promise<void> {
    await this.#sql(tx)`
      UPDATE alerts SET state = 'assigned', assigned_to = ${to}, assigned_at = ${at}, acknowledged_at = coalesce(acknowledged_at, ${at}),
        acknowledged_by = coalesce(acknowledged_by, ${by}), updated_at = ${at}
      WHERE id = ${id}`;
  }

  async touch(id: number, at: number, tx?: Tx): Promise<void> {
    await this.#sql(tx)`UPDATE alerts SET updated_at = ${at} WHERE id = ${id}`;
  }

  async escalate(id: number, at: number, to: string | null, tx?: Tx): Promise<boolean> {
    const res = await this.#sql(tx)`
      UPDATE alerts SET escalated_at = ${at}, escalated_to = ${to}, updated_at = ${at}
      WHERE id = ${id} AND open_key IS NOT NULL AND acknowledged_at IS NULL AND escalated_at IS NULL`;
    return res.count > 0;
  }

  async appendHistory(h: Omit<HistoryRow, 'id'>, tx?: Tx): Promise<void> {
    await this.#sql(tx)`
      INSERT INTO alert_history (alert_id, at, actor, action, note, data) VALUES (${h.alertId}, ${h.at}, ${h.actor}, ${h.action}, ${h.note}, ${h.data})`;
  }

  async history(alertId: number, tx?: Tx): Promise<HistoryRow[]> {
    const sql = this.#sql(tx);
    return [...(await sql<HistoryRow[]>`SELECT ${sql.unsafe(HISTORY_COLUMNS)} FROM alert_history WHERE alert_id = ${alertId} ORDER BY id`)];
  }

  async selfTestAlert(commandId: string): Promise<number | undefined> {
    // data is JSON text (as on SQLite); only self-test rows are cast, and their data is always an object
    const [row] = await this.#pg.sql<{ alertId: number }[]>`
      SELECT alert_id AS "alertId" FROM alert_history
      WHERE action = 'self-test' AND CASE WHEN action = 'self-test' THEN data::jsonb ->> 'commandId' END = ${commandId} LIMIT 1`;
    return row?.alertId;
  }

  async activeMaintenance(at: number, tx?: Tx): Promise<MaintenanceRow[]> {
    const sql = this.#sql(tx);
    return [...(await sql<MaintenanceRow[]>`SELECT ${sql.unsafe(MAINTENANCE_COLUMNS)} FROM maintenance WHERE starts_at <= ${at} AND ends_at > ${at}`)];
  }

  async maintenance(id: number, tx?: Tx): Promise<MaintenanceRow | undefined> {
    const sql = this.#sql(tx);
    const [row] = await sql<MaintenanceRow[]>`SELECT ${sql.unsafe(MAINTENANCE_COLUMNS)} FROM maintenance WHERE id = ${id}`;
    return row;
  }

  async maintenanceList(scope: string | null, activeAt: number | null, limit: number): Promise<MaintenanceRow[]> {
    const sql = this.#pg.sql;
    return [...(await sql<MaintenanceRow[]>`
      SELECT ${sql.unsafe(MAINTENANCE_COLUMNS)} FROM maintenance
      WHERE ${scope === null ? sql`TRUE` : under(sql, scope)} AND ${activeAt === null ? sql`TRUE` : sql`ends_at > ${activeAt}`}
      ORDER BY starts_at DESC, id DESC LIMIT ${limit}`)];
  }

  async addMaintenance(m: NewMaintenance, tx?: Tx): Promise<MaintenanceRow> {
    const sql = this.#sql(tx);
    const [row] = await sql<MaintenanceRow[]>`
      INSERT INTO maintenance (target_kind, target_id, node_id, reason, starts_at, ends_at, created_by, created_at)
      VALUES (${m.targetKind}, ${m.targetId}, ${m.nodeId}, ${m.reason}, ${m.startsAt}, ${m.endsAt}, ${m.createdBy}, ${m.createdAt})
      RETURNING ${sql.unsafe(MAINTENANCE_COLUMNS)}`;
    return row!;
  }

  async endMaintenance(id: number, at: number, tx?: Tx): Promise<MaintenanceRow | undefined> {
    const sql = this.#sql(tx);
    await sql`UPDATE maintenance SET ends_at = greatest(${at}::bigint, starts_at) WHERE id = ${id} AND ends_at > ${at}`;
    return this.maintenance(id, tx);
  }

  async activeSilences(at: number, tx?: Tx): Promise<SilenceRow[]> {
    const sql = this.#sql(tx);
    return [...(await sql<SilenceRow[]>`SELECT ${sql.unsafe(SILENCE_COLUMNS)} FROM alert_silences WHERE until > ${at}`)];
  }

  async silence(id: number, tx?: Tx): Promise<SilenceRow | undefined> {
    const sql = this.#sql(tx);
    const [row] = await sql<SilenceRow[]>`SELECT ${sql.unsafe(SILENCE_COLUMNS)} FROM alert_silences WHERE id = ${id}`;
    return row;
  }

  async silenceList(scope: string | null, activeAt: number | null, limit: number): Promise<SilenceRow[]> {
    const sql = this.#pg.sql;
    return [...(await sql<SilenceRow[]>`
      SELECT ${sql.unsafe(SILENCE_COLUMNS)} FROM alert_silences
      WHERE ${scope === null ? sql`TRUE` : under(sql, scope)} AND ${activeAt === null ? sql`TRUE` : sql`until > ${activeAt}`}
      ORDER BY id DESC LIMIT ${limit}`)];
  }

  async addSilence(s: NewSilence, tx?: Tx): Promise<SilenceRow> {
    const sql = this.#sql(tx);
    const [row] = await sql<SilenceRow[]>`
      INSERT INTO alert_silences (node_id, rule, until, reason, created_by, created_at)
      VALUES (${s.nodeId}, ${s.rule}, ${s.until}, ${s.reason}, ${s.createdBy}, ${s.createdAt})
      RETURNING ${sql.unsafe(SILENCE_COLUMNS)}`;
    return row!;
  }

  async endSilence(id: number, at: number, tx?: Tx): Promise<SilenceRow | undefined> {
    const sql = this.#sql(tx);
    await sql`UPDATE alert_silences SET until = ${at} WHERE id = ${id} AND until > ${at}`;
    return this.silence(id, tx);
  }

  async webhooks(tx?: Tx): Promise<WebhookRow[]> {
    const sql = this.#sql(tx);
    return [...(await sql<WebhookRow[]>`SELECT ${sql.unsafe(WEBHOOK_COLUMNS)} FROM alert_webhooks ORDER BY id`)];
  }

  async webhook(id: number, tx?: Tx): Promise<WebhookRow | undefined> {
    const sql = this.#sql(tx);
    const [row] = await sql<WebhookRow[]>`SELECT ${sql.unsafe(WEBHOOK_COLUMNS)} FROM alert_webhooks WHERE id = ${id}`;
    return row;
  }

  async addWebhook(w: { url: string; secret: string; createdBy: string; createdAt: number }, tx?: Tx): Promise<WebhookRow> {
    const sealed = await this.sealSecret(w.secret);
    const sql = this.#sql(tx);
    const [row] = await sql<WebhookRow[]>`
      INSERT INTO alert_webhooks (url, secret, enabled, created_by, created_at) VALUES (${w.url}, ${sealed}, 1, ${w.createdBy}, ${w.createdAt})
      RETURNING ${sql.unsafe(WEBHOOK_COLUMNS)}`;
    return row!;
  }

  async deleteWebhook(id: number, tx?: Tx): Promise<boolean> {
    // one statement: the deliveries go with their webhook, inside or outside the caller's transaction
    const [row] = await this.#sql(tx)<{ n: number }[]>`
      WITH dropped AS (DELETE FROM alert_deliveries WHERE webhook_id = ${id}),
        gone AS (DELETE FROM alert_webhooks WHERE id = ${id} RETURNING id)
      SELECT count(*)::int AS n FROM gone`;
    return (row?.n ?? 0) > 0;
  }

  async queueDeliveries(rows: readonly NewDelivery[], tx?: Tx): Promise<void> {
    if (rows.length === 0) return;
    const sql = this.#sql(tx);
    await sql`
      INSERT INTO alert_deliveries (webhook_id, alert_id, event, payload, status, attempts, next_at, created_at)
      SELECT w, a, e, p, 'pending', 0, t, t
      FROM unnest(${sql.array(rows.map((d) => d.webhookId))}::bigint[], ${sql.array(rows.map((d) => d.alertId))}::bigint[],
        ${sql.array(rows.map((d) => d.event))}::text[], ${sql.array(rows.map((d) => d.payload))}::text[],
        ${sql.array(rows.map((d) => d.at))}::bigint[]) WITH ORDINALITY AS x(w, a, e, p, t, n)
      ORDER BY n`;
  }

  async claimDue(at: number, limit: number, leaseUntil: number): Promise<DeliveryRow[]> {
    // SKIP LOCKED: two hubs claiming at once take different rows instead of waiting for each other
    const rows = await this.#pg.sql<DeliveryRow[]>`
      WITH c AS (
        SELECT id, next_at AS due FROM alert_deliveries WHERE status = 'pending' AND next_at <= ${at} ORDER BY id LIMIT ${limit}
        FOR UPDATE SKIP LOCKED)
      UPDATE alert_deliveries d SET next_at = ${leaseUntil} FROM c WHERE d.id = c.id
      RETURNING d.id, d.webhook_id AS "webhookId", d.alert_id AS "alertId", d.event, d.payload, d.status, d.attempts, c.due AS "nextAt",
        d.last_status AS "lastStatus", d.last_error AS "lastError", d.created_at AS "createdAt", d.delivered_at AS "deliveredAt"`;
    return [...rows].sort((a, b) => a.id - b.id);
  }

  async nextDeliveryAt(): Promise<number | null> {
    const [row] = await this.#pg.sql<{ at: number | null }[]>`SELECT min(next_at) AS at FROM alert_deliveries WHERE status = 'pending'`;
    return row?.at ?? null;
  }

  async recordAttempt(id: number, a: DeliveryAttempt, tx?: Tx): Promise<void> {
    await this.#sql(tx)`
      UPDATE alert_deliveries SET status = ${a.status}, attempts = attempts + 1, next_at = ${a.nextAt}, last_status = ${a.lastStatus},
        last_error = ${a.lastError}, delivered_at = ${a.deliveredAt}
      WHERE id = ${id}`;
  }

  async deliveries(webhookId: number, limit: number): Promise<DeliveryRow[]> {
    const sql = this.#pg.sql;
    return [...(await sql<DeliveryRow[]>`
      SELECT ${sql.unsafe(DELIVERY_COLUMNS)} FROM alert_deliveries WHERE webhook_id = ${webhookId} ORDER BY id DESC LIMIT ${limit}`)];
  }

  async deliveryCounts(webhookId: number): Promise<{ status: DeliveryRow['status']; n: number }[]> {
    return [...(await this.#pg.sql<{ status: DeliveryRow['status']; n: number }[]>`
      SELECT status, count(*)::int AS n FROM alert_deliveries WHERE webhook_id = ${webhookId} GROUP BY status`)];
  }
}
