/** The twin of schema.ts on PostgreSQL (same columns and value conventions: bigint milliseconds, JSON as text). */
import { bigint, index, pgTable, text } from 'drizzle-orm/pg-core';

export const hubs = pgTable(
  'hubs',
  {
    id: text('id').primaryKey(),
    version: text('version').notNull(),
    startedAt: bigint('started_at', { mode: 'number' }).notNull(),
    leaseExpiresAt: bigint('lease_expires_at', { mode: 'number' }).notNull(),
    connectedTerminals: bigint('connected_terminals', { mode: 'number' }).notNull().default(0),
    leaderOf: text('leader_of').notNull().default('[]'),
  },
  (t) => [index('hubs_lease').on(t.leaseExpiresAt)],
);
