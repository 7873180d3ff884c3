/**
 * The local API for the kiosk application, on 127.0.0.1 only (see agent/README.md, "Local API").
 *
 * The app reports its heartbeat, citizen sessions (the update lock: nothing restarts the app mid-session), each
 * transaction and each card read. Bodies are validated at this boundary; errors use the hub's error shape.
 * `GET /openapi.json` describes it for the app's vendor (localApiDocument, made from the same zod schemas; committed
 * as agent/openapi.json by `pnpm --filter @kiosk-fleet/agent run openapi`, and a test keeps the two equal).
 */
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import * as z from 'zod';
import { code, PERIPHERAL_IDS } from '@kiosk-fleet/protocol';
import type { Agent } from './agent.ts';

const heartbeatBody = z.object({ version: z.string().min(1).max(64).optional() }).strict();
const transactionBody = z.object({ service: z.string().min(1).max(64), ok: z.boolean(), code: code.optional() }).strict();
const readBody = z.object({ peripheral: z.enum(PERIPHERAL_IDS).default('idCardReader'), ok: z.boolean() }).strict();
const emptyBody = z.object({}).strict();

const ok = z.object({ ok: z.literal(true) });
const session = z.object({ sessionActive: z.boolean() });
const errorShape = z.object({
  error: z.object({
    code: z.string().meta({ description: 'invalid_json, invalid_body, not_found, internal' }),
    message: z.string(),
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional().meta({ description: 'each bad field of a 400' }),
  }),
});
/** What `GET /v1/status` answers (Agent.status()). */
const statusShape = z.object({
  terminalId: z.string(),
  bootId: z.string(),
  connected: z.boolean().meta({ description: 'connected to the hub now' }),
  connSeq: z.number(),
  outbox: z.looseObject({ epoch: z.string() }).meta({ description: "the on-disk outbox: its epoch and what it holds (messages not yet acknowledged by the hub)" }),
  telemetryInterval: z.number().meta({ description: 'seconds between samples' }),
  configVersion: z.number().meta({ description: "the hub's config version applied; 0 before the first" }),
  app: z.object({ up: z.boolean(), sessionActive: z.boolean(), version: z.string().nullable() }),
  peripherals: z.record(z.string(), z.unknown()).meta({ description: "each peripheral's last status" }),
  lastExit: z.unknown().meta({ description: "how the agent's previous run ended" }),
});

const ROUTES: { method: 'get' | 'post'; path: string; summary: string; body?: z.ZodType; response: z.ZodType }[] = [
  { method: 'post', path: '/v1/heartbeat', summary: 'The app is alive (send every ~10 s); the first after silence is an app.up event', body: heartbeatBody, response: ok },
  { method: 'post', path: '/v1/app/down', summary: 'The app is going down now (its crash handler): an app.crash event', body: emptyBody, response: ok },
  { method: 'post', path: '/v1/session/begin', summary: 'A citizen session starts: the update lock (restart-app and updates wait for its end)', body: emptyBody, response: session },
  { method: 'post', path: '/v1/session/end', summary: 'The citizen session is over', body: emptyBody, response: session },
  { method: 'post', path: '/v1/transactions', summary: 'One citizen transaction (a failed one is also a transaction.failed event)', body: transactionBody, response: ok },
  { method: 'post', path: '/v1/reads', summary: "One card read: counted in the peripheral's next sample", body: readBody, response: ok },
  { method: 'get', path: '/v1/status', summary: 'Connection, outbox, session, peripherals, last exit', response: statusShape },
];

