/**
 * Operators: accounts, sessions, API tokens, login throttling. Every change here writes its audit record in the same
 * transaction (auth.*, user.*, token.*).
 *
 * Invariants:
 * - A disabled user has no session and no usable token: disabling deletes the sessions and revokes the tokens in
 *   the transaction that disables, and every request re-reads the user, so nothing is cached past a change.
 * - A token never exceeds its owner: on each use its role is capped by the owner's current role and its node must
 *   still lie under the owner's node.
 * - While an account or an address is locked out, even the right password is refused (otherwise the lockout only
 *   slows a guesser down until the password is found).
 * - An attempt is counted before its password is checked, in one transaction with the lock check, the key's rows
 *   serialised (store.ts `lockAttempts`; on PostgreSQL across hubs too): a guesser who sends 30 at once gets as many
 *   checks as one who sends them in turn (issue 20, item 2). A right
 *   password hands its count back to the address, so a NAT of honest users does not add up to a lock.
 * - The same per-account count throttles a change of password (its current password is a guess too), and only a
 *   password session may change one: an API token, however narrowed, is not its owner's password.
 * - Session ids and token secrets are stored only as SHA-256; passwords only as scrypt, hashed before the
 *   transaction that stores them opens (scrypt is real work in the thread pool; a transaction awaits only store calls).
 */
import crypto from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { AuditEntry, AuditLog } from '../audit/log.ts';
import { transaction, type Engine, type Tx } from '../db/engine.ts';
import { HubError, notFound } from '../errors.ts';
import type { Logger } from '../log.ts';
import { dummyHash, generatePassword, hashPassword, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, needsRehash, passwordProblem, SCRYPT_N, verifyPassword, type PasswordRule } from './passwords.ts';

/** One sentence for every password rule: the English message keeps the rule that failed. */
const weakPassword = (rule: PasswordRule) => ({ code: 'error.weak-password', params: { rule, min: MIN_PASSWORD_LENGTH, max: MAX_PASSWORD_LENGTH } });
import {
  actorName,
  bindingProblem,
  can,
  inScope,
  lowerRole,
  mayGrant,
  type Principal,
  type Role,
} from './permissions.ts';
import { SqliteAuthStore } from './store.sqlite.ts';
import { createAuthStore, type AuthStore, type SessionRow, type TokenRow, type UserRow } from './store.ts';

export const SESSION_COOKIE = 'kf_session';
export const CSRF_COOKIE = 'kf_csrf';
export const CSRF_HEADER = 'x-csrf-token';
export const TOKEN_PREFIX = 'kft';
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$/;

export interface AuthOptions {
  /** A session ends this long after login (default 12 h). */
  sessionTtlMs: number;
  /** ... or after this long without a request (default 2 h). */
  sessionIdleMs: number;
  /** Failed logins per account before each further one is delayed (default 5). */
  accountFreeFailures: number;
  /** Failed logins per address before each further one is delayed (default 20: a station's NAT hides many people). */
  addressFreeFailures: number;
  /** The delay after the first failure past the free ones (default 1 s); it doubles with each further one... */
  firstLockMs: number;
  /** ... up to this for an account (default 15 min)... */
  maxLockMs: number;
  /**
   * ... and up to this for an address (default 1 min): the account lock carries the weight; an address lock only
   * slows a sprayer of many names, and must not shut a station's NAT of honest users out for long.
   */
  addressMaxLockMs: number;
  /** scrypt cost N for new hashes (default 2^17, OWASP's minimum for scrypt); older hashes are upgraded at login. */
  scryptN: number;
  /** Failures older than this are forgotten (default 1 h). */
  failureWindowMs: number;
  tokenMaxDays: number;
  /** Mark cookies Secure (the hub serves HTTPS: KF_TLS_CERT). */
  secureCookies: boolean;
}

export const DEFAULT_AUTH_OPTIONS: AuthOptions = {
  sessionTtlMs: 12 * 3600_000,
  sessionIdleMs: 2 * 3600_000,
  accountFreeFailures: 5,
  addressFreeFailures: 20,
  firstLockMs: 1000,
  maxLockMs: 15 * 60_000,
  addressMaxLockMs: 60_000,
  scryptN: SCRYPT_N,
  failureWindowMs: 3600_000,
  tokenMaxDays: 366,
  secureCookies: false,
};

