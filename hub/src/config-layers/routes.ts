/**
 * /config: layered config. A layer per node (city, district, station) and per terminal, each versioned with its
 * history; writes carry the version they were based on (409 when stale); invalid config → 400 with each bad field's
 * path, never saved or pushed. The merge, provenance and drift rules live in service.ts and merge.ts.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { nodePath } from '@kiosk-fleet/protocol';
import { audit, principalOf, visible } from '../auth/guard.ts';
import { notFound } from '../errors.ts';
import { errorResponses, idParam, iso, isoReq, json, jsonBody, wholeNumber, type ApiEnv, type Services } from '../api/common.ts';
import type { LayerView, SyncState } from './service.ts';
import type { Scope } from './store.ts';

const configBody = z.record(z.string(), z.unknown()).openapi({ description: 'A layer: any keys of the terminal config; null removes an inherited value' });

const writeBody = z.object({
  config: configBody,
  /** The layer version this write is based on (0 for a layer never saved). */
  expectedVersion: z.number().int().min(0),
  reason: z.string().max(500).optional(),
});

const changeSchema = z.object({
  path: z.array(z.string()),
  op: z.enum(['add', 'remove', 'change']),
  from: z.unknown().optional(),
  to: z.unknown().optional(),
});

const syncSchema = z.object({
  desiredVersion: z.number(),
  desiredAt: z.string().nullable(),
  appliedVersion: z.number(),
  appliedAt: z.string().nullable(),
  rejected: z.object({ version: z.number(), reason: z.string().nullable(), at: z.string().nullable() }).nullable(),
  status: z.enum(['in-sync', 'pending', 'rejected']),
  drift: z.object({ since: z.string(), graceSeconds: z.number() }).nullable(),
});

const layerSchema = z.object({
  scope: z.enum(['node', 'terminal']),
  id: z.string(),
  level: z.enum(['city', 'district', 'station', 'terminal']),
  version: z.number(),
  config: z.record(z.string(), z.unknown()),
  updatedAt: z.string().nullable(),
  updatedBy: z.string().nullable(),
  reason: z.string().nullable(),
});

const terminalConfigView = layerSchema.extend({
  /** Kept for older clients: the terminal id. */
  terminalId: z.string(),
  desired: z.object({ version: z.number(), config: z.unknown(), updatedAt: z.string() }).nullable(),
  sync: syncSchema,
});

const writeResult = { pushed: z.object({ count: z.number(), terminals: z.array(z.object({ terminalId: z.string(), version: z.number() })) }) };

const historyItem = z.object({
  version: z.number(),
  config: z.record(z.string(), z.unknown()),
  at: z.string(),
  by: z.string(),
  reason: z.string().nullable(),
  pushed: z.number(),
  changes: z.array(changeSchema),
});

const historyQuery = z.object({
  cursor: wholeNumber(1).optional(),
  limit: wholeNumber(1, 200).default(50),
});

const diffQuery = z.object({
  from: wholeNumber().optional(),
  to: wholeNumber().optional(),
});

const dryRunBody = z.object({ config: configBody });
const dryRunSchema = z.object({
  terminals: z.array(z.object({ terminalId: z.string(), stationId: z.string(), changes: z.array(changeSchema) })),
  changed: z.number(),
  unchanged: z.number(),
});

const effectiveSchema = z.object({
  terminalId: z.string(),
  config: z.record(z.string(), z.unknown()),
  /** Dotted path of each effective value → the layer it came from. */
  sources: z.record(z.string(), z.object({ level: z.string(), id: z.string(), version: z.number() })),
  layers: z.array(z.object({ level: z.string(), id: z.string(), version: z.number() })),
  desired: z.object({ version: z.number(), config: z.unknown(), updatedAt: z.string() }).nullable(),
  sync: syncSchema,
});

const driftItem = syncSchema.extend({ terminalId: z.string(), stationId: z.string(), presence: z.string().nullable() });
const driftSchema = z.object({
  items: z.array(driftItem),
  nextCursor: z.string().nullable(),
  count: z.number(),
  /** Drifting terminals per node (every level under and including the one asked for). */
  byNode: z.record(z.string(), z.number()),
});

const conflictResponse = { 409: { description: 'Stale expectedVersion', content: errorResponses[400].content } };

