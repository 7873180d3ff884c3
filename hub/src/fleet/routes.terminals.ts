/** /terminals: registry, detail, history, telemetry, commands. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { COMMAND_NAMES, PERIPHERAL_IDS, TERMINAL_TYPE_IDS } from '@kiosk-fleet/protocol';
import { audit, principalOf, visible } from '../auth/guard.ts';
import { transaction } from '../db/engine.ts';
import { badRequest, notFound } from '../errors.ts';
import { MAX_COMMAND_TTL_S } from '../commands/service.ts';
import { REVOKED_CHANNEL } from '../cluster/feed-hub.ts';
import type { CommandRow } from '../commands/store.ts';
import { BUCKET_FIELDS, type BucketField, type RawCursor, type TerminalListRow } from '../queries/store.ts';
import {
  errorResponses,
  idParam,
  iso,
  isoReq,
  json,
  jsonBody,
  limitQuery,
  listOf,
  parseJson,
  timeQuery,
  wholeNumber,
  wholeNumberOf,
  type ApiEnv,
  type Services,
} from '../api/common.ts';

const presenceEnum = z.enum(['unknown', 'online', 'offline', 'stale']);
const peripheralState = z.object({
  status: z.string(),
  since: z.string().nullable(),
  code: z.string().optional(),
  message: z.string().optional(),
});

const terminalSummary = z
  .object({
    id: z.string(),
    type: z.string(),
    serial: z.string(),
    station: z.string(),
    state: z.enum(['active', 'decommissioned']),
    createdAt: z.string(),
    presence: z.object({ state: presenceEnum, reason: z.string().nullable(), since: z.string().nullable(), flapping: z.boolean() }),
    lastSeenAt: z.string().nullable(),
    faults: z.array(z.string()),
    services: z.array(z.string()),
  })
  .openapi('TerminalSummary');

const terminalDetail = terminalSummary
  .extend({
    decommissionedAt: z.string().nullable(),
    peripherals: z.record(z.string(), peripheralState),
    latest: z
      .object({ receivedAt: z.string().nullable(), ts: z.string().nullable(), host: z.unknown(), app: z.unknown() })
      .nullable(),
    versions: z.object({ agent: z.string().nullable(), app: z.string().nullable() }),
    boot: z.object({ bootId: z.string().nullable(), connSeq: z.number().nullable(), uptime: z.number().nullable(), lastExit: z.unknown() }),
    intervalSeconds: z.number().nullable(),
    clockSkewMs: z.number().nullable(),
    /** The remote address of the terminal's latest MQTT connection. */
    lastAddress: z.string().nullable(),
    streams: z.array(
      z.object({ stream: z.string(), epoch: z.string(), firstSeq: z.number(), maxSeq: z.number(), count: z.number(), missing: z.number(), lastAt: z.string() }),
    ),
    placements: z.array(
      z.object({ from: z.string().nullable(), to: z.string().nullable(), by: z.string(), at: z.string(), reason: z.string().nullable() }),
    ),
    connected: z.boolean(),
  })
  .openapi('TerminalDetail');

type PState = { status: string; since: number; code?: string; message?: string };

function summary(r: TerminalListRow) {
  const peripherals = parseJson<Record<string, PState>>(r.peripherals) ?? {};
  return {
    id: r.id,
    type: r.type,
    serial: r.serial,
    station: r.stationId,
    state: r.state as 'active' | 'decommissioned',
    createdAt: isoReq(r.createdAt),
    presence: {
      state: (r.presence ?? 'unknown') as z.infer<typeof presenceEnum>,
      reason: r.presenceReason,
      since: iso(r.presenceSince),
      flapping: r.flapping === 1,
    },
    lastSeenAt: iso(r.lastSeenAt),
    faults: Object.entries(peripherals)
      .filter(([, p]) => p.status === 'fault')
      .map(([id]) => id),
    services: parseJson<string[]>(r.services) ?? [],
  };
}

