/**
 * The PostgreSQL schema (drizzle pg-core), the twin of schema.ts (drizzle has no dialect-neutral schema, drizzle-orm
 * #1196). Same tables, same column names and the same value conventions as SQLite (times are bigint milliseconds
 * since the epoch, flags 0/1, JSON as text), so that a row copies across unchanged (`kiosk-fleet migrate-store`) and
 * the two stores of a domain differ only in their SQL. Migrations in hub/drizzle-postgres are generated from these
 * files by drizzle-kit (`pnpm --filter @kiosk-fleet/hub run db:generate:postgres`) and then edited by hand where
 * drizzle cannot say it: `telemetry_samples` and `events` are partitioned by day on the sample time (migration 0000,
 * db/postgres/partitions.ts), and a unique key on a partitioned table must include the partition key, so the
 * dedupe keys carry `ts`: a redelivered or replayed message is the outbox's stored payload, same ts, so
 * (terminal, epoch, seq, ts) stores it once just as (terminal, epoch, seq) does; one re-sent with another ts is
 * caught by the write path before its insert (ingest/store.postgres.ts `resent`).
 */
import { sql } from 'drizzle-orm';
import { bigint, doublePrecision, index, integer, pgTable, primaryKey, smallint, text, uniqueIndex } from 'drizzle-orm/pg-core';

export const nodes = pgTable(
  'nodes',
  {
    id: text('id').primaryKey(),
    level: text('level', { enum: ['city', 'district', 'station'] }).notNull(),
    parentId: text('parent_id'),
    nameZh: text('name_zh').notNull(),
    nameEn: text('name_en').notNull(),
    kind: text('kind'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('nodes_parent').on(t.parentId)],
);

export const terminals = pgTable(
  'terminals',
  {
    id: text('id').primaryKey(),
    type: text('type').notNull(),
    serial: text('serial').notNull(),
    stationId: text('station_id').notNull(),
    state: text('state', { enum: ['active', 'decommissioned'] }).notNull().default('active'),
    secretHash: text('secret_hash').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    decommissionedAt: bigint('decommissioned_at', { mode: 'number' }),
  },
  (t) => [index('terminals_station').on(t.stationId)],
);

export const placements = pgTable(
  'placements',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    terminalId: text('terminal_id').notNull(),
    fromStation: text('from_station'),
    toStation: text('to_station'),
    by: text('by').notNull(),
    at: bigint('at', { mode: 'number' }).notNull(),
    reason: text('reason'),
  },
  (t) => [index('placements_terminal').on(t.terminalId, t.at)],
);

