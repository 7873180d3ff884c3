/**
 * Layered config tables. A layer belongs to a node (city, district, station) or to a terminal; `scope` keeps the two
 * id spaces apart. `config_layers` holds the current version of each layer, `config_layer_history` every version
 * ever saved (who, when, why), so any two versions can be diffed. The per-terminal desired config that is pushed
 * stays in the core `desired_config` table (its version is the terminal's monotonically increasing one).
 * `config_sync` keeps the last applied/rejected report of each terminal: config_reports is pruned by retention, the
 * sync state must not be.
 */
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

export const configLayers = sqliteTable(
  'config_layers',
  {
    scope: text('scope', { enum: ['node', 'terminal'] }).notNull(),
    targetId: text('target_id').notNull(),
    version: integer('version').notNull(),
    /** JSON: the layer as saved (explicit nulls kept: they remove inherited values). */
    config: text('config').notNull(),
    updatedAt: integer('updated_at').notNull(),
    updatedBy: text('updated_by').notNull(),
    reason: text('reason'),
  },
  (t) => [primaryKey({ columns: [t.scope, t.targetId] })],
);

export const configLayerHistory = sqliteTable(
  'config_layer_history',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    scope: text('scope', { enum: ['node', 'terminal'] }).notNull(),
    targetId: text('target_id').notNull(),
    version: integer('version').notNull(),
    config: text('config').notNull(),
    at: integer('at').notNull(),
    by: text('by').notNull(),
    reason: text('reason'),
    /** How many terminals got a new desired config from this change. */
    pushed: integer('pushed').notNull().default(0),
  },
  (t) => [uniqueIndex('config_layer_history_version').on(t.scope, t.targetId, t.version), index('config_layer_history_at').on(t.at)],
);

export const configSync = sqliteTable('config_sync', {
  terminalId: text('terminal_id').primaryKey(),
  appliedVersion: integer('applied_version').notNull().default(0),
  appliedAt: integer('applied_at'),
  rejectedVersion: integer('rejected_version').notNull().default(0),
  rejectedReason: text('rejected_reason'),
  rejectedAt: integer('rejected_at'),
});
