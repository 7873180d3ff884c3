/**
 * AuthStore on PostgreSQL (postgres.js). Same answers as store.sqlite.ts: int8 columns come back as numbers
 * (db/postgres/open.ts), `must_change_password` stays 0/1, usernames compare without case and sort byte-wise.
 *
 * Concurrency that SQLite's single writer gave for free is explicit here: a username (lowercased) and each throttle
 * key are serialised with transaction-scoped advisory locks, so two hubs cannot both create `bob` and `Bob`, nor both
 * read a failure count of 5 and write 6.
 */
import type { Sql, TransactionSql } from 'postgres';
import { pgSql, type Tx } from '../db/engine.ts';
import type { PostgresDb } from '../db/postgres/open.ts';
import { escapeLike } from './scope.ts';
import type { Role } from './permissions.ts';
import type { AuthStore, FailureRow, SessionRow, TokenRow, UserRow } from './store.ts';

/** First half of the two-int4 advisory lock keys ('kfau'); the second is hashtext() of what is locked. */
const LOCK_NS = 0x6b666175;

type Q = Sql | TransactionSql;

export class PostgresAuthStore implements AuthStore {
  constructor(private readonly pg: PostgresDb) {}

  #q(tx?: Tx): Q {
    return pgSql(this.pg.sql, tx);
  }

  /** `fn` in the caller's transaction, else in one of its own (an advisory xact lock needs one to live in). */
  async #inTx<T>(tx: Tx | undefined, fn: (sql: Q) => Promise<T>): Promise<T> {
    if (tx) return fn(pgSql(this.pg.sql, tx));
    return (await this.pg.sql.begin((sql) => fn(sql))) as T;
  }

  #userColumns(sql: Q) {
    return sql`id, username, display_name AS "displayName", role, node_id AS "nodeId", password_hash AS "passwordHash",
      must_change_password AS "mustChangePassword", disabled_at AS "disabledAt", created_at AS "createdAt",
      created_by AS "createdBy", password_changed_at AS "passwordChangedAt"`;
  }

  #tokenColumns(sql: Q) {
    return sql`id, user_id AS "userId", name, role, node_id AS "nodeId", secret_hash AS "secretHash", created_at AS "createdAt",
      expires_at AS "expiresAt", revoked_at AS "revokedAt", last_used_at AS "lastUsedAt"`;
  }

  async countUsers(tx?: Tx): Promise<number> {
    const sql = this.#q(tx);
    const [r] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users`;
    return r!.n;
  }

  async user(id: string, tx?: Tx): Promise<UserRow | undefined> {
    const sql = this.#q(tx);
    const [r] = await sql<UserRow[]>`SELECT ${this.#userColumns(sql)} FROM users WHERE id = ${id}`;
    return r;
  }

  async userByName(username: string, tx?: Tx): Promise<UserRow | undefined> {
    const sql = this.#q(tx);
    // lower() on both sides: a few hundred operators, a scan is cheaper than another index to keep in step.
    const [r] = await sql<UserRow[]>`SELECT ${this.#userColumns(sql)} FROM users WHERE lower(username) = lower(${username}) LIMIT 1`;
    return r;
  }

  async users(scope: string | null, after: string | undefined, limit: number, tx?: Tx): Promise<UserRow[]> {
    const sql = this.#q(tx);
    const inScope = scope === null ? sql`true` : sql`(node_id = ${scope} OR node_id LIKE ${`${escapeLike(scope)}-%`} ESCAPE '\\')`;
    const from = after === undefined ? sql`true` : sql`username COLLATE "C" > ${after}`;
    return sql<UserRow[]>`SELECT ${this.#userColumns(sql)} FROM users WHERE ${inScope} AND ${from}
      ORDER BY username COLLATE "C" LIMIT ${limit}`;
  }

  async insertUser(u: UserRow, tx?: Tx): Promise<boolean> {
    return this.#inTx(tx, async (sql) => {
      await sql`SELECT pg_advisory_xact_lock(${LOCK_NS}, hashtext(${`user:${u.username.toLowerCase()}`}))`;
      const [taken] = await sql`SELECT 1 FROM users WHERE lower(username) = lower(${u.username}) LIMIT 1`;
      if (taken) return false;
      await sql`INSERT INTO users (id, username, display_name, role, node_id, password_hash, must_change_password, created_at,
          created_by, password_changed_at)
        VALUES (${u.id}, ${u.username}, ${u.displayName}, ${u.role}, ${u.nodeId}, ${u.passwordHash}, ${u.mustChangePassword},
          ${u.createdAt}, ${u.createdBy}, ${u.passwordChangedAt})`;
      return true;
    });
  }

  async setPassword(id: string, hash: string, mustChange: boolean, now: number, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`UPDATE users SET password_hash = ${hash}, must_change_password = ${mustChange ? 1 : 0}, password_changed_at = ${now}
      WHERE id = ${id}`;
  }

  async replaceHash(id: string, old: string, hash: string, tx?: Tx): Promise<boolean> {
    const sql = this.#q(tx);
    const r = await sql`UPDATE users SET password_hash = ${hash} WHERE id = ${id} AND password_hash = ${old}`;
    return r.count === 1;
  }

  async setRole(id: string, role: Role, nodeId: string | null, displayName: string | null, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`UPDATE users SET role = ${role}, node_id = ${nodeId}, display_name = ${displayName} WHERE id = ${id}`;
  }

  async setDisabled(id: string, at: number | null, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`UPDATE users SET disabled_at = ${at} WHERE id = ${id}`;
  }

  async insertSession(r: SessionRow, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent)
      VALUES (${r.idHash}, ${r.userId}, ${r.csrfToken}, ${r.createdAt}, ${r.lastSeenAt}, ${r.expiresAt}, ${r.ip}, ${r.userAgent})`;
  }

  async session(idHash: string, tx?: Tx): Promise<SessionRow | undefined> {
    const sql = this.#q(tx);
    const [r] = await sql<SessionRow[]>`SELECT id_hash AS "idHash", user_id AS "userId", csrf_token AS "csrfToken",
        created_at AS "createdAt", last_seen_at AS "lastSeenAt", expires_at AS "expiresAt", ip, user_agent AS "userAgent"
      FROM sessions WHERE id_hash = ${idHash}`;
    return r;
  }

  async touchSession(idHash: string, now: number, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`UPDATE sessions SET last_seen_at = ${now} WHERE id_hash = ${idHash}`;
  }

  async deleteSession(idHash: string, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`DELETE FROM sessions WHERE id_hash = ${idHash}`;
  }

  async deleteUserSessions(userId: string, keep?: string, tx?: Tx): Promise<number> {
    const sql = this.#q(tx);
    const r = keep === undefined
      ? await sql`DELETE FROM sessions WHERE user_id = ${userId}`
      : await sql`DELETE FROM sessions WHERE user_id = ${userId} AND id_hash != ${keep}`;
    return r.count;
  }

  async pruneSessions(now: number, tx?: Tx): Promise<number> {
    const sql = this.#q(tx);
    return (await sql`DELETE FROM sessions WHERE expires_at <= ${now}`).count;
  }

  async insertToken(r: Omit<TokenRow, 'revokedAt' | 'lastUsedAt'>, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`INSERT INTO api_tokens (id, user_id, name, role, node_id, secret_hash, created_at, expires_at)
      VALUES (${r.id}, ${r.userId}, ${r.name}, ${r.role}, ${r.nodeId}, ${r.secretHash}, ${r.createdAt}, ${r.expiresAt})`;
  }

  async token(id: string, tx?: Tx): Promise<TokenRow | undefined> {
    const sql = this.#q(tx);
    const [r] = await sql<TokenRow[]>`SELECT ${this.#tokenColumns(sql)} FROM api_tokens WHERE id = ${id}`;
    return r;
  }

  async userTokens(userId: string, tx?: Tx): Promise<TokenRow[]> {
    const sql = this.#q(tx);
    return sql<TokenRow[]>`SELECT ${this.#tokenColumns(sql)} FROM api_tokens WHERE user_id = ${userId}
      ORDER BY created_at DESC, id COLLATE "C"`;
  }

  async revokeToken(id: string, now: number, tx?: Tx): Promise<boolean> {
    const sql = this.#q(tx);
    return (await sql`UPDATE api_tokens SET revoked_at = ${now} WHERE id = ${id} AND revoked_at IS NULL`).count > 0;
  }

  async revokeUserTokens(userId: string, now: number, tx?: Tx): Promise<number> {
    const sql = this.#q(tx);
    return (await sql`UPDATE api_tokens SET revoked_at = ${now} WHERE user_id = ${userId} AND revoked_at IS NULL`).count;
  }

  async touchToken(id: string, now: number, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`UPDATE api_tokens SET last_used_at = ${now} WHERE id = ${id}`;
  }

  async lockAttempts(keys: string[], tx: Tx): Promise<void> {
    const sql = this.#q(tx);
    // Always in the same order, so two attempts locking an account and an address cannot wait on each other.
    for (const key of [...new Set(keys)].sort()) await sql`SELECT pg_advisory_xact_lock(${LOCK_NS}, hashtext(${`throttle:${key}`}))`;
  }

  async failure(key: string, tx?: Tx): Promise<FailureRow | undefined> {
    const sql = this.#q(tx);
    const [r] = await sql<FailureRow[]>`SELECT key, failures, first_at AS "firstAt", last_at AS "lastAt", locked_until AS "lockedUntil"
      FROM login_failures WHERE key = ${key}`;
    return r;
  }

  async putFailure(r: FailureRow, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`INSERT INTO login_failures (key, failures, first_at, last_at, locked_until)
      VALUES (${r.key}, ${r.failures}, ${r.firstAt}, ${r.lastAt}, ${r.lockedUntil})
      ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, first_at = excluded.first_at, last_at = excluded.last_at,
        locked_until = excluded.locked_until`;
  }

  async clearFailure(key: string, tx?: Tx): Promise<void> {
    const sql = this.#q(tx);
    await sql`DELETE FROM login_failures WHERE key = ${key}`;
  }
}