const listRoute = createRoute({
  method: 'get',
  path: '/terminals',
  summary: 'List terminals with filters',
  request: {
    query: z.object({
      node: z.string().optional(),
      type: z.enum(TERMINAL_TYPE_IDS as [string, ...string[]]).optional(),
      presence: presenceEnum.optional(),
      fault: z.string().optional().openapi({ description: 'a peripheral id in fault, or `any`' }),
      q: z.string().max(64).optional(),
      state: z.enum(['active', 'decommissioned', 'all']).optional(),
      cursor: z.string().optional(),
      limit: limitQuery,
    }),
  },
  responses: { 200: json(listOf(terminalSummary)), ...errorResponses },
});

const registerRoute = createRoute({
  method: 'post',
  path: '/terminals',
  summary: 'Register a terminal; the secret is returned this once',
  request: {
    ...jsonBody(
      z.object({
        id: z.string().min(1).max(64).optional(),
        type: z.string(),
        serial: z.string().min(1).max(64),
        station: z.string(),
      }),
    ),
  },
  responses: { 201: json(z.object({ id: z.string(), secret: z.string() }), 'Registered'), ...errorResponses, 409: errorResponses[400] },
});

const detailRoute = createRoute({
  method: 'get',
  path: '/terminals/{id}',
  request: { params: idParam },
  responses: { 200: json(terminalDetail), ...errorResponses },
});

const moveRoute = createRoute({
  method: 'post',
  path: '/terminals/{id}/move',
  request: {
    params: idParam,
    ...jsonBody(z.object({ station: z.string(), reason: z.string().max(512).optional() })),
  },
  responses: { 200: json(terminalDetail), ...errorResponses },
});

const decommissionRoute = createRoute({
  method: 'post',
  path: '/terminals/{id}/decommission',
  request: {
    params: idParam,
    body: { required: false, content: { 'application/json': { schema: z.object({ reason: z.string().max(512).optional() }) } } },
  },
  responses: { 200: json(terminalDetail), ...errorResponses },
});

const secretRoute = createRoute({
  method: 'post',
  path: '/terminals/{id}/secret',
  summary: 'Issue a new secret; the old one stops working at once and a live connection is closed',
  request: { params: idParam },
  responses: { 200: json(z.object({ id: z.string(), secret: z.string() })), ...errorResponses },
});

const BUCKETS = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '1d': 86_400_000 } as const;

/** A chart point's numbers in `format=rows`: two decimals are more than a chart can show. */
const round2 = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);

const telemetryRoute = createRoute({
  method: 'get',
  path: '/terminals/{id}/telemetry',
  summary: 'Samples over a range: raw (paginated), bucketed from raw, or hourly rollups (kept 400 days)',
  request: {
    params: idParam,
    query: z.object({
      from: timeQuery,
      to: timeQuery,
      bucket: z.enum(['raw', '1m', '5m', '15m', '1h', '1d', 'rollup']).default('raw'),
      format: z.enum(['objects', 'rows']).default('objects').openapi({
        description:
          '`rows` (buckets and rollups only, for charts): `fields` names the columns and each item is an array `[start, …]` of them, numbers to 2 decimals',
      }),
      fields: z
        .string()
        .optional()
        .openapi({ description: `with format=rows: comma-separated, of ${BUCKET_FIELDS.join(', ')} (default: all)` }),
      cursor: z.string().optional(),
      limit: limitQuery,
    }),
  },
  responses: {
    200: json(
      z.object({
        bucket: z.string(),
        /** Only with format=rows: the meaning of each item's entries. */
        fields: z.array(z.string()).optional(),
        items: z.array(z.union([z.record(z.string(), z.unknown()), z.array(z.union([z.string(), z.number(), z.null()]))])),
        nextCursor: z.string().nullable(),
      }),
    ),
    ...errorResponses,
  },
});

const presenceRoute = createRoute({
  method: 'get',
  path: '/terminals/{id}/presence',
  summary: 'Presence transitions, newest first',
  request: { params: idParam, query: z.object({ from: timeQuery, to: timeQuery, cursor: wholeNumber(1).optional(), limit: limitQuery }) },
  responses: {
    200: json(
      listOf(
        z.object({
          at: z.string(),
          from: z.string(),
          to: z.string(),
          reason: z.string(),
          bootId: z.string().nullable(),
          connSeq: z.number().nullable(),
          /** The connection's remote address (connected, takeover). */
          address: z.string().nullable(),
        }),
      ),
    ),
    ...errorResponses,
  },
});