/** Where a request came from, for the audit log. */
export interface Origin {
  principal: Principal | null;
  ip: string | null;
}

export interface PublicUser {
  id: string;
  username: string;
  displayName: string | null;
  role: Role;
  nodeId: string | null;
  mustChangePassword: boolean;
  disabled: boolean;
  disabledAt: string | null;
  createdAt: string;
  createdBy: string;
  passwordChangedAt: string;
}

export interface PublicToken {
  id: string;
  userId: string;
  name: string;
  role: Role;
  nodeId: string | null;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
  active: boolean;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

export function publicUser(u: UserRow): PublicUser {
  return {
    id: u.id,
    username: u.username,
    displayName: u.displayName,
    role: u.role,
    nodeId: u.nodeId,
    mustChangePassword: u.mustChangePassword === 1,
    disabled: u.disabledAt !== null,
    disabledAt: iso(u.disabledAt),
    createdAt: new Date(u.createdAt).toISOString(),
    createdBy: u.createdBy,
    passwordChangedAt: new Date(u.passwordChangedAt).toISOString(),
  };
}

export function publicToken(t: TokenRow, now = Date.now()): PublicToken {
  return {
    id: t.id,
    userId: t.userId,
    name: t.name,
    role: t.role,
    nodeId: t.nodeId,
    createdAt: new Date(t.createdAt).toISOString(),
    expiresAt: new Date(t.expiresAt).toISOString(),
    revokedAt: iso(t.revokedAt),
    lastUsedAt: iso(t.lastUsedAt),
    active: t.revokedAt === null && t.expiresAt > now,
  };
}

/** What the audit log keeps of a user (never the hash). */
const userAudit = (u: UserRow) => ({ username: u.username, role: u.role, nodeId: u.nodeId, disabled: u.disabledAt !== null, displayName: u.displayName });

export const ADMIN_TOKEN_PRINCIPAL: Principal = { kind: 'admin-token', userId: null, username: 'admin-token', tokenId: null, role: 'city-admin', nodeId: null };

export class AuthService {
  readonly store: AuthStore;
  readonly opts: AuthOptions;
  private logins: Counter<'outcome'> | null = null;

  constructor(
    private readonly engine: Engine,
    readonly audit: AuditLog,
    private readonly log: Logger,
    opts: Partial<AuthOptions> = {},
  ) {
    this.store = createAuthStore(engine);
    this.opts = { ...DEFAULT_AUTH_OPTIONS, ...opts };
  }

  /** `kf_logins_total{outcome="ok|failed|throttled"}` in the hub's registry. */
  attachMetrics(registry: Registry): void {
    this.logins = new Counter({ name: 'kf_logins_total', help: 'Password logins by outcome', labelNames: ['outcome'], registers: [registry] });
  }

  private async record(o: Origin, e: Omit<AuditEntry, 'actor' | 'actorKind' | 'userId' | 'ip'>, tx?: Tx): Promise<void> {
    await this.audit.append(
      {
        actor: o.principal ? actorName(o.principal) : 'anonymous',
        actorKind: o.principal?.kind ?? 'anonymous',
        userId: o.principal?.userId ?? null,
        ip: o.ip,
        ...e,
      },
      tx,
    );
  }

  /**
   * First start: with no user at all, creates the city admin `admin` (whole installation) with `password`, or a
   * generated one that must be changed at first login. Returns the generated password (to print once), else null.
   */
  async bootstrap(password: string | undefined): Promise<string | null> {
    // The hash an unknown user's login is checked against, made now in the thread pool: otherwise the first such
    // login pays two scrypt runs (~2 s at N=2^17, more on a loaded machine) where a known user's pays one.
    void dummyHash(this.opts.scryptN);
    if ((await this.store.countUsers()) > 0) return null;
    const generated = password === undefined ? generatePassword() : null;
    const hash = await hashPassword(password ?? generated!, this.opts.scryptN);
    const now = Date.now();
    const created = await transaction(this.engine, async (tx) => {
      if ((await this.store.countUsers(tx)) > 0) return false; // another hub process was first
      const u: UserRow = {
        id: newId('u'),
        username: 'admin',
        displayName: 'Administrator',
        role: 'city-admin',
        nodeId: null,
        passwordHash: hash,
        mustChangePassword: generated === null ? 0 : 1,
        disabledAt: null,
        createdAt: now,
        createdBy: 'first-start',
        passwordChangedAt: now,
      };
      if (!(await this.store.insertUser(u, tx))) return false; // ... at the same moment, on another connection
      await this.audit.append({
        actor: 'hub',
        actorKind: 'system',
        userId: null,
        ip: null,
        action: 'user.create',
        objectType: 'user',
        objectId: u.id,
        nodeId: null,
        after: { ...userAudit(u), source: generated === null ? 'KF_ADMIN_PASSWORD' : 'generated' },
      }, tx);
      return true;
    });
    if (created) this.log.info({ username: 'admin', source: generated === null ? 'KF_ADMIN_PASSWORD' : 'generated' }, 'first start: city admin created');
    return created ? generated : null;
  }

