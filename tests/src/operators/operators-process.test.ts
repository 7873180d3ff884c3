/**
 * Operators against the real hub process (`kiosk-fleet serve`): the first start's generated admin password goes to
 * stderr once and never into the JSON log; it must be changed at first login; a restart creates no other admin;
 * a district admin's API token sees only their district; a revoked token is refused at once; disabling a user ends
 * their session; and nothing secret (passwords, API tokens, cookies, terminal secrets) is ever in the log.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';

let hub: HubProcess;
const secrets: string[] = [];

beforeAll(async () => {
  hub = await spawnHub({ env: { KF_LOG_LEVEL: 'debug' } });
});
afterAll(async () => {
  await hub?.stop();
});

const isJson = (line: string) => {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
};

async function post(path: string, json: unknown, headers: Record<string, string> = {}) {
  return fetch(`${hub.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(json) });
}

async function signIn(username: string, password: string) {
  const res = await post('/api/v1/auth/login', { username, password });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
  const { csrfToken, mustChangePassword } = (await res.json()) as { csrfToken: string; mustChangePassword: boolean };
  secrets.push(cookie.split(/[=;]/)[1]!, csrfToken);
  const call = (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    headers.set('cookie', cookie);
    headers.set('x-csrf-token', csrfToken);
    if (json !== undefined) headers.set('content-type', 'application/json');
    return fetch(`${hub.url}${path}`, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
  };
  return { call, mustChangePassword };
}

test('the generated first password is on stderr once, outside the JSON log, and must be changed', async () => {
  const announcement = hub.logs.filter((l) => !isJson(l)).join('\n');
  const m = /user "admin" created.*:\n\s+(\S+)/.exec(announcement);
  expect(m, announcement).not.toBeNull();
  const password = m![1]!;
  secrets.push(password);
  expect(hub.logs.filter(isJson).some((l) => l.includes(password))).toBe(false);
  const first = await signIn('admin', password);
  expect(first.mustChangePassword).toBe(true);
  expect((await first.call('/api/v1/nodes')).status).toBe(403);
  const next = 'city-desk-passphrase-42';
  secrets.push(next);
  expect((await first.call('/api/v1/auth/password', { method: 'POST', json: { currentPassword: password, newPassword: next } })).status).toBe(200);
  expect((await first.call('/api/v1/nodes')).status).toBe(200);

  await hub.restart();
  const again = hub.logs.filter((l) => !isJson(l)).join('\n');
  expect(again.match(/user "admin" created/g)).toHaveLength(1);
  expect((await signIn('admin', next)).mustChangePassword).toBe(false);
});

test('a district admin’s token sees their district only; revoking it and disabling the user take effect at once', async () => {
  const imported = await hub.importFleet({
    city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
    districts: [
      { id: 'GZ-YX', name: { zh: '越秀', en: 'Yuexiu' } },
      { id: 'GZ-TH', name: { zh: '天河', en: 'Tianhe' } },
    ],
    stations: [
      { id: 'GZ-YX-001', name: { zh: '站', en: 'S1' } },
      { id: 'GZ-TH-001', name: { zh: '站', en: 'S2' } },
    ],
    terminals: [
      { id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card', serial: 'A1' },
      { id: 'GZ-TH-001-01', station: 'GZ-TH-001', type: 'id-card', serial: 'B1' },
    ],
  });
  secrets.push(...imported.terminals.created.map((t) => t.secret));
  const created = await hub.api('/api/v1/users', { method: 'POST', json: { username: 'yx-lead', role: 'district-admin', nodeId: 'GZ-YX' } });
  expect(created.status).toBe(201);
  const { user, password: oneTime } = (await created.json()) as { user: { id: string }; password: string };
  secrets.push(oneTime);
  const s = await signIn('yx-lead', oneTime);
  const own = 'yuexiu-lead-passphrase';
  secrets.push(own);
  expect((await s.call('/api/v1/auth/password', { method: 'POST', json: { currentPassword: oneTime, newPassword: own } })).status).toBe(200);
  const tokRes = await s.call('/api/v1/auth/tokens', { method: 'POST', json: { name: 'script', expiresInDays: 1 } });
  expect(tokRes.status).toBe(201);
  const { token, id: tokenId } = (await tokRes.json()) as { token: string; id: string };
  secrets.push(token);
  const asToken = (path: string, init: RequestInit = {}) => fetch(`${hub.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}` } });

  const list = (await (await asToken('/api/v1/terminals')).json()) as { items: { id: string }[] };
  expect(list.items.map((t) => t.id)).toEqual(['GZ-YX-001-01']);
  expect((await asToken('/api/v1/terminals/GZ-TH-001-01')).status).toBe(404);
  expect((await asToken('/api/v1/terminals/GZ-YX-001-01/secret', { method: 'POST' })).status).toBe(200);
  const rotated = (await (await asToken('/api/v1/audit?action=terminal.secret')).json()) as { items: { actor: string }[] };
  expect(rotated.items[0]!.actor).toContain('yx-lead');

  expect((await s.call(`/api/v1/auth/tokens/${tokenId}`, { method: 'DELETE' })).status).toBe(200);
  expect((await asToken('/api/v1/terminals')).status).toBe(401);

  expect((await hub.api(`/api/v1/users/${user.id}/disable`, { method: 'POST' })).status).toBe(200);
  expect((await s.call('/api/v1/terminals')).status).toBe(401);
  expect((await post('/api/v1/auth/login', { username: 'yx-lead', password: own })).status).toBe(401);
});

test('no password, API token, session cookie, CSRF token or terminal secret in the hub’s log', async () => {
  const log = hub.logs.filter(isJson).join('\n');
  expect(log).toContain('"msg":"login"');
  expect(secrets.length).toBeGreaterThanOrEqual(10);
  for (const secret of secrets) expect(log.includes(secret), `the log holds ${secret.slice(0, 4)}…`).toBe(false);
  // The admin token given in the environment is not logged either.
  expect(log.includes(hub.token)).toBe(false);
});
