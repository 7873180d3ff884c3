import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLocalApi, startLocalApi } from './local-api.ts';
import { SimulatedDriver } from './peripherals/simulated.ts';
import { testAgent } from './test-support/agent.ts';
import { MemoryOutbox } from './outbox/memory.ts';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function post(app: ReturnType<typeof createLocalApi>, path: string, body?: unknown): Promise<Response> {
  return Promise.resolve(app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) }));
}

describe('local API', () => {
  it('session begin/end is the update lock; transactions, reads and heartbeats land in the next sample', async () => {
    const outbox = new MemoryOutbox({ maxBytes: 1e7, maxAgeMs: 1e9 });
    const reader = new SimulatedDriver();
    // an unreachable hub: everything stays in the outbox, where the test reads it
    const agent = testAgent({
      hubUrl: 'mqtt://127.0.0.1:1',
      outbox,
      monitorApp: true,
      appHeartbeatTimeout: 0.3,
      defaults: { telemetryInterval: 3600, logLevel: 'info', peripherals: { idCardReader: { driver: 'simulated' } } },
      driverFactory: () => reader,
    });
    stops.push(() => agent.stop());
    await agent.start();
    const app = createLocalApi(agent);
    expect((await post(app, '/v1/heartbeat', { version: '3.2.1' })).status).toBe(200);
    expect((await post(app, '/v1/session/begin')).status).toBe(200);
    expect(agent.sessionActive).toBe(true);
    let released = false;
    const wait = agent.waitForNoSession(Date.now() + 10_000).then(() => (released = true));
    await post(app, '/v1/transactions', { service: 'id-card-collection', ok: true });
    await post(app, '/v1/transactions', { service: 'id-card-collection', ok: false, code: 'E_PRINT' });
    await post(app, '/v1/reads', { ok: true });
    await post(app, '/v1/reads', { ok: false });
    await new Promise((r) => setTimeout(r, 50));
    expect(released).toBe(false);
    expect((await post(app, '/v1/session/end')).status).toBe(200);
    await wait;
    expect(released).toBe(true);

    await agent.sampleNow();
    const telemetry = outbox.pending(0, 100).filter((e) => e.kind === 'telemetry').map((e) => JSON.parse(e.payload));
    expect(telemetry.at(-1)).toMatchObject({
      app: { up: true, version: '3.2.1', sessionActive: false, transactionsOk: 1, transactionsFailed: 1 },
      peripherals: { idCardReader: { status: 'ok', reads: 2, failedReads: 1 } },
    });
    const events = outbox.pending(0, 100).filter((e) => e.kind === 'events').map((e) => JSON.parse(e.payload).kind);
    expect(events).toEqual(expect.arrayContaining(['app.up', 'transaction.failed']));

    // the app stops sending heartbeats: an event and a status
    await new Promise((r) => setTimeout(r, 700));
    const later = outbox.pending(0, 100).filter((e) => e.kind === 'events').map((e) => JSON.parse(e.payload).kind);
    expect(later).toContain('app.down');
    expect((await (await app.request('/v1/status')).json()) as object).toMatchObject({ app: { up: false } });
  });

  it('answers bad bodies with 400 and the path of the bad field', async () => {
    const agent = testAgent({ hubUrl: 'mqtt://127.0.0.1:1' });
    const app = createLocalApi(agent);
    const r = await post(app, '/v1/transactions', { service: 'x', ok: 'yes' });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { error: { code: string; details: { path: string }[] } };
    expect(body.error.code).toBe('invalid_body');
    expect(body.error.details.map((d) => d.path)).toContain('ok');
    expect((await post(app, '/v1/session/begin', '{oops')).status).toBe(400);
    expect((await post(app, '/v1/reads', { peripheral: 'toaster', ok: true })).status).toBe(400);
    expect((await app.request('/v1/nothing')).status).toBe(404);
  });

  it('listens on 127.0.0.1 only', async () => {
    const agent = testAgent({ hubUrl: 'mqtt://127.0.0.1:1' });
    const api = await startLocalApi(createLocalApi(agent), 0);
    stops.push(api.close);
    const addr = api.server.address();
    expect(typeof addr === 'object' && addr?.address).toBe('127.0.0.1');
    const r = await fetch(`http://127.0.0.1:${api.port}/v1/status`);
    expect(((await r.json()) as { terminalId: string }).terminalId).toBe('GZ-YX-001-01');
  });

  it('serves its OpenAPI document, which is the committed agent/openapi.json and lists exactly its routes', async () => {
    const agent = testAgent({ hubUrl: 'mqtt://127.0.0.1:1', outbox: new MemoryOutbox({ maxBytes: 1e7, maxAgeMs: 1e9 }), monitorApp: true });
    stops.push(() => agent.stop());
    const api = await startLocalApi(createLocalApi(agent), 0);
    stops.push(api.close);
    const res = await fetch(`http://127.0.0.1:${api.port}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const served = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    const committed: unknown = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '..', 'openapi.json'), 'utf8'));
    // a difference means the API changed: `pnpm --filter @kiosk-fleet/agent run openapi` and commit agent/openapi.json
    expect(served).toEqual(committed);
    expect(served.openapi).toBe('3.1.0');
    const documented = Object.entries(served.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    const routes = createLocalApi(agent).routes.filter((r) => r.path !== '/openapi.json' && r.method !== 'ALL').map((r) => `${r.method} ${r.path}`);
    expect(documented.sort()).toEqual(routes.sort());
  });
});
