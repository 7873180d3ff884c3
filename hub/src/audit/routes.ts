/** /audit: the audit log under the caller's node (audit:read), newest first; /audit/verify checks the hash chain. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { requirePermission } from '../auth/guard.ts';
import type { AuditRow } from './log.ts';
import { errorResponses, isoReq, json, limitQuery, listOf, parseJson, wholeNumber, type ApiEnv, type Services } from '../api/common.ts';

const recordSchema = z
  .object({
    id: z.number(),
    at: z.string(),
    actor: z.string(),
    actorKind: z.string(),
    userId: z.string().nullable(),
    action: z.string(),
    objectType: z.string(),
    objectId: z.string().nullable(),
    nodeId: z.string().nullable(),
    before: z.unknown(),
    after: z.unknown(),
    ip: z.string().nullable(),
    outcome: z.string(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .openapi('AuditRecord');

const listRoute = createRoute({
  method: 'get',
  path: '/audit',
  summary: 'Audit records whose object lies under your node (a city admin: all), newest first',
  request: {
    query: z.object({
      action: z.string().max(64).optional(),
      objectType: z.string().max(64).optional(),
      objectId: z.string().max(128).optional(),
      actor: z.string().max(128).optional(),
      cursor: wholeNumber(1).optional(),
      limit: limitQuery,
    }),
  },
  responses: { 200: json(listOf(recordSchema)), ...errorResponses },
});

const verifyRoute = createRoute({
  method: 'get',
  path: '/audit/verify',
  summary: 'Walk the hash chain: ok, or the id of the first record that was changed or follows a removed one',
  responses: {
    200: json(
      z.object({
        ok: z.boolean(),
        checked: z.number(),
        head: z.string().nullable(),
        brokenAt: z.number().nullable(),
        reason: z.string().nullable(),
        message: z.string().nullable(),
      }),
    ),
    ...errorResponses,
      },
});

const out = (r: AuditRow) => ({ ...r, at: isoReq(r.at), before: parseJson(r.before), after: parseJson(r.after) });

export function auditRoutes(s: Services) {
  return new OpenAPIHono<ApiEnv>()
    .openapi(listRoute, async (c) => {
      const p = requirePermission(c, 'audit:read');
      const q = c.req.valid('query');
      const before = q.cursor;
      // Installation-wide records (no node) are a city admin's; everyone else sees their subtree.
      const rows = await s.audit.list({ ...q, before, scope: p.role === 'city-admin' ? null : p.nodeId, limit: q.limit + 1 });
      const more = rows.length > q.limit;
      const items = rows.slice(0, q.limit).map(out);
      return c.json({ items, nextCursor: more ? String(items[items.length - 1]!.id) : null }, 200);
    })
    .openapi(verifyRoute, async (c) => {
      requirePermission(c, 'audit:verify');
      const r = await s.audit.verify();
      return c.json(
        r.ok
          ? { ok: true, checked: r.checked, head: r.head, brokenAt: null, reason: null, message: null }
          : { ok: false, checked: r.checked, head: null, brokenAt: r.brokenAt, reason: r.reason, message: r.message },
        200,
      );
    });
}
