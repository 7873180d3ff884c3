/**
 * GET /hubs: the installation's hubs and their leases. Installation-wide, so for operators who see the whole city
 * (bound to the city or to everything); below it the list does not exist for them (404), as anything above their node.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { nodeLevel } from '@kiosk-fleet/protocol';
import { requirePermission } from '../auth/guard.ts';
import { errorResponses, isoReq, json, type ApiEnv, type Services } from '../api/common.ts';
import { HubError } from '../errors.ts';

const hubSchema = z
  .object({
    id: z.string().openapi({ description: 'KF_HUB_ID', example: 'hub-1' }),
    version: z.string(),
    startedAt: z.string(),
    leaseExpiresAt: z.string(),
    alive: z.boolean().openapi({ description: 'The lease has not run out; a hub that stopped cleanly or died is not alive' }),
    connectedTerminals: z.number().openapi({ description: 'Terminals connected to this hub at its last renewal (0 once not alive)' }),
    leaderOf: z.array(z.string()).openapi({ description: 'The jobs this hub leads (rollouts, alerts, reaper, …)' }),
  })
  .openapi('Hub');

const listRoute = createRoute({
  method: 'get',
  path: '/hubs',
  summary: "The installation's hubs (one on SQLite), by id: lease, liveness, connected terminals, the jobs each leads",
  responses: { 200: json(z.object({ items: z.array(hubSchema) })), ...errorResponses },
});

export function hubRoutes(s: Services) {
  return new OpenAPIHono<ApiEnv>().openapi(listRoute, async (c) => {
    const p = requirePermission(c, 'fleet:read');
    if (p.nodeId !== null && nodeLevel(p.nodeId) !== 'city') throw new HubError(404, 'not-found', 'the hubs are listed for operators of the whole city');
    const rows = await s.hubs.list();
    const items = rows.map((h) => ({
      id: h.id,
      version: h.version,
      startedAt: isoReq(h.startedAt),
      leaseExpiresAt: isoReq(h.leaseExpiresAt),
      alive: h.alive,
      connectedTerminals: h.alive ? h.connectedTerminals : 0,
      leaderOf: h.alive ? h.leaderOf : [],
    }));
    return c.json({ items }, 200);
  });
}
