/**
 * Layered config tables. A layer belongs to a node (city, district, station) or to a terminal; `scope` keeps the two
 * id spaces apart. `config_layers` holds the current version of each layer, `config_layer_history` every version
 * ever saved (who, when, why), so any two versions can be diffed. The per-terminal desired config that is pushed
 * stays in the core `desired_config` table (its version is the terminal's monotonically increasing one).
 * `config_sync` keeps the last applied/rejected report of each terminal: config_reports is pruned by retention, the
 * sync state must not be.
 */
import { bigint, index, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';

export const configLayers = pgTable(
  'config_layers',
  {
    scope: text('scope', { enum: ['node', 'terminal'] }).notNull(),
    targetId: text('target_id').notNull(),
    version: bigint('version', { mode: 'number' }).notNull(),
    /** JSON: the layer as saved (explicit nulls kept: they remove inherited values). */
    config: text('config').notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
    updatedBy: text('updated_by').notNull(),
    reason: text('reason'),
  },
  (t) => [primaryKey({ columns: [t.scope, t.targetId] })],
);

export const configLayerHistory = pgTable(
  'config_layer_history',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    scope: text('scope', { enum: ['node', 'terminal'] }).notNull(),
    targetId: text('target_id').notNull(),
    version: bigint('version', { mode: 'number' }).notNull(),
    config: text('config').notNull(),
    at: bigint('at', { mode: 'number' }).notNull(),
    by: text('by').notNull(),
    reason: text('reason'),
    /** How many terminals got a new desired config from this change. */
    pushed: bigint('pushed', { mode: 'number' }).notNull().default(0),
  },
  (t) => [uniqueIndex('config_layer_history_version').on(t.scope, t.targetId, t.version), index('config_layer_history_at').on(t.at)],
);

export const configSync = pgTable('config_sync', {
  terminalId: text('terminal_id').primaryKey(),
  appliedVersion: bigint('applied_version', { mode: 'number' }).notNull().default(0),
  appliedAt: bigint('applied_at', { mode: 'number' }),
  rejectedVersion: bigint('rejected_version', { mode: 'number' }).notNull().default(0),
  rejectedReason: text('rejected_reason'),
  rejectedAt: bigint('rejected_at', { mode: 'number' }),
});
