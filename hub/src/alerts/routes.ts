/**
 * /alerts (the technician's queue and each alert's lifecycle), /maintenance, /silences and /webhooks. Lists are
 * scoped to the caller's node; an alert outside it is 404 like everything else there.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { audit, nodeFor, principalOf, terminalFor, visible } from '../auth/guard.ts';
import { inScope, PERMISSIONS } from '../auth/permissions.ts';
import { transaction } from '../db/engine.ts';
import { badRequest, conflict, notFound } from '../errors.ts';
import { RULE_IDS, SEVERITIES } from './rules/types.ts';
import { historyText } from './text.ts';
import type { AlertRow, AlertState, MaintenanceRow, SilenceRow, WebhookRow, DeliveryRow } from './store.ts';
import { errorResponses, errorSchema, iso, isoReq, json, jsonBody, limitQuery, listOf, parseJson, wholeNumber, type ApiEnv, type Services } from '../api/common.ts';

const STATES = ['open', 'acknowledged', 'assigned', 'resolved'] as const;
const SELF_TEST_TTL_S = 300;

const nameSchema = z.object({ zh: z.string(), en: z.string() });
/** A hub-written sentence as a code with parameters (protocol's TEXTS); the English field beside it stays. */
const textSchema = z
  .object({ code: z.string(), params: z.record(z.string(), z.unknown()) })
  .nullable()
  .openapi('Text', { description: 'render with the code’s zh/en template (protocol TEXTS); null: only the English field exists' });
const alertSchema = z
  .object({
    id: z.number(),
    rule: z.string(),
    severity: z.enum(SEVERITIES),
    state: z.enum(STATES),
    title: z.string(),
    text: textSchema,
    subject: z.object({ kind: z.enum(['terminal', 'node']), id: z.string() }),
    terminalId: z.string().nullable(),
    nodeId: z.string(),
    station: z.object({ id: z.string(), name: nameSchema }).nullable(),
    district: z.object({ id: z.string(), name: nameSchema }).nullable(),
    details: z.unknown(),
    openedAt: z.string(),
    lastSeenAt: z.string(),
    ageSeconds: z.number(),
    dueAt: z.string(),
    overdue: z.boolean(),
    acknowledged: z.object({ at: z.string(), by: z.string().nullable() }).nullable(),
    assignedTo: z.string().nullable(),
    assignedAt: z.string().nullable(),
    escalated: z.object({ at: z.string(), to: z.string().nullable() }).nullable(),
    resolved: z.object({ at: z.string(), by: z.string().nullable(), resolution: z.string().nullable(), note: z.string().nullable() }).nullable(),
    updatedAt: z.string(),
  })
  .openapi('Alert');

const historySchema = z.object({ at: z.string(), actor: z.string(), action: z.string(), note: z.string().nullable(), data: z.unknown(), text: textSchema });
const selfTestSchema = z.object({
  commandId: z.string(),
  terminalId: z.string().nullable(),
  requestedAt: z.string(),
  requestedBy: z.string(),
  status: z.string(),
  completedAt: z.string().nullable(),
  result: z.unknown(),
  error: z.unknown(),
});
const alertDetailSchema = alertSchema.extend({ history: z.array(historySchema), selfTests: z.array(selfTestSchema) }).openapi('AlertDetail');

const idParam = z.object({ id: wholeNumber(1).openapi({ param: { name: 'id', in: 'path' } }) });
const csv = <T extends readonly [string, ...string[]]>(values: T) =>
  z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined || s === '') return undefined;
      const parts = s.split(',');
      for (const p of parts) if (!(values as readonly string[]).includes(p)) ctx.addIssue({ code: 'custom', message: `unknown value ${JSON.stringify(p)}; one of ${values.join(', ')}` });
      return parts as T[number][];
    });

const note = z.string().trim().min(1).max(4000);
const isoTime = z.iso.datetime({ offset: true });

const listRoute = createRoute({
  method: 'get',
  path: '/alerts',
  summary: "Alerts under the caller's node. Default: not resolved, as a queue (critical first, then oldest first)",
  request: {
    query: z.object({
      node: z.string().optional(),
      terminal: z.string().optional(),
      state: z
        .string()
        .optional()
        .openapi({ description: 'comma-separated states, or `active` (not resolved; the default) or `all`' }),
      severity: csv(SEVERITIES),
      rule: z.enum(RULE_IDS).optional(),
      overdue: z.enum(['true', 'false']).optional(),
      sort: z.enum(['queue', 'newest']).default('queue'),
      cursor: wholeNumber().optional(),
      limit: limitQuery,
    }),
  },
  responses: { 200: json(listOf(alertSchema)), ...errorResponses },
});

