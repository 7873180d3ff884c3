/**
 * What alerts need from the database, engine-neutral: alerts and their history, maintenance, silences, webhooks and
 * their deliveries, and the few reads of other domains' tables the rules judge a terminal on. `store.sqlite.ts` and
 * `store.postgres.ts` implement it; `createAlertStore` picks by engine. Every write takes the caller's `tx`.
 *
 * Invariants the engine relies on (both engines, alerts/store.test.ts):
 * - One open alert per `open_key` (unique index): `insertAlert` of a key that is open already writes nothing and
 *   returns null, so two evaluations of one fault that interleave (two runs, two hubs) open it once.
 * - `resolve` and `escalate` change only an alert still open (and not yet escalated/acknowledged) and say whether
 *   they did: an alert resolved by hand while a run recovered it is resolved, and recorded, once.
 * - `lockAlert` and `openOf` with a `tx` hold the rows until the commit (PostgreSQL `FOR UPDATE`; SQLite's one
 *   writer already serialises), so lifecycle events of one alert are written in the order they committed. The
 *   sweeping writes of a run (`overdue` in a transaction, `markAllSeen`) skip rows another transaction holds.
 * - Values come back identical on both engines (integers as numbers, JSON columns as the text that was written).
 */
import type { Engine, Tx } from '../db/engine.ts';
import type { RuleId, Severity } from './rules/types.ts';
import { SqliteAlertStore } from './store.sqlite.ts';
import { PostgresAlertStore } from './store.postgres.ts';

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
  /** As stored: sealed (`openSecret` gives the plaintext). */
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
  /** JSON while the terminal floods / its credentials are in use from two addresses (security/service.ts). */
  flooding: string | null;
  credentialConflict: string | null;
}

/** An active terminal as the station rules keep it between runs. */
export interface MemberRow {
  id: string;
  type: string;
  stationId: string;
  presence: string | null;
  services: string | null;
}

/** A terminal's latest update status (whatever its state). */
export interface UpdateStatusRow {
  terminalId: string;
  at: number;
  version: string | null;
  error: string | null;
  state: string;
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

export interface NewAlert {
  openKey: string;
  subjectKind: 'terminal' | 'node';
  subjectId: string;
  nodeId: string;
  rule: RuleId;
  severity: Severity;
  title: string;
  /** JSON text, stored and returned as it is. */
  details: string;
  at: number;
  dueAt: number;
}

export interface NewMaintenance {
  targetKind: 'terminal' | 'node';
  targetId: string;
  nodeId: string;
  reason: string;
  startsAt: number;
  endsAt: number;
  createdBy: string;
  createdAt: number;
}

export interface NewSilence {
  nodeId: string;
  rule: string;
  until: number;
  reason: string | null;
  createdBy: string;
  createdAt: number;
}

export interface NewDelivery {
  webhookId: number;
  alertId: number;
  event: string;
  payload: string;
  at: number;
}

export interface DeliveryAttempt {
  status: DeliveryRow['status'];
  nextAt: number;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
}

export interface AlertStore {
  // ---------------------------------------------------------------- webhook secrets (sealed at rest, secrets.ts)
  sealSecret(plain: string): Promise<string>;
  openSecret(stored: string): Promise<string>;
  /** Seals the webhook secrets stored in plain text (before sealing existed); returns how many. */
  sealPlainWebhookSecrets(): Promise<number>;

  // ---------------------------------------------------------------- what the rules judge (other domains' tables)
  /** Every active terminal. */
  members(): Promise<MemberRow[]>;
  /** The active ones of `ids` with their state (an id missing from the answer is gone or decommissioned). */
  snapshots(ids: readonly string[]): Promise<Map<string, SnapshotRow>>;
  /** The latest update status of each of `ids` that has one. */
  latestUpdates(ids: readonly string[]): Promise<Map<string, UpdateStatusRow>>;
  /** Times of a terminal's presence transitions after `after`, oldest first. */
  transitionTimes(terminalId: string, after: number): Promise<number[]>;
  /** A command's result and error (JSON text as stored). */
  commandOutcome(commandId: string): Promise<{ result: string | null; error: string | null } | undefined>;

