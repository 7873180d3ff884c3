/**
 * Operators' tables: users bound to a node of the tree, their sessions, API tokens and login throttling.
 * Session ids and API token secrets are stored as SHA-256 (they are 256 random bits: nothing to brute-force, and a
 * stolen database file gives no usable credential); passwords as scrypt (auth/passwords.ts).
 */
import { bigint, index, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';

export const users = pgTable(
  'users',
  {
    id: text('id').primaryKey(),
    username: text('username').notNull(),
    displayName: text('display_name'),
    role: text('role', { enum: ['city-admin', 'district-admin', 'technician', 'viewer'] }).notNull(),
    /** The node the role is bound to; null only for a city admin of the whole installation. */
    nodeId: text('node_id'),
    passwordHash: text('password_hash').notNull(),
    /** Set by an admin's reset (and a generated first password): every route but /auth/* answers 403 until changed. */
    mustChangePassword: bigint('must_change_password', { mode: 'number' }).notNull().default(0),
    disabledAt: bigint('disabled_at', { mode: 'number' }),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    createdBy: text('created_by').notNull(),
    passwordChangedAt: bigint('password_changed_at', { mode: 'number' }).notNull(),
  },
  (t) => [uniqueIndex('users_username').on(t.username), index('users_node').on(t.nodeId)],
);

export const sessions = pgTable(
  'sessions',
  {
    /** sha256 of the cookie value. */
    idHash: text('id_hash').primaryKey(),
    userId: text('user_id').notNull(),
    csrfToken: text('csrf_token').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    lastSeenAt: bigint('last_seen_at', { mode: 'number' }).notNull(),
    expiresAt: bigint('expires_at', { mode: 'number' }).notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [index('sessions_user').on(t.userId)],
);

export const apiTokens = pgTable(
  'api_tokens',
  {
    id: text('id').primaryKey(),
    userId: text('user_id').notNull(),
    name: text('name').notNull(),
    /** At most the owner's role, bound to a node under the owner's; the owner's current role caps it on each use. */
    role: text('role', { enum: ['city-admin', 'district-admin', 'technician', 'viewer'] }).notNull(),
    nodeId: text('node_id'),
    secretHash: text('secret_hash').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    expiresAt: bigint('expires_at', { mode: 'number' }).notNull(),
    revokedAt: bigint('revoked_at', { mode: 'number' }),
    lastUsedAt: bigint('last_used_at', { mode: 'number' }),
  },
  (t) => [index('api_tokens_user').on(t.userId)],
);

/** Failed logins per key (`user:<name>` or `ip:<address>`), so throttling survives a restart and spans hub processes. */
export const loginFailures = pgTable('login_failures', {
  key: text('key').primaryKey(),
  failures: bigint('failures', { mode: 'number' }).notNull(),
  firstAt: bigint('first_at', { mode: 'number' }).notNull(),
  lastAt: bigint('last_at', { mode: 'number' }).notNull(),
  lockedUntil: bigint('locked_until', { mode: 'number' }).notNull(),
});
