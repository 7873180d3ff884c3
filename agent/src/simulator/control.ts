/**
 * The simulator's control API on 127.0.0.1 (`--control-port`), so tests and demos can make things happen on a
 * given terminal now: "card reader of GZ-YX-001-01 faults", "power cut for 20 s". See agent/README.md.
 */
import { Hono } from 'hono';
import * as z from 'zod';
import { code, PERIPHERAL_IDS, type PeripheralId } from '@kiosk-fleet/protocol';
import type { Simulator } from './simulator.ts';
import type { SimTerminal } from './terminal.ts';

const faultBody = z
  .object({
    peripheral: z.enum(PERIPHERAL_IDS).default('idCardReader'),
    status: z.enum(['fault', 'absent', 'degraded']).default('fault'),
    code: code.default('E_NO_RESPONSE'),
    message: z.string().max(512).optional(),
  })
  .strict();
const recoverBody = z.object({ peripheral: z.enum(PERIPHERAL_IDS).default('idCardReader') }).strict();
const secondsBody = z.object({ seconds: z.number().min(0).max(86400).default(10) }).strict();

export function createControlApi(sim: Simulator): Hono {
  const app = new Hono();

  const bad = (err: z.ZodError) =>
    Response.json({ error: { code: 'invalid_body', message: z.prettifyError(err), details: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) } }, { status: 400 });

  async function parse<T extends z.ZodType>(req: Request, schema: T): Promise<z.output<T> | Response> {
    const text = await req.text();
    let json: unknown = {};
    try {
      json = text.trim() ? JSON.parse(text) : {};
    } catch {
      return Response.json({ error: { code: 'invalid_json', message: 'body is not JSON' } }, { status: 400 });
    }
    const r = schema.safeParse(json);
    return r.success ? r.data : bad(r.error);
  }

  const view = (t: SimTerminal) => ({
    id: t.spec.id,
    station: t.spec.station,
    type: t.spec.type,
    connected: t.connected,
    powered: t.powered,
    appUp: t.appUp,
    sessionActive: t.agent.sessionActive,
    bootId: t.agent.bootId,
    peripherals: Object.fromEntries([...t.drivers].map(([id, d]) => [id, d.state])),
    outbox: t.outbox.stats(),
    configVersion: t.agent.appliedConfig?.version ?? 0,
    appVersion: t.appVersion,
    update: { state: t.updater.state, targetVersion: t.updater.targetVersion, failHealthCheck: t.updater.failHealthCheck },
  });

  const terminal = (id: string): SimTerminal | Response =>
    sim.terminals.get(id) ?? Response.json({ error: { code: 'not_found', message: `no simulated terminal ${id}` } }, { status: 404 });

  app.get('/summary', (c) => c.json(sim.summary()));
  app.get('/terminals', (c) => c.json({ items: [...sim.terminals.values()].map(view) }));
  app.get('/terminals/:id', (c) => {
    const t = terminal(c.req.param('id'));
    return t instanceof Response ? t : c.json(view(t));
  });

  app.post('/terminals/:id/fault', async (c) => {
    const t = terminal(c.req.param('id'));
    if (t instanceof Response) return t;
    const b = await parse(c.req.raw, faultBody);
    if (b instanceof Response) return b;
    t.recoverAt.delete(b.peripheral as PeripheralId);
    await t.setPeripheral(b.peripheral, { status: b.status, code: b.code, ...(b.message ? { message: b.message } : {}) }, { sample: true });
    return c.json(view(t));
  });

  app.post('/terminals/:id/recover', async (c) => {
    const t = terminal(c.req.param('id'));
    if (t instanceof Response) return t;
    const b = await parse(c.req.raw, recoverBody);
    if (b instanceof Response) return b;
    t.recoverAt.delete(b.peripheral);
    await t.setPeripheral(b.peripheral, { status: 'ok' }, { sample: true });
    return c.json(view(t));
  });

  const timed = (path: string, act: (t: SimTerminal, ms: number) => void | Promise<void>) =>
    app.post(`/terminals/:id/${path}`, async (c) => {
      const t = terminal(c.req.param('id'));
      if (t instanceof Response) return t;
      const b = await parse(c.req.raw, secondsBody);
      if (b instanceof Response) return b;
      await act(t, b.seconds * 1000);
      return c.json(view(t));
    });
  timed('network-drop', (t, ms) => t.networkDrop(ms));
  timed('power-loss', (t, ms) => t.powerLoss(ms));
  timed('app-crash', (t, ms) => t.appCrash(ms));
  timed('session', (t, ms) => {
    t.sessionUntil = Date.now() + ms;
    t.agent.beginSession();
  });
  app.post('/terminals/:id/sample', async (c) => {
    const t = terminal(c.req.param('id'));
    if (t instanceof Response) return t;
    if (t.powered) await t.agent.sampleNow();
    return c.json(view(t));
  });

  // The simulated updater's lever: make (or stop making) the health check after an install fail.
  app.post('/terminals/:id/update-health', async (c) => {
    const t = terminal(c.req.param('id'));
    if (t instanceof Response) return t;
    const b = await parse(c.req.raw, z.object({ fail: z.boolean() }).strict());
    if (b instanceof Response) return b;
    t.updater.failHealthCheck = b.fail;
    return c.json(view(t));
  });

  app.post('/chaos', async (c) => {
    const b = await parse(c.req.raw, z.object({ chaos: z.number().min(0).max(1000) }).strict());
    if (b instanceof Response) return b;
    sim.chaos = b.chaos;
    return c.json({ chaos: sim.chaos });
  });

  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((err, c) => c.json({ error: { code: 'internal', message: err.message } }, 500));
  return app;
}
