/** /nodes: the city → district → station tree and per-node summaries. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { isUnderNode, parentNodeId } from '@kiosk-fleet/protocol';
import { audit, principalOf, visible } from '../auth/guard.ts';
import { transaction } from '../db/engine.ts';
import { notFound } from '../errors.ts';
import type { NodeRow } from './store.ts';
import { errorResponses, idParam, isoReq, json, jsonBody, listOf, type ApiEnv, type Services } from '../api/common.ts';

const nodeSchema = z
  .object({
    id: z.string(),
    level: z.enum(['city', 'district', 'station']),
    parentId: z.string().nullable(),
    name: z.object({ zh: z.string(), en: z.string() }),
    kind: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('Node');

const nodeOut = (n: NodeRow) => ({
  id: n.id,
  level: n.level,
  parentId: n.parentId,
  name: { zh: n.nameZh, en: n.nameEn },
  kind: n.kind,
  createdAt: isoReq(n.createdAt),
});

const listRoute = createRoute({
  method: 'get',
  path: '/nodes',
  summary: 'The whole tree, flat, ordered by id (a city has about 200 nodes: no pagination needed, nextCursor is null)',
  request: { query: z.object({ under: z.string().optional(), level: z.enum(['city', 'district', 'station']).optional() }) },
  responses: { 200: json(listOf(nodeSchema)) },
});

const createNodeRoute = createRoute({
  method: 'post',
  path: '/nodes',
  request: {
    ...jsonBody(z.object({ id: z.string(), name: z.object({ zh: z.string().min(1).max(128), en: z.string().min(1).max(128) }), kind: z.string().max(64).optional() })),
  },
  responses: { 201: json(nodeSchema, 'Created'), ...errorResponses, 409: errorResponses[400] },
});

const getRoute = createRoute({
  method: 'get',
  path: '/nodes/{id}',
  request: { params: idParam },
  responses: {
    200: json(nodeSchema.extend({ children: z.array(nodeSchema.pick({ id: true, level: true, name: true })), path: z.array(z.string()) })),
    ...errorResponses,
  },
});

const countsSchema = z.object({
  total: z.number(),
  online: z.number(),
  offline: z.number(),
  stale: z.number(),
  unknown: z.number(),
  withFault: z.number(),
});

const summaryRoute = createRoute({
  method: 'get',
  path: '/nodes/{id}/summary',
  summary: 'Counts per child node by presence and fault, and per citizen service how many terminals can offer it now',
  request: { params: idParam },
  responses: {
    200: json(
      z.object({
        node: z.string(),
        totals: countsSchema,
        children: z.array(countsSchema.extend({ id: z.string() })),
        services: z.array(
          z.object({
            service: z.string(),
            offeredBy: z.number(),
            availableNow: z.number(),
            /** Stations under the node that have the service's terminal type but cannot offer it now, in id order. */
            stationsWithout: z.array(z.string()),
          }),
        ),
      }),
    ),
    ...errorResponses,
  },
});

export function nodeRoutes(s: Services) {
  return new OpenAPIHono<ApiEnv>()
    .openapi(listRoute, async (c) => {
      const q = c.req.valid('query');
      const items = (await s.registry.nodes())
        .filter((n) => visible(c, n.id) && (q.under === undefined || isUnderNode(n.id, q.under)) && (q.level === undefined || n.level === q.level))
        .map(nodeOut);
      return c.json({ items, nextCursor: null }, 200);
    })
    .openapi(createNodeRoute, async (c) => {
      const b = c.req.valid('json');
      // A new node hangs under a node the caller can see (a district admin adds stations to their district); only a
      // caller bound to the whole installation adds a city.
      const parent = parentNodeId(b.id);
      if (parent === null ? principalOf(c).nodeId !== null : !visible(c, parent)) throw notFound('node', parent ?? b.id);
      const n = await transaction(s.engine, async (tx) => {
        const row = await s.registry.createNode(b, Date.now(), tx);
        await audit(c, s, { action: 'node.create', objectType: 'node', objectId: row.id, nodeId: row.id, after: { name: b.name, kind: b.kind ?? null } }, tx);
        return row;
      });
      return c.json(nodeOut(n), 201);
    })
    .openapi(getRoute, async (c) => {
      const { id } = c.req.valid('param');
      const n = await s.registry.node(id);
      if (!n) throw notFound('node', id);
      const children = (await s.queries.children(id)).map((ch) => ({
        id: ch.id,
        level: ch.level as 'city' | 'district' | 'station',
        name: { zh: ch.nameZh, en: ch.nameEn },
      }));
      const path = id.split('-').map((_, i, parts) => parts.slice(0, i + 1).join('-'));
      return c.json({ ...nodeOut(n), children, path }, 200);
    })
    .openapi(summaryRoute, async (c) => {
      const { id } = c.req.valid('param');
      if (!(await s.registry.node(id))) throw notFound('node', id);
      // Counters kept in memory (summary/node-counters.ts): O(children), not a read of every terminal under the node.
      const counts = await s.nodeCounters.summary(id, (await s.queries.children(id)).map((ch) => ch.id));
      return c.json({ node: id, ...counts }, 200);
    });
}
