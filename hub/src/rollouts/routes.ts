/**
 * `/api/v1/rollouts` (admin): `POST /` create, `GET /` list, `GET /:id` progress per wave and per terminal,
 * `POST /:id/pause` (optional `{message?}`), `POST /:id/resume`, `POST /:id/abort` (optional `{}`). A body that does
 * not match is a 400 `invalid-request` naming the bad field.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { statusText, type Text } from '@kiosk-fleet/protocol';
import { fieldsText } from '../errors.ts';
import { commonNode } from './hub-ports.ts';
import { RolloutConflict, RolloutNotFound, RolloutSpecError, type RolloutService, type RolloutView } from './service.ts';

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

/** `POST /:id/pause` takes an optional `{message?}`; resume and abort an optional `{}` (a body, when sent, is checked). */
export const pauseBodySchema = z.object({ message: z.string().max(512).optional() }).strict();
export const emptyBodySchema = z.object({}).strict();

/** `text`: the sentence for a person beside the English `message` (hub/src/errors.ts); by default the status's. */
function err(code: string, message: string, details?: unknown, text: Text = statusText(code === 'not-found' ? 404 : 400)): { error: { code: string; message: string; details?: unknown; text: Text } } {
  return { error: { code, message, ...(details === undefined ? {} : { details }), text } };
}

type BodyCheck<T> = { ok: true; data: T } | { ok: false; answer: ReturnType<typeof err> };

function invalid(e: z.ZodError): ReturnType<typeof err> {
  const issues = e.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
  return err('invalid-request', issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '), { issues }, fieldsText('error.invalid-fields', issues));
}

/**
 * An optional JSON body checked against `schema`: none (or only whitespace) reads as `{}`. Parsed from the text, not
 * with `c.req.json()`, so `null`, a number or an array is a 400 naming the problem rather than a TypeError later
 * (finding F11-8: `null` on pause was a 500).
 */
async function optionalBody<T>(c: Context, schema: z.ZodType<T>): Promise<BodyCheck<T>> {
  const text = await c.req.text();
  let body: unknown = {};
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      return { ok: false, answer: err('invalid-request', 'body is not JSON') };
    }
  }
  const r = schema.safeParse(body);
  return r.success ? { ok: true, data: r.data } : { ok: false, answer: invalid(r.error) };
}

export interface RolloutsRoutesDeps {
  service: RolloutService;
  /** Authentication and the role check (read for GET, write otherwise): the hub passes auth's requireOperator. */
  requireAdmin: MiddlewareHandler;
  actor?: (c: Context) => string;
  /** Whether the caller may see this node; a rollout is visible when every node of its scope is (default: all). */
  sees?: (c: Context, nodeId: string) => boolean;
  /**
   * Records an operator's action in the hub's audit log. `nodeId` is the deepest node holding all of the rollout's
   * nodes, so a district admin finds the rollouts of their district in their audit view.
   */
  audit?: (c: Context, e: RolloutAuditEntry) => void | Promise<unknown>;
}

export interface RolloutAuditEntry {
  action: 'rollout.create' | 'rollout.pause' | 'rollout.resume' | 'rollout.abort';
  objectType: 'rollout';
  objectId: string;
  nodeId: string | null;
  before?: unknown;
  after: unknown;
}

/** Chained, so the hub's `AppType` (and the dashboard's typed client) carries these routes. */
export function rolloutsRoutes(deps: RolloutsRoutesDeps) {
  const { service, requireAdmin } = deps;
  const actor = deps.actor ?? (() => 'admin');
  const sees = deps.sees ?? (() => true);
  const visible = (c: Context, nodeIds: readonly string[]): boolean => nodeIds.every((n) => sees(c, n));
  const record = (c: Context, action: RolloutAuditEntry['action'], v: RolloutView, before: RolloutView | null, extra: Record<string, unknown> = {}) =>
    deps.audit?.(c, {
      action,
      objectType: 'rollout',
      objectId: v.id,
      nodeId: commonNode(v.nodeIds),
      ...(before ? { before: { status: before.status, wave: before.wave } } : {}),
      after: { status: v.status, wave: v.wave, releaseId: v.releaseId, nodeIds: v.nodeIds, ...extra },
    });
  /** pause, resume, abort: the state before and after, in one audit record. */
  const act = async (c: Context, action: 'rollout.pause' | 'rollout.resume' | 'rollout.abort', id: string, run: (id: string) => Promise<RolloutView>, extra: Record<string, unknown> = {}) => {
    await service.refresh(id);
    const before = service.get(scoped(c, id));
    const after = await run(id);
    await record(c, action, after, before, extra);
    return c.json(after);
  };
  // Outside the caller's node a rollout does not exist for them: 404, the same answer as an unknown id.
  const scoped = (c: Context, id: string): string => {
    if (!visible(c, service.get(id).nodeIds)) throw new RolloutNotFound(`no rollout ${id}`);
    return id;
  };
  const app = new Hono();
  app.use('*', requireAdmin);
  app.onError((e, c) => {
    if (e instanceof RolloutNotFound) return c.json(err('not-found', e.message, undefined, { code: 'error.not-found', params: { what: 'rollout', id: c.req.param('id') ?? '' } }), 404);
    if (e instanceof RolloutSpecError) return c.json(err('invalid-request', e.message), 400);
    if (e instanceof RolloutConflict) return c.json(err('rollout-conflict', e.message, e.details, { code: 'error.rollout-conflict', params: { rollout: e.details.rolloutId, terminals: e.details.terminals.length } }), 409);
    throw e;
  });

  return app
    .post('/', async (c) => {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        return c.json(err('invalid-request', 'body is not JSON'), 400);
      }
      const r = createRolloutSchema.safeParse(body);
      if (!r.success) return c.json(invalid(r.error), 400);
      const b = r.data;
      const outside = b.nodeIds.filter((n) => !sees(c, n));
      if (outside.length > 0) return c.json(err('not-found', `no node ${outside.join(', ')}`, { nodeIds: outside }), 404);
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
      await record(c, 'rollout.create', view, null, { waves: b.waves.length, urgent: view.urgent });
      return c.json(view, 201);
    })
    .get('/', async (c) => {
      await service.refresh();
      return c.json({ items: service.list().filter((r) => visible(c, r.nodeIds)), nextCursor: null });
    })
    .get('/:id', async (c) => {
      await service.refresh(c.req.param('id'));
      return c.json(service.get(scoped(c, c.req.param('id'))));
    })
    .post('/:id/pause', async (c) => {
      const b = await optionalBody(c, pauseBodySchema);
      if (!b.ok) return c.json(b.answer, 400);
      return act(c, 'rollout.pause', c.req.param('id'), (id) => service.pause(id, actor(c), b.data.message), b.data.message !== undefined ? { message: b.data.message } : {});
    })
    .post('/:id/resume', async (c) => {
      const b = await optionalBody(c, emptyBodySchema);
      if (!b.ok) return c.json(b.answer, 400);
      return act(c, 'rollout.resume', c.req.param('id'), (id) => service.resume(id, actor(c)));
    })
    .post('/:id/abort', async (c) => {
      const b = await optionalBody(c, emptyBodySchema);
      if (!b.ok) return c.json(b.answer, 400);
      return act(c, 'rollout.abort', c.req.param('id'), (id) => service.abort(id, actor(c)));
    });
}
