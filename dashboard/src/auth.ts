/**
 * The operator's credential, one of:
 * - `session`: a password login. The hub keeps the session in an HttpOnly cookie the page cannot read (so a script
 *   injected into the page cannot steal it); writes carry the session's CSRF token, which the hub returns at login
 *   and also puts in the readable `kf_csrf` cookie.
 * - `token`: the installation's admin token or a user's API token, sent as a bearer token; kept in sessionStorage
 *   so that closing the tab forgets it (never localStorage).
 * What we remember here is only which kind is in use (and the token itself for `token`).
 */
const KEY = 'kf.auth';
const CSRF_COOKIE = 'kf_csrf';
const listeners = new Set<() => void>();

export type Credential = { kind: 'token'; token: string } | { kind: 'session'; csrf: string | null };

let memory: Credential | null = null;

export function getCredential(): Credential | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Credential) : null;
  } catch {
    return memory;
  }
}

export function setCredential(c: Credential | null): void {
  memory = c;
  try {
    if (c) sessionStorage.setItem(KEY, JSON.stringify(c));
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled: the credential lasts as long as this page.
  }
  for (const l of listeners) l();
}

export function onAuthChange(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

function csrfFromCookie(): string | null {
  if (typeof document === 'undefined') return null;
  const m = new RegExp(`(?:^|; )${CSRF_COOKIE}=([^;]*)`).exec(document.cookie);
  return m ? decodeURIComponent(m[1]!) : null;
}

/** Headers for a request with `method`: the bearer token, or for a signed-in write the CSRF token. */
export function authHeaders(method = 'GET'): Record<string, string> {
  const c = getCredential();
  if (!c) return {};
  if (c.kind === 'token') return { Authorization: `Bearer ${c.token}` };
  if (['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase())) return {};
  const csrf = csrfFromCookie() ?? c.csrf;
  return csrf ? { 'X-CSRF-Token': csrf } : {};
}