const eventsRoute = createRoute({
  method: 'get',
  path: '/terminals/{id}/events',
  summary: "The terminal's stored events, newest first",
  request: {
    params: idParam,
    query: z.object({ from: timeQuery, to: timeQuery, kind: z.string().optional(), cursor: wholeNumber(1).optional(), limit: limitQuery }),
  },
  responses: {
    200: json(
      listOf(
        z.object({
          seq: z.number(),
          epoch: z.string(),
          ts: z.string(),
          receivedAt: z.string(),
          clockSkewed: z.boolean(),
          kind: z.string(),
          severity: z.string(),
          peripheral: z.string().nullable(),
          code: z.string().nullable(),
          message: z.string().nullable(),
          data: z.unknown(),
        }),
      ),
    ),
    ...errorResponses,
  },
});

const commandSchema = z
  .object({
    id: z.string(),
    terminalId: z.string(),
    name: z.string(),
    args: z.record(z.string(), z.unknown()),
    issuedAt: z.string(),
    expiresAt: z.string(),
    status: z.enum(['pending', 'sent', 'ok', 'error', 'expired']),
    sentAt: z.string().nullable(),
    completedAt: z.string().nullable(),
    result: z.unknown(),
    error: z.unknown(),
    createdBy: z.string(),
  })
  .openapi('Command');

function commandOut(r: CommandRow) {
  return {
    id: r.id,
    terminalId: r.terminalId,
    name: r.name,
    args: JSON.parse(r.args) as Record<string, unknown>,
    issuedAt: isoReq(r.issuedAt),
    expiresAt: isoReq(r.expiresAt),
    status: r.status as z.infer<typeof commandSchema>['status'],
    sentAt: iso(r.sentAt),
    completedAt: iso(r.completedAt),
    result: parseJson(r.result),
    error: parseJson(r.error),
    createdBy: r.createdBy,
  };
}

const commandsListRoute = createRoute({
  method: 'get',
  path: '/terminals/{id}/commands',
  request: { params: idParam, query: z.object({ cursor: z.string().optional(), limit: limitQuery }) },
  responses: { 200: json(listOf(commandSchema)), ...errorResponses },
});

const commandCreateRoute = createRoute({
  method: 'post',
  path: '/terminals/{id}/commands',
  summary: 'Send a command; delivered when the terminal is online, kept until it expires otherwise',
  request: {
    params: idParam,
    ...jsonBody(
      z.object({
        name: z.enum(COMMAND_NAMES),
        args: z.record(z.string(), z.unknown()).default({}),
        expiresInSeconds: z.number().int().min(1).max(MAX_COMMAND_TTL_S).default(600),
      }),
    ),
  },
  responses: { 201: json(commandSchema, 'Created'), ...errorResponses },
});

function range(from?: string, to?: string): [number, number] {
  const f = from ? Date.parse(from) : 0;
  const t = to ? Date.parse(to) : Number.MAX_SAFE_INTEGER;
  if (f > t) throw badRequest('invalid-range', '`from` is after `to`', { path: ['from'] });
  return [f, t];
}

/** The raw samples' keyset cursor: `ts~epochKey~seq` of the last sample of the page. */
function rawCursor(cursor: string | undefined): RawCursor | null {
  if (cursor === undefined) return null;
  const parts = cursor.split('~');
  const [ts, epochId, seq] = parts.map(wholeNumberOf);
  if (parts.length !== 3 || ts == null || epochId == null || seq == null) {
    throw badRequest('invalid-cursor', 'cursor is not one this API returned', { path: ['cursor'] });
  }
  return { ts, epochId, seq };
}

function chartFields(list: string | undefined): BucketField[] {
  if (list === undefined || list === '') return [...BUCKET_FIELDS];
  const out: BucketField[] = [];
  for (const f of list.split(',')) {
    if (!(BUCKET_FIELDS as readonly string[]).includes(f)) {
      throw badRequest('invalid-query', `fields: ${JSON.stringify(f)} is not one of ${BUCKET_FIELDS.join(', ')}`, { path: ['fields'] });
    }
    out.push(f as BucketField);
  }
  return out;
}


