/**
 * `/api/v1/rollouts` (admin): `POST /` create, `GET /` list, `GET /:id` progress per wave and per terminal,
 * `POST /:id/pause` (`{message?}`), `POST /:id/resume`, `POST /:id/abort`.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { RolloutNotFound, RolloutSpecError, type RolloutService } from './service.ts';

const id = z.string().min(1).max(64);
const waveSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('pilot'), name: z.string().max(64).optional(), stations: z.array(id).max(100).optional(), terminals: z.array(id).max(1000).optional() }).strict(),
  z.object({ kind: z.literal('share'), name: z.string().max(64).optional(), nodeId: id, ratio: z.number().gt(0).max(1) }).strict(),
  z.object({ kind: z.literal('nodes'), name: z.string().max(64).optional(), nodeIds: z.array(id).min(1).max(100) }).strict(),
  z.object({ kind: z.literal('rest'), name: z.string().max(64).optional() }).strict(),
]);

export const createRolloutSchema = z
  .object({
    releaseId: z.string().min(1).max(128),
    nodeIds: z.array(id).min(1).max(100),
    terminalTypes: z.array(z.string().max(64)).max(20).optional(),
    waves: z.array(waveSchema).min(1).max(20),
    gate: z
      .object({
        successRatio: z.number().gt(0).max(1),
        soakMinutes: z.number().min(0).max(7 * 24 * 60),
        failureRateTolerance: z.number().min(0).max(1),
      })
      .partial()
      .strict()
      .optional(),
    maxInFlight: z.int().min(1).max(10_000).optional(),
    waveTimeoutMinutes: z.number().min(1).max(30 * 24 * 60).nullable().optional(),
    urgent: z.boolean().optional(),
  })
  .strict();

function err(code: string, message: string, details?: unknown): { error: { code: string; message: string; details?: unknown } } {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

export function rolloutsRoutes(deps: { service: RolloutService; requireAdmin: MiddlewareHandler; actor?: (c: import('hono').Context) => string }): Hono {
  const { service, requireAdmin } = deps;
  const actor = deps.actor ?? (() => 'admin');
  const app = new Hono();
  app.use('*', requireAdmin);
  app.onError((e, c) => {
    if (e instanceof RolloutNotFound) return c.json(err('not-found', e.message), 404);
    if (e instanceof RolloutSpecError) return c.json(err('invalid-request', e.message), 400);
    throw e;
  });

  app.post('/', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json(err('invalid-request', 'body is not JSON'), 400);
    }
    const r = createRolloutSchema.safeParse(body);
    if (!r.success) {
      const issues = r.error.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
      return c.json(err('invalid-request', issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '), { issues }), 400);
    }
    const b = r.data;
    const view = await service.create(
      {
        releaseId: b.releaseId,
        nodeIds: b.nodeIds,
        waves: b.waves,
        ...(b.terminalTypes ? { terminalTypes: b.terminalTypes } : {}),
        ...(b.gate
          ? {
              gate: {
                ...(b.gate.successRatio !== undefined ? { successRatio: b.gate.successRatio } : {}),
                ...(b.gate.soakMinutes !== undefined ? { soakMs: b.gate.soakMinutes * 60_000 } : {}),
                ...(b.gate.failureRateTolerance !== undefined ? { failureRateTolerance: b.gate.failureRateTolerance } : {}),
              },
            }
          : {}),
        ...(b.maxInFlight !== undefined ? { maxInFlight: b.maxInFlight } : {}),
        ...(b.waveTimeoutMinutes !== undefined ? { waveTimeoutMs: b.waveTimeoutMinutes === null ? null : b.waveTimeoutMinutes * 60_000 } : {}),
        ...(b.urgent !== undefined ? { urgent: b.urgent } : {}),
      },
      actor(c),
    );
    return c.json(view, 201);
  });

  app.get('/', (c) => c.json({ items: service.list(), nextCursor: null }));
  app.get('/:id', (c) => c.json(service.get(c.req.param('id'))));
  app.post('/:id/pause', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { message?: unknown };
    const message = typeof body.message === 'string' ? body.message.slice(0, 512) : undefined;
    return c.json(await service.pause(c.req.param('id'), actor(c), message));
  });
  app.post('/:id/resume', async (c) => c.json(await service.resume(c.req.param('id'), actor(c))));
  app.post('/:id/abort', async (c) => c.json(await service.abort(c.req.param('id'), actor(c))));
  return app;
}
