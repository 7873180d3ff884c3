/**
 * /config/terminals/{id}: a terminal's desired config (the layered config service with inheritance and drift is its
 * own issue; this is the per-terminal layer the hub persists and re-sends after a restart).
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { errorResponses, idParam, iso, json, type ApiEnv, type Services } from './common.ts';

const desiredSchema = z.object({ terminalId: z.string(), version: z.number(), config: z.unknown(), updatedAt: z.string().nullable() });

const getRoute = createRoute({
  method: 'get',
  path: '/config/terminals/{id}',
  request: { params: idParam },
  responses: { 200: json(desiredSchema), ...errorResponses },
});

const putRoute = createRoute({
  method: 'put',
  path: '/config/terminals/{id}',
  summary: 'Set the desired config; pass the version you read as expectedVersion (409 when stale)',
  request: {
    params: idParam,
    body: {
      required: true,
      content: { 'application/json': { schema: z.object({ config: z.record(z.string(), z.unknown()), expectedVersion: z.number().int().min(0).optional() }) } },
    },
  },
  responses: { 200: json(desiredSchema), ...errorResponses, 409: errorResponses[400] },
});

export function configRoutes(s: Services) {
  return new OpenAPIHono<ApiEnv>()
    .openapi(getRoute, (c) => {
      const { id } = c.req.valid('param');
      s.registry.requireTerminal(id);
      const d = s.downlink.desired(id);
      return c.json({ terminalId: id, version: d?.version ?? 0, config: d?.config ?? {}, updatedAt: iso(d?.updatedAt) }, 200);
    })
    .openapi(putRoute, async (c) => {
      const { id } = c.req.valid('param');
      const b = c.req.valid('json');
      await s.downlink.setDesired(id, b.config, b.expectedVersion);
      const d = s.downlink.desired(id)!;
      s.changed({ type: 'config', terminalId: id, at: Date.now(), data: { version: d.version } });
      return c.json({ terminalId: id, version: d.version, config: d.config, updatedAt: iso(d.updatedAt) }, 200);
    });
}