export function terminalRoutes(s: Services) {
  // Chart points' starts repeat from request to request (every terminal's 5-minute or hourly starts): each is
  // formatted once. 720 hourly starts took 0.5 ms of the 30-day chart's CPU through new Date().toISOString().
  const starts = new Map<number, string>();
  const startIso = (ms: number) => {
    let v = starts.get(ms);
    if (v === undefined) {
      if (starts.size >= 50_000) starts.clear();
      starts.set(ms, (v = isoReq(ms)));
    }
    return v;
  };
  const detail = async (id: string) => {
    const r = await s.queries.terminal(id);
    if (!r) throw notFound('terminal', id);
    const peripherals = parseJson<Record<string, PState>>(r.peripherals) ?? {};
    return {
      ...summary(r),
      decommissionedAt: iso(r.decommissionedAt),
      peripherals: Object.fromEntries(
        Object.entries(peripherals).map(([pid, p]) => [pid, { status: p.status, since: iso(p.since), code: p.code, message: p.message }]),
      ),
      latest:
        r.lastTelemetryAt === null
          ? null
          : { receivedAt: iso(r.lastTelemetryAt), ts: iso(r.lastTelemetryTs), host: parseJson(r.host), app: parseJson(r.app) },
      versions: { agent: r.agentVersion, app: r.appVersion },
      boot: { bootId: r.bootId, connSeq: r.connSeq, uptime: r.uptime, lastExit: parseJson(r.lastExit) },
      intervalSeconds: r.intervalS,
      clockSkewMs: r.clockSkewMs,
      lastAddress: r.lastAddress,
      streams: (await s.queries.streams(id)).map((x) => ({
        ...x,
        missing: x.maxSeq - x.firstSeq + 1 - x.count,
        lastAt: isoReq(x.lastAt),
      })),
      placements: (await s.registry.placements(id)).map((p) => ({ from: p.fromStation, to: p.toStation, by: p.by, at: isoReq(p.at), reason: p.reason })),
      connected: s.broker.live.has(id),
    };
  };
  const exists = async (id: string) => {
    if (!(await s.registry.terminal(id))) throw notFound('terminal', id);
  };

  return new OpenAPIHono<ApiEnv>()
    .openapi(listRoute, async (c) => {
      const q = c.req.valid('query');
      if (q.fault !== undefined && q.fault !== 'any' && !(PERIPHERAL_IDS as string[]).includes(q.fault)) {
        throw badRequest('invalid-query', `fault: a peripheral id or \`any\`, not ${JSON.stringify(q.fault)}`, { path: ['fault'] });
      }
      if (q.node !== undefined && !visible(c, q.node)) throw notFound('node', q.node);
      const filter = { ...q, scope: principalOf(c).nodeId, after: q.cursor, limit: q.limit + 1 };
      // The page's ids from the counters' entries when they can answer the filter (summary/node-counters.ts), else SQL.
      const ids = await s.nodeCounters.page(filter);
      const rows = ids ? await s.queries.terminalsByIds(ids) : await s.queries.terminals(filter);
      const more = rows.length > q.limit;
      const items = rows.slice(0, q.limit).map(summary);
      return c.json({ items, nextCursor: more ? items[items.length - 1]!.id : null }, 200);
    })
    .openapi(registerRoute, async (c) => {
      const b = c.req.valid('json');
      if (!visible(c, b.station)) throw notFound('node', b.station);
      const id = b.id ?? (await s.registry.nextTerminalId(b.station));
      const out = await transaction(s.engine, async (tx) => {
        const r = await s.registry.register({ id, type: b.type, serial: b.serial, station: b.station }, c.get('actor'), tx);
        await audit(c, s, { action: 'terminal.register', objectType: 'terminal', objectId: id, nodeId: b.station, after: { type: b.type, serial: b.serial, station: b.station } }, tx);
        return r;
      });
      s.changed({ type: 'terminal', terminalId: id, at: Date.now(), data: { registered: true } });
      return c.json(out, 201);
    })
    .openapi(detailRoute, async (c) => c.json(await detail(c.req.valid('param').id), 200))
    .openapi(moveRoute, async (c) => {
      const { id } = c.req.valid('param');
      const b = c.req.valid('json');
      // The target station must lie in the caller's scope too: moving a terminal out of reach is not placement.
      if (!visible(c, b.station)) throw notFound('node', b.station);
      await transaction(s.engine, async (tx) => {
        const before = (await s.registry.requireTerminal(id, tx)).stationId;
        await s.registry.move(id, b.station, c.get('actor'), b.reason ?? null, Date.now(), tx);
        await audit(c, s, { action: 'terminal.move', objectType: 'terminal', objectId: id, nodeId: b.station, before: { station: before }, after: { station: b.station, reason: b.reason ?? null } }, tx);
      });
      s.changed({ type: 'terminal', terminalId: id, at: Date.now(), data: { station: b.station } });
      return c.json(await detail(id), 200);
    })
    .openapi(decommissionRoute, async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.header('content-length') === '0' ? {} : ((await c.req.json().catch(() => ({}))) as { reason?: string });
      await transaction(s.engine, async (tx) => {
        const before = await s.registry.requireTerminal(id, tx);
        const reason = typeof body.reason === 'string' ? body.reason : null;
        await s.registry.decommission(id, c.get('actor'), reason, Date.now(), tx);
        await audit(c, s, { action: 'terminal.decommission', objectType: 'terminal', objectId: id, nodeId: before.stationId, before: { state: before.state }, after: { state: 'decommissioned', reason } }, tx);
      });
      s.broker.kick(id);
      // the terminal may be connected to another hub, whose credential cache still holds it
      void s.feed.publish(REVOKED_CHANNEL, [id]).catch(() => {});
      s.changed({ type: 'terminal', terminalId: id, at: Date.now(), data: { state: 'decommissioned' } });
      return c.json(await detail(id), 200);
    })
    .openapi(secretRoute, async (c) => {
      const { id } = c.req.valid('param');
      const secret = await transaction(s.engine, async (tx) => {
        const out = await s.registry.rotateSecret(id, tx);
        // The secret itself never goes into the audit log (nor the log).
        await audit(c, s, { action: 'terminal.secret', objectType: 'terminal', objectId: id, nodeId: (await s.registry.requireTerminal(id, tx)).stationId, after: { rotated: true } }, tx);
        return out;
      });
      s.broker.kick(id);
      void s.feed.publish(REVOKED_CHANNEL, [id]).catch(() => {});
      s.log.info({ terminalId: id, actor: c.get('actor') }, 'terminal secret rotated');
      return c.json({ id, secret }, 200);
    })
    .openapi(telemetryRoute, async (c) => {
      const { id } = c.req.valid('param');
      await exists(id);
      const q = c.req.valid('query');
      const [from, to] = range(q.from, q.to);
      if (q.bucket === 'raw') {
        if (q.format === 'rows') throw badRequest('invalid-query', 'format=rows is for buckets and rollups', { path: ['format'] });
        const rows = await s.queries.telemetryRaw(id, from, to, rawCursor(q.cursor), q.limit + 1);
        const more = rows.length > q.limit;
        const items = rows.slice(0, q.limit).map((r) => ({
          seq: r.seq,
          epoch: r.epoch,
          ts: isoReq(r.ts),
          receivedAt: isoReq(r.receivedAt),
          clockSkewed: r.skewed === 1,
          host: r.host,
          peripherals: r.peripherals,
          app: r.app,
          services: r.services,
        }));
        const last = rows[q.limit - 1]?.cursor;
        return c.json({ bucket: 'raw', items, nextCursor: more && last ? `${last.ts}~${last.epochId}~${last.seq}` : null }, 200);
      }
      if (q.format === 'rows') {
        const fields = chartFields(q.fields);
        const rows = await s.queries.chartRows(id, from, to, q.bucket === 'rollup' ? null : BUCKETS[q.bucket], fields, q.limit);
        const items = rows.map((r) => {
          const out: (string | number | null)[] = [startIso(r[0]!)];
          for (let i = 1; i < r.length; i++) out.push(round2(r[i]!));
          return out;
        });
        return c.json({ bucket: q.bucket, fields: ['start', ...fields], items, nextCursor: null }, 200);
      }
      if (q.bucket === 'rollup') {
        const rows = await s.queries.rollups(id, from, to, q.limit);
        const items = rows.map(({ hour, peripheralOk, services, ...rest }) => ({
          start: startIso(hour),
          ...rest,
          peripheralOk: JSON.parse(peripheralOk) as unknown,
          services: JSON.parse(services) as unknown,
        }));
        return c.json({ bucket: 'rollup', items, nextCursor: null }, 200);
      }
      const rows = await s.queries.telemetryBuckets(id, from, to, BUCKETS[q.bucket], q.limit);
      const items = rows.map(({ start, ...rest }) => ({ start: startIso(start ?? 0), ...rest }));
      return c.json({ bucket: q.bucket, items, nextCursor: null }, 200);
    })
    .openapi(presenceRoute, async (c) => {
      const { id } = c.req.valid('param');
      await exists(id);
      const q = c.req.valid('query');
      const [from, to] = range(q.from, q.to);
      const rows = await s.queries.presenceHistory(id, from, to, q.cursor ?? Number.MAX_SAFE_INTEGER, q.limit + 1);
      const more = rows.length > q.limit;
      const items = rows
        .slice(0, q.limit)
        .map((r) => ({ at: isoReq(r.at), from: r.fromState, to: r.toState, reason: r.reason, bootId: r.bootId, connSeq: r.connSeq, address: r.address }));
      return c.json({ items, nextCursor: more ? String(rows[q.limit - 1]!.id) : null }, 200);
    })
    .openapi(eventsRoute, async (c) => {
      const { id } = c.req.valid('param');
      await exists(id);
      const q = c.req.valid('query');
      const [from, to] = range(q.from, q.to);
      const rows = await s.queries.events(id, from, to, q.cursor ?? Number.MAX_SAFE_INTEGER, q.limit + 1, q.kind);
      const more = rows.length > q.limit;
      const items = rows.slice(0, q.limit).map((r) => ({
        seq: r.seq,
        epoch: r.epoch,
        ts: isoReq(r.ts),
        receivedAt: isoReq(r.receivedAt),
        clockSkewed: r.skewed === 1,
        kind: r.kind,
        severity: r.severity,
        peripheral: r.peripheral,
        code: r.code,
        message: r.message,
        data: parseJson(r.data),
      }));
      return c.json({ items, nextCursor: more ? String(rows[q.limit - 1]!.id) : null }, 200);
    })
    .openapi(commandsListRoute, async (c) => {
      const { id } = c.req.valid('param');
      await exists(id);
      const q = c.req.valid('query');
      let before: { at: number; id: string } | null = null;
      if (q.cursor) {
        const [at, cid] = q.cursor.split('~');
        const atMs = wholeNumberOf(at);
        if (atMs === null || !cid) throw badRequest('invalid-cursor', 'cursor is not one this API returned', { path: ['cursor'] });
        before = { at: atMs, id: cid };
      }
      const rows = await s.downlink.listCommands(id, before, q.limit + 1);
      const more = rows.length > q.limit;
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      return c.json({ items: page.map(commandOut), nextCursor: more && last ? `${last.issuedAt}~${last.id}` : null }, 200);
    })
    .openapi(commandCreateRoute, async (c) => {
      const { id } = c.req.valid('param');
      const b = c.req.valid('json');
      const row = await transaction(s.engine, async (tx) => {
        const r = await s.downlink.queueCommand(id, b.name, b.args, b.expiresInSeconds, c.get('actor'), tx);
        await audit(c, s, { action: 'terminal.command', objectType: 'terminal', objectId: id, nodeId: (await s.registry.requireTerminal(id, tx)).stationId, after: { command: r.id, name: b.name, args: b.args, expiresInSeconds: b.expiresInSeconds } }, tx);
        return r;
      });
      // Sent only once stored with its audit entry: a rolled-back command never reaches the terminal.
      s.downlink.deliver(row);
      s.changed({ type: 'command', terminalId: id, at: Date.now(), data: { id: row.id, status: row.status } });
      return c.json(commandOut((await s.downlink.command(row.id)) ?? row), 201);
    });
}
