/**
 * Who is calling, for every /api/v1 route but health, the OpenAPI document and login:
 * - `Authorization: Bearer <KF_ADMIN_TOKEN>`: the installation's city admin (automation, the CLI, tests);
 * - `Authorization: Bearer kft.<id>.<secret>`: a user's API token, with its own role and node;
 * - the `kf_session` cookie of a dashboard login. A cookie is sent by the browser on its own, so a cookie-authenticated
 *   write must also carry the session's CSRF token in `X-CSRF-Token` (the dashboard reads it from the `kf_csrf` cookie
 *   or the login answer); SameSite=Strict already keeps other sites' requests from carrying the cookie at all.
 * A session whose password must be changed reaches only /auth/me, /auth/password and /auth/logout.
 */
import crypto from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { getCookie } from 'hono/cookie';
import type { ApiEnv, Services } from '../api/common.ts';
import { tokenMatches } from '../secrets.ts';
import { actorName, can, PERMISSIONS, type Permission, type Principal } from './permissions.ts';
import { ADMIN_TOKEN_PRINCIPAL, CSRF_HEADER, SESSION_COOKIE, TOKEN_PREFIX } from './service.ts';

const OPEN = new Set(['/api/v1/health', '/api/v1/openapi.json', '/api/v1/auth/login']);
const PASSWORD_CHANGE_ALLOWED = new Set(['/api/v1/auth/me', '/api/v1/auth/password', '/api/v1/auth/logout']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function err(code: string, message: string) {
  return { error: { code, message } };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export function authenticate(s: Pick<Services, 'auth' | 'adminToken'>): MiddlewareHandler<ApiEnv> {
  // Login is the one route that reads a body from anyone: a name and a password fit in 16 KiB.
  const loginLimit = bodyLimit({ maxSize: 16 * 1024, onError: (c) => c.json(err('payload-too-large', 'a login body is at most 16 KiB'), 413) });
  return async (c, next) => {
    if (c.req.path === '/api/v1/auth/login') return loginLimit(c, next);
    if (OPEN.has(c.req.path)) return next();
    let p: Principal | null = null;
    const header = c.req.header('authorization');
    if (header !== undefined) {
      const m = /^Bearer (.+)$/.exec(header);
      const given = m?.[1] ?? '';
      if (given.startsWith(`${TOKEN_PREFIX}.`)) p = await s.auth.tokenPrincipal(given);
      else if (given !== '' && tokenMatches(given, s.adminToken)) p = ADMIN_TOKEN_PRINCIPAL;
      if (!p) return c.json(err('unauthorized', 'the bearer token is unknown, expired or revoked'), 401);
    } else {
      const cookie = getCookie(c, SESSION_COOKIE);
      if (cookie !== undefined) p = await s.auth.sessionPrincipal(cookie);
      if (!p) {
        return c.json(err('unauthorized', 'sign in (POST /api/v1/auth/login) or send Authorization: Bearer <API token>'), 401);
      }
      if (!SAFE_METHODS.has(c.req.method) && !sameSecret(c.req.header(CSRF_HEADER) ?? '', p.csrfToken ?? '')) {
        return c.json(err('csrf', `a signed-in write needs the ${CSRF_HEADER} header (the kf_csrf cookie's value)`), 403);
      }
      if (p.mustChangePassword && !PASSWORD_CHANGE_ALLOWED.has(c.req.path)) {
        return c.json(err('password-change-required', 'change your password first (POST /api/v1/auth/password)'), 403);
      }
    }
    c.set('principal', p);
    c.set('actor', actorName(p));
    return next();
  };
}

/**
 * For plain Hono sub-apps mounted beside the OpenAPI app (rollouts, releases): who is calling (as above), then
 * `read` for GET/HEAD and `write` for everything else (403). The handler still limits lists and objects to the
 * caller's node: `sees(c.get('principal'), nodeId)` from auth/permissions.ts, 404 when false.
 *
 *   app.route('/api/v1/rollouts', rolloutsRoutes({ service, requireAdmin: requireOperator(s, { read: 'fleet:read', write: 'rollout:write' }),
 *     actor: (c) => c.get('actor') }));
 */
export function requireOperator(s: Pick<Services, 'auth' | 'adminToken'>, perms: { read: Permission; write: Permission }): MiddlewareHandler<ApiEnv> {
  const auth = authenticate(s);
  return async (c, next) => {
    let allowed = false;
    const res = await auth(c, async () => {
      allowed = true;
    });
    if (!allowed) return res ?? c.res;
    const p = c.get('principal') as Principal | undefined;
    if (!p) return c.json(err('unauthorized', 'sign in or send Authorization: Bearer <API token>'), 401);
    const perm = SAFE_METHODS.has(c.req.method) ? perms.read : perms.write;
    if (!can(p, perm)) {
      return c.json({ error: { code: 'forbidden', message: `a ${p.role} may not ${PERMISSIONS[perm].what}`, details: { permission: perm } } }, 403);
    }
    return next();
  };
}