/** The OpenAPI 3.1 document of this API, from the schemas that validate it. */
export function localApiDocument(): Record<string, unknown> {
  const schema = (s: z.ZodType, io: 'input' | 'output') => {
    const { $schema: _, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
    return rest;
  };
  const json = (s: z.ZodType | { $ref: string }, description: string) => ({ description, content: { 'application/json': { schema: s instanceof z.ZodType ? schema(s, 'output') : s } } });
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    (paths[r.path] ??= {})[r.method] = {
      summary: r.summary,
      ...(r.body ? { requestBody: { required: false, description: 'JSON; an empty body counts as {}', content: { 'application/json': { schema: schema(r.body, 'input') } } } } : {}),
      responses: {
        200: json(r.response, 'Done'),
        ...(r.body ? { 400: json({ $ref: '#/components/schemas/Error' }, 'Not JSON, or a bad field (each in details)') } : {}),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Kiosk Fleet agent: local API for the kiosk application',
      version: '1',
      description: 'Served by kiosk-fleet-agent on 127.0.0.1 only (KF_LOCAL_API_PORT, default 7070; 0 = off). No authentication: only programs on the terminal can reach it.',
    },
    servers: [{ url: 'http://127.0.0.1:7070' }],
    paths,
    components: { schemas: { Error: schema(errorShape, 'output') } },
  };
}

type AppLike = Pick<Agent, 'appHeartbeat' | 'appDown' | 'beginSession' | 'endSession' | 'recordTransaction' | 'recordRead' | 'status' | 'sessionActive'>;

export function createLocalApi(agent: AppLike): Hono {
  const app = new Hono();

  async function body<T extends z.ZodType>(req: Request, schema: T): Promise<{ ok: true; value: z.output<T> } | { ok: false; res: Response }> {
    let json: unknown = {};
    const text = await req.text();
    if (text.trim()) {
      try {
        json = JSON.parse(text);
      } catch {
        return { ok: false, res: Response.json({ error: { code: 'invalid_json', message: 'body is not JSON' } }, { status: 400 }) };
      }
    }
    const r = schema.safeParse(json);
    if (!r.success) {
      const details = r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
      return { ok: false, res: Response.json({ error: { code: 'invalid_body', message: z.prettifyError(r.error), details } }, { status: 400 }) };
    }
    return { ok: true, value: r.data };
  }

  let doc: string | undefined;
  app.get('/openapi.json', (c) => c.body((doc ??= JSON.stringify(localApiDocument())), 200, { 'content-type': 'application/json' }));

  app.get('/v1/status', (c) => c.json(agent.status()));

  app.post('/v1/heartbeat', async (c) => {
    const b = await body(c.req.raw, heartbeatBody);
    if (!b.ok) return b.res;
    agent.appHeartbeat(b.value.version);
    return c.json({ ok: true });
  });

  app.post('/v1/app/down', async (c) => {
    const b = await body(c.req.raw, emptyBody);
    if (!b.ok) return b.res;
    agent.appDown('crash');
    return c.json({ ok: true });
  });

  app.post('/v1/session/begin', async (c) => {
    const b = await body(c.req.raw, emptyBody);
    if (!b.ok) return b.res;
    agent.beginSession();
    return c.json({ sessionActive: true });
  });

  app.post('/v1/session/end', async (c) => {
    const b = await body(c.req.raw, emptyBody);
    if (!b.ok) return b.res;
    agent.endSession();
    return c.json({ sessionActive: false });
  });

  app.post('/v1/transactions', async (c) => {
    const b = await body(c.req.raw, transactionBody);
    if (!b.ok) return b.res;
    agent.recordTransaction(b.value);
    return c.json({ ok: true });
  });

  app.post('/v1/reads', async (c) => {
    const b = await body(c.req.raw, readBody);
    if (!b.ok) return b.res;
    agent.recordRead(b.value.peripheral, b.value.ok);
    return c.json({ ok: true });
  });

  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((err, c) => c.json({ error: { code: 'internal', message: err.message } }, 500));
  return app;
}

/** Listen on 127.0.0.1 only: the kiosk app is on this machine, and nothing else may reach it. */
export function startLocalApi(app: Hono, port: number): Promise<{ server: ServerType; port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, (info) => {
      resolve({
        server,
        port: info.port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
    server.once('error', reject);
  });
}