/** The latest state of each terminal, updated in the same transaction as the message that changed it. */
export const terminalState = pgTable('terminal_state', {
  terminalId: text('terminal_id').primaryKey(),
  presence: text('presence', { enum: ['unknown', 'online', 'offline', 'stale'] }).notNull().default('unknown'),
  presenceReason: text('presence_reason'),
  presenceSince: bigint('presence_since', { mode: 'number' }),
  flapping: bigint('flapping', { mode: 'number' }).notNull().default(0),
  bootId: text('boot_id'),
  connSeq: bigint('conn_seq', { mode: 'number' }),
  intervalS: doublePrecision('interval_s'),
  agentVersion: text('agent_version'),
  appVersion: text('app_version'),
  uptime: doublePrecision('uptime'),
  lastExit: text('last_exit'),
  lastSeenAt: bigint('last_seen_at', { mode: 'number' }),
  lastTelemetryAt: bigint('last_telemetry_at', { mode: 'number' }),
  lastTelemetryTs: bigint('last_telemetry_ts', { mode: 'number' }),
  clockSkewMs: bigint('clock_skew_ms', { mode: 'number' }),
  host: text('host'),
  /** JSON {peripheralId: {status, since, code?, message?}}. */
  peripherals: text('peripherals'),
  app: text('app'),
  /** JSON array of service ids available now. */
  services: text('services'),
  faultCount: bigint('fault_count', { mode: 'number' }).notNull().default(0),
  /** The remote address of the terminal's latest MQTT connection (shown by the API; takeovers are logged with both). */
  lastAddress: text('last_address'),
  /** JSON while the terminal floods (ingest/quota.ts). */
  flooding: text('flooding'),
  /** JSON {since, addresses, takeovers, heldOff?} while its credentials are in use from two addresses (broker/takeover.ts). */
  credentialConflict: text('credential_conflict'),
  /**
   * The hub holding the terminal's MQTT connection (KF_HUB_ID) and that connection's generation (unique per hub and
   * connection): a connection's end writes offline only while the row still names it (presence/service.ts), and the
   * reaper takes a dead hub's terminals offline by this column (hubs/reaper.ts).
   */
  connHub: text('conn_hub'),
  connGen: bigint('conn_gen', { mode: 'number' }),
  /**
   * The telemetry stream's counters for its newest outbox epoch, kept in this row (written with the latest state, one
   * UPDATE per terminal and batch) instead of a `streams` row of their own. When a terminal's epoch changes, the old
   * epoch's counters move to `streams`; readers merge both by (stream, epoch) (QueryStore.streams).
   */
  telEpoch: text('tel_epoch'),
  telFirstSeq: bigint('tel_first_seq', { mode: 'number' }),
  telMaxSeq: bigint('tel_max_seq', { mode: 'number' }),
  telCount: bigint('tel_count', { mode: 'number' }),
  telLastAt: bigint('tel_last_at', { mode: 'number' }),
}, (t) => [index('terminal_state_conn_hub').on(t.connHub)]);

const streamColumns = {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  terminalId: text('terminal_id').notNull(),
  epoch: text('epoch').notNull(),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  /** The terminal's clock. */
  ts: bigint('ts', { mode: 'number' }).notNull(),
  /** The hub's clock when the message arrived. */
  receivedAt: bigint('received_at', { mode: 'number' }).notNull(),
  /** The terminal's clock differed from the hub's by more than the skew limit. */
  skewed: bigint('skewed', { mode: 'number' }).notNull().default(0),
};

/** A terminal's outbox epoch as a small integer key: telemetry rows carry it instead of the terminal id and epoch text. */
export const telemetryEpochs = pgTable(
  'telemetry_epochs',
  {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    terminalId: text('terminal_id').notNull(),
    epoch: text('epoch').notNull(),
  },
  (t) => [uniqueIndex('telemetry_epochs_key').on(t.terminalId, t.epoch)],
);

/**
 * Raw samples, compact (ingest/telemetry-codec.ts says what each column holds), partitioned by day on `ts` (the
 * terminal's clock; a DEFAULT partition takes dead clocks). The primary key (epoch_id, ts, seq) is the dedupe key as
 * well (see the file's head), so there is no second unique index as on SQLite. Narrow types where the value is
 * bounded (epoch_id is the hub's own counter, skewed and app are bits); seq stays bigint (the protocol allows up to
 * 2^53).
 */
