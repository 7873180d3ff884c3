/**
 * The auth store's contract on both engines: what the service and the routes rely on, with the same answers on
 * SQLite and PostgreSQL (users, sessions with expiry, API tokens including a metrics token, login throttles), and
 * the concurrency SQLite's single writer gives for free that PostgreSQL must give with locks: a name taken in any
 * case once, and a throttle count that loses no attempt when many come at once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transaction } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createLogger } from '../log.ts';
import { createAuditLog } from '../audit/log.ts';
import { AuthService } from './service.ts';
import type { Role } from './permissions.ts';
import { createAuthStore, type AuthStore, type UserRow } from './store.ts';

const T0 = 1_760_000_000_000;

function user(id: string, username: string, over: Partial<UserRow> = {}): UserRow {
  return {
    id,
    username,
    displayName: null,
    role: 'viewer',
    nodeId: 'GZ-YX-001',
    passwordHash: `hash-of-${id}`,
    mustChangePassword: 0,
    disabledAt: null,
    createdAt: T0,
    createdBy: 'test',
    passwordChangedAt: T0,
    ...over,
  };
}

describe.each(TEST_ENGINES)('auth store on %s', (kind) => {
  let t: TestEngine;
  let store: AuthStore;
  beforeEach(async () => {
    t = await openTestEngine(kind);
    store = createAuthStore(t.engine);
  });
  afterEach(async () => {
    await t.close();
  });

  it('keeps users: names without case, one account per name in any case, rows read back as written', async () => {
    expect(await store.countUsers()).toBe(0);
    const bob = user('u_1', 'Bob', { displayName: '鲍勃', role: 'district-admin', nodeId: 'GZ-YX', mustChangePassword: 1 });
    expect(await store.insertUser(bob)).toBe(true);
    expect(await store.insertUser(user('u_2', 'bob'))).toBe(false);
    expect(await store.insertUser(user('u_3', 'BOB'))).toBe(false);
    expect(await store.countUsers()).toBe(1);
    expect(await store.user('u_1')).toEqual(bob);
    expect(await store.userByName('bOb')).toEqual(bob);
    expect(await store.user('u_2')).toBeUndefined();
    expect(await store.userByName('alice')).toBeUndefined();

    await store.setPassword('u_1', 'new-hash', false, T0 + 5);
    expect(await store.user('u_1')).toMatchObject({ passwordHash: 'new-hash', mustChangePassword: 0, passwordChangedAt: T0 + 5 });
    expect(await store.replaceHash('u_1', 'stale-hash', 'rehash')).toBe(false);
    expect(await store.replaceHash('u_1', 'new-hash', 'rehash')).toBe(true);
    expect((await store.user('u_1'))!.passwordHash).toBe('rehash');
    await store.setRole('u_1', 'technician', 'GZ-YX-002', null);
    expect(await store.user('u_1')).toMatchObject({ role: 'technician', nodeId: 'GZ-YX-002', displayName: null });
    await store.setDisabled('u_1', T0 + 9);
    expect((await store.user('u_1'))!.disabledAt).toBe(T0 + 9);
    await store.setDisabled('u_1', null);
    expect((await store.user('u_1'))!.disabledAt).toBeNull();
  });

  it('creates a name once when two connections race for it in different cases', async () => {
    const results = await Promise.all(['carol', 'Carol', 'CAROL', 'caRol'].map((n, i) => store.insertUser(user(`u_${i}`, n))));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await store.countUsers()).toBe(1);
  });

  it('a name taken in an open transaction on another connection is refused in any case once that one commits', async () => {
    if (t.engine.kind !== 'postgres') return; // SQLite: one connection, whose BEGIN IMMEDIATE serialises every writer
    let second: Promise<boolean> | undefined;
    await transaction(t.engine, async (tx) => {
      expect(await store.insertUser(user('u_1', 'dan'), tx)).toBe(true);
      second = store.insertUser(user('u_2', 'Dan'));
      // Time for the second insert to slip past its check if nothing held it (it must wait for this commit).
      await new Promise((r) => setTimeout(r, 300));
    });
    expect(await second).toBe(false);
    expect(await store.countUsers()).toBe(1);
  });

  it('lists users under a node, ordered byte-wise by name, in keyset pages', async () => {
    for (const [id, name, node] of [
      ['u_a', 'alice', 'GZ-YX-001'],
      ['u_b', 'Zed', 'GZ-YX'],
      ['u_c', 'bob', 'GZ-TH-001'],
      ['u_d', 'city', null],
      ['u_e', 'eve', 'GZ-YX2'],
    ] as const) {
      await store.insertUser(user(id, name, { nodeId: node }));
    }
    const names = (rows: UserRow[]) => rows.map((u) => u.username);
    // Upper case sorts before lower case byte-wise, as SQLite's BINARY collation does.
    expect(names(await store.users(null, undefined, 10))).toEqual(['Zed', 'alice', 'bob', 'city', 'eve']);
    expect(names(await store.users('GZ-YX', undefined, 10))).toEqual(['Zed', 'alice']);
    expect(names(await store.users('GZ-%', undefined, 10))).toEqual([]);
    expect(names(await store.users(null, undefined, 2))).toEqual(['Zed', 'alice']);
    expect(names(await store.users(null, 'alice', 2))).toEqual(['bob', 'city']);
    expect(names(await store.users(null, 'city', 2))).toEqual(['eve']);
  });

  it('keeps sessions: read, touched, ended one, all of a user but the caller’s, and pruned at expiry', async () => {
    await store.insertUser(user('u_1', 'dora'));
    const s = (idHash: string, expiresAt: number) => ({ idHash, userId: 'u_1', csrfToken: `csrf-${idHash}`, createdAt: T0, lastSeenAt: T0, expiresAt, ip: '10.0.0.7', userAgent: null });
    await store.insertSession(s('h1', T0 + 1000));
    await store.insertSession(s('h2', T0 + 5000));
    await store.insertSession(s('h3', T0 + 5000));
    await store.insertSession({ ...s('h4', T0 + 5000), userId: 'u_other' });
    expect(await store.session('h1')).toEqual(s('h1', T0 + 1000));
    await store.touchSession('h2', T0 + 60);
    expect((await store.session('h2'))!.lastSeenAt).toBe(T0 + 60);
    // Expiry is inclusive: a session is gone at its expiresAt.
    expect(await store.pruneSessions(T0 + 999)).toBe(0);
    expect(await store.pruneSessions(T0 + 1000)).toBe(1);
    expect(await store.session('h1')).toBeUndefined();
    expect(await store.deleteUserSessions('u_1', 'h2')).toBe(1);
    expect(await store.session('h2')).toBeDefined();
    expect(await store.session('h3')).toBeUndefined();
    await store.deleteSession('h2');
    expect(await store.session('h2')).toBeUndefined();
    expect(await store.deleteUserSessions('u_other')).toBe(1);
    expect(await store.deleteUserSessions('u_other')).toBe(0);
  });

  it('keeps API tokens, a metrics token too: newest first, revoked once, all of a user at once, last use', async () => {
    const tok = (id: string, createdAt: number, role: Role = 'viewer') => ({
      id, userId: 'u_1', name: `t-${id}`, role: role as Role, nodeId: null, secretHash: `sh-${id}`, createdAt, expiresAt: createdAt + 86_400_000,
    });
    await store.insertToken(tok('00000000000000a1', T0));
    await store.insertToken(tok('00000000000000a2', T0 + 10, 'metrics'));
    await store.insertToken(tok('00000000000000a3', T0 + 10));
    await store.insertToken({ ...tok('00000000000000b1', T0), userId: 'u_2' });
    expect(await store.token('00000000000000a2')).toEqual({ ...tok('00000000000000a2', T0 + 10, 'metrics'), revokedAt: null, lastUsedAt: null });
    expect((await store.userTokens('u_1')).map((x) => x.id)).toEqual(['00000000000000a2', '00000000000000a3', '00000000000000a1']);
    expect(await store.revokeToken('00000000000000a1', T0 + 20)).toBe(true);
    expect(await store.revokeToken('00000000000000a1', T0 + 30)).toBe(false);
    expect(await store.revokeToken('ffffffffffffffff', T0 + 30)).toBe(false);
    expect((await store.token('00000000000000a1'))!.revokedAt).toBe(T0 + 20);
    expect(await store.revokeUserTokens('u_1', T0 + 40)).toBe(2);
    expect((await store.token('00000000000000b1'))!.revokedAt).toBeNull();
    await store.touchToken('00000000000000b1', T0 + 50);
    expect((await store.token('00000000000000b1'))!.lastUsedAt).toBe(T0 + 50);
  });

  it('keeps throttle rows: upserted, read, cleared', async () => {
    expect(await store.failure('user:x')).toBeUndefined();
    await store.putFailure({ key: 'user:x', failures: 1, firstAt: T0, lastAt: T0, lockedUntil: 0 });
    await store.putFailure({ key: 'user:x', failures: 6, firstAt: T0, lastAt: T0 + 9, lockedUntil: T0 + 1009 });
    expect(await store.failure('user:x')).toEqual({ key: 'user:x', failures: 6, firstAt: T0, lastAt: T0 + 9, lockedUntil: T0 + 1009 });
    await store.clearFailure('user:x');
    expect(await store.failure('user:x')).toBeUndefined();
  });

  it('loses no attempt when many transactions count the same keys at once (lockAttempts)', async () => {
    const N = 12;
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        transaction(t.engine, async (tx) => {
          // Both orders: the lock order inside lockAttempts must keep them from waiting on each other.
          await store.lockAttempts(i % 2 ? ['user:k', 'ip:k'] : ['ip:k', 'user:k'], tx);
          for (const key of ['user:k', 'ip:k']) {
            const f = await store.failure(key, tx);
            await store.putFailure({ key, failures: (f?.failures ?? 0) + 1, firstAt: T0, lastAt: T0 + i, lockedUntil: 0 }, tx);
          }
        }),
      ),
    );
    expect((await store.failure('user:k'))!.failures).toBe(N);
    expect((await store.failure('ip:k'))!.failures).toBe(N);
  });

  it('writes in a caller’s transaction: a rollback leaves no user, session or token', async () => {
    await transaction(t.engine, async (tx) => {
      await store.insertUser(user('u_9', 'rolled'), tx);
      await store.insertSession({ idHash: 'h9', userId: 'u_9', csrfToken: 'c', createdAt: T0, lastSeenAt: T0, expiresAt: T0 + 1, ip: null, userAgent: null }, tx);
      expect(await store.userByName('ROLLED', tx)).toBeDefined();
      throw new Error('undone');
    }).catch(() => {});
    expect(await store.userByName('rolled')).toBeUndefined();
    expect(await store.session('h9')).toBeUndefined();
  });

  it('counts 20 wrong logins sent at once as 20 (the service over this store: throttled, audited)', { timeout: 30_000 }, async () => {
    const audit = createAuditLog(t.engine);
    // A low scrypt cost: the point here is the counting, not the hash.
    const auth = new AuthService(t.engine, audit, createLogger('silent'), { scryptN: 2 ** 10, accountFreeFailures: 100, addressFreeFailures: 100 });
    await auth.bootstrap('amber-tram-lantern-9');
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => auth.login('admin', 'wrong-password-1', { ip: '10.1.1.1', userAgent: null }).then(() => 'ok', (e: { status: number }) => e.status)),
    );
    expect(outcomes).toEqual(Array(20).fill(401));
    const failed = await audit.list({ scope: null, action: 'auth.login', limit: 50 });
    expect(failed).toHaveLength(20);
    expect((await audit.verify()).ok).toBe(true);
    // The right password hands the address its attempt back and clears the account's count.
    const ok = await auth.login('Admin', 'amber-tram-lantern-9', { ip: '10.1.1.1', userAgent: 'vitest' });
    expect(await auth.sessionPrincipal(ok.token)).toMatchObject({ kind: 'session', username: 'admin', role: 'city-admin' });
    expect(await auth.stillValid((await auth.sessionPrincipal(ok.token))!)).toBe(true);
  });

  it('right and wrong passwords from one address at once all get their answer (no lock waits on another)', { timeout: 30_000 }, async () => {
    const auth = new AuthService(t.engine, createAuditLog(t.engine), createLogger('silent'), { scryptN: 2 ** 10, accountFreeFailures: 100, addressFreeFailures: 100 });
    await auth.bootstrap('amber-tram-lantern-9');
    const outcomes = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        auth.login('admin', i % 2 ? 'amber-tram-lantern-9' : 'wrong-password-1', { ip: '10.1.1.2', userAgent: null }).then(() => 'ok', (e: { status?: number; message: string }) => e.status ?? e.message),
      ),
    );
    expect(outcomes).toEqual(Array.from({ length: 16 }, (_, i) => (i % 2 ? 'ok' : 401)));
  });

  it('the service over this store: sessions idle out and expire, a metrics token is a metrics principal, disabling ends both', { timeout: 30_000 }, async () => {
    const audit = createAuditLog(t.engine);
    const auth = new AuthService(t.engine, audit, createLogger('silent'), { scryptN: 2 ** 10, sessionTtlMs: 200_000, sessionIdleMs: 100_000 });
    await auth.bootstrap('amber-tram-lantern-9');
    const admin = await auth.login('admin', 'amber-tram-lantern-9', { ip: null, userAgent: null });
    const t0 = admin.session.createdAt;
    const p = (await auth.sessionPrincipal(admin.token, t0 + 1000))!;
    expect(p).toMatchObject({ kind: 'session', role: 'city-admin', nodeId: null });
    // Idle: no request for longer than sessionIdleMs ends it, and the row goes.
    const idle = await auth.login('admin', 'amber-tram-lantern-9', { ip: null, userAgent: null });
    expect(await auth.sessionPrincipal(idle.token, idle.session.createdAt + 100_001)).toBeNull();
    expect(await auth.store.session(idle.session.idHash)).toBeUndefined();
    // A request after a minute is a sign of life (written at most once a minute); expiry ends a busy session too.
    expect(await auth.sessionPrincipal(admin.token, t0 + 61_000)).not.toBeNull();
    expect((await auth.store.session(admin.session.idHash))!.lastSeenAt).toBe(t0 + 61_000);
    expect(await auth.sessionPrincipal(admin.token, t0 + 150_000)).not.toBeNull();
    expect(await auth.sessionPrincipal(admin.token, t0 + 200_000)).toBeNull();

    const origin = { principal: p, ip: '10.0.0.9' };
    const { user: op } = await auth.createUser(origin, { username: 'scraper-owner', role: 'city-admin', nodeId: null, password: 'amber-tram-lantern-9' }, () => true);
    const opLogin = await auth.login('scraper-owner', 'amber-tram-lantern-9', { ip: null, userAgent: null });
    const opP = (await auth.sessionPrincipal(opLogin.token))!;
    const metrics = await auth.createToken({ principal: opP, ip: null }, { name: 'prometheus', role: 'metrics', expiresInDays: 30 });
    expect(await auth.tokenPrincipal(metrics.token)).toMatchObject({ kind: 'token', role: 'metrics', tokenId: metrics.row.id, username: 'scraper-owner' });
    expect((await auth.tokensOf(opP, op.id)).map((x) => x.role)).toEqual(['metrics']);

    await auth.setDisabled(origin, op.id, true);
    expect(await auth.tokenPrincipal(metrics.token)).toBeNull();
    expect(await auth.sessionPrincipal(opLogin.token)).toBeNull();
    expect(await auth.stillValid(opP)).toBe(false);
    const actions = (await audit.list({ scope: null, limit: 50 })).map((r) => r.action).reverse();
    expect(actions).toEqual(['user.create', 'auth.login', 'auth.login', 'user.create', 'auth.login', 'token.create', 'user.disable']);
    expect((await audit.verify()).ok).toBe(true);
  });
});
