/**
 * The SQLite schema (drizzle). Migrations in hub/drizzle are generated from this file by drizzle-kit
 * (`pnpm --filter @kiosk-fleet/hub run db:generate`). Times are integer milliseconds since the epoch (UTC); the API
 * turns them into ISO strings. Every terminal → hub stream table is unique on (terminal, epoch, seq): that is what
 * makes redelivery and outbox replay harmless.
 */
import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

export const nodes = sqliteTable(
  'nodes',
  {
    id: text('id').primaryKey(),
    level: text('level', { enum: ['city', 'district', 'station'] }).notNull(),
    parentId: text('parent_id'),
    nameZh: text('name_zh').notNull(),
    nameEn: text('name_en').notNull(),
    kind: text('kind'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('nodes_parent').on(t.parentId)],
);

export const terminals = sqliteTable(
  'terminals',
  {
    id: text('id').primaryKey(),
    type: text('type').notNull(),
    serial: text('serial').notNull(),
    stationId: text('station_id').notNull(),
    state: text('state', { enum: ['active', 'decommissioned'] }).notNull().default('active'),
    secretHash: text('secret_hash').notNull(),
    createdAt: integer('created_at').notNull(),
    decommissionedAt: integer('decommissioned_at'),
  },
  (t) => [index('terminals_station').on(t.stationId)],
);

export const placements = sqliteTable(
  'placements',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    terminalId: text('terminal_id').notNull(),
    fromStation: text('from_station'),
    toStation: text('to_station'),
    by: text('by').notNull(),
    at: integer('at').notNull(),
    reason: text('reason'),
  },
  (t) => [index('placements_terminal').on(t.terminalId, t.at)],
);

/** The latest state of each terminal, updated in the same transaction as the message that changed it. */
export const terminalState = sqliteTable('terminal_state', {
  terminalId: text('terminal_id').primaryKey(),
  presence: text('presence', { enum: ['unknown', 'online', 'offline', 'stale'] }).notNull().default('unknown'),
  presenceReason: text('presence_reason'),
  presenceSince: integer('presence_since'),
  flapping: integer('flapping').notNull().default(0),
  bootId: text('boot_id'),
  connSeq: integer('conn_seq'),
  intervalS: real('interval_s'),
  agentVersion: text('agent_version'),
  appVersion: text('app_version'),
  uptime: real('uptime'),
  lastExit: text('last_exit'),
  lastSeenAt: integer('last_seen_at'),
  lastTelemetryAt: integer('last_telemetry_at'),
  lastTelemetryTs: integer('last_telemetry_ts'),
  clockSkewMs: integer('clock_skew_ms'),
  host: text('host'),
  /** JSON {peripheralId: {status, since, code?, message?}}. */
  peripherals: text('peripherals'),
  app: text('app'),
  /** JSON array of service ids available now. */
  services: text('services'),
  faultCount: integer('fault_count').notNull().default(0),
  /**
   * The telemetry stream's counters for its newest outbox epoch, kept in this row (written with the latest state, one
   * UPDATE per terminal and batch) instead of a `streams` row of their own. When a terminal's epoch changes, the old
   * epoch's counters move to `streams`; readers merge both by (stream, epoch) (QueryStore.streams).
   */
  telEpoch: text('tel_epoch'),
  telFirstSeq: integer('tel_first_seq'),
  telMaxSeq: integer('tel_max_seq'),
  telCount: integer('tel_count'),
  telLastAt: integer('tel_last_at'),
  /** The remote address of the terminal's latest MQTT connection (shown by the API; takeovers are logged with both). */
  lastAddress: text('last_address'),
  /** JSON {since, streams: {stream: dropped}} while the terminal is over its ingest quota (ingest/quota.ts); else null. */
  flooding: text('flooding'),
  /** JSON {since, addresses, takeovers, heldOff?} while its credentials are in use from two addresses (broker/takeover.ts). */
  credentialConflict: text('credential_conflict'),
  /**
   * The hub holding the terminal's MQTT connection (KF_HUB_ID) and that connection's generation (unique per hub and
   * connection): a connection's end writes offline only while the row still names it (presence/service.ts), and the
   * reaper takes a dead hub's terminals offline by this column (hubs/reaper.ts).
   */
  connHub: text('conn_hub'),
  connGen: integer('conn_gen'),
}, (t) => [index('terminal_state_conn_hub').on(t.connHub)]);

const streamColumns = {
  id: integer('id').primaryKey({ autoIncrement: true }),
  terminalId: text('terminal_id').notNull(),
  epoch: text('epoch').notNull(),
  seq: integer('seq').notNull(),
  /** The terminal's clock. */
  ts: integer('ts').notNull(),
  /** The hub's clock when the message arrived. */
  receivedAt: integer('received_at').notNull(),
  /** The terminal's clock differed from the hub's by more than the skew limit. */
  skewed: integer('skewed').notNull().default(0),
};

/** A terminal's outbox epoch as a small integer key: telemetry rows carry it instead of the terminal id and epoch text. */
export const telemetryEpochs = sqliteTable(
  'telemetry_epochs',
  {
    id: integer('id').primaryKey(),
    terminalId: text('terminal_id').notNull(),
    epoch: text('epoch').notNull(),
  },
  (t) => [uniqueIndex('telemetry_epochs_key').on(t.terminalId, t.epoch)],
);

