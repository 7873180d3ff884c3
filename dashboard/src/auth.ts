/**
 * The operator's credential. Until operator accounts exist the hub accepts its admin token as a bearer token; it
 * lives in sessionStorage so that closing the tab logs out and it never reaches disk through localStorage. When
 * password login lands, `login()` becomes a call to auth/login that stores the session token the same way, and
 * nothing else changes.
 */
const KEY = 'kf.token';
const listeners = new Set<() => void>();

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled: the operator will have to log in again on reload.
  }
  for (const l of listeners) l();
}

export function onAuthChange(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}
