import { describe, expect, it } from 'vitest';
import { run } from './api.ts';

const json = (status: number, body: unknown) => Promise.resolve(new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } }));

describe('run: what a page learns from the hub', () => {
  it('maps a successful body', async () => {
    const r = await run(json(200, { items: [1, 2] }) as Promise<Response & { ok: true; json(): Promise<{ items: number[] }> }>, (j) => j.items.length);
    expect(r).toEqual({ ok: true, data: 2 });
  });

  it('tells a route this hub does not have ("not available yet") from a thing that does not exist', async () => {
    const missingRoute = await run(json(404, { error: { code: 'not-found', message: 'no route GET /api/v1/alerts' } }), () => null);
    const missingThing = await run(json(404, { error: { code: 'not-found', message: 'terminal X not found', details: { id: 'X' } } }), () => null);
    expect(missingRoute.ok || missingRoute.error.routeMissing).toBe(true);
    expect(missingThing.ok || missingThing.error.routeMissing).toBe(false);
    expect(missingThing.ok ? '' : missingThing.error.message).toBe('terminal X not found');
  });

  it('keeps the hub’s error code and message, and survives a body that is not JSON', async () => {
    const conflict = await run(json(409, { error: { code: 'conflict', message: 'stale version' } }), () => null);
    expect(conflict.ok ? null : [conflict.error.status, conflict.error.code, conflict.error.message]).toEqual([409, 'conflict', 'stale version']);
    const text = await run(Promise.resolve(new Response('upstream exploded', { status: 502 })), () => null);
    expect(text.ok ? null : [text.error.code, text.error.message]).toEqual(['http-502', 'upstream exploded']);
    const garbled = await run(Promise.resolve(new Response('{not json', { status: 200 })), () => null);
    expect(garbled.ok ? null : garbled.error.code).toBe('bad-response');
  });

  it('turns a network failure into an error, not a rejection', async () => {
    const r = await run(Promise.reject(new TypeError('fetch failed')), () => null);
    expect(r.ok ? null : [r.error.status, r.error.code]).toEqual([0, 'network']);
  });
});
