/**
 * What operators need from the database, engine-neutral: users, sessions, API tokens and login throttling.
 * `store.sqlite.ts` and `store.postgres.ts` implement it; `createAuthStore` picks by engine. Every method takes the
 * caller's transaction as its last argument (db/engine.ts), and runs on its own without one.
 *
 * What callers rely on, on both engines:
 * - Usernames compare without case (`Admin` and `admin` are one account): `userByName` finds either, and
 *   `insertUser` refuses a name taken in any case, also against a concurrent insert on another connection.
 * - `users` orders by username byte-wise (SQLite's BINARY; PostgreSQL `COLLATE "C"`), so a keyset cursor pages alike.
 * - `lockAttempts` serialises read-modify-write of the throttle rows of these keys until the transaction ends
 *   (SQLite: BEGIN IMMEDIATE already does; PostgreSQL: advisory transaction locks), so 30 guesses sent at once are
 *   counted as 30.
 */
import type { Engine, Tx } from '../db/engine.ts';
import type { Role } from './permissions.ts';
import { SqliteAuthStore } from './store.sqlite.ts';
import { PostgresAuthStore } from './store.postgres.ts';

export interface UserRow {
  id: string;
  username: string;
  displayName: string | null;
  role: Role;
  nodeId: string | null;
  passwordHash: string;
  mustChangePassword: number;
  disabledAt: number | null;
  createdAt: number;
  createdBy: string;
  passwordChangedAt: number;
}

export interface SessionRow {
  idHash: string;
  userId: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  ip: string | null;
  userAgent: string | null;
}

export interface TokenRow {
  id: string;
  userId: string;
  name: string;
  role: Role;
  nodeId: string | null;
  secretHash: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

export interface FailureRow {
  key: string;
  failures: number;
  firstAt: number;
  lastAt: number;
  lockedUntil: number;
}

export interface AuthStore {
  countUsers(tx?: Tx): Promise<number>;
  user(id: string, tx?: Tx): Promise<UserRow | undefined>;
  /** The user of that name in any case. */
  userByName(username: string, tx?: Tx): Promise<UserRow | undefined>;
  /** Users whose node lies under `scope` (null: all), ordered by username, keyset-paginated. */
  users(scope: string | null, after: string | undefined, limit: number, tx?: Tx): Promise<UserRow[]>;
  /** Inserts the user unless the name is taken in any case; false then, and nothing written. */
  insertUser(u: UserRow, tx?: Tx): Promise<boolean>;
  setPassword(id: string, hash: string, mustChange: boolean, now: number, tx?: Tx): Promise<void>;
  /** The same password at a new cost: only while the hash is still `old` (a change in between wins). */
  replaceHash(id: string, old: string, hash: string, tx?: Tx): Promise<boolean>;
  setRole(id: string, role: Role, nodeId: string | null, displayName: string | null, tx?: Tx): Promise<void>;
  setDisabled(id: string, at: number | null, tx?: Tx): Promise<void>;

  insertSession(r: SessionRow, tx?: Tx): Promise<void>;
  session(idHash: string, tx?: Tx): Promise<SessionRow | undefined>;
  touchSession(idHash: string, now: number, tx?: Tx): Promise<void>;
  deleteSession(idHash: string, tx?: Tx): Promise<void>;
  /** Ends every session of a user (except `keep`, the caller's own, when given); how many ended. */
  deleteUserSessions(userId: string, keep?: string, tx?: Tx): Promise<number>;
  /** Removes the sessions expired at `now`; how many. */
  pruneSessions(now: number, tx?: Tx): Promise<number>;

  insertToken(r: Omit<TokenRow, 'revokedAt' | 'lastUsedAt'>, tx?: Tx): Promise<void>;
  token(id: string, tx?: Tx): Promise<TokenRow | undefined>;
  /** Newest first. */
  userTokens(userId: string, tx?: Tx): Promise<TokenRow[]>;
  /** False when unknown or revoked already. */
  revokeToken(id: string, now: number, tx?: Tx): Promise<boolean>;
  /** Revokes every active token of the user; how many. */
  revokeUserTokens(userId: string, now: number, tx?: Tx): Promise<number>;
  touchToken(id: string, now: number, tx?: Tx): Promise<void>;

  /** Serialises the throttle rows of `keys` until `tx` ends (see above). */
  lockAttempts(keys: string[], tx: Tx): Promise<void>;
  failure(key: string, tx?: Tx): Promise<FailureRow | undefined>;
  putFailure(r: FailureRow, tx?: Tx): Promise<void>;
  clearFailure(key: string, tx?: Tx): Promise<void>;
}

export function createAuthStore(engine: Engine): AuthStore {
  return engine.kind === 'sqlite' ? new SqliteAuthStore(engine.db) : new PostgresAuthStore(engine.pg);
}
