/** All SQL of users, sessions, API tokens and login throttling. */
import type { Db } from '../store/db.ts';
import { scopedWhere } from '../store/where.ts';
import type { Role } from './permissions.ts';

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

const USER_COLUMNS = `id, username, display_name AS displayName, role, node_id AS nodeId, password_hash AS passwordHash,
  must_change_password AS mustChangePassword, disabled_at AS disabledAt, created_at AS createdAt, created_by AS createdBy,
  password_changed_at AS passwordChangedAt`;
const TOKEN_COLUMNS = `id, user_id AS userId, name, role, node_id AS nodeId, secret_hash AS secretHash, created_at AS createdAt,
  expires_at AS expiresAt, revoked_at AS revokedAt, last_used_at AS lastUsedAt`;

export class AuthStore {
  private readonly s;

  constructor(readonly db: Db) {
    this.s = {
      countUsers: db.prepare('SELECT count(*) AS n FROM users'),
      user: db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`),
      // Names compare without case: `Admin` and `admin` are one account, for login and for uniqueness.
      userByName: db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE username = ? COLLATE NOCASE`),
      insertUser: db.prepare(
        `INSERT INTO users (id, username, display_name, role, node_id, password_hash, must_change_password, created_at, created_by, password_changed_at)
         VALUES (@id, @username, @displayName, @role, @nodeId, @passwordHash, @mustChangePassword, @createdAt, @createdBy, @passwordChangedAt)`,
      ),
      setPassword: db.prepare('UPDATE users SET password_hash = ?, must_change_password = ?, password_changed_at = ? WHERE id = ?'),
      replaceHash: db.prepare('UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?'),
      setRole: db.prepare('UPDATE users SET role = ?, node_id = ?, display_name = ? WHERE id = ?'),
      setDisabled: db.prepare('UPDATE users SET disabled_at = ? WHERE id = ?'),
      insertSession: db.prepare(
        `INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent)
         VALUES (@idHash, @userId, @csrfToken, @createdAt, @lastSeenAt, @expiresAt, @ip, @userAgent)`,
      ),
      session: db.prepare(
        `SELECT id_hash AS idHash, user_id AS userId, csrf_token AS csrfToken, created_at AS createdAt, last_seen_at AS lastSeenAt,
           expires_at AS expiresAt, ip, user_agent AS userAgent FROM sessions WHERE id_hash = ?`,
      ),
      touchSession: db.prepare('UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
      deleteUserSessions: db.prepare('DELETE FROM sessions WHERE user_id = ?'),
      deleteOtherSessions: db.prepare('DELETE FROM sessions WHERE user_id = ? AND id_hash != ?'),
      pruneSessions: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
      insertToken: db.prepare(
        `INSERT INTO api_tokens (id, user_id, name, role, node_id, secret_hash, created_at, expires_at)
         VALUES (@id, @userId, @name, @role, @nodeId, @secretHash, @createdAt, @expiresAt)`,
      ),
      token: db.prepare(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = ?`),
      userTokens: db.prepare(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC, id`),
      revokeToken: db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      revokeUserTokens: db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL'),
      touchToken: db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?'),
      failure: db.prepare(
        'SELECT key, failures, first_at AS firstAt, last_at AS lastAt, locked_until AS lockedUntil FROM login_failures WHERE key = ?',
      ),
      putFailure: db.prepare(
        `INSERT INTO login_failures (key, failures, first_at, last_at, locked_until) VALUES (@key, @failures, @firstAt, @lastAt, @lockedUntil)
         ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, first_at = excluded.first_at, last_at = excluded.last_at,
           locked_until = excluded.locked_until`,
      ),
      clearFailure: db.prepare('DELETE FROM login_failures WHERE key = ?'),
    };
  }

  countUsers(): number {
    return (this.s.countUsers.get() as { n: number }).n;
  }

  user(id: string): UserRow | undefined {
    return this.s.user.get(id) as UserRow | undefined;
  }

  userByName(username: string): UserRow | undefined {
    return this.s.userByName.get(username) as UserRow | undefined;
  }

  /** Users whose node lies under `scope` (null: all), ordered by username, keyset-paginated. */
  users(scope: string | null, after: string | undefined, limit: number): UserRow[] {
    const w = scopedWhere('node_id', scope, after === undefined ? undefined : { sql: 'username > ?', arg: after });
    return this.db
      .prepare(`SELECT ${USER_COLUMNS} FROM users ${w.sql} ORDER BY username LIMIT ?`)
      .all(...w.args, limit) as UserRow[];
  }

  insertUser(u: UserRow): void {
    this.s.insertUser.run(u);
  }

  setPassword(id: string, hash: string, mustChange: boolean, now: number): void {
    this.s.setPassword.run(hash, mustChange ? 1 : 0, now, id);
  }

  /** The same password at a new cost: only while the hash is still `old` (a change in between wins). */
  replaceHash(id: string, old: string, hash: string): boolean {
    return this.s.replaceHash.run(hash, id, old).changes === 1;
  }

  setRole(id: string, role: Role, nodeId: string | null, displayName: string | null): void {
    this.s.setRole.run(role, nodeId, displayName, id);
  }

  setDisabled(id: string, at: number | null): void {
    this.s.setDisabled.run(at, id);
  }

  insertSession(r: SessionRow): void {
    this.s.insertSession.run(r);
  }

  session(idHash: string): SessionRow | undefined {
    return this.s.session.get(idHash) as SessionRow | undefined;
  }

  touchSession(idHash: string, now: number): void {
    this.s.touchSession.run(now, idHash);
  }

  deleteSession(idHash: string): void {
    this.s.deleteSession.run(idHash);
  }

  /** Ends every session of a user (except `keep`, the caller's own, when given). */
  deleteUserSessions(userId: string, keep?: string): number {
    return (keep === undefined ? this.s.deleteUserSessions.run(userId) : this.s.deleteOtherSessions.run(userId, keep)).changes;
  }

  pruneSessions(now: number): number {
    return this.s.pruneSessions.run(now).changes;
  }

  insertToken(r: Omit<TokenRow, 'revokedAt' | 'lastUsedAt'>): void {
    this.s.insertToken.run(r);
  }

  token(id: string): TokenRow | undefined {
    return this.s.token.get(id) as TokenRow | undefined;
  }

  userTokens(userId: string): TokenRow[] {
    return this.s.userTokens.all(userId) as TokenRow[];
  }

  revokeToken(id: string, now: number): boolean {
    return this.s.revokeToken.run(now, id).changes > 0;
  }

  revokeUserTokens(userId: string, now: number): number {
    return this.s.revokeUserTokens.run(now, userId).changes;
  }

  touchToken(id: string, now: number): void {
    this.s.touchToken.run(now, id);
  }

  failure(key: string): FailureRow | undefined {
    return this.s.failure.get(key) as FailureRow | undefined;
  }

  putFailure(r: FailureRow): void {
    this.s.putFailure.run(r);
  }

  clearFailure(key: string): void {
    this.s.clearFailure.run(key);
  }
}
