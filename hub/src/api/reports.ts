/** /reports/availability: per terminal, station, district and city over a period, as JSON or CSV. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { principalOf, visible } from '../auth/guard.ts';
import { badRequest, notFound } from '../errors.ts';
import { availability, availabilityCsv } from '../reports/availability.ts';
import { createReportStore } from '../reports/index.ts';
import { errorResponses, type ApiEnv, type Services } from './common.ts';

const MAX_RANGE_MS = 400 * 86_400_000;

const route = createRoute({
  method: 'get',
  path: '/reports/availability',
  summary:
    'Share of time each citizen service was available, downtime by cause (offline, peripheral fault, app down, no data) and planned maintenance, from the hourly rollups and presence history',
  request: {
    query: z.object({
      node: z.string().optional(),
      terminal: z.string().optional(),
      from: z.iso.datetime({ offset: true }),
      to: z.iso.datetime({ offset: true }),
      format: z.enum(['json', 'csv']).default('json'),
    }),
  },
  responses: {
    200: {
      description: 'The report (JSON) or one line per (level, id, service) (text/csv)',
      content: { 'application/json': { schema: z.unknown() }, 'text/csv': { schema: z.string() } },
    },
    ...errorResponses,
  },
});

export function reportRoutes(s: Services) {
  const store = createReportStore(s.engine);
  return new OpenAPIHono<ApiEnv>().openapi(route, async (c) => {
    const q = c.req.valid('query');
    const from = Date.parse(q.from);
    const to = Date.parse(q.to);
    if (to <= from) throw badRequest('invalid-request', 'to must be after from', { issues: [{ path: ['to'], message: 'not after from' }] });
    if (to - from > MAX_RANGE_MS) throw badRequest('invalid-request', 'at most 400 days (the rollups are kept that long)', { issues: [{ path: ['to'], message: 'range too long' }] });
    if (q.node !== undefined && (!(await s.registry.node(q.node)) || !visible(c, q.node))) throw notFound('node', q.node);
    let terminalId: string | undefined;
    if (q.terminal !== undefined) {
      const t = await s.registry.terminal(q.terminal);
      if (!t || !visible(c, t.stationId)) throw notFound('terminal', q.terminal);
      terminalId = t.id;
    }
    const report = await availability(store, { nodeId: q.node ?? principalOf(c).nodeId, ...(terminalId ? { terminalId } : {}), from, to });
    if (q.format === 'csv') {
      return c.body(availabilityCsv(report), 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="availability-${q.node ?? q.terminal ?? 'all'}.csv"`,
      });
    }
    return c.json(report, 200);
  });
}
