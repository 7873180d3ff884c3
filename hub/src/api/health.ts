import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { json, type ApiEnv, type Services } from './common.ts';

const healthRoute = createRoute({
  method: 'get',
  path: '/health',
  summary: 'Liveness and a few numbers (no token needed)',
  responses: {
    200: json(
      z.object({
        status: z.literal('ok'),
        time: z.string(),
        uptimeSeconds: z.number(),
        connectedTerminals: z.number(),
        writeQueueDepth: z.number(),
      }),
    ),
  },
});

export function healthRoutes(s: Services) {
  return new OpenAPIHono<ApiEnv>().openapi(healthRoute, (c) =>
    c.json(
      {
        status: 'ok' as const,
        time: new Date().toISOString(),
        uptimeSeconds: Math.round(process.uptime()),
        connectedTerminals: s.broker.live.size,
        writeQueueDepth: s.writer.depth,
      },
      200,
    ),
  );
}
