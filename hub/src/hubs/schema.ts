/**
 * The installation's hubs (SQLite: a cluster of one). Each hub upserts its row at start and renews `lease_expires_at`
 * every fifth of its lease (hubs/registry.ts); a hub whose lease ran out is dead, and the reaper takes its terminals
 * offline (`hub-lost`). The twin of schema.postgres.ts.
 */
import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

export const hubs = sqliteTable(
  'hubs',
  {
    /** KF_HUB_ID. */
    id: text('id').primaryKey(),
    version: text('version').notNull(),
    startedAt: integer('started_at').notNull(),
    /** Milliseconds since the epoch; at a clean stop set to the stop's time. */
    leaseExpiresAt: integer('lease_expires_at').notNull(),
    connectedTerminals: integer('connected_terminals').notNull().default(0),
    /** JSON array of the job names this hub leads (cluster leadership). */
    leaderOf: text('leader_of').notNull().default('[]'),
  },
  (t) => [index('hubs_lease').on(t.leaseExpiresAt)],
);