/**
 * Raw samples, compact (ingest/telemetry-codec.ts says what each column holds). WITHOUT ROWID, clustered on
 * (epoch_id, ts, seq): a terminal's chart reads one range. drizzle cannot declare WITHOUT ROWID: migration 0006 adds
 * it by hand; a later migration that rebuilds this table must keep it. Migration 0006 also creates the view
 * `telemetry` (terminal id, epoch, receive time and host figures in their units, one row per sample) for SQL read by
 * people and tests; the hub itself reads this table.
 */
export const telemetry = sqliteTable(
  'telemetry_samples',
  {
    epochId: integer('epoch_id').notNull(),
    /** The terminal's clock. */
    ts: integer('ts').notNull(),
    seq: integer('seq').notNull(),
    /** received_at - ts: the hub's clock when the message arrived, minus the terminal's. */
    recvDelay: integer('recv_delay').notNull(),
    /** The terminal's clock differed from the hub's by more than the skew limit. */
    skewed: integer('skewed').notNull().default(0),
    /** Percent × 100. */
    cpu: real('cpu').notNull(),
    /** KiB. */
    memUsed: real('mem_used').notNull(),
    memTotal: real('mem_total').notNull(),
    diskUsed: real('disk_used').notNull(),
    diskTotal: real('disk_total').notNull(),
    /** °C × 10. */
    temp: real('temp'),
    uptime: real('uptime').notNull(),
    /** 3 bits per peripheral of PERIPHERAL_CODES. */
    pstat: integer('pstat').notNull(),
    /** The ID card reader's counters. */
    reads: integer('reads'),
    failedReads: integer('failed_reads'),
    /** JSON array: what else peripherals carried (codes, messages, other counters, unknown peripherals). */
    pnote: text('pnote'),
    /** null: no app; bit 0 up, bit 1 session active. */
    app: integer('app'),
    txOk: integer('tx_ok'),
    txFailed: integer('tx_failed'),
    appVersion: text('app_version'),
    /** Bitmask over SERVICE_CODES. */
    services: integer('services'),
  },
  (t) => [
    primaryKey({ columns: [t.epochId, t.ts, t.seq] }),
    uniqueIndex('telemetry_once').on(t.epochId, t.seq),
    // Pruning goes by receive time: a clock-skewed row may lie anywhere in ts order, and this partial index (empty
    // while clocks are right) finds them without a scan.
    index('telemetry_skewed').on(t.epochId).where(sql`skewed = 1`),
  ],
);

export const events = sqliteTable(
  'events',
  {
    ...streamColumns,
    kind: text('kind').notNull(),
    severity: text('severity').notNull(),
    peripheral: text('peripheral'),
    code: text('code'),
    message: text('message'),
    data: text('data'),
  },
  (t) => [uniqueIndex('events_once').on(t.terminalId, t.epoch, t.seq), index('events_time').on(t.terminalId, t.ts)],
);

export const configReports = sqliteTable(
  'config_reports',
  {
    ...streamColumns,
    version: integer('version').notNull(),
    status: text('status').notNull(),
    reason: text('reason'),
  },
  (t) => [uniqueIndex('config_reports_once').on(t.terminalId, t.epoch, t.seq)],
);

export const commandResults = sqliteTable(
  'command_results',
  {
    ...streamColumns,
    commandId: text('command_id').notNull(),
    status: text('status').notNull(),
    result: text('result'),
    error: text('error'),
  },
  (t) => [uniqueIndex('command_results_once').on(t.terminalId, t.epoch, t.seq), index('command_results_cmd').on(t.commandId)],
);

export const updateStatus = sqliteTable(
  'update_status',
  {
    ...streamColumns,
    rolloutId: text('rollout_id'),
    releaseId: text('release_id'),
    version: text('version'),
    state: text('state').notNull(),
    progress: real('progress'),
    error: text('error'),
  },
  (t) => [uniqueIndex('update_status_once').on(t.terminalId, t.epoch, t.seq)],
);

/** Per (terminal, stream, epoch): how many distinct seqs arrived and the highest; a gap is max - first + 1 - count. */
export const streams = sqliteTable(
  'streams',
  {
    terminalId: text('terminal_id').notNull(),
    stream: text('stream').notNull(),
    epoch: text('epoch').notNull(),
    firstSeq: integer('first_seq').notNull(),
    maxSeq: integer('max_seq').notNull(),
    count: integer('count').notNull(),
    lastAt: integer('last_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.terminalId, t.stream, t.epoch] })],
);

export const presenceTransitions = sqliteTable(
  'presence_transitions',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    terminalId: text('terminal_id').notNull(),
    at: integer('at').notNull(),
    fromState: text('from_state').notNull(),
    toState: text('to_state').notNull(),
    reason: text('reason').notNull(),
    bootId: text('boot_id'),
    connSeq: integer('conn_seq'),
    /** The connection's remote address, on transitions that a connection made (connected, takeover). */
    address: text('address'),
  },
  (t) => [index('presence_transitions_terminal').on(t.terminalId, t.at)],
);


/** What the hub sends, kept here so a restarted hub re-sends it (the broker's retained store is memory only). */
export const desiredConfig = sqliteTable('desired_config', {
  terminalId: text('terminal_id').primaryKey(),
  version: integer('version').notNull(),
  config: text('config').notNull(),
  updatedAt: integer('updated_at').notNull(),
});



export const meta = sqliteTable('meta', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});