/** history, diff and dry-run of one scope; `base` stays a literal type so the typed client knows each path. */
function routesFor<B extends '/config/nodes/{id}' | '/config/terminals/{id}'>(base: B) {
  const what = base === '/config/nodes/{id}' ? 'node (city, district, station)' : 'terminal';
  return {
    history: createRoute({
      method: 'get',
      path: `${base}/history` as `${B}/history`,
      summary: `Saved versions of a ${what} layer, newest first, each with its changes`,
      request: { params: idParam, query: historyQuery },
      responses: { 200: json(z.object({ items: z.array(historyItem), nextCursor: z.string().nullable() })), ...errorResponses },
    }),
    diff: createRoute({
      method: 'get',
      path: `${base}/diff` as `${B}/diff`,
      summary: `Changes between two versions of a ${what} layer (default: the current one and the one before)`,
      request: { params: idParam, query: diffQuery },
      responses: { 200: json(z.object({ from: z.number(), to: z.number(), changes: z.array(changeSchema) })), ...errorResponses },
    }),
    dryRun: createRoute({
      method: 'post',
      path: `${base}/dry-run` as `${B}/dry-run`,
      summary: `Which terminals would change, and how, if this ${what} layer were saved (nothing is saved)`,
      request: { params: idParam, ...jsonBody(dryRunBody) },
      responses: { 200: json(dryRunSchema), ...errorResponses },
    }),
  };
}

const nodeRoutes = routesFor('/config/nodes/{id}');
const terminalRoutes = routesFor('/config/terminals/{id}');

const getNode = createRoute({
  method: 'get',
  path: '/config/nodes/{id}',
  summary: 'The config layer of a node (version 0 and {} when never set)',
  request: { params: idParam },
  responses: { 200: json(layerSchema), ...errorResponses },
});

const putNode = createRoute({
  method: 'put',
  path: '/config/nodes/{id}',
  summary: 'Save a new version of a node layer and push the effective config to every terminal it changes',
  request: { params: idParam, ...jsonBody(writeBody) },
  responses: { 200: json(layerSchema.extend(writeResult)), ...errorResponses, ...conflictResponse },
});

const getTerminal = createRoute({
  method: 'get',
  path: '/config/terminals/{id}',
  summary: "A terminal's own layer, the desired config pushed to it, and its sync state (drift)",
  request: { params: idParam },
  responses: { 200: json(terminalConfigView), ...errorResponses },
});

const putTerminal = createRoute({
  method: 'put',
  path: '/config/terminals/{id}',
  summary: "Save a new version of a terminal's own layer; pass the version you read as expectedVersion (409 when stale)",
  request: {
    params: idParam,
    ...jsonBody(writeBody.extend({ expectedVersion: z.number().int().min(0).optional() })),
  },
  responses: { 200: json(terminalConfigView.extend(writeResult)), ...errorResponses, ...conflictResponse },
});

const effectiveRoute = createRoute({
  method: 'get',
  path: '/config/terminals/{id}/effective',
  summary: 'The effective config of a terminal with the layer each value came from',
  request: { params: idParam },
  responses: { 200: json(effectiveSchema), ...errorResponses },
});

const inheritedSchema = z.object({
  config: z.record(z.string(), z.unknown()),
  /** Dotted path of each inherited value → the layer it came from. */
  sources: z.record(z.string(), z.object({ level: z.string(), id: z.string(), version: z.number() })),
});
const inheritedRoute = <B extends '/config/nodes/{id}' | '/config/terminals/{id}'>(base: B) =>
  createRoute({
    method: 'get',
    path: `${base}/inherited` as `${B}/inherited`,
    summary: 'What the layer inherits: the merge of the layers above it (not its own), with the layer of each value',
    request: { params: idParam },
    responses: { 200: json(inheritedSchema), ...errorResponses },
  });
const nodeInherited = inheritedRoute('/config/nodes/{id}');
const terminalInherited = inheritedRoute('/config/terminals/{id}');

const driftRoute = createRoute({
  method: 'get',
  path: '/config/drift',
  summary: 'Terminals whose applied config lags the desired one for longer than the grace period',
  request: { query: z.object({ node: z.string().min(1).max(64).optional() }) },
  responses: { 200: json(driftSchema), ...errorResponses },
});

function layerJson(l: LayerView) {
  return { scope: l.scope, id: l.id, level: l.level, version: l.version, config: l.config, updatedAt: iso(l.updatedAt), updatedBy: l.updatedBy, reason: l.reason };
}

function syncJson(s: SyncState) {
  return {
    desiredVersion: s.desiredVersion,
    desiredAt: iso(s.desiredAt),
    appliedVersion: s.appliedVersion,
    appliedAt: iso(s.appliedAt),
    rejected: s.rejected ? { version: s.rejected.version, reason: s.rejected.reason, at: iso(s.rejected.at) } : null,
    status: s.status,
    drift: s.drift ? { since: isoReq(s.drift.since), graceSeconds: s.drift.graceMs / 1000 } : null,
  };
}