export const telemetry = pgTable(
  'telemetry_samples',
  {
    epochId: integer('epoch_id').notNull(),
    /** The terminal's clock. */
    ts: bigint('ts', { mode: 'number' }).notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    /** received_at - ts: the hub's clock when the message arrived, minus the terminal's. */
    recvDelay: bigint('recv_delay', { mode: 'number' }).notNull(),
    /** The terminal's clock differed from the hub's by more than the skew limit. */
    skewed: smallint('skewed').notNull().default(0),
    /** Percent × 100. */
    cpu: doublePrecision('cpu').notNull(),
    /** KiB. */
    memUsed: doublePrecision('mem_used').notNull(),
    memTotal: doublePrecision('mem_total').notNull(),
    diskUsed: doublePrecision('disk_used').notNull(),
    diskTotal: doublePrecision('disk_total').notNull(),
    /** °C × 10. */
    temp: doublePrecision('temp'),
    uptime: doublePrecision('uptime').notNull(),
    /** 3 bits per peripheral of PERIPHERAL_CODES. */
    pstat: bigint('pstat', { mode: 'number' }).notNull(),
    /** The ID card reader's counters. */
    reads: bigint('reads', { mode: 'number' }),
    failedReads: bigint('failed_reads', { mode: 'number' }),
    /** JSON array: what else peripherals carried (codes, messages, other counters, unknown peripherals). */
    pnote: text('pnote'),
    /** null: no app; bit 0 up, bit 1 session active. */
    app: smallint('app'),
    txOk: bigint('tx_ok', { mode: 'number' }),
    txFailed: bigint('tx_failed', { mode: 'number' }),
    appVersion: text('app_version'),
    /** Bitmask over SERVICE_CODES. */
    services: bigint('services', { mode: 'number' }),
  },
  (t) => [
    primaryKey({ columns: [t.epochId, t.ts, t.seq] }),
    // Pruning goes by receive time: a clock-skewed row may lie anywhere in ts order, and this partial index (empty
    // while clocks are right) finds them without a scan.
    index('telemetry_skewed').on(t.epochId).where(sql`skewed = 1`),
  ],
);

/** Partitioned by day on `ts` like telemetry_samples: the primary key and the dedupe key carry `ts`. */
export const events = pgTable(
  'events',
  {
    ...streamColumns,
    id: bigint('id', { mode: 'number' }).notNull().generatedByDefaultAsIdentity(),
    kind: text('kind').notNull(),
    severity: text('severity').notNull(),
    peripheral: text('peripheral'),
    code: text('code'),
    message: text('message'),
    data: text('data'),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.ts] }),
    uniqueIndex('events_once').on(t.terminalId, t.epoch, t.seq, t.ts),
    index('events_time').on(t.terminalId, t.ts),
  ],
);

export const configReports = pgTable(
  'config_reports',
  {
    ...streamColumns,
    version: bigint('version', { mode: 'number' }).notNull(),
    status: text('status').notNull(),
    reason: text('reason'),
  },
  (t) => [uniqueIndex('config_reports_once').on(t.terminalId, t.epoch, t.seq)],
);

export const commandResults = pgTable(
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

export const updateStatus = pgTable(
  'update_status',
  {
    ...streamColumns,
    rolloutId: text('rollout_id'),
    releaseId: text('release_id'),
    version: text('version'),
    state: text('state').notNull(),
    progress: doublePrecision('progress'),
    error: text('error'),
  },
  (t) => [uniqueIndex('update_status_once').on(t.terminalId, t.epoch, t.seq)],
);

/** Per (terminal, stream, epoch): how many distinct seqs arrived and the highest; a gap is max - first + 1 - count. */
export const streams = pgTable(
  'streams',
  {
    terminalId: text('terminal_id').notNull(),
    stream: text('stream').notNull(),
    epoch: text('epoch').notNull(),
    firstSeq: bigint('first_seq', { mode: 'number' }).notNull(),
    maxSeq: bigint('max_seq', { mode: 'number' }).notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
    lastAt: bigint('last_at', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.terminalId, t.stream, t.epoch] })],
);

export const presenceTransitions = pgTable(
  'presence_transitions',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    terminalId: text('terminal_id').notNull(),
    at: bigint('at', { mode: 'number' }).notNull(),
    fromState: text('from_state').notNull(),
    toState: text('to_state').notNull(),
    reason: text('reason').notNull(),
    bootId: text('boot_id'),
    connSeq: bigint('conn_seq', { mode: 'number' }),
    /** The connection's remote address, on transitions that a connection made (connected, takeover). */
    address: text('address'),
  },
  (t) => [index('presence_transitions_terminal').on(t.terminalId, t.at)],
);


/** What the hub sends, kept here so a restarted hub re-sends it (the broker's retained store is memory only). */
export const desiredConfig = pgTable('desired_config', {
  terminalId: text('terminal_id').primaryKey(),
  version: bigint('version', { mode: 'number' }).notNull(),
  config: text('config').notNull(),
  updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
});



export const meta = pgTable('meta', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});
