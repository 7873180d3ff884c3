/** /auth: password login with a session cookie, logout, who am I, own password, API tokens. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { deleteCookie, setCookie } from 'hono/cookie';
import { clientIp, originOf, principalOf } from './guard.ts';
import { can, PERMISSIONS, ROLES, type Permission } from './permissions.ts';
import { CSRF_COOKIE, publicToken, publicUser, SESSION_COOKIE } from './service.ts';
import { HubError } from '../errors.ts';
import { errorResponses, idParam, json, jsonBody, listOf, type ApiEnv, type Services } from '../api/common.ts';

export const userSchema = z
  .object({
    id: z.string(),
    username: z.string(),
    displayName: z.string().nullable(),
    role: z.enum(ROLES),
    nodeId: z.string().nullable(),
    mustChangePassword: z.boolean(),
    disabled: z.boolean(),
    disabledAt: z.string().nullable(),
    createdAt: z.string(),
    createdBy: z.string(),
    passwordChangedAt: z.string(),
  })
  .openapi('User');

export const tokenSchema = z
  .object({
    id: z.string(),
    userId: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    nodeId: z.string().nullable(),
    createdAt: z.string(),
    expiresAt: z.string(),
    revokedAt: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
    active: z.boolean(),
  })
  .openapi('ApiToken');

const meSchema = z
  .object({
    kind: z.enum(['session', 'token', 'admin-token']),
    user: userSchema.nullable(),
    role: z.enum(ROLES),
    nodeId: z.string().nullable(),
    tokenId: z.string().nullable(),
    mustChangePassword: z.boolean(),
    permissions: z.array(z.string()),
    csrfToken: z.string().nullable(),
  })
  .openapi('Me');

const loginRoute = createRoute({
  method: 'post',
  path: '/auth/login',
  summary: 'Sign in: sets the HttpOnly kf_session cookie and the kf_csrf cookie; send kf_csrf as X-CSRF-Token on writes',
  request: {
    ...jsonBody(z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) })),
  },
  responses: {
    200: json(z.object({ user: userSchema, csrfToken: z.string(), expiresAt: z.string(), mustChangePassword: z.boolean() })),
    ...errorResponses,
    429: { description: 'Too many failed logins for this account or address; retry after the Retry-After header', content: errorResponses[400].content },
  },
});

const logoutRoute = createRoute({
  method: 'post',
  path: '/auth/logout',
  summary: 'End this session (cookies cleared)',
  responses: { 200: json(z.object({ ok: z.literal(true) })), ...errorResponses },
});

const meRoute = createRoute({
  method: 'get',
  path: '/auth/me',
  summary: "Who is calling: role, node, permissions; for a session also its CSRF token",
  responses: { 200: json(meSchema), ...errorResponses },
});

const passwordRoute = createRoute({
  method: 'post',
  path: '/auth/password',
  summary: 'Change your own password (ends your other sessions); from a password session only (an API token gets 403)',
  request: {
    ...jsonBody(z.object({ currentPassword: z.string().min(1).max(1024), newPassword: z.string().min(1).max(1024) })),
  },
  responses: {
    200: json(z.object({ user: userSchema })),
    ...errorResponses,
    429: { description: 'Too many wrong passwords for this account (logins and changes together); retry after Retry-After', content: errorResponses[400].content },
  },
});

const tokensRoute = createRoute({
  method: 'get',
  path: '/auth/tokens',
  summary: "Your API tokens (or, with user:manage, those of a user you manage: ?user=)",
  request: { query: z.object({ user: z.string().optional() }) },
  responses: { 200: json(listOf(tokenSchema)), ...errorResponses },
});

const createTokenRoute = createRoute({
  method: 'post',
  path: '/auth/tokens',
  summary: 'Create an API token (shown once) with at most your role, under your node, expiring',
  request: {
    ...jsonBody(
      z.object({
        name: z.string().min(1).max(128),
        role: z.enum(ROLES).optional(),
        nodeId: z.string().max(64).nullable().optional(),
        expiresInDays: z.number().int().min(1).max(366).default(90),
      }),
    ),
  },
  responses: { 201: json(tokenSchema.extend({ token: z.string() }), 'Created; `token` is shown this once'), ...errorResponses },
});

const revokeTokenRoute = createRoute({
  method: 'delete',
  path: '/auth/tokens/{id}',
  summary: 'Revoke a token; the next request with it gets 401',
  request: { params: idParam },
  responses: { 200: json(tokenSchema), ...errorResponses },
});

async function me(s: Services, p: ReturnType<typeof principalOf>) {
  const user = p.userId ? await s.auth.store.user(p.userId) : undefined;
  return {
    kind: p.kind,
    user: user ? publicUser(user) : null,
    role: p.role,
    nodeId: p.nodeId,
    tokenId: p.tokenId,
    mustChangePassword: p.mustChangePassword ?? false,
    permissions: (Object.keys(PERMISSIONS) as Permission[]).filter((perm) => can(p, perm)),
    csrfToken: p.csrfToken ?? null,
  };
}

/** A throttled password attempt (429) answers with Retry-After. */
async function retryAfter<T>(c: Context, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof HubError && e.status === 429) c.header('Retry-After', String((e.details as { retryAfterSeconds: number }).retryAfterSeconds));
    throw e;
  }
}

