/**
 * Rollouts in PostgreSQL, the twin of schema.ts (drizzle-postgres 0001). One row per rollout: its spec and its engine state as JSON
 * (engine.ts keeps both JSON-serialisable), with the columns a listing filters or sorts on beside them. Times are
 * integer milliseconds since the epoch.
 */
import { bigint, index, pgTable, text } from 'drizzle-orm/pg-core';

export const rollouts = pgTable(
  'rollouts',
  {
    id: text('id').primaryKey(),
    releaseId: text('release_id').notNull(),
    status: text('status', { enum: ['running', 'paused', 'aborted', 'completed'] }).notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
    /** JSON of the RolloutSpec (engine.ts): fixed at creation. */
    spec: text('spec').notNull(),
    /** JSON of the RolloutState (engine.ts): rewritten on every change. */
    state: text('state').notNull(),
  },
  (t) => [index('rollouts_status').on(t.status), index('rollouts_release').on(t.releaseId)],
);
