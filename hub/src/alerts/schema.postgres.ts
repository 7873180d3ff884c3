/**
 * Alert tables (drizzle; migrations generated into hub/drizzle with the rest). Times are integer milliseconds since
 * the epoch (UTC), like the core schema.
 *
 * One open alert per (subject, rule): `open_key` is `<subject kind>:<subject id>|<rule>` while the alert is not
 * resolved and NULL once it is; SQLite treats NULLs as distinct in a unique index, so history keeps every resolved
 * alert while the index forbids a second open one.
 */
import { bigint, index, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';

export const alerts = pgTable(
  'alerts',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
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
    openedAt: bigint('opened_at', { mode: 'number' }).notNull(),
    lastSeenAt: bigint('last_seen_at', { mode: 'number' }).notNull(),
    /** Acknowledge before this, or the alert is overdue and escalates (SLA of its severity). */
    dueAt: bigint('due_at', { mode: 'number' }).notNull(),
    acknowledgedAt: bigint('acknowledged_at', { mode: 'number' }),
    acknowledgedBy: text('acknowledged_by'),
    assignedTo: text('assigned_to'),
    assignedAt: bigint('assigned_at', { mode: 'number' }),
    escalatedAt: bigint('escalated_at', { mode: 'number' }),
    /** The district whose admins the alert escalated to. */
    escalatedTo: text('escalated_to'),
    resolvedAt: bigint('resolved_at', { mode: 'number' }),
    resolvedBy: text('resolved_by'),
    /** recovery: the condition cleared by itself; manual: resolved by hand with a note. */
    resolution: text('resolution', { enum: ['recovery', 'manual'] }),
    resolutionNote: text('resolution_note'),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [
    uniqueIndex('alerts_open_key').on(t.openKey),
    index('alerts_state').on(t.state, t.openedAt),
    index('alerts_node').on(t.nodeId, t.openedAt),
    index('alerts_subject').on(t.subjectId, t.openedAt),
  ],
);

/** Everything that happened to an alert, in order: opened, acknowledged, assigned, note, self-test, escalated, resolved. */
export const alertHistory = pgTable(
  'alert_history',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    alertId: bigint('alert_id', { mode: 'number' }).notNull(),
    at: bigint('at', { mode: 'number' }).notNull(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    note: text('note'),
    /** JSON, per action: the assignee, the self-test command id, the escalation target, ... */
    data: text('data'),
  },
  (t) => [index('alert_history_alert').on(t.alertId, t.id)],
);

/** A terminal or a node in maintenance: no alerts, and its downtime is planned. */
export const maintenance = pgTable(
  'maintenance',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    targetKind: text('target_kind', { enum: ['terminal', 'node'] }).notNull(),
    targetId: text('target_id').notNull(),
    /** The terminal's station at creation, or the node: for scoping. */
    nodeId: text('node_id').notNull(),
    reason: text('reason').notNull(),
    startsAt: bigint('starts_at', { mode: 'number' }).notNull(),
    endsAt: bigint('ends_at', { mode: 'number' }).notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('maintenance_target').on(t.targetId, t.endsAt), index('maintenance_ends').on(t.endsAt)],
);

/** A rule silenced for everything under a node until a time. */
export const alertSilences = pgTable(
  'alert_silences',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    nodeId: text('node_id').notNull(),
    rule: text('rule').notNull(),
    until: bigint('until', { mode: 'number' }).notNull(),
    reason: text('reason'),
    createdBy: text('created_by').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('alert_silences_until').on(t.until)],
);

/** Outbound webhooks (a bureau's duty system). The secret signs each body (HMAC-SHA256); it is never returned. */
export const alertWebhooks = pgTable('alert_webhooks', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  url: text('url').notNull(),
  secret: text('secret').notNull(),
  enabled: bigint('enabled', { mode: 'number' }).notNull().default(1),
  createdBy: text('created_by').notNull(),
  createdAt: bigint('created_at', { mode: 'number' }).notNull(),
});

/** One POST per (webhook, alert change), retried with backoff until delivered or out of attempts. */
export const alertDeliveries = pgTable(
  'alert_deliveries',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    webhookId: bigint('webhook_id', { mode: 'number' }).notNull(),
    alertId: bigint('alert_id', { mode: 'number' }).notNull(),
    event: text('event').notNull(),
    payload: text('payload').notNull(),
    /** pending → delivered | failed (out of attempts). */
    status: text('status', { enum: ['pending', 'delivered', 'failed'] }).notNull(),
    attempts: bigint('attempts', { mode: 'number' }).notNull().default(0),
    nextAt: bigint('next_at', { mode: 'number' }).notNull(),
    lastStatus: bigint('last_status', { mode: 'number' }),
    lastError: text('last_error'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    deliveredAt: bigint('delivered_at', { mode: 'number' }),
  },
  (t) => [index('alert_deliveries_due').on(t.status, t.nextAt), index('alert_deliveries_webhook').on(t.webhookId, t.id)],
);
