/** The downlink's tables: commands queued for terminals, and the update target each terminal is sent. */
import { index, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';

export const commands = sqliteTable(
  'commands',
  {
    id: text('id').primaryKey(),
    terminalId: text('terminal_id').notNull(),
    name: text('name').notNull(),
    args: text('args').notNull(),
    issuedAt: integer('issued_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    /** pending (not yet sent) → sent → ok | error | expired. */
    status: text('status').notNull(),
    sentAt: integer('sent_at'),
    completedAt: integer('completed_at'),
    result: text('result'),
    error: text('error'),
    createdBy: text('created_by').notNull(),
  },
  (t) => [index('commands_terminal').on(t.terminalId, t.issuedAt)],
);

/** What the hub sends, kept here so a restarted hub re-sends it (the broker's retained store is memory only). */
export const updateTargets = sqliteTable('update_targets', {
  terminalId: text('terminal_id').primaryKey(),
  payload: text('payload').notNull(),
  updatedAt: integer('updated_at').notNull(),
});