export function authRoutes(s: Services) {
  return new OpenAPIHono<ApiEnv>()
    .openapi(loginRoute, async (c) => {
      const b = c.req.valid('json');
      const out = await retryAfter(c, s.auth.login(b.username, b.password, { ip: clientIp(c), userAgent: c.req.header('user-agent') ?? null }));
      const secure = s.auth.opts.secureCookies || new URL(c.req.url).protocol === 'https:';
      const maxAge = Math.floor(s.auth.opts.sessionTtlMs / 1000);
      setCookie(c, SESSION_COOKIE, out.token, { httpOnly: true, sameSite: 'Strict', secure, path: '/', maxAge });
      setCookie(c, CSRF_COOKIE, out.session.csrfToken, { httpOnly: false, sameSite: 'Strict', secure, path: '/', maxAge });
      return c.json(
        {
          user: publicUser(out.user),
          csrfToken: out.session.csrfToken,
          expiresAt: new Date(out.session.expiresAt).toISOString(),
          mustChangePassword: out.user.mustChangePassword === 1,
        },
        200,
      );
    })
    .openapi(logoutRoute, async (c) => {
      await s.auth.logout(principalOf(c), clientIp(c));
      deleteCookie(c, SESSION_COOKIE, { path: '/' });
      deleteCookie(c, CSRF_COOKIE, { path: '/' });
      return c.json({ ok: true as const }, 200);
    })
    .openapi(meRoute, async (c) => c.json(await me(s, principalOf(c)), 200))
    .openapi(passwordRoute, async (c) => {
      const b = c.req.valid('json');
      const u = await retryAfter(c, s.auth.changePassword(originOf(c), b.currentPassword, b.newPassword));
      return c.json({ user: publicUser(u) }, 200);
    })
    .openapi(tokensRoute, async (c) => {
      const p = principalOf(c);
      const userId = c.req.valid('query').user ?? p.userId;
      if (userId === null) return c.json({ items: [], nextCursor: null }, 200);
      return c.json({ items: (await s.auth.tokensOf(p, userId)).map((t) => publicToken(t)), nextCursor: null }, 200);
    })
    .openapi(createTokenRoute, async (c) => {
      const b = c.req.valid('json');
      const { token, row } = await s.auth.createToken(originOf(c), b);
      return c.json({ ...publicToken(row), token }, 201);
    })
    .openapi(revokeTokenRoute, async (c) => c.json(publicToken(await s.auth.revokeToken(originOf(c), c.req.valid('param').id)), 200));
}
