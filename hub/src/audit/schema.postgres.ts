/**
 * The audit log: append-only, each row carrying the hash of the previous row and its own hash over its content
 * (audit/log.ts). UPDATE and DELETE are refused by triggers (migration 'audit_append_only'); someone with the file
 * can still drop them, and then `verify` names the first row whose hash no longer matches.
 */
import { bigint, index, pgTable, text } from 'drizzle-orm/pg-core';

export const auditLog = pgTable(
  'audit_log',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    at: bigint('at', { mode: 'number' }).notNull(),
    /** Who: a username, `token:<id>` of a user's API token, or `admin-token`. */
    actor: text('actor').notNull(),
    actorKind: text('actor_kind').notNull(),
    userId: text('user_id'),
    /** What: `terminal.move`, `user.disable`, `auth.login`, ... */
    action: text('action').notNull(),
    objectType: text('object_type').notNull(),
    objectId: text('object_id'),
    /** Where in the tree the object lies; the scope filter of GET /audit. Null: installation-wide. */
    nodeId: text('node_id'),
    before: text('before'),
    after: text('after'),
    /** From where: the client address. */
    ip: text('ip'),
    outcome: text('outcome').notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [index('audit_node').on(t.nodeId, t.id), index('audit_object').on(t.objectType, t.objectId)],
);