  // ---------------------------------------------------------------- login, sessions

  private async lockRemaining(key: string, now: number, tx: Tx): Promise<number> {
    const f = await this.store.failure(key, tx);
    return f && f.lockedUntil > now ? f.lockedUntil - now : 0;
  }

  private async fail(key: string, free: number, maxLockMs: number, now: number, tx: Tx): Promise<void> {
    const f = await this.store.failure(key, tx);
    const fresh = !f || now - f.lastAt > this.opts.failureWindowMs;
    const failures = fresh ? 1 : f.failures + 1;
    const over = failures - free;
    const lockMs = over > 0 ? Math.min(this.opts.firstLockMs * 2 ** (over - 1), maxLockMs) : 0;
    // Not over the free count: no lock at all. (`now + 0` would read as locked to a concurrent attempt that began a
    // millisecond earlier, and refuse it with 429 below the free count.)
    await this.store.putFailure({ key, failures, firstAt: fresh ? now : f.firstAt, lastAt: now, lockedUntil: lockMs > 0 ? now + lockMs : 0 }, tx);
  }

  /**
   * Hands back an attempt that turned out right; back at or below the free count, the key is not locked. The caller
   * holds the key's lock (`lockAttempts`).
   */
  private async refund(key: string, free: number, tx: Tx): Promise<void> {
    const f = await this.store.failure(key, tx);
    if (!f) return;
    const failures = Math.max(0, f.failures - 1);
    await this.store.putFailure({ ...f, failures, lockedUntil: failures <= free ? 0 : f.lockedUntil }, tx);
  }

  private userKey(username: string): string {
    // Keyed by a digest: the table then holds no typed-in name (which may be a misplaced password).
    return `user:${sha256(username.toLowerCase()).slice(0, 24)}`;
  }

  /**
   * Counts one password attempt against the account (and the address, when given) unless one of them is locked:
   * then 429 and nothing is checked. One transaction with the keys locked, so no other attempt runs between the
   * check and the count.
   */
  private async countAttempt(userKey: string, ipKey: string | null, now: number, log: Record<string, unknown>, what: 'login' | 'password change'): Promise<void> {
    const wait = await transaction(this.engine, async (tx) => {
      await this.store.lockAttempts(ipKey === null ? [userKey] : [userKey, ipKey], tx);
      const w = Math.max(await this.lockRemaining(userKey, now, tx), ipKey === null ? 0 : await this.lockRemaining(ipKey, now, tx));
      if (w > 0) return w;
      await this.fail(userKey, this.opts.accountFreeFailures, this.opts.maxLockMs, now, tx);
      if (ipKey !== null) await this.fail(ipKey, this.opts.addressFreeFailures, this.opts.addressMaxLockMs, now, tx);
      return 0;
    });
    if (wait > 0) {
      if (what === 'login') this.logins?.inc({ outcome: 'throttled' });
      this.log.warn(log, `${what} refused: too many failed attempts`);
      throw new HubError(429, 'too-many-attempts', `too many failed password attempts; try again in ${Math.ceil(wait / 1000)} s`, {
        retryAfterSeconds: Math.ceil(wait / 1000),
      }, { code: 'error.too-many-attempts', params: { seconds: Math.ceil(wait / 1000) } });
    }
  }

