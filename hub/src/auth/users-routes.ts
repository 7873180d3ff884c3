/** /users: operators of the caller's node (user:manage): create, change role/node, reset password, disable. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { originOf, principalOf, requirePermission } from './guard.ts';
import { ROLES } from './permissions.ts';
import { publicToken, publicUser } from './service.ts';
import { errorResponses, idParam, json, jsonBody, limitQuery, listOf, type ApiEnv, type Services } from '../api/common.ts';
import { tokenSchema, userSchema } from './routes.ts';

const listRoute = createRoute({
  method: 'get',
  path: '/users',
  summary: 'Users whose node lies under yours, by username',
  request: { query: z.object({ cursor: z.string().optional(), limit: limitQuery }) },
  responses: { 200: json(listOf(userSchema)), ...errorResponses },
});

const createUserRoute = createRoute({
  method: 'post',
  path: '/users',
  summary: 'Create a user; without `password` one is generated and returned once. Either way it must be changed at first login',
  request: {
    ...jsonBody(
      z.object({
        username: z.string().min(1).max(64),
        displayName: z.string().max(128).optional(),
        role: z.enum(ROLES),
        nodeId: z.string().max(64).nullable(),
        password: z.string().max(1024).optional(),
      }),
    ),
  },
  responses: {
    201: json(z.object({ user: userSchema, password: z.string().nullable() }), 'Created; a generated password is shown this once'),
    ...errorResponses,
    409: errorResponses[400],
  },
});

const getRoute = createRoute({
  method: 'get',
  path: '/users/{id}',
  request: { params: idParam },
  responses: { 200: json(userSchema), ...errorResponses },
});

const patchRoute = createRoute({
  method: 'patch',
  path: '/users/{id}',
  summary: "Change a user's role, node or display name (takes effect on their next request)",
  request: {
    params: idParam,
    ...jsonBody(z.object({ role: z.enum(ROLES).optional(), nodeId: z.string().max(64).nullable().optional(), displayName: z.string().max(128).nullable().optional() })),
  },
  responses: { 200: json(userSchema), ...errorResponses },
});

const action = (path: string, summary: string) =>
  createRoute({ method: 'post', path, summary, request: { params: idParam }, responses: { 200: json(userSchema), ...errorResponses } });
const disableRoute = action('/users/{id}/disable', 'Disable a user: their sessions end and their API tokens are revoked at once');
const enableRoute = action('/users/{id}/enable', 'Enable a disabled user again (their old tokens stay revoked)');

const resetRoute = createRoute({
  method: 'post',
  path: '/users/{id}/reset-password',
  summary: "Set a one-time password (returned once) that the user must change at their next login; ends the user's sessions",
  request: { params: idParam },
  responses: { 200: json(z.object({ user: userSchema, password: z.string() })), ...errorResponses },
});

const createUserTokenRoute = createRoute({
  method: 'post',
  path: '/users/{id}/tokens',
  summary: "Create an API token (shown once) for a user you manage: at most their role and node, and what you may grant",
  request: {
    params: idParam,
    ...jsonBody(
      z.object({
        name: z.string().min(1).max(128),
        role: z.enum(ROLES).optional(),
        nodeId: z.string().max(64).nullable().optional(),
        expiresInDays: z.number().int().min(1).max(366).default(90),
      }),
    ),
  },
  responses: { 201: json(tokenSchema.extend({ token: z.string() }), 'Created; `token` is shown this once'), ...errorResponses, 409: errorResponses[400] },
});

export function userRoutes(s: Services) {
  const nodeExists = async (id: string) => (await s.registry.node(id)) !== undefined;
  return new OpenAPIHono<ApiEnv>()
    .openapi(listRoute, async (c) => {
      const p = requirePermission(c, 'user:manage');
      const q = c.req.valid('query');
      const rows = await s.auth.store.users(p.nodeId, q.cursor, q.limit + 1);
      const more = rows.length > q.limit;
      const items = rows.slice(0, q.limit).map(publicUser);
      return c.json({ items, nextCursor: more ? items[items.length - 1]!.username : null }, 200);
    })
    .openapi(createUserRoute, async (c) => {
      const b = c.req.valid('json');
      const out = await s.auth.createUser(originOf(c), b, nodeExists);
      return c.json({ user: publicUser(out.user), password: out.password }, 201);
    })
    .openapi(getRoute, async (c) => c.json(publicUser(await s.auth.manageable(principalOf(c), c.req.valid('param').id)), 200))
    .openapi(patchRoute, async (c) => c.json(publicUser(await s.auth.updateUser(originOf(c), c.req.valid('param').id, c.req.valid('json'), nodeExists)), 200))
    .openapi(disableRoute, async (c) => c.json(publicUser(await s.auth.setDisabled(originOf(c), c.req.valid('param').id, true)), 200))
    .openapi(enableRoute, async (c) => c.json(publicUser(await s.auth.setDisabled(originOf(c), c.req.valid('param').id, false)), 200))
    .openapi(resetRoute, async (c) => {
      const out = await s.auth.resetPassword(originOf(c), c.req.valid('param').id);
      return c.json({ user: publicUser(out.user), password: out.password }, 200);
    })
    .openapi(createUserTokenRoute, async (c) => {
      const { token, row } = await s.auth.createTokenFor(originOf(c), c.req.valid('param').id, c.req.valid('json'));
      return c.json({ ...publicToken(row), token }, 201);
    });
}