const getRoute = createRoute({
  method: 'get',
  path: '/alerts/{id}',
  summary: 'One alert with its history and the self-tests run for it (with their results)',
  request: { params: idParam },
  responses: { 200: json(alertDetailSchema), ...errorResponses },
});

const conflictResponse = { 409: { description: 'Not possible in the alert’s state (already resolved, already acknowledged)', content: { 'application/json': { schema: errorSchema } } } };

const ackRoute = createRoute({
  method: 'post',
  path: '/alerts/{id}/acknowledge',
  summary: 'Acknowledge (stops the SLA clock)',
  request: { params: idParam, ...jsonBody(z.object({ note: note.optional() })) },
  responses: { 200: json(alertDetailSchema), ...errorResponses, ...conflictResponse },
});
const assignRoute = createRoute({
  method: 'post',
  path: '/alerts/{id}/assign',
  summary: 'Assign to a technician (an active user who may handle alerts and sees the alert’s node); acknowledges too',
  request: { params: idParam, ...jsonBody(z.object({ to: z.string().min(1).max(64), note: note.optional() })) },
  responses: { 200: json(alertDetailSchema), ...errorResponses, ...conflictResponse },
});
const resolveRoute = createRoute({
  method: 'post',
  path: '/alerts/{id}/resolve',
  summary: 'Resolve by hand, with a note (if the condition persists, the next evaluation opens a new alert)',
  request: { params: idParam, ...jsonBody(z.object({ note })) },
  responses: { 200: json(alertDetailSchema), ...errorResponses, ...conflictResponse },
});
const noteRoute = createRoute({
  method: 'post',
  path: '/alerts/{id}/notes',
  summary: 'Add a note',
  request: { params: idParam, ...jsonBody(z.object({ note })) },
  responses: { 201: json(alertDetailSchema), ...errorResponses },
});

const selfTestRoute = createRoute({
  method: 'post',
  path: '/alerts/{id}/self-test',
  summary: "Run `self-test` on the alert's terminal (a station-service alert: on each of the station's terminals that should offer the lost services); the results show on the alert as the terminals answer",
  request: { params: idParam },
  responses: { 201: json(alertDetailSchema), ...errorResponses },
});

