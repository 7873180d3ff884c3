/** The twin of schema.ts on PostgreSQL: same names and value conventions as SQLite (store/schema.postgres.ts says why). */
import { bigint, index, pgTable, text } from 'drizzle-orm/pg-core';

export const commands = pgTable(
  'commands',
  {
    id: text('id').primaryKey(),
    terminalId: text('terminal_id').notNull(),
    name: text('name').notNull(),
    args: text('args').notNull(),
    issuedAt: bigint('issued_at', { mode: 'number' }).notNull(),
    expiresAt: bigint('expires_at', { mode: 'number' }).notNull(),
    /** pending (not yet sent) → sent → ok | error | expired. */
    status: text('status').notNull(),
    sentAt: bigint('sent_at', { mode: 'number' }),
    completedAt: bigint('completed_at', { mode: 'number' }),
    result: text('result'),
    error: text('error'),
    createdBy: text('created_by').notNull(),
  },
  (t) => [index('commands_terminal').on(t.terminalId, t.issuedAt)],
);

/** What the hub sends, kept here so a restarted hub re-sends it (the broker's retained store is memory only). */
export const updateTargets = pgTable('update_targets', {
  terminalId: text('terminal_id').primaryKey(),
  payload: text('payload').notNull(),
  updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
});
