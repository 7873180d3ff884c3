/** The rollout routes in the OpenAPI document: `registerRolloutsOpenApi(api.openAPIRegistry)` (see releases/openapi.ts). */
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { createRolloutSchema, emptyBodySchema, pauseBodySchema } from './routes.ts';

const error = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) }).openapi('RolloutError');
const wave = z.object({ wave: z.int(), name: z.string(), size: z.int(), counts: z.record(z.string(), z.int()), passed: z.enum(['gate', 'operator']).nullable() });
const rollout = z
  .object({
    id: z.string(),
    releaseId: z.string(),
    version: z.string(),
    nodeIds: z.array(z.string()),
    status: z.enum(['running', 'paused', 'aborted', 'completed']),
    wave: z.int(),
    pauseReason: z
      .object({
        code: z.string(),
        message: z.string(),
        // the message as a code with parameters (protocol's TEXTS); absent in reasons stored before codes existed
        text: z.object({ code: z.string(), params: z.record(z.string(), z.unknown()) }).optional(),
        terminals: z.array(z.object({ id: z.string(), code: z.string() })).optional(),
      })
      .nullable(),
    waves: z.array(wave),
    urgent: z.boolean(),
    gate: z.object({ successRatio: z.number(), soakMinutes: z.number(), failureRateTolerance: z.number() }),
    waveStartedAt: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    createdBy: z.string(),
  })
  .openapi('Rollout');
const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });
const id = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });
const common = { 401: json(error, 'Not an admin'), 404: json(error, 'No such rollout') };

export function registerRolloutsOpenApi(registry: Pick<OpenAPIHono['openAPIRegistry'], 'registerPath'>): void {
  registry.registerPath({
    method: 'post',
    path: '/rollouts',
    summary: 'Create a rollout of a release along the tree, in waves gated on post-update health',
    security: [{ bearer: [] }],
    request: { body: { required: true, content: { 'application/json': { schema: createRolloutSchema as unknown as z.ZodType } } } },
    responses: { 201: json(rollout, 'Created and started'), 400: json(error, 'Bad request, with the path of each bad field'), 401: json(error, 'Not an admin'), 409: json(error, 'An unfinished (running or paused) rollout already covers some of these terminals: `details` names it and them') },
  });
  registry.registerPath({ method: 'get', path: '/rollouts', summary: 'List rollouts', security: [{ bearer: [] }], responses: { 200: json(z.object({ items: z.array(rollout), nextCursor: z.string().nullable() }), 'Rollouts'), 401: json(error, 'Not an admin') } });
  registry.registerPath({
    method: 'get',
    path: '/rollouts/{id}',
    summary: 'Progress per wave and per terminal',
    security: [{ bearer: [] }],
    request: { params: id },
    responses: { 200: json(rollout.extend({ terminals: z.record(z.string(), z.object({ wave: z.int(), phase: z.string() }).passthrough()) }), 'The rollout'), ...common },
  });
  for (const [action, summary] of [
    ['pause', 'Pause: nothing new is sent; terminals already targeted carry on'],
    ['resume', 'Resume; after an automatic pause the paused wave counts as passed by the operator'],
    ['abort', 'Abort: clear the target of every terminal that has not begun installing'],
  ] as const) {
    registry.registerPath({
      method: 'post',
      path: `/rollouts/{id}/${action}`,
      summary,
      security: [{ bearer: [] }],
      request: { params: id, body: { required: false, content: { 'application/json': { schema: (action === 'pause' ? pauseBodySchema : emptyBodySchema) as unknown as z.ZodType } } } },
      responses: { 200: json(rollout, 'The rollout'), 400: json(error, 'The body, when sent, is not the documented object'), ...common },
    });
  }
}
