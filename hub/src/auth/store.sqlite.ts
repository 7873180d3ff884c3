/**
 * AuthStore on the hub's SQLite file: better-sqlite3, synchronous underneath. A `tx` is the one connection in its
 * BEGIN IMMEDIATE, so every method runs the same statements with or without it.
 */
import type { Tx } from '../db/engine.ts';
import type { Db } from '../store/db.ts';
import { scopedWhere } from '../store/where.ts';
import type { Role } from './permissions.ts';
import type { AuthStore, FailureRow, SessionRow, TokenRow, UserRow } from './store.ts';

const USER_COLUMNS = `id, username, display_name AS displayName, role, node_id AS nodeId, password_hash AS passwordHash,
  must_change_password AS mustChangePassword, disabled_at AS disabledAt, created_at AS createdAt, created_by AS createdBy,
  password_changed_at AS passwordChangedAt`;
const TOKEN_COLUMNS = `id, user_id AS userId, name, role, node_id AS nodeId, secret_hash AS secretHash, created_at AS createdAt,
  expires_at AS expiresAt, revoked_at AS revokedAt, last_used_at AS lastUsedAt`;

export class SqliteAuthStore implements AuthStore {
  private readonly s;

  constructor(private readonly db: Db) {
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

  async countUsers(_tx?: Tx): Promise<number> {
    return (this.s.countUsers.get() as { n: number }).n;
  }

  async user(id: string, _tx?: Tx): Promise<UserRow | undefined> {
    return this.s.user.get(id) as UserRow | undefined;
  }

  async userByName(username: string, _tx?: Tx): Promise<UserRow | undefined> {
    return this.s.userByName.get(username) as UserRow | undefined;
  }

  /** Users whose node lies under `scope` (null: all), ordered by username, keyset-paginated. */
  async users(scope: string | null, after: string | undefined, limit: number, _tx?: Tx): Promise<UserRow[]> {
    return this.usersNow(scope, after, limit);
  }

  /** `users`, synchronously: for the alert engine's synchronous evaluation on SQLite until it is ported (issue 18). */
  usersNow(scope: string | null, after: string | undefined, limit: number): UserRow[] {
    const w = scopedWhere('node_id', scope, after === undefined ? undefined : { sql: 'username > ?', arg: after });
    return this.db
      .prepare(`SELECT ${USER_COLUMNS} FROM users ${w.sql} ORDER BY username LIMIT ?`)
      .all(...w.args, limit) as UserRow[];
  }

  async insertUser(u: UserRow, _tx?: Tx): Promise<boolean> {
    // One synchronous transaction (a savepoint inside the caller's): nothing runs between the check and the insert.
    return this.db.transaction(() => {
      if (this.s.userByName.get(u.username) !== undefined) return false;
      this.s.insertUser.run(u);
      return true;
    })();
  }

  async setPassword(id: string, hash: string, mustChange: boolean, now: number, _tx?: Tx): Promise<void> {
    this.s.setPassword.run(hash, mustChange ? 1 : 0, now, id);
  }

  /** The same password at a new cost: only while the hash is still `old` (a change in between wins). */
  async replaceHash(id: string, old: string, hash: string, _tx?: Tx): Promise<boolean> {
    return this.s.replaceHash.run(hash, id, old).changes === 1;
  }

  async setRole(id: string, role: Role, nodeId: string | null, displayName: string | null, _tx?: Tx): Promise<void> {
    this.s.setRole.run(role, nodeId, displayName, id);
  }

  async setDisabled(id: string, at: number | null, _tx?: Tx): Promise<void> {
    this.s.setDisabled.run(at, id);
  }

  async insertSession(r: SessionRow, _tx?: Tx): Promise<void> {
    this.s.insertSession.run(r);
  }

  async session(idHash: string, _tx?: Tx): Promise<SessionRow | undefined> {
    return this.s.session.get(idHash) as SessionRow | undefined;
  }

  async touchSession(idHash: string, now: number, _tx?: Tx): Promise<void> {
    this.s.touchSession.run(now, idHash);
  }

  async deleteSession(idHash: string, _tx?: Tx): Promise<void> {
    this.s.deleteSession.run(idHash);
  }

  /** Ends every session of a user (except `keep`, the caller's own, when given). */
  async deleteUserSessions(userId: string, keep?: string, _tx?: Tx): Promise<number> {
    return (keep === undefined ? this.s.deleteUserSessions.run(userId) : this.s.deleteOtherSessions.run(userId, keep)).changes;
  }

  async pruneSessions(now: number, _tx?: Tx): Promise<number> {
    return this.s.pruneSessions.run(now).changes;
  }

  async insertToken(r: Omit<TokenRow, 'revokedAt' | 'lastUsedAt'>, _tx?: Tx): Promise<void> {
    this.s.insertToken.run(r);
  }

  async token(id: string, _tx?: Tx): Promise<TokenRow | undefined> {
    return this.s.token.get(id) as TokenRow | undefined;
  }

  async userTokens(userId: string, _tx?: Tx): Promise<TokenRow[]> {
    return this.s.userTokens.all(userId) as TokenRow[];
  }

  async revokeToken(id: string, now: number, _tx?: Tx): Promise<boolean> {
    return this.s.revokeToken.run(now, id).changes > 0;
  }

  async revokeUserTokens(userId: string, now: number, _tx?: Tx): Promise<number> {
    return this.s.revokeUserTokens.run(now, userId).changes;
  }

  async touchToken(id: string, now: number, _tx?: Tx): Promise<void> {
    this.s.touchToken.run(now, id);
  }

  /** BEGIN IMMEDIATE holds SQLite's one write lock for the whole transaction already. */
  async lockAttempts(_keys: string[], _tx: Tx): Promise<void> {}

  async failure(key: string, _tx?: Tx): Promise<FailureRow | undefined> {
    return this.s.failure.get(key) as FailureRow | undefined;
  }

  async putFailure(r: FailureRow, _tx?: Tx): Promise<void> {
    this.s.putFailure.run(r);
  }

  async clearFailure(key: string, _tx?: Tx): Promise<void> {
    this.s.clearFailure.run(key);
  }
}
