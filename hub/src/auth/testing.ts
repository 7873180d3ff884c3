/**
 * Test helpers for operators (used by hub tests only): create a user through the API as the admin token, sign them
 * in, set their own password, and hand back an API token and a cookie session.
 */
import { ADMIN_PASSWORD, type TestHub } from '../test-support.ts';
import type { Role } from './permissions.ts';

export { ADMIN_PASSWORD };

export interface Operator {
  id: string;
  username: string;
  password: string;
  /** A `kft.` API token with the user's role and node. */
  token: string;
  /** fetch with the API token. */
  api(p: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

export interface Session {
  cookie: string;
  csrf: string;
  /** fetch with the session cookie (and X-CSRF-Token unless `csrf: false`). */
  api(p: string, init?: RequestInit & { json?: unknown; csrf?: boolean }): Promise<Response>;
}

export function fetcher(hub: TestHub, auth: Record<string, string>) {
  return (p: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    for (const [k, v] of Object.entries(auth)) headers.set(k, v);
    if (json !== undefined) headers.set('content-type', 'application/json');
    return fetch(`http://127.0.0.1:${hub.httpPort}${p}`, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
  };
}

export async function login(hub: TestHub, username: string, password: string): Promise<Session> {
  const res = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  const { csrfToken } = (await res.json()) as { csrfToken: string };
  const session: Session = {
    cookie,
    csrf: csrfToken,
    api: (p, init = {}) => {
      const { csrf = true, ...rest } = init;
      return fetcher(hub, { cookie, ...(csrf ? { 'x-csrf-token': csrfToken } : {}) })(p, rest);
    },
  };
  return session;
}

/** Creates a user (as the admin token), signs in, replaces the one-time password, and creates an API token. */
export async function operator(hub: TestHub, username: string, role: Role, nodeId: string | null): Promise<Operator> {
  const created = await hub.api('/api/v1/users', { method: 'POST', json: { username, role, nodeId } });
  if (created.status !== 201) throw new Error(`create ${username}: ${created.status} ${await created.text()}`);
  const { user, password: oneTime } = (await created.json()) as { user: { id: string }; password: string };
  const first = await login(hub, username, oneTime);
  const password = `own-Passw0rd-${username.length}-${Math.random().toString(36).slice(2, 8)}`;
  const changed = await first.api('/api/v1/auth/password', { method: 'POST', json: { currentPassword: oneTime, newPassword: password } });
  if (changed.status !== 200) throw new Error(`password ${username}: ${changed.status} ${await changed.text()}`);
  const tok = await first.api('/api/v1/auth/tokens', { method: 'POST', json: { name: `${username}-test` } });
  if (tok.status !== 201) throw new Error(`token ${username}: ${tok.status} ${await tok.text()}`);
  const { token } = (await tok.json()) as { token: string };
  return { id: user.id, username, password, token, api: fetcher(hub, { authorization: `Bearer ${token}` }) };
}
