/**
 * Alert tables (drizzle; migrations generated into hub/drizzle with the rest). Times are integer milliseconds since
 * the epoch (UTC), like the core schema.
 *
 * One open alert per (subject, rule): `open_key` is `<subject kind>:<subject id>|<rule>` while the alert is not
 * resolved and NULL once it is; SQLite treats NULLs as distinct in a unique index, so history keeps every resolved
 * alert while the index forbids a second open one.
 */
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

export const alerts = sqliteTable(
  'alerts',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    openKey: text('open_key'),
    subjectKind: text('subject_kind', { enum: ['terminal', 'node'] }).notNull(),
    subjectId: text('subject_id').notNull(),
    /** The terminal's station, or the node itself: what scoping and silences look at. */
    nodeId: text('node_id').notNull(),
    rule: text('rule').notNull(),
    severity: text('severity', { enum: ['critical', 'major', 'minor'] }).notNull(),
    state: text('state', { enum: ['open', 'acknowledged', 'assigned', 'resolved'] }).notNull(),
    title: text('title').notNull(),
    /** JSON: what the rule saw (peripherals in fault, lost services, disk percent, ...). */
    details: text('details').notNull(),
    openedAt: integer('opened_at').notNull(),
    lastSeenAt: integer('last_seen_at').notNull(),
    /** Acknowledge before this, or the alert is overdue and escalates (SLA of its severity). */
    dueAt: integer('due_at').notNull(),
    acknowledgedAt: integer('acknowledged_at'),
    acknowledgedBy: text('acknowledged_by'),
    assignedTo: text('assigned_to'),
    assignedAt: integer('assigned_at'),
    escalatedAt: integer('escalated_at'),
    /** The district whose admins the alert escalated to. */
    escalatedTo: text('escalated_to'),
    resolvedAt: integer('resolved_at'),
    resolvedBy: text('resolved_by'),
    /** recovery: the condition cleared by itself; manual: resolved by hand with a note. */
    resolution: text('resolution', { enum: ['recovery', 'manual'] }),
    resolutionNote: text('resolution_note'),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    uniqueIndex('alerts_open_key').on(t.openKey),
    index('alerts_state').on(t.state, t.openedAt),
    index('alerts_node').on(t.nodeId, t.openedAt),
    index('alerts_subject').on(t.subjectId, t.openedAt),
  ],
);

/** Everything that happened to an alert, in order: opened, acknowledged, assigned, note, self-test, escalated, resolved. */
export const alertHistory = sqliteTable(
  'alert_history',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    alertId: integer('alert_id').notNull(),
    at: integer('at').notNull(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    note: text('note'),
    /** JSON, per action: the assignee, the self-test command id, the escalation target, ... */
    data: text('data'),
  },
  (t) => [index('alert_history_alert').on(t.alertId, t.id)],
);

/** A terminal or a node in maintenance: no alerts, and its downtime is planned. */
export const maintenance = sqliteTable(
  'maintenance',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    targetKind: text('target_kind', { enum: ['terminal', 'node'] }).notNull(),
    targetId: text('target_id').notNull(),
    /** The terminal's station at creation, or the node: for scoping. */
    nodeId: text('node_id').notNull(),
    reason: text('reason').notNull(),
    startsAt: integer('starts_at').notNull(),
    endsAt: integer('ends_at').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('maintenance_target').on(t.targetId, t.endsAt), index('maintenance_ends').on(t.endsAt)],
);

/** A rule silenced for everything under a node until a time. */
export const alertSilences = sqliteTable(
  'alert_silences',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    nodeId: text('node_id').notNull(),
    rule: text('rule').notNull(),
    until: integer('until').notNull(),
    reason: text('reason'),
    createdBy: text('created_by').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('alert_silences_until').on(t.until)],
);

/** Outbound webhooks (a bureau's duty system). The secret signs each body (HMAC-SHA256); it is never returned. */
export const alertWebhooks = sqliteTable('alert_webhooks', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  url: text('url').notNull(),
  secret: text('secret').notNull(),
  enabled: integer('enabled').notNull().default(1),
  createdBy: text('created_by').notNull(),
  createdAt: integer('created_at').notNull(),
});

/** One POST per (webhook, alert change), retried with backoff until delivered or out of attempts. */
export const alertDeliveries = sqliteTable(
  'alert_deliveries',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    webhookId: integer('webhook_id').notNull(),
    alertId: integer('alert_id').notNull(),
    event: text('event').notNull(),
    payload: text('payload').notNull(),
    /** pending → delivered | failed (out of attempts). */
    status: text('status', { enum: ['pending', 'delivered', 'failed'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAt: integer('next_at').notNull(),
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    createdAt: integer('created_at').notNull(),
    deliveredAt: integer('delivered_at'),
  },
  (t) => [index('alert_deliveries_due').on(t.status, t.nextAt), index('alert_deliveries_webhook').on(t.webhookId, t.id)],
);
