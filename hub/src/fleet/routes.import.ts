import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { parentNodeId } from '@kiosk-fleet/protocol';
import { audit, requirePermission, visible } from '../auth/guard.ts';
import { transaction } from '../db/engine.ts';
import { badRequest, notFound } from '../errors.ts';
import { invalidImport, parseFleetCsv, parseFleetJson } from './import.ts';
import { errorResponses, json, type ApiEnv, type Services } from '../api/common.ts';

export const importResultSchema = z
  .object({
    nodes: z.object({ created: z.array(z.string()), existing: z.array(z.string()) }),
    terminals: z.object({
      created: z.array(z.object({ id: z.string(), secret: z.string() })),
      existing: z.array(z.string()),
    }),
  })
  .openapi('ImportResult');

const importRoute = createRoute({
  method: 'post',
  path: '/import',
  summary: 'Import a fleet (reference JSON format or CSV id,station,type,serial); all or nothing',
  request: {
    body: {
      required: true,
      content: {
        'application/json': { schema: z.object({}).passthrough().openapi('FleetJson') },
        'text/csv': { schema: z.string() },
      },
    },
  },
  responses: { 200: json(importResultSchema, 'What was created (with the new secrets, shown once) and what existed'), ...errorResponses },
});

export function importRoutes(s: Services) {
  return new OpenAPIHono<ApiEnv>().openapi(importRoute, async (c) => {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    let fleet;
    if (type === 'text/csv') fleet = parseFleetCsv(await c.req.text());
    else if (type === 'application/json') {
      let body: unknown;
      try {
        body = JSON.parse(await c.req.text());
      } catch {
        throw badRequest('invalid-json', 'body is not JSON');
      }
      fleet = parseFleetJson(body);
    } else throw badRequest('unsupported-media-type', 'send application/json or text/csv');
    // Everything the import touches lies under the caller's node: its new nodes hang under visible parents (only a
    // caller bound to the whole installation adds a city), its terminals stand at visible stations.
    const p = requirePermission(c, 'terminal:register');
    for (const { value } of fleet.nodes) {
      const parent = parentNodeId(value.id);
      const ok = visible(c, value.id) || (parent === null ? p.nodeId === null : visible(c, parent));
      if (!ok) throw notFound('node', value.id);
    }
    for (const { value } of fleet.terminals) if (!visible(c, value.station)) throw notFound('node', value.station);
    // A terminal id taken outside the caller's node is not importable, said like any unavailable id, not "existing"
    // (which would confirm it stands elsewhere; issue 20, item 7). Ids under the node are left as they are.
    const taken = new Map((await s.registry.terminals(fleet.terminals.map((t) => t.value.id))).map((t) => [t.id, t]));
    for (const { row, value } of fleet.terminals) {
      const t = taken.get(value.id);
      if (t && !visible(c, t.stationId)) throw invalidImport(row, `terminal id ${value.id} is not available; choose another`);
    }
    const result = await s.importFleet(fleet, c.get('actor'), (r, tx) =>
      audit(
        c,
        s,
        {
          action: 'fleet.import',
          objectType: 'fleet',
          objectId: null,
          nodeId: p.nodeId,
          after: { nodesCreated: r.nodes.created, terminalsCreated: r.terminals.created.map((t) => t.id), terminalsExisting: r.terminals.existing.length },
        },
        tx,
      ),
    );
    return c.json(result, 200);
  });
}