  // ---------------------------------------------------------------- alerts
  alert(id: number, tx?: Tx): Promise<AlertRow | undefined>;
  /** The alert, held until `tx` commits (lifecycle actions read, check and write under it). */
  lockAlert(id: number, tx: Tx): Promise<AlertRow | undefined>;
  /** The open alerts of these subjects, held until `tx` commits when one is given; in id order. */
  openOf(subjects: { terminals: readonly string[]; nodes: readonly string[] }, tx?: Tx): Promise<AlertRow[]>;
  openSubjects(): Promise<{ subjectKind: 'terminal' | 'node'; subjectId: string }[]>;
  openCounts(): Promise<{ severity: string; n: number }[]>;
  list(f: AlertFilter): Promise<AlertRow[]>;
  /** Open, neither acknowledged nor escalated, due at or before `at`; with `tx`, those no other transaction holds, held. */
  overdue(at: number, tx?: Tx): Promise<AlertRow[]>;
  /** The new alert's id, or null when an alert with this open key is open already (nothing written). */
  insertAlert(a: NewAlert, tx?: Tx): Promise<number | null>;
  refresh(id: number, c: { severity: Severity; title: string; details: string }, at: number, tx?: Tx): Promise<void>;
  markSeen(id: number, at: number, tx?: Tx): Promise<void>;
  /** Every open alert last seen at or before `seenBefore` is seen at `at`. */
  markAllSeen(at: number, seenBefore: number, tx?: Tx): Promise<void>;
  /** True when the alert was open and is now resolved. */
  resolve(id: number, r: { at: number; by: string; resolution: 'recovery' | 'manual'; note: string | null }, tx?: Tx): Promise<boolean>;
  acknowledge(id: number, at: number, by: string, tx?: Tx): Promise<void>;
  assign(id: number, to: string, at: number, by: string, tx?: Tx): Promise<void>;
  touch(id: number, at: number, tx?: Tx): Promise<void>;
  /** True when the alert was still open, unacknowledged and not escalated, and now is escalated. */
  escalate(id: number, at: number, to: string | null, tx?: Tx): Promise<boolean>;
  appendHistory(h: Omit<HistoryRow, 'id'>, tx?: Tx): Promise<void>;
  /** In the order written. */
  history(alertId: number, tx?: Tx): Promise<HistoryRow[]>;
  /** The alert a self-test command was run for. */
  selfTestAlert(commandId: string): Promise<number | undefined>;

  // ---------------------------------------------------------------- maintenance, silences
  /** Started at or before `at`, ending after it. */
  activeMaintenance(at: number, tx?: Tx): Promise<MaintenanceRow[]>;
  maintenance(id: number, tx?: Tx): Promise<MaintenanceRow | undefined>;
  /** Under `scope` (null: all), still going at `activeAt` (null: also past ones), newest start first. */
  maintenanceList(scope: string | null, activeAt: number | null, limit: number): Promise<MaintenanceRow[]>;
  addMaintenance(m: NewMaintenance, tx?: Tx): Promise<MaintenanceRow>;
  /** Ends it at `at` (not before it started) unless it ended already; the row as it is now. */
  endMaintenance(id: number, at: number, tx?: Tx): Promise<MaintenanceRow | undefined>;
  activeSilences(at: number, tx?: Tx): Promise<SilenceRow[]>;
  silence(id: number, tx?: Tx): Promise<SilenceRow | undefined>;
  silenceList(scope: string | null, activeAt: number | null, limit: number): Promise<SilenceRow[]>;
  addSilence(s: NewSilence, tx?: Tx): Promise<SilenceRow>;
  /** Ends it at `at` unless it ended already; the row as it is now. */
  endSilence(id: number, at: number, tx?: Tx): Promise<SilenceRow | undefined>;

  // ---------------------------------------------------------------- webhooks, deliveries
  /** In id order. */
  webhooks(tx?: Tx): Promise<WebhookRow[]>;
  webhook(id: number, tx?: Tx): Promise<WebhookRow | undefined>;
  /** Stores the webhook with its secret sealed. */
  addWebhook(w: { url: string; secret: string; createdBy: string; createdAt: number }, tx?: Tx): Promise<WebhookRow>;
  /** Removes the webhook and its deliveries; false when there was none. */
  deleteWebhook(id: number, tx?: Tx): Promise<boolean>;
  /** Pending deliveries due at their `at` (one statement, however many). */
  queueDeliveries(rows: readonly NewDelivery[], tx?: Tx): Promise<void>;
  /**
   * Takes up to `limit` pending deliveries due at `at`, oldest first, for one attempt: they are not due again before
   * `leaseUntil` (another dispatcher, another hub, skips them), and come back with the time they were due. The
   * attempt's `recordAttempt` sets when they are due next; a hub that dies mid-attempt leaves them to the lease.
   */
  claimDue(at: number, limit: number, leaseUntil: number): Promise<DeliveryRow[]>;
  /** When the next pending delivery is due; null: none pending. */
  nextDeliveryAt(): Promise<number | null>;
  /** Records an attempt (attempts + 1). */
  recordAttempt(id: number, a: DeliveryAttempt, tx?: Tx): Promise<void>;
  /** A webhook's latest deliveries, newest first. */
  deliveries(webhookId: number, limit: number): Promise<DeliveryRow[]>;
  deliveryCounts(webhookId: number): Promise<{ status: DeliveryRow['status']; n: number }[]>;
}

export function createAlertStore(engine: Engine): AlertStore {
  return engine.kind === 'sqlite' ? new SqliteAlertStore(engine.db) : new PostgresAlertStore(engine.pg);
}
