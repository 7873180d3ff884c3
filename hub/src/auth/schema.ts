/**
 * Operators' tables: users bound to a node of the tree, their sessions, API tokens and login throttling.
 * Session ids and API token secrets are stored as SHA-256 (they are 256 random bits: nothing to brute-force, and a
 * stolen database file gives no usable credential); passwords as scrypt (auth/passwords.ts).
 */
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

export const users = sqliteTable(
  'users',
  {
    id: text('id').primaryKey(),
    username: text('username').notNull(),
    displayName: text('display_name'),
    role: text('role', { enum: ['city-admin', 'district-admin', 'technician', 'viewer', 'metrics'] }).notNull(),
    /** The node the role is bound to; null only for a city admin of the whole installation. */
    nodeId: text('node_id'),
    passwordHash: text('password_hash').notNull(),
    /** Set by an admin's reset (and a generated first password): every route but /auth/* answers 403 until changed. */
    mustChangePassword: integer('must_change_password').notNull().default(0),
    disabledAt: integer('disabled_at'),
    createdAt: integer('created_at').notNull(),
    createdBy: text('created_by').notNull(),
    passwordChangedAt: integer('password_changed_at').notNull(),
  },
  (t) => [uniqueIndex('users_username').on(t.username), index('users_node').on(t.nodeId)],
);

export const sessions = sqliteTable(
  'sessions',
  {
    /** sha256 of the cookie value. */
    idHash: text('id_hash').primaryKey(),
    userId: text('user_id').notNull(),
    csrfToken: text('csrf_token').notNull(),
    createdAt: integer('created_at').notNull(),
    lastSeenAt: integer('last_seen_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [index('sessions_user').on(t.userId)],
);

export const apiTokens = sqliteTable(
  'api_tokens',
  {
    id: text('id').primaryKey(),
    userId: text('user_id').notNull(),
    name: text('name').notNull(),
    /** At most the owner's role, bound to a node under the owner's; the owner's current role caps it on each use. */
    role: text('role', { enum: ['city-admin', 'district-admin', 'technician', 'viewer', 'metrics'] }).notNull(),
    nodeId: text('node_id'),
    secretHash: text('secret_hash').notNull(),
    createdAt: integer('created_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    revokedAt: integer('revoked_at'),
    lastUsedAt: integer('last_used_at'),
  },
  (t) => [index('api_tokens_user').on(t.userId)],
);

/** Failed logins per key (`user:<name>` or `ip:<address>`), so throttling survives a restart and spans hub processes. */
export const loginFailures = sqliteTable('login_failures', {
  key: text('key').primaryKey(),
  failures: integer('failures').notNull(),
  firstAt: integer('first_at').notNull(),
  lastAt: integer('last_at').notNull(),
  lockedUntil: integer('locked_until').notNull(),
});
