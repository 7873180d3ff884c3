import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolloutsRoutes } from './routes.ts';
import { openDatabase, type Db } from '../store/db.ts';
import { RolloutService, type RolloutPorts } from './service.ts';
import { SqliteRolloutStore } from './store.sqlite.ts';
import { silentLogger } from './testing.ts';

type ErrorBody = { error: { code: string; message: string } };

let dir: string;
let db: Db;
let app: ReturnType<typeof rolloutsRoutes>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-rollout-routes-'));
  // No rollout exists, so no route here reaches a port: a body that passes its check ends in the service's 404.
  ({ db } = openDatabase(dir));
  const service = await new RolloutService({ store: new SqliteRolloutStore(db), ports: {} as RolloutPorts, logger: silentLogger() }).init();
  app = rolloutsRoutes({ service, requireAdmin: async (_c, next) => next() });
});

afterAll(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function post(url: string, body?: string): Promise<{ status: number; json: ErrorBody }> {
  const res = await app.request(url, { method: 'POST', ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}) });
  return { status: res.status, json: (await res.json()) as ErrorBody };
}

describe('rollout routes check their bodies (finding F11-8)', () => {
  it('JSON null, numbers, strings, arrays and unknown fields on pause, resume and abort are a 400 with a reason, not a 500', async () => {
    for (const action of ['pause', 'resume', 'abort']) {
      for (const body of ['null', '5', '"x"', 'true', '[]', '[null]', '{"why":"x"}']) {
        const r = await post(`/r-nope/${action}`, body);
        expect(r.status, `${action} ${body}`).toBe(400);
        expect(r.json.error.code).toBe('invalid-request');
        expect(r.json.error.message.length).toBeGreaterThan(0);
      }
      const notJson = await post(`/r-nope/${action}`, '{"message": ');
      expect(notJson.status).toBe(400);
      expect(notJson.json.error.message).toBe('body is not JSON');
    }
    // The reason names the field that is wrong.
    const typed = await post('/r-nope/pause', '{"message":7}');
    expect(typed.status).toBe(400);
    expect(typed.json.error.message).toMatch(/^message: /);
    expect((await post('/r-nope/pause', JSON.stringify({ message: 'x'.repeat(513) }))).status).toBe(400);
  });

  it('no body, an empty one, `{}` and a pause message are accepted and reach the rollout (unknown here: 404)', async () => {
    for (const action of ['pause', 'resume', 'abort']) {
      for (const body of [undefined, '', '  ', '{}']) {
        const r = await post(`/r-nope/${action}`, body);
        expect(r.status, `${action} ${String(body)}`).toBe(404);
        expect(r.json.error.code).toBe('not-found');
      }
    }
    expect((await post('/r-nope/pause', '{"message":"lunch rush"}')).status).toBe(404);
  });

  it('creating a rollout from a JSON null, a number or an array is a 400 naming the body', async () => {
    for (const body of ['null', '5', '[]', '"x"']) {
      const r = await post('/', body);
      expect(r.status, body).toBe(400);
      expect(r.json.error).toMatchObject({ code: 'invalid-request', message: expect.stringContaining('(body)') });
    }
  });
});
