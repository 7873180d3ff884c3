/**
 * Hub leases, the hubs list and the dead-hub reaper. The store and the reaper on both engines (two hubs' rows on one
 * database); the API on a real hub (a cluster of one on SQLite): /health and /metrics name the hub, /api/v1/hubs lists
 * it alive with its connected terminals, for operators who see the city.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operator } from '../auth/testing.ts';
import type { EngineKind } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createIngestStore, ingestHooks } from '../ingest/store.ts';
import { BatchWriter } from '../ingest/writer.ts';
import { createLogger } from '../log.ts';
import { createMetrics } from '../metrics.ts';
import { PresenceService } from '../presence/service.ts';
import { createPresenceStore } from '../presence/store.ts';
import { startTestHub, until, type TestHub } from '../test-support.ts';
import { JOBS } from '../cluster/leader.ts';
import { HubReaper } from './reaper.ts';
import { HUB_VERSION, HubRegistry } from './registry.ts';
import { createHubStore, type HubStore } from './store.ts';

const FLAP = { flapTransitions: 20, flapWindowMs: 600_000 };
const log = createLogger('silent');

describe.each(TEST_ENGINES)('hub leases and the reaper on %s', (kind: EngineKind) => {
  let t: TestEngine;
  let store: HubStore;
  let writer: BatchWriter;
  let presence: PresenceService;
  const q = async <T = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<T[]> =>
    t.engine.kind === 'sqlite' ? (t.engine.db.prepare(text.replace(/\$\d+/g, '?')).all(...params) as T[]) : ((await t.engine.pg.sql.unsafe(text, params as never[])) as unknown as T[]);
  const exec = async (text: string, ...params: unknown[]) => {
    if (t.engine.kind === 'sqlite') t.engine.db.prepare(text.replace(/\$\d+/g, '?')).run(...params);
    else await t.engine.pg.sql.unsafe(text, params as never[]);
  };
  const presenceOf = async (id: string) => (await q<{ presence: string; presence_reason: string }>('SELECT presence, presence_reason FROM terminal_state WHERE terminal_id = $1', id))[0];

  beforeAll(async () => {
    t = await openTestEngine(kind);
    store = createHubStore(t.engine);
    const ingest = createIngestStore(t.engine, FLAP);
    const metrics = createMetrics();
    writer = new BatchWriter(t.engine, { batchSize: 500, flushMs: 5, queueLimit: 10_000 }, metrics, log, () => undefined, ingestHooks(ingest));
    presence = new PresenceService(ingest, createPresenceStore(t.engine), writer, { ...FLAP, hubId: 'hub-1' }, metrics, log);
  });
  afterAll(async () => {
    await writer?.close();
    await t?.close();
  });

  it('a renewal upserts the row and says when the previous lease ended; a clean stop ends the lease; the list says who is alive', async () => {
    const base = { version: '1.2.3', startedAt: 1000, connectedTerminals: 0, leaderOf: [] as string[] };
    const first = await store.renew({ ...base, id: 'hub-1', leaseMs: 60_000, connectedTerminals: 3, leaderOf: ['rollouts', 'reaper'] });
    expect(first.previous).toBeNull();
    expect(Math.abs(first.now - Date.now())).toBeLessThan(60_000);
    const again = await store.renew({ ...base, id: 'hub-1', leaseMs: 60_000, connectedTerminals: 4, leaderOf: ['reaper'] });
    expect(again.previous).toBe(first.now + 60_000);
    await store.renew({ ...base, id: 'hub-2', leaseMs: 60_000 });
    expect(await store.list()).toEqual([
      { id: 'hub-1', version: '1.2.3', startedAt: 1000, leaseExpiresAt: again.now + 60_000, connectedTerminals: 4, leaderOf: ['reaper'], alive: true },
      { id: 'hub-2', version: '1.2.3', startedAt: 1000, leaseExpiresAt: expect.any(Number) as number, connectedTerminals: 0, leaderOf: [], alive: true },
    ]);
    expect(await store.dead()).toEqual([]);
    await store.expire('hub-2');
    expect((await store.list()).map((h) => [h.id, h.alive])).toEqual([
      ['hub-1', true],
      ['hub-2', false],
    ]);
    expect((await store.dead()).map((h) => h.id)).toEqual(['hub-2']);
    // a day later the row of a hub that never came back is forgotten
    expect(await store.prune(24 * 3600_000)).toBe(0);
    await exec('UPDATE hubs SET lease_expires_at = $1 WHERE id = $2', Date.now() - 25 * 3600_000, 'hub-2');
    expect(await store.prune(24 * 3600_000)).toBe(1);
    expect((await store.list()).map((h) => h.id)).toEqual(['hub-1']);
  });

  it("the reaper takes a dead hub's terminals offline (hub-lost) once, never its own hub's, and only when it should run", async () => {
    for (const id of ['GZ-T-001-01', 'GZ-T-001-02']) {
      await exec("INSERT INTO terminals (id, type, serial, station_id, secret_hash, created_at) VALUES ($1, 'id-card', $2, 'GZ-T-001', 'x', 0)", id, `S-${id}`);
    }
    // hub-9 served GZ-T-001-01 and died (its lease ran out); hub-1 (this one) serves GZ-T-001-02
    await exec("INSERT INTO terminal_state (terminal_id, presence, presence_reason, conn_hub, conn_gen) VALUES ('GZ-T-001-01', 'online', 'connected', 'hub-9', 1)");
    await presence.connected('GZ-T-001-02', false, Date.now(), null, presence.nextGeneration());
    await store.renew({ id: 'hub-9', version: '1', startedAt: 0, leaseMs: 1, connectedTerminals: 1, leaderOf: [] });
    await store.expire('hub-1');
    await until(async () => (await store.dead()).some((h) => h.id === 'hub-9'));
    let leader = false;
    const reaper = new HubReaper(store, presence, log, { hubId: 'hub-1', shouldRun: () => leader });
    expect(await reaper.runReaper()).toBe(0);
    expect((await presenceOf('GZ-T-001-01'))?.presence).toBe('online');
    leader = true;
    expect(await reaper.runReaper()).toBe(1);
    expect(await presenceOf('GZ-T-001-01')).toEqual({ presence: 'offline', presence_reason: 'hub-lost' });
    // hub-1's own lease ran out too (a stall), yet it never reaps itself
    expect((await presenceOf('GZ-T-001-02'))?.presence).toBe('online');
    expect(await reaper.runReaper()).toBe(0);
    // another hub's reaper (every hub may run one) finds nothing left once hub-1 renewed its lease
    await store.renew({ id: 'hub-1', version: '1', startedAt: 0, leaseMs: 60_000, connectedTerminals: 1, leaderOf: [] });
    expect(await new HubReaper(store, presence, log, { hubId: 'hub-2' }).runReaper()).toBe(0);
  });

  it('the registry renews every fifth of the lease and ends the lease at stop', async () => {
    let connected = 5;
    let lapsed = 0;
    const reg = new HubRegistry(store, { id: 'hub-r', leaseMs: 1000, connectedTerminals: () => connected, leaderOf: () => ['reaper'], onLapsed: () => lapsed++ }, log);
    await reg.start();
    const row = async () => (await store.list()).find((h) => h.id === 'hub-r');
    expect(await row()).toMatchObject({ alive: true, connectedTerminals: 5, leaderOf: ['reaper'] });
    connected = 7;
    await until(async () => (await row())?.connectedTerminals === 7);
    expect(lapsed).toBe(0);
    // the lease ran out under it (a stall longer than the lease looks the same): the next renewal says so
    await store.expire('hub-r');
    await until(() => lapsed > 0);
    expect(await row()).toMatchObject({ alive: true });
    await reg.stop();
    expect(await row()).toMatchObject({ alive: false });
  }, 30_000);
});

describe('the hubs API', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub({ hubId: 'hub-api-1', hubs: { leaseMs: 1000 } });
  }, 60_000);
  afterAll(() => hub?.stop());

  it('/health and /metrics name the hub; /hubs lists it alive with its connected terminals', async () => {
    const health = (await (await hub.api('/api/v1/health')).json()) as { hubId: string };
    expect(health.hubId).toBe('hub-api-1');
    expect(await hub.metric('kf_hub_info', { hub_id: 'hub-api-1', version: HUB_VERSION })).toBe(1);
    const t = await hub.terminal('GZ-T-001-31');
    const c = await hub.connect(t.id, t.secret);
    const list = async () => ((await (await hub.api('/api/v1/hubs')).json()) as { items: Record<string, unknown>[] }).items;
    await until(async () => (await list())[0]?.connectedTerminals === 1);
    const [only, ...rest] = await list();
    expect(rest).toEqual([]);
    // alone on its database, it leads every job (cluster/leader.ts)
    expect(only).toMatchObject({ id: 'hub-api-1', alive: true, connectedTerminals: 1, leaderOf: [...JOBS] });
    expect(Date.parse(only!.leaseExpiresAt as string)).toBeGreaterThan(Date.now() - 5000);
    await c.endAsync();
  }, 30_000);

  it('operators who see the city read it; those bound below the city do not find it', async () => {
    await hub.terminal('GZ-T-001-32');
    const viewer = await operator(hub, 'city-viewer', 'viewer', 'GZ');
    expect((await viewer.api('/api/v1/hubs')).status).toBe(200);
    const tech = await operator(hub, 'district-tech', 'technician', 'GZ-T');
    expect((await tech.api('/api/v1/hubs')).status).toBe(404);
  }, 60_000);
});