  /** Checks the password; on success opens a session. Throws 401 (wrong name or password, alike) or 429. */
  async login(username: string, password: string, o: { ip: string | null; userAgent: string | null }): Promise<{ token: string; session: SessionRow; user: UserRow }> {
    const now = Date.now();
    const userKey = this.userKey(username);
    const ipKey = `ip:${o.ip ?? 'unknown'}`;
    // A name that is no account may be a password typed into the wrong field: logs and audit get a digest of it
    // (enough to see one name tried again and again), never the text.
    const known = await this.store.userByName(username);
    const who = known ? { username } : { usernameDigest: sha256(username.toLowerCase()).slice(0, 12) };
    await this.countAttempt(userKey, ipKey, now, { ...who, ip: o.ip }, 'login');
    const user = known;
    const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyHash(this.opts.scryptN)));
    const origin: Origin = { principal: null, ip: o.ip };
    if (!user || !ok || user.disabledAt !== null) {
      await this.record(origin, {
        action: 'auth.login',
        objectType: 'user',
        objectId: user?.id ?? null,
        nodeId: user?.nodeId ?? null,
        after: { ...who, reason: !user ? 'unknown-user' : !ok ? 'wrong-password' : 'disabled' },
        outcome: 'failed',
      });
      this.logins?.inc({ outcome: 'failed' });
      this.log.info({ ...who, ip: o.ip }, 'login failed');
      throw new HubError(401, 'invalid-credentials', 'wrong username or password (or the account is disabled)', undefined, {
        code: 'error.invalid-credentials',
        params: {},
      });
    }
    // A hash made at a lower cost than today's is replaced while the password is at hand (it is nowhere else).
    const rehash = needsRehash(user.passwordHash, this.opts.scryptN) ? await hashPassword(password, this.opts.scryptN) : null;
    const token = crypto.randomBytes(32).toString('base64url');
    const session: SessionRow = {
      idHash: sha256(token),
      userId: user.id,
      csrfToken: crypto.randomBytes(32).toString('base64url'),
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + this.opts.sessionTtlMs,
      ip: o.ip,
      userAgent: o.userAgent?.slice(0, 256) ?? null,
    };
    await transaction(this.engine, async (tx) => {
      // Both keys, in lockAttempts' order, before any of their rows: a concurrent attempt holds both while it counts.
      await this.store.lockAttempts([userKey, ipKey], tx);
      await this.store.clearFailure(userKey, tx);
      await this.refund(ipKey, this.opts.addressFreeFailures, tx);
      // Only if the hash is still the one checked: a reset or change in between wins.
      if (rehash !== null) await this.store.replaceHash(user.id, user.passwordHash, rehash, tx);
      await this.store.pruneSessions(now, tx);
      await this.store.insertSession(session, tx);
      await this.record(
        { principal: this.userPrincipal(user, 'session'), ip: o.ip },
        { action: 'auth.login', objectType: 'user', objectId: user.id, nodeId: user.nodeId, after: { username: user.username } },
        tx,
      );
    });
    this.logins?.inc({ outcome: 'ok' });
    this.log.info({ username: user.username, ip: o.ip, ...(rehash !== null ? { rehashed: true } : {}) }, 'login');
    return { token, session, user };
  }

  private userPrincipal(u: UserRow, kind: 'session' | 'token', extra: Partial<Principal> = {}): Principal {
    return { kind, userId: u.id, username: u.username, tokenId: null, role: u.role, nodeId: u.nodeId, mustChangePassword: u.mustChangePassword === 1, ...extra };
  }

  /** The principal of a session cookie, or null (unknown, expired, idle too long, user disabled). */
  async sessionPrincipal(token: string, now = Date.now()): Promise<Principal | null> {
    const idHash = sha256(token);
    const s = await this.store.session(idHash);
    if (!s) return null;
    if (s.expiresAt <= now || now - s.lastSeenAt > this.opts.sessionIdleMs) {
      await this.store.deleteSession(idHash);
      return null;
    }
    const u = await this.store.user(s.userId);
    if (!u || u.disabledAt !== null) return null;
    // One write a minute at most per session: "last seen" needs no better resolution than the idle timeout.
    if (now - s.lastSeenAt > 60_000) await this.store.touchSession(idHash, now);
    return this.userPrincipal(u, 'session', { csrfToken: s.csrfToken, sessionHash: idHash });
  }

  /** False once the caller's session ended, their token was revoked or expired, or their user was disabled. */
  async stillValid(p: Principal, now = Date.now()): Promise<boolean> {
    if (p.kind === 'admin-token') return true;
    const u = p.userId === null ? undefined : await this.store.user(p.userId);
    if (!u || u.disabledAt !== null) return false;
    if (p.kind === 'session') {
      const sess = p.sessionHash === undefined ? undefined : await this.store.session(p.sessionHash);
      return sess !== undefined && sess.expiresAt > now;
    }
    const t = p.tokenId === null ? undefined : await this.store.token(p.tokenId);
    return t !== undefined && t.revokedAt === null && t.expiresAt > now;
  }

  async logout(p: Principal, ip: string | null): Promise<void> {
    if (p.kind !== 'session' || !p.sessionHash) return;
    const hash = p.sessionHash;
    await transaction(this.engine, async (tx) => {
      await this.store.deleteSession(hash, tx);
      await this.record({ principal: p, ip }, { action: 'auth.logout', objectType: 'user', objectId: p.userId, nodeId: p.nodeId }, tx);
    });
  }

  // ---------------------------------------------------------------- API tokens

  /** The principal of an API token (`kft.<id>.<secret>`), or null when unknown, wrong, expired, revoked or orphaned. */
  async tokenPrincipal(raw: string, now = Date.now()): Promise<Principal | null> {
    const m = /^kft\.([a-f0-9]{16})\.([A-Za-z0-9_-]{43})$/.exec(raw);
    if (!m) return null;
    const t = await this.store.token(m[1]!);
    if (!t) return null;
    const given = Buffer.from(sha256(m[2]!));
    if (!crypto.timingSafeEqual(given, Buffer.from(t.secretHash))) return null;
    if (t.revokedAt !== null || t.expiresAt <= now) return null;
    const u = await this.store.user(t.userId);
    if (!u || u.disabledAt !== null || !inScope(u.nodeId, t.nodeId)) return null;
    if (t.lastUsedAt === null || now - t.lastUsedAt > 60_000) await this.store.touchToken(t.id, now);
    return this.userPrincipal(u, 'token', { tokenId: t.id, role: lowerRole(t.role, u.role), nodeId: t.nodeId, mustChangePassword: false });
  }

  /** Creates a token for the caller's own user: at most their role, under their node. The secret is returned once. */
  async createToken(
    o: Origin,
    input: { name: string; role?: Role | undefined; nodeId?: string | null | undefined; expiresInDays: number },
  ): Promise<{ token: string; row: TokenRow }> {
    const p = o.principal!;
    if (p.userId === null) {
      throw new HubError(403, 'forbidden', 'the installation admin token cannot own API tokens; sign in as a user');
    }
    const role = input.role ?? p.role;
    const nodeId = input.nodeId === undefined ? p.nodeId : input.nodeId;
    this.checkGrant(p, role, nodeId);
    if (input.expiresInDays > this.opts.tokenMaxDays) throw new HubError(400, 'invalid-request', `expiresInDays: at most ${this.opts.tokenMaxDays}`);
    const id = crypto.randomBytes(8).toString('hex');
    const secret = crypto.randomBytes(32).toString('base64url');
    const now = Date.now();
    const row = { id, userId: p.userId, name: input.name, role, nodeId, secretHash: sha256(secret), createdAt: now, expiresAt: now + input.expiresInDays * 86_400_000 };
    await transaction(this.engine, async (tx) => {
      await this.store.insertToken(row, tx);
      await this.record(o, { action: 'token.create', objectType: 'token', objectId: id, nodeId, after: { name: row.name, role, nodeId, owner: p.username, expiresAt: new Date(row.expiresAt).toISOString() } }, tx);
    });
    return { token: `${TOKEN_PREFIX}.${id}.${secret}`, row: { ...row, revokedAt: null, lastUsedAt: null } };
  }

  /** Tokens the caller may see: their own, or (user:manage) those of a user they manage. */
  async tokensOf(p: Principal, userId: string): Promise<TokenRow[]> {
    if (userId !== p.userId) await this.manageable(p, userId);
    return this.store.userTokens(userId);
  }

  /** Revokes at once: the next request with it gets 401. Own tokens, or tokens of users the caller manages. */
  async revokeToken(o: Origin, id: string): Promise<TokenRow> {
    const p = o.principal!;
    const t = await this.store.token(id);
    if (!t) throw notFound('token', id);
    if (t.userId !== p.userId) await this.manageable(p, t.userId, () => notFound('token', id));
    await transaction(this.engine, async (tx) => {
      if (await this.store.revokeToken(id, Date.now(), tx)) {
        await this.record(o, { action: 'token.revoke', objectType: 'token', objectId: id, nodeId: t.nodeId, before: { name: t.name, active: true }, after: { active: false } }, tx);
      }
    });
    return (await this.store.token(id))!;
  }

  /**
   * An API token for a user the caller manages (an operator sets up a technician's integration): the token's role and
   * node default to the owner's and may only narrow them (never above the owner's role or outside their node), and
   * the caller must be able to grant them. Shown once, like the caller's own tokens.
   */
  async createTokenFor(
    o: Origin,
    userId: string,
    input: { name: string; role?: Role | undefined; nodeId?: string | null | undefined; expiresInDays: number },
  ): Promise<{ token: string; row: TokenRow }> {
    const p = o.principal!;
    const owner = await this.manageable(p, userId);
    if (owner.disabledAt !== null) throw new HubError(409, 'conflict', `user ${owner.username} is disabled`);
    const role = input.role ?? owner.role;
    const nodeId = input.nodeId === undefined ? owner.nodeId : input.nodeId;
    this.checkGrant(p, role, nodeId);
    if (!mayGrant(owner, role, nodeId)) throw new HubError(403, 'forbidden', `a token of ${owner.username} cannot exceed their role (${owner.role}) or node`);
    if (input.expiresInDays > this.opts.tokenMaxDays) throw new HubError(400, 'invalid-request', `expiresInDays: at most ${this.opts.tokenMaxDays}`);
    const id = crypto.randomBytes(8).toString('hex');
    const secret = crypto.randomBytes(32).toString('base64url');
    const now = Date.now();
    const row = { id, userId: owner.id, name: input.name, role, nodeId, secretHash: sha256(secret), createdAt: now, expiresAt: now + input.expiresInDays * 86_400_000 };
    await transaction(this.engine, async (tx) => {
      await this.store.insertToken(row, tx);
      await this.record(o, { action: 'token.create', objectType: 'token', objectId: id, nodeId, after: { name: row.name, role, nodeId, owner: owner.username, expiresAt: new Date(row.expiresAt).toISOString() } }, tx);
    });
    return { token: `${TOKEN_PREFIX}.${id}.${secret}`, row: { ...row, revokedAt: null, lastUsedAt: null } };
  }

  // ---------------------------------------------------------------- users

  /** Usernames of the active district admins bound to `district` (whom an overdue alert escalates to). */
  async districtAdmins(district: string): Promise<string[]> {
    return districtAdminsOf(await this.store.users(district, undefined, 200), district);
  }

  /**
   * The same, synchronously, on SQLite only: the alert engine evaluates in one synchronous transaction until it is
   * ported to the async stores (issue 18); on PostgreSQL it must call `districtAdmins`.
   */
  districtAdminsNow(district: string): string[] {
    if (!(this.store instanceof SqliteAuthStore)) throw new Error('districtAdminsNow is SQLite-only; await districtAdmins()');
    return districtAdminsOf(this.store.usersNow(district, undefined, 200), district);
  }

  /**
   * The user `id` if the caller may manage them: 404 when the user lies outside the caller's scope (or is above
   * them), 403 when the caller's role does not manage users.
   */
  async manageable(p: Principal, id: string, missing: () => HubError = () => notFound('user', id)): Promise<UserRow> {
    const u = await this.store.user(id);
    if (!u || !inScope(p.nodeId, u.nodeId)) throw missing();
    if (!can(p, 'user:manage')) throw new HubError(403, 'forbidden', `a ${p.role} cannot manage users`);
    if (!mayGrant(p, u.role, u.nodeId)) throw new HubError(403, 'forbidden', `a ${p.role} cannot manage a ${u.role}`);
    return u;
  }

  private checkGrant(p: Principal, role: Role, nodeId: string | null): void {
    // Outside the caller's node first (404, like everything there), then a malformed binding, then the role.
    if (!inScope(p.nodeId, nodeId)) throw notFound('node', String(nodeId));
    const problem = bindingProblem(role, nodeId);
    if (problem) throw new HubError(400, 'invalid-binding', problem, { path: ['nodeId'] });
    if (!mayGrant(p, role, nodeId)) throw new HubError(403, 'forbidden', `a ${p.role} cannot give the role ${role}`);
  }

  async createUser(
    o: Origin,
    input: { username: string; displayName?: string | undefined; role: Role; nodeId: string | null; password?: string | undefined },
    nodeExists: (id: string) => boolean | Promise<boolean>,
  ): Promise<{ user: UserRow; password: string | null }> {
    const p = o.principal!;
    if (!can(p, 'user:manage')) throw new HubError(403, 'forbidden', `a ${p.role} cannot manage users`);
    if (!USERNAME.test(input.username)) throw new HubError(400, 'invalid-request', 'username: 3-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit', { path: ['username'] });
    this.checkGrant(p, input.role, input.nodeId);
    if (input.nodeId !== null && !(await nodeExists(input.nodeId))) throw new HubError(400, 'invalid-binding', `node ${input.nodeId} does not exist`, { path: ['nodeId'] });
    if (input.password !== undefined) {
      const problem = passwordProblem(input.password, input.username);
      if (problem) throw new HubError(400, 'weak-password', `password: ${problem.message}`, { path: ['password'] }, weakPassword(problem.rule));
    }
    const generated = input.password === undefined ? generatePassword() : null;
    const hash = await hashPassword(input.password ?? generated!, this.opts.scryptN);
    const now = Date.now();
    const u: UserRow = {
      id: newId('u'),
      username: input.username,
      displayName: input.displayName ?? null,
      role: input.role,
      nodeId: input.nodeId,
      passwordHash: hash,
      // A password someone else chose is one-time: the user picks their own at first login.
      mustChangePassword: 1,
      disabledAt: null,
      createdAt: now,
      createdBy: actorName(p),
      passwordChangedAt: now,
    };
    await transaction(this.engine, async (tx) => {
      if (!(await this.store.insertUser(u, tx))) throw new HubError(409, 'conflict', `username ${u.username} is taken`, { path: ['username'] }, {
        code: 'error.username-taken',
        params: { username: u.username },
      });
      await this.record(o, { action: 'user.create', objectType: 'user', objectId: u.id, nodeId: u.nodeId, after: userAudit(u) }, tx);
    });
    return { user: u, password: generated };
  }

  async updateUser(
    o: Origin,
    id: string,
    input: { role?: Role | undefined; nodeId?: string | null | undefined; displayName?: string | null | undefined },
    nodeExists: (id: string) => boolean | Promise<boolean>,
  ): Promise<UserRow> {
    const p = o.principal!;
    const u = await this.manageable(p, id);
    const role = input.role ?? u.role;
    const nodeId = input.nodeId === undefined ? u.nodeId : input.nodeId;
    if (role !== u.role || nodeId !== u.nodeId) {
      if (u.id === p.userId) throw new HubError(403, 'forbidden', 'you cannot change your own role or node');
      this.checkGrant(p, role, nodeId);
      if (nodeId !== null && !(await nodeExists(nodeId))) throw new HubError(400, 'invalid-binding', `node ${nodeId} does not exist`, { path: ['nodeId'] });
    }
    const displayName = input.displayName === undefined ? u.displayName : input.displayName;
    await transaction(this.engine, async (tx) => {
      await this.store.setRole(id, role, nodeId, displayName, tx);
      const after = (await this.store.user(id, tx))!;
      await this.record(o, { action: 'user.update', objectType: 'user', objectId: id, nodeId: after.nodeId, before: userAudit(u), after: userAudit(after) }, tx);
    });
    return (await this.store.user(id))!;
  }

  /** Disables (or enables) a user; disabling ends their sessions and revokes their tokens in the same transaction. */
  async setDisabled(o: Origin, id: string, disabled: boolean): Promise<UserRow> {
    const p = o.principal!;
    const u = await this.manageable(p, id);
    if (u.id === p.userId) throw new HubError(403, 'forbidden', 'you cannot disable yourself');
    const now = Date.now();
    await transaction(this.engine, async (tx) => {
      await this.store.setDisabled(id, disabled ? now : null, tx);
      let sessions = 0;
      let tokens = 0;
      if (disabled) {
        sessions = await this.store.deleteUserSessions(id, undefined, tx);
        tokens = await this.store.revokeUserTokens(id, now, tx);
      }
      await this.record(o, {
        action: disabled ? 'user.disable' : 'user.enable',
        objectType: 'user',
        objectId: id,
        nodeId: u.nodeId,
        before: { disabled: u.disabledAt !== null },
        after: { disabled, ...(disabled ? { sessionsEnded: sessions, tokensRevoked: tokens } : {}) },
      }, tx);
    });
    return (await this.store.user(id))!;
  }

  /**
   * Sets a one-time password (returned once) that must be changed at the next login; ends the user's sessions and
   * revokes their API tokens: a reset is what an admin does when the account may be in someone else's hands.
   */
  async resetPassword(o: Origin, id: string): Promise<{ user: UserRow; password: string }> {
    const p = o.principal!;
    const u = await this.manageable(p, id);
    const password = generatePassword();
    const hash = await hashPassword(password, this.opts.scryptN);
    await transaction(this.engine, async (tx) => {
      const now = Date.now();
      await this.store.setPassword(id, hash, true, now, tx);
      const ended = await this.store.deleteUserSessions(id, undefined, tx);
      const revoked = await this.store.revokeUserTokens(id, now, tx);
      await this.record(o, {
        action: 'user.reset-password',
        objectType: 'user',
        objectId: id,
        nodeId: u.nodeId,
        after: { mustChangePassword: true, sessionsEnded: ended, tokensRevoked: revoked },
      }, tx);
    });
    return { user: (await this.store.user(id))!, password };
  }

  /**
   * The caller changes their own password; their other sessions end. Only from a password session: an API token is
   * not its owner's password (a narrowed viewer token must not become the owner's full login). The current password
   * is a guess like a login's and counts against the same per-account budget.
   */
  async changePassword(o: Origin, current: string, next: string): Promise<UserRow> {
    const p = o.principal!;
    if (p.userId === null) throw new HubError(403, 'forbidden', 'the installation admin token has no password');
    if (p.kind !== 'session') throw new HubError(403, 'password-session-required', 'a password can only be changed from a password login, not with an API token');
    const u = await this.store.user(p.userId);
    if (!u) throw notFound('user', p.userId);
    const userKey = this.userKey(u.username);
    await this.countAttempt(userKey, null, Date.now(), { username: u.username, ip: o.ip }, 'password change');
    if (!(await verifyPassword(current, u.passwordHash))) {
      await this.record(o, { action: 'user.change-password', objectType: 'user', objectId: u.id, nodeId: u.nodeId, outcome: 'failed', after: { reason: 'wrong-current-password' } });
      throw new HubError(403, 'wrong-password', 'the current password is wrong', undefined, { code: 'error.wrong-password', params: {} });
    }
    await this.store.clearFailure(userKey);
    const problem = passwordProblem(next, u.username);
    if (problem) throw new HubError(400, 'weak-password', `newPassword: ${problem.message}`, { path: ['newPassword'] }, weakPassword(problem.rule));
    if (await verifyPassword(next, u.passwordHash)) throw new HubError(400, 'weak-password', 'newPassword: must differ from the current one', { path: ['newPassword'] }, weakPassword('unchanged'));
    const hash = await hashPassword(next, this.opts.scryptN);
    await transaction(this.engine, async (tx) => {
      await this.store.setPassword(u.id, hash, false, Date.now(), tx);
      const ended = await this.store.deleteUserSessions(u.id, p.sessionHash, tx);
      await this.record(o, { action: 'user.change-password', objectType: 'user', objectId: u.id, nodeId: u.nodeId, after: { otherSessionsEnded: ended } }, tx);
    });
    return (await this.store.user(u.id))!;
  }
}

function districtAdminsOf(users: UserRow[], district: string): string[] {
  return users.filter((u) => u.role === 'district-admin' && u.nodeId === district && u.disabledAt === null).map((u) => u.username);
}

function newId(prefix: string): string {
  return `${prefix}_${crypto.randomBytes(8).toString('hex')}`;
}
