/**
 * Dashboard sessions against a real hub process: a session cookie alone cannot write (CSRF: the write needs the
 * session's token in X-CSRF-Token, which another origin cannot read), the cookies are HttpOnly/SameSite=Strict, a
 * logged-out cookie is useless, a password-guessing run is throttled, and no password or session secret is logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { fleet } from '../helpers/reliability-util.ts';

const PASSWORD = `Reliability-${Math.random().toString(36).slice(2)}-pw`;
let hub: HubProcess;
const seenSecrets: string[] = [PASSWORD];

interface Session {
  cookie: string;
  csrf: string;
  setCookie: string[];
}

async function login(username: string, password: string, ip?: string): Promise<Response> {
  return fetch(`${hub.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(ip ? { 'x-forwarded-for': ip } : {}) },
    body: JSON.stringify({ username, password }),
  });
}

async function session(): Promise<Session> {
  const res = await login('admin', PASSWORD);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { csrfToken: string; mustChangePassword: boolean };
  const setCookie = res.headers.getSetCookie();
  const cookie = setCookie.map((c) => c.split(';')[0]!).join('; ');
  const token = /kf_session=([^;]+)/.exec(cookie)?.[1];
  if (token) seenSecrets.push(decodeURIComponent(token));
  seenSecrets.push(body.csrfToken);
  return { cookie, csrf: body.csrfToken, setCookie };
}

function withCookie(s: Session, path: string, init: RequestInit & { csrf?: string; origin?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('cookie', s.cookie);
  if (init.csrf !== undefined) headers.set('x-csrf-token', init.csrf);
  if (init.origin) headers.set('origin', init.origin);
  if (init.body) headers.set('content-type', 'application/json');
  return fetch(`${hub.url}${path}`, { ...init, headers });
}

beforeAll(async () => {
  hub = await spawnHub({ env: { KF_ADMIN_PASSWORD: PASSWORD } });
  await hub.importFleet(fleet(2, 'SE').fleet);
});

afterAll(async () => {
  await hub?.stop();
});

describe('sessions and CSRF', () => {
  it('the session cookie is HttpOnly and SameSite=Strict', async () => {
    const s = await session();
    const sessionCookie = s.setCookie.find((c) => c.startsWith('kf_session='));
    expect(sessionCookie).toBeDefined();
    expect(sessionCookie).toMatch(/HttpOnly/i);
    expect(sessionCookie).toMatch(/SameSite=Strict/i);
  });

  it('a cookie without the session’s CSRF token cannot write, from any origin; reads work; with the token the write goes through', async () => {
    const s = await session();
    const other = await session();
    const body = JSON.stringify({ type: 'id-card', serial: 'SN-CSRF-1', station: 'GZ-SE-001' });
    for (const attempt of [
      { origin: 'https://evil.example' },
      {},
      { csrf: '' },
      { csrf: 'x'.repeat(s.csrf.length) },
      { csrf: other.csrf, origin: 'https://evil.example' },
    ]) {
      const res = await withCookie(s, '/api/v1/terminals', { method: 'POST', body, ...attempt });
      expect(res.status, JSON.stringify(attempt)).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('csrf');
    }
    // Nothing was registered by those.
    const list = (await (await hub.api('/api/v1/terminals?q=SN-CSRF')).json()) as { items: unknown[] };
    expect(list.items).toEqual([]);
    expect((await withCookie(s, '/api/v1/terminals')).status).toBe(200);
    const ok = await withCookie(s, '/api/v1/terminals', { method: 'POST', body, csrf: s.csrf });
    expect(ok.status).toBe(201);
    seenSecrets.push(((await ok.json()) as { secret: string }).secret);
  });

  it('after logout the cookie is useless', async () => {
    const s = await session();
    expect((await withCookie(s, '/api/v1/auth/logout', { method: 'POST', csrf: s.csrf })).status).toBe(200);
    expect((await withCookie(s, '/api/v1/terminals')).status).toBe(401);
  });

  it('password guessing is throttled with 429 and Retry-After, and no tried password is logged', async () => {
    const tried: string[] = [];
    let throttled: Response | null = null;
    for (let i = 0; i < 30 && !throttled; i++) {
      const guess = `guess-${i}-${Math.random().toString(36).slice(2)}`;
      tried.push(guess);
      const res = await login('admin', guess);
      if (res.status === 429) throttled = res;
      else expect(res.status).toBe(401);
      await res.body?.cancel();
    }
    expect(throttled, 'no 429 after 30 wrong passwords').not.toBeNull();
    expect(Number(throttled!.headers.get('retry-after'))).toBeGreaterThan(0);
    const logs = hub.logs.join('\n');
    for (const g of tried) expect(logs.includes(g)).toBe(false);
  });

  it('no password, session token, CSRF token or terminal secret appears in the hub’s logs', () => {
    const logs = hub.logs.join('\n');
    expect(seenSecrets.length).toBeGreaterThanOrEqual(6);
    for (const s of seenSecrets) expect(logs.includes(s), 'a secret is in the hub logs').toBe(false);
  });
});
