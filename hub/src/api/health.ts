import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { json, type ApiEnv, type Services } from './common.ts';

const healthRoute = createRoute({
  method: 'get',
  path: '/health',
  summary: 'Liveness and a few numbers (no token needed)',
  responses: {
    200: json(
      z.object({
        status: z.enum(['ok', 'degraded']).openapi({ description: '`degraded`: the database does not answer; the hub keeps serving and acknowledges nothing it has not stored' }),
        database: z.object({
          engine: z.enum(['sqlite', 'postgres']),
          status: z.enum(['ok', 'degraded']),
          since: z.string().openapi({ description: 'Since when the database status holds' }),
          error: z.string().nullable().openapi({ description: "The driver's reason while degraded (never the URL)" }),
        }),
        hubId: z.string().openapi({ description: 'KF_HUB_ID: which hub of the installation answered', example: 'hub-1' }),
        time: z.string(),
        uptimeSeconds: z.number(),
        connectedTerminals: z.number(),
        writeQueueDepth: z.number(),
        timeZone: z.string().openapi({ description: "The bureau's time zone (KF_TIMEZONE), IANA name: the dashboard shows times in it", example: 'Asia/Shanghai' }),
        demo: z.boolean().openapi({ description: 'KF_DEMO: the terminals are simulated (`pnpm start`); the dashboard shows a banner' }),
      }),
    ),
  },
});

export function healthRoutes(s: Services) {
  return new OpenAPIHono<ApiEnv>().openapi(healthRoute, (c) =>
    c.json(
      {
        status: s.databaseHealth.status,
        database: {
          engine: s.engine.kind,
          status: s.databaseHealth.status,
          since: new Date(s.databaseHealth.since).toISOString(),
          error: s.databaseHealth.lastError,
        },
        hubId: s.hubId,
        time: new Date().toISOString(),
        uptimeSeconds: Math.round(process.uptime()),
        connectedTerminals: s.broker.live.size,
        writeQueueDepth: s.writer.depth,
        timeZone: s.timezone,
        demo: s.demo ?? false,
      },
      200,
    ),
  );
}