const maintenanceSchema = z
  .object({
    id: z.number(),
    target: z.object({ kind: z.enum(['terminal', 'node']), id: z.string() }),
    nodeId: z.string(),
    reason: z.string(),
    startsAt: z.string(),
    endsAt: z.string(),
    active: z.boolean(),
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .openapi('Maintenance');

const maintenanceListRoute = createRoute({
  method: 'get',
  path: '/maintenance',
  request: { query: z.object({ node: z.string().optional(), active: z.enum(['true', 'false']).default('true'), limit: limitQuery }) },
  responses: { 200: json(listOf(maintenanceSchema)), ...errorResponses },
});

const maintenanceCreateRoute = createRoute({
  method: 'post',
  path: '/maintenance',
  summary: 'Put a terminal or a node (station, district) into maintenance until endsAt: no alerts, planned downtime',
  request: {
    ...jsonBody(
      z
        .object({
          terminalId: z.string().min(1).max(64).optional(),
          nodeId: z.string().min(1).max(64).optional(),
          reason: z.string().trim().min(1).max(1000),
          startsAt: isoTime.optional(),
          endsAt: isoTime,
        })
        .refine((b) => (b.terminalId === undefined) !== (b.nodeId === undefined), { message: 'give exactly one of terminalId and nodeId', path: ['terminalId'] }),
    ),
  },
  responses: { 201: json(maintenanceSchema), ...errorResponses },
});

const maintenanceEndRoute = createRoute({
  method: 'post',
  path: '/maintenance/{id}/end',
  summary: 'End a maintenance now',
  request: { params: idParam },
  responses: { 200: json(maintenanceSchema), ...errorResponses },
});

const silenceSchema = z
  .object({ id: z.number(), nodeId: z.string(), rule: z.string(), until: z.string(), active: z.boolean(), reason: z.string().nullable(), createdBy: z.string(), createdAt: z.string() })
  .openapi('Silence');

const silenceListRoute = createRoute({
  method: 'get',
  path: '/silences',
  request: { query: z.object({ node: z.string().optional(), active: z.enum(['true', 'false']).default('true'), limit: limitQuery }) },
  responses: { 200: json(listOf(silenceSchema)), ...errorResponses },
});

const silenceCreateRoute = createRoute({
  method: 'post',
  path: '/silences',
  summary: 'Silence a rule (or `*`: every rule) for everything under a node until a time',
  request: { ...jsonBody(z.object({ nodeId: z.string().min(1).max(64), rule: z.enum([...RULE_IDS, '*']), until: isoTime, reason: z.string().trim().max(1000).optional() })) },
  responses: { 201: json(silenceSchema), ...errorResponses },
});

const silenceDeleteRoute = createRoute({
  method: 'delete',
  path: '/silences/{id}',
  summary: 'End a silence now',
  request: { params: idParam },
  responses: { 200: json(silenceSchema), ...errorResponses },
});

const webhookSchema = z
  .object({
    id: z.number(),
    url: z.string(),
    enabled: z.boolean(),
    createdBy: z.string(),
    createdAt: z.string(),
    deliveries: z.object({ pending: z.number(), delivered: z.number(), failed: z.number() }),
    lastFailure: z.object({ at: z.string(), status: z.number().nullable(), error: z.string().nullable(), attempts: z.number() }).nullable(),
  })
  .openapi('Webhook');

const deliverySchema = z.object({
  id: z.number(),
  alertId: z.number(),
  event: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number(),
  nextAt: z.string().nullable(),
  lastStatus: z.number().nullable(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  deliveredAt: z.string().nullable(),
});

const webhookListRoute = createRoute({ method: 'get', path: '/webhooks', summary: 'Alert webhooks with their delivery counts and last failure (city admins)', responses: { 200: json(listOf(webhookSchema)), ...errorResponses } });
const webhookCreateRoute = createRoute({
  method: 'post',
  path: '/webhooks',
  summary: 'Add an alert webhook: each alert change is POSTed as JSON, signed with the secret (X-KF-Signature)',
  request: { ...jsonBody(z.object({ url: z.url({ protocol: /^https?$/ }).max(2000), secret: z.string().min(16).max(256) })) },
  responses: { 201: json(webhookSchema), ...errorResponses },
});
const webhookDeleteRoute = createRoute({ method: 'delete', path: '/webhooks/{id}', request: { params: idParam }, responses: { 200: json(z.object({ id: z.number(), deleted: z.literal(true) })), ...errorResponses } });
const deliveriesRoute = createRoute({
  method: 'get',
  path: '/webhooks/{id}/deliveries',
  summary: 'Latest deliveries of a webhook, newest first',
  request: { params: idParam, query: z.object({ limit: limitQuery }) },
  responses: { 200: json(listOf(deliverySchema)), ...errorResponses },
});

function maintenanceView(m: MaintenanceRow, now: number) {
  return {
    id: m.id,
    target: { kind: m.targetKind, id: m.targetId },
    nodeId: m.nodeId,
    reason: m.reason,
    startsAt: isoReq(m.startsAt),
    endsAt: isoReq(m.endsAt),
    active: m.startsAt <= now && now < m.endsAt,
    createdBy: m.createdBy,
    createdAt: isoReq(m.createdAt),
  };
}

function silenceView(x: SilenceRow, now: number) {
  return { id: x.id, nodeId: x.nodeId, rule: x.rule, until: isoReq(x.until), active: now < x.until, reason: x.reason, createdBy: x.createdBy, createdAt: isoReq(x.createdAt) };
}

function deliveryView(d: DeliveryRow) {
  return {
    id: d.id,
    alertId: d.alertId,
    event: d.event,
    status: d.status,
    attempts: d.attempts,
    nextAt: d.status === 'pending' ? isoReq(d.nextAt) : null,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    createdAt: isoReq(d.createdAt),
    deliveredAt: iso(d.deliveredAt),
  };
}

export function alertRoutes(s: Services) {
  const al = s.alerts;

  const detail = async (id: number) => {
    const [a, history] = await Promise.all([al.engine.alert(id), al.engine.history(id)]);
    const selfTests = await Promise.all(history
      .filter((h) => h.action === 'self-test')
      .map(async (h) => {
        const commandId = (parseJson<{ commandId: string }>(h.data) ?? { commandId: '' }).commandId;
        const cmd = await s.downlink.command(commandId);
        return {
          commandId,
          terminalId: cmd?.terminalId ?? null,
          requestedAt: isoReq(h.at),
          requestedBy: h.actor,
          status: cmd?.status ?? 'unknown',
          completedAt: iso(cmd?.completedAt),
          result: parseJson(cmd?.result ?? null),
          error: parseJson(cmd?.error ?? null),
        };
      }));
    return {
      ...al.view(a!),
      history: history.map((h) => {
        const data = parseJson(h.data);
        return { at: isoReq(h.at), actor: h.actor, action: h.action, note: h.note, data, text: historyText(h.action, data) };
      }),
      selfTests,
    };
  };

  /**
   * The terminals a self-test of the alert runs on: its terminal; for a station that lost a service, the station's
   * terminals the rule judged (those whose type offers a lost service: details.terminals), still active and there.
   */
  const selfTestTargets = async (a: AlertRow): Promise<string[]> => {
    if (a.subjectKind === 'terminal') return [a.subjectId];
    if (a.rule !== 'station-service-lost') return [];
    const ids = (parseJson<{ terminals?: unknown }>(a.details) ?? {}).terminals;
    if (!Array.isArray(ids)) return [];
    const rows = await s.registry.terminals(ids.filter((x): x is string => typeof x === 'string'));
    return rows.filter((t) => t.state === 'active' && t.stationId === a.nodeId).map((t) => t.id).sort();
  };

  /** The alert if the caller sees its node (404 otherwise). */
  const visibleAlert = async (c: Parameters<typeof visible>[0], id: number) => {
    const a = await al.engine.alert(id);
    if (!a || !visible(c, a.nodeId)) throw notFound('alert', String(id));
    return a;
  };

  const webhookView = async (w: WebhookRow) => {
    const counts = { pending: 0, delivered: 0, failed: 0 };
    const [byStatus, latest] = await Promise.all([al.store.deliveryCounts(w.id), al.store.deliveries(w.id, 50)]);
    for (const r of byStatus) counts[r.status] = r.n;
    const last = latest.find((d) => d.lastError !== null);
    return {
      id: w.id,
      // The URL may carry a token in its query; show scheme, host and path only.
      url: redactUrl(w.url),
      enabled: w.enabled === 1,
      createdBy: w.createdBy,
      createdAt: isoReq(w.createdAt),
      deliveries: counts,
      lastFailure: last ? { at: isoReq(last.nextAt), status: last.lastStatus, error: last.lastError, attempts: last.attempts } : null,
    };
  };

  return new OpenAPIHono<ApiEnv>()
    .openapi(listRoute, async (c) => {
      const q = c.req.valid('query');
      const p = principalOf(c);
      if (q.node !== undefined && (!(await s.registry.node(q.node)) || !visible(c, q.node))) throw notFound('node', q.node);
      if (q.terminal !== undefined && !(await s.registry.terminal(q.terminal))) throw notFound('terminal', q.terminal);
      let states: AlertState[] | undefined;
      if (q.state === undefined || q.state === 'active') states = ['open', 'acknowledged', 'assigned'];
      else if (q.state !== 'all') {
        const parts = q.state.split(',');
        const bad = parts.filter((x) => !(STATES as readonly string[]).includes(x));
        if (bad.length > 0) throw badRequest('invalid-request', `state: unknown ${bad.join(', ')}; one of ${STATES.join(', ')}, active, all`, { issues: [{ path: ['state'], message: 'unknown state' }] });
        states = parts as AlertState[];
      }
      const offset = q.cursor ?? 0;
      const now = al.now();
      const rows = await al.store.list({
        scopes: [p.nodeId, q.node ?? null].filter((x): x is string => x !== null),
        states,
        severities: q.severity,
        rule: q.rule,
        subject: q.terminal,
        overdueAt: q.overdue === 'true' ? now : undefined,
        sort: q.sort,
        offset,
        limit: q.limit + 1,
      });
      const more = rows.length > q.limit;
      return c.json({ items: rows.slice(0, q.limit).map((a) => al.view(a, now)), nextCursor: more ? String(offset + q.limit) : null }, 200);
    })
    .openapi(getRoute, async (c) => {
      const { id } = c.req.valid('param');
      await visibleAlert(c, id);
      return c.json(await detail(id), 200);
    })
    .openapi(ackRoute, async (c) => {
      const { id } = c.req.valid('param');
      const a = await visibleAlert(c, id);
      const b = c.req.valid('json');
      await al.engine.acknowledge(id, c.get('actor'), b.note ?? null);
      await audit(c, s, { action: 'alert.acknowledge', objectType: 'alert', objectId: String(id), nodeId: a.nodeId, before: { state: a.state }, after: { state: 'acknowledged', note: b.note ?? null } });
      return c.json(await detail(id), 200);
    })
    .openapi(assignRoute, async (c) => {
      const { id } = c.req.valid('param');
      const a = await visibleAlert(c, id);
      const b = c.req.valid('json');
      const user = await s.auth.store.userByName(b.to);
      // Only someone who may handle alerts and can see this one; anything else is a bad request, not a lookup.
      if (!user || user.disabledAt !== null || !PERMISSIONS['alert:handle'].roles.includes(user.role) || !inScope(user.nodeId, a.nodeId)) {
        throw badRequest('invalid-assignee', `${JSON.stringify(b.to)} is not an active user who may handle alerts at ${a.nodeId}`, { issues: [{ path: ['to'], message: 'not an assignable user here' }] });
      }
      await al.engine.assign(id, user.username, c.get('actor'), b.note ?? null);
      await audit(c, s, { action: 'alert.assign', objectType: 'alert', objectId: String(id), nodeId: a.nodeId, before: { state: a.state, assignedTo: a.assignedTo }, after: { state: 'assigned', assignedTo: user.username } });
      return c.json(await detail(id), 200);
    })
    .openapi(resolveRoute, async (c) => {
      const { id } = c.req.valid('param');
      const a = await visibleAlert(c, id);
      const b = c.req.valid('json');
      await al.engine.resolve(id, c.get('actor'), b.note);
      await audit(c, s, { action: 'alert.resolve', objectType: 'alert', objectId: String(id), nodeId: a.nodeId, before: { state: a.state }, after: { state: 'resolved', note: b.note } });
      return c.json(await detail(id), 200);
    })
    .openapi(noteRoute, async (c) => {
      const { id } = c.req.valid('param');
      const a = await visibleAlert(c, id);
      const b = c.req.valid('json');
      await al.engine.note(id, c.get('actor'), b.note);
      await audit(c, s, { action: 'alert.note', objectType: 'alert', objectId: String(id), nodeId: a.nodeId, after: { note: b.note } });
      return c.json(await detail(id), 201);
    })
    .openapi(selfTestRoute, async (c) => {
      const { id } = c.req.valid('param');
      const a = await visibleAlert(c, id);
      const targets = await selfTestTargets(a);
      if (targets.length === 0) throw badRequest('not-a-terminal', `alert ${id} is about node ${a.subjectId}; run a self-test on one of its terminals`);
      if (a.state === 'resolved') throw conflict(`alert ${id} is resolved`, { state: a.state });
      for (const t of targets) await terminalFor(c, s, t, 'command:run');
      const cmds = await transaction(s.engine, async (tx) => {
        const rows = [];
        for (const t of targets) rows.push(await s.downlink.queueCommand(t, 'self-test', {}, SELF_TEST_TTL_S, c.get('actor'), tx));
        const after = a.subjectKind === 'terminal' ? { command: rows[0]!.id, terminalId: a.subjectId } : { commands: rows.map((r) => ({ command: r.id, terminalId: r.terminalId })) };
        await audit(c, s, { action: 'alert.self-test', objectType: 'alert', objectId: String(id), nodeId: a.nodeId, after }, tx);
        return rows;
      });
      // Sent only once stored with its audit entry: a rolled-back command never reaches the terminal.
      for (const cmd of cmds) s.downlink.deliver(cmd);
      await al.engine.selfTest(id, c.get('actor'), cmds.map((cmd) => ({ commandId: cmd.id, terminalId: cmd.terminalId })));
      for (const cmd of cmds) s.changed({ type: 'command', terminalId: cmd.terminalId, at: Date.now(), data: { id: cmd.id, status: cmd.status } });
      return c.json(await detail(id), 201);
    })
    .openapi(maintenanceListRoute, async (c) => {
      const q = c.req.valid('query');
      if (q.node !== undefined && (!(await s.registry.node(q.node)) || !visible(c, q.node))) throw notFound('node', q.node);
      const now = al.now();
      const scope = q.node ?? principalOf(c).nodeId;
      const rows = await al.store.maintenanceList(scope, q.active === 'true' ? now : null, q.limit);
      return c.json({ items: rows.map((m) => maintenanceView(m, now)), nextCursor: null }, 200);
    })
    .openapi(maintenanceCreateRoute, async (c) => {
      const b = c.req.valid('json');
      const now = al.now();
      const target = b.terminalId !== undefined
        ? { targetKind: 'terminal' as const, targetId: b.terminalId, nodeId: (await terminalFor(c, s, b.terminalId, 'alert:handle')).stationId }
        : { targetKind: 'node' as const, targetId: b.nodeId!, nodeId: (await nodeFor(c, s, b.nodeId!, 'alert:handle')).id };
      const m = await al.engine.addMaintenance({ ...target, reason: b.reason, startsAt: b.startsAt ? Date.parse(b.startsAt) : now, endsAt: Date.parse(b.endsAt) }, c.get('actor'));
      await audit(c, s, { action: 'maintenance.create', objectType: m.targetKind, objectId: m.targetId, nodeId: m.nodeId, after: maintenanceView(m, now) });
      return c.json(maintenanceView(m, now), 201);
    })
    .openapi(maintenanceEndRoute, async (c) => {
      const { id } = c.req.valid('param');
      const m = await al.store.maintenance(id);
      if (!m || !visible(c, m.nodeId)) throw notFound('maintenance', String(id));
      const ended = await al.engine.endMaintenance(id);
      const now = al.now();
      await audit(c, s, { action: 'maintenance.end', objectType: m.targetKind, objectId: m.targetId, nodeId: m.nodeId, before: maintenanceView(m, now), after: maintenanceView(ended, now) });
      await al.evaluate();
      return c.json(maintenanceView(ended, now), 200);
    })
    .openapi(silenceListRoute, async (c) => {
      const q = c.req.valid('query');
      if (q.node !== undefined && (!(await s.registry.node(q.node)) || !visible(c, q.node))) throw notFound('node', q.node);
      const now = al.now();
      const rows = await al.store.silenceList(q.node ?? principalOf(c).nodeId, q.active === 'true' ? now : null, q.limit);
      return c.json({ items: rows.map((x) => silenceView(x, now)), nextCursor: null }, 200);
    })
    .openapi(silenceCreateRoute, async (c) => {
      const b = c.req.valid('json');
      await nodeFor(c, s, b.nodeId, 'config:write');
      const x = await al.engine.addSilence({ nodeId: b.nodeId, rule: b.rule, until: Date.parse(b.until), reason: b.reason ?? null }, c.get('actor'));
      const now = al.now();
      await audit(c, s, { action: 'silence.create', objectType: 'node', objectId: b.nodeId, nodeId: b.nodeId, after: silenceView(x, now) });
      return c.json(silenceView(x, now), 201);
    })
    .openapi(silenceDeleteRoute, async (c) => {
      const { id } = c.req.valid('param');
      const x = await al.store.silence(id);
      if (!x || !visible(c, x.nodeId)) throw notFound('silence', String(id));
      await nodeFor(c, s, x.nodeId, 'config:write');
      const ended = await al.engine.endSilence(id);
      const now = al.now();
      await audit(c, s, { action: 'silence.end', objectType: 'node', objectId: x.nodeId, nodeId: x.nodeId, before: silenceView(x, now), after: silenceView(ended, now) });
      await al.evaluate();
      return c.json(silenceView(ended, now), 200);
    })
    .openapi(webhookListRoute, async (c) => c.json({ items: await Promise.all((await al.store.webhooks()).map(webhookView)), nextCursor: null }, 200))
    .openapi(webhookCreateRoute, async (c) => {
      const b = c.req.valid('json');
      const w = await al.store.addWebhook({ url: b.url, secret: b.secret, createdBy: c.get('actor'), createdAt: al.now() });
      await audit(c, s, { action: 'webhook.create', objectType: 'webhook', objectId: String(w.id), nodeId: null, after: { url: redactUrl(b.url) } });
      return c.json(await webhookView(w), 201);
    })
    .openapi(webhookDeleteRoute, async (c) => {
      const { id } = c.req.valid('param');
      const w = await al.store.webhook(id);
      if (!w) throw notFound('webhook', String(id));
      await transaction(s.engine, async (tx) => {
        await al.store.deleteWebhook(id, tx);
        await audit(c, s, { action: 'webhook.delete', objectType: 'webhook', objectId: String(id), nodeId: null, before: { url: redactUrl(w.url) } });
      });
      return c.json({ id, deleted: true as const }, 200);
    })
    .openapi(deliveriesRoute, async (c) => {
      const { id } = c.req.valid('param');
      if (!(await al.store.webhook(id))) throw notFound('webhook', String(id));
      const rows = await al.store.deliveries(id, c.req.valid('query').limit);
      return c.json({ items: rows.map(deliveryView), nextCursor: null }, 200);
    });
}

function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
