/**
 * The local API for the kiosk application, on 127.0.0.1 only (see agent/README.md, "Local API").
 *
 * The app reports its heartbeat, citizen sessions (the update lock: nothing restarts the app mid-session), each
 * transaction and each card read. Bodies are validated at this boundary; errors use the hub's error shape.
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