export function configRoutes(s: Services) {
  const cl = s.configLayers;
  const desiredJson = (id: string) => {
    const d = cl.desired(id);
    return d ? { version: d.version, config: d.config, updatedAt: isoReq(d.updatedAt) } : null;
  };
  const terminalView = async (id: string) => {
    const l = await cl.layer('terminal', id);
    return { ...layerJson(l), terminalId: id, desired: desiredJson(id), sync: syncJson(await cl.sync(id)) };
  };
  const pushedJson = (pushed: { terminalId: string; version: number }[]) => ({ count: pushed.length, terminals: pushed });

  const historyJson = async (scope: Scope, id: string, q: { cursor?: number | undefined; limit: number }) => {
    const rows = await cl.history(scope, id, q.cursor ?? null, q.limit);
    const last = rows.at(-1);
    return {
      items: rows.map((h) => ({ version: h.version, config: JSON.parse(h.config) as Record<string, unknown>, at: isoReq(h.at), by: h.by, reason: h.reason, pushed: h.pushed, changes: h.changes })),
      nextCursor: rows.length === q.limit && last && last.version > 1 ? String(last.version) : null,
    };
  };
  const diffJson = async (scope: Scope, id: string, q: { from?: number | undefined; to?: number | undefined }) => {
    const to = q.to ?? (await cl.layer(scope, id)).version;
    const from = q.from ?? Math.max(0, to - 1);
    return { from, to, changes: await cl.diffVersions(scope, id, from, to) };
  };
  const dryRunJson = async (scope: Scope, id: string, config: unknown) => {
    const d = await cl.dryRun(scope, id, config);
    return { terminals: d.terminals, changed: d.terminals.length, unchanged: d.unchanged };
  };

  // One chain, so that the dashboard's typed client (hc<AppType>) sees every route.
  return new OpenAPIHono<ApiEnv>()
    .openapi(getNode, async (c) => c.json(layerJson(await cl.layer('node', c.req.valid('param').id)), 200))
    .openapi(putNode, async (c) => {
      const { id } = c.req.valid('param');
      const b = c.req.valid('json');
      const r = await cl.setLayer('node', id, b.config, {
        expectedVersion: b.expectedVersion,
        by: c.get('actor'),
        reason: b.reason,
        audit: (a, tx) => audit(c, s, { action: 'config.update', objectType: 'node', objectId: id, nodeId: id, before: a.before, after: a.after }, tx),
      });
      return c.json({ ...layerJson(r.layer), pushed: pushedJson(r.pushed) }, 200);
    })
    .openapi(getTerminal, async (c) => c.json(await terminalView(c.req.valid('param').id), 200))
    .openapi(putTerminal, async (c) => {
      const { id } = c.req.valid('param');
      const b = c.req.valid('json');
      const stationId = (await s.registry.requireTerminal(id)).stationId;
      const r = await cl.setLayer('terminal', id, b.config, {
        expectedVersion: b.expectedVersion,
        by: c.get('actor'),
        reason: b.reason,
        audit: (a, tx) => audit(c, s, { action: 'config.update', objectType: 'terminal', objectId: id, nodeId: stationId, before: a.before, after: a.after }, tx),
      });
      return c.json({ ...(await terminalView(id)), pushed: pushedJson(r.pushed) }, 200);
    })
    .openapi(effectiveRoute, async (c) => {
      const { id } = c.req.valid('param');
      const e = await cl.effective(id);
      return c.json({ terminalId: id, config: e.config, sources: e.sources, layers: e.layers, desired: desiredJson(id), sync: syncJson(await cl.sync(id)) }, 200);
    })
    .openapi(nodeInherited, async (c) => c.json(await cl.inherited('node', c.req.valid('param').id), 200))
    .openapi(terminalInherited, async (c) => c.json(await cl.inherited('terminal', c.req.valid('param').id), 200))
    .openapi(driftRoute, async (c) => {
      const { node } = c.req.valid('query');
      // Only terminals under the caller's node (auth/policy.ts): ?node= outside it does not exist for them.
      if (node !== undefined && !visible(c, node)) throw notFound('node', node);
      const under = node ?? principalOf(c).nodeId;
      const items = await cl.drift(under);
      const byNode: Record<string, number> = {};
      for (const i of items) {
        for (const n of nodePath(i.stationId)) if (!under || n.length >= under.length) byNode[n] = (byNode[n] ?? 0) + 1;
      }
      return c.json(
        {
          items: items.map((i) => ({ terminalId: i.terminalId, stationId: i.stationId, presence: i.presence, ...syncJson(i) })),
          nextCursor: null,
          count: items.length,
          byNode,
        },
        200,
      );
    })
    .openapi(nodeRoutes.history, async (c) => c.json(await historyJson('node', c.req.valid('param').id, c.req.valid('query')), 200))
    .openapi(nodeRoutes.diff, async (c) => c.json(await diffJson('node', c.req.valid('param').id, c.req.valid('query')), 200))
    .openapi(nodeRoutes.dryRun, async (c) => c.json(await dryRunJson('node', c.req.valid('param').id, c.req.valid('json').config), 200))
    .openapi(terminalRoutes.history, async (c) => c.json(await historyJson('terminal', c.req.valid('param').id, c.req.valid('query')), 200))
    .openapi(terminalRoutes.diff, async (c) => c.json(await diffJson('terminal', c.req.valid('param').id, c.req.valid('query')), 200))
    .openapi(terminalRoutes.dryRun, async (c) => c.json(await dryRunJson('terminal', c.req.valid('param').id, c.req.valid('json').config), 200));
}
