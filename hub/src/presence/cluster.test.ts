/**
 * Presence with several hubs on one database (issue 19), at the store level on both engines: two "hubs" are two
 * presence services (each its own writer and state cache) with their own hub ids on one database. What an operator
 * would notice: a terminal that moved to hub B stays online when hub A's old connection ends late; a dead hub's
 * terminals go offline with reason `hub-lost` unless they are connected elsewhere; a hub stopping takes offline only
 * what it still holds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineKind } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createIngestStore, ingestHooks } from '../ingest/store.ts';
import { BatchWriter, type Change } from '../ingest/writer.ts';
import { createLogger } from '../log.ts';
import { createMetrics } from '../metrics.ts';
import { PresenceService } from './service.ts';
import { createPresenceStore } from './store.ts';

const FLAP = { flapTransitions: 20, flapWindowMs: 600_000 };

interface FakeHub {
  presence: PresenceService;
  writer: BatchWriter;
  changes: Change[];
}

function hubOn(t: TestEngine, hubId: string): FakeHub {
  const log = createLogger('silent');
  const metrics = createMetrics();
  const changes: Change[] = [];
  const store = createIngestStore(t.engine, FLAP);
  const writer = new BatchWriter(t.engine, { batchSize: 500, flushMs: 5, queueLimit: 10_000 }, metrics, log, (c) => changes.push(...c), ingestHooks(store));
  return { presence: new PresenceService(store, createPresenceStore(t.engine), writer, { ...FLAP, hubId }, metrics, log), writer, changes };
}

describe.each(TEST_ENGINES)('presence across hubs on %s', (kind: EngineKind) => {
  let t: TestEngine;
  let a: FakeHub;
  let b: FakeHub;
  const q = async <T = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<T[]> =>
    t.engine.kind === 'sqlite' ? (t.engine.db.prepare(text.replace(/\$\d+/g, '?')).all(...params) as T[]) : ((await t.engine.pg.sql.unsafe(text, params as never[])) as unknown as T[]);
  const exec = async (text: string, ...params: unknown[]) => {
    if (t.engine.kind === 'sqlite') t.engine.db.prepare(text.replace(/\$\d+/g, '?')).run(...params);
    else await t.engine.pg.sql.unsafe(text, params as never[]);
  };
  const row = async (id: string) =>
    (await q<{ presence: string; presence_reason: string; conn_hub: string | null }>('SELECT presence, presence_reason, conn_hub FROM terminal_state WHERE terminal_id = $1', id))[0];
  const terminal = (id: string) => exec("INSERT INTO terminals (id, type, serial, station_id, secret_hash, created_at) VALUES ($1, 'id-card', $2, 'GZ-T-001', 'x', 0)", id, `S-${id}`);

  beforeAll(async () => {
    t = await openTestEngine(kind);
    a = hubOn(t, 'hub-a');
    b = hubOn(t, 'hub-b');
  });
  afterAll(async () => {
    await a?.writer.close();
    await b?.writer.close();
    await t?.close();
  });

  it("hub A's late close after the terminal moved to hub B leaves it online; B's own close takes it offline", async () => {
    const id = 'GZ-T-001-01';
    await terminal(id);
    const genA = a.presence.nextGeneration();
    await a.presence.connected(id, false, Date.now(), '10.0.0.1', genA);
    expect(await row(id)).toMatchObject({ presence: 'online', presence_reason: 'connected', conn_hub: 'hub-a' });
    // the terminal reconnects through hub B while hub A still holds the old connection
    const genB = b.presence.nextGeneration();
    await b.presence.connected(id, false, Date.now(), '10.0.0.1', genB);
    expect(await row(id)).toMatchObject({ presence: 'online', presence_reason: 'takeover', conn_hub: 'hub-b' });
    // A notices its old connection's end (a close, a keepalive timeout): not the row's connection any more
    await a.presence.disconnected(id, 'connection-lost', Date.now(), genA);
    expect(await row(id)).toMatchObject({ presence: 'online', conn_hub: 'hub-b' });
    expect(a.changes.filter((c) => c.terminalId === id && (c.data as { state?: string }).state === 'offline')).toEqual([]);
    // the same hub's earlier connection ending late is ignored as well
    await b.presence.disconnected(id, 'connection-lost', Date.now(), genB - 1);
    expect((await row(id))?.presence).toBe('online');
    await b.presence.disconnected(id, 'clean', Date.now(), genB);
    expect(await row(id)).toMatchObject({ presence: 'offline', presence_reason: 'clean', conn_hub: 'hub-b' });
  });

  it('a connection that ends in the same batch it began in takes the terminal offline', async () => {
    const id = 'GZ-T-001-02';
    await terminal(id);
    const gen = a.presence.nextGeneration();
    await Promise.all([a.presence.connected(id, false, Date.now(), null, gen), a.presence.disconnected(id, 'connection-lost', Date.now(), gen)]);
    expect(await row(id)).toMatchObject({ presence: 'offline', presence_reason: 'connection-lost', conn_hub: 'hub-a' });
  });

  it("a dead hub's terminals go offline with reason hub-lost, unless connected elsewhere; once; a lapsed hub reclaims its own", async () => {
    const [t1, t2, t3] = ['GZ-T-001-11', 'GZ-T-001-12', 'GZ-T-001-13'];
    for (const id of [t1, t2, t3]) await terminal(id);
    const g1 = a.presence.nextGeneration();
    await a.presence.connected(t1, false, Date.now(), null, g1);
    await a.presence.connected(t2, false, Date.now(), null, a.presence.nextGeneration());
    await b.presence.connected(t3, false, Date.now(), null, b.presence.nextGeneration());
    // t2 moved to hub B before hub A died
    await b.presence.connected(t2, false, Date.now(), null, b.presence.nextGeneration());
    b.changes.length = 0;
    expect(await b.presence.hubLost(['hub-a'])).toBe(1);
    expect(await row(t1)).toMatchObject({ presence: 'offline', presence_reason: 'hub-lost', conn_hub: 'hub-a' });
    expect((await row(t2))?.presence).toBe('online');
    expect((await row(t3))?.presence).toBe('online');
    expect(b.changes.filter((c) => c.type === 'presence').map((c) => [c.terminalId, c.data])).toEqual([[t1, { state: 'offline', reason: 'hub-lost', flapping: false }]]);
    const history = await q<{ from_state: string; to_state: string; reason: string }>(
      'SELECT from_state, to_state, reason FROM presence_transitions WHERE terminal_id = $1 ORDER BY id DESC LIMIT 1',
      t1,
    );
    expect(history).toEqual([{ from_state: 'online', to_state: 'offline', reason: 'hub-lost' }]);
    // every hub may run the reaper: the second run finds nothing
    expect(await a.presence.hubLost(['hub-a'])).toBe(0);
    // hub A was only stalled: its lease lapsed, its connection is still the row's, so it is online again
    await a.presence.reclaim([{ terminalId: t1, gen: g1 }, { terminalId: t2, gen: g1 }]);
    expect(await row(t1)).toMatchObject({ presence: 'online', conn_hub: 'hub-a' });
    expect(await row(t2)).toMatchObject({ presence: 'online', conn_hub: 'hub-b' });
  });

  it("a hub stopping takes offline only the terminals whose rows still name it; a hub starting leaves other hubs' terminals alone", async () => {
    const [t1, t2] = ['GZ-T-001-21', 'GZ-T-001-22'];
    for (const id of [t1, t2]) await terminal(id);
    await a.presence.connected(t1, false, Date.now(), null, a.presence.nextGeneration());
    await a.presence.connected(t2, false, Date.now(), null, a.presence.nextGeneration());
    await b.presence.connected(t2, false, Date.now(), null, b.presence.nextGeneration());
    await a.presence.hubStopping([t1, t2]);
    expect(await row(t1)).toMatchObject({ presence: 'offline', presence_reason: 'hub-restart' });
    expect(await row(t2)).toMatchObject({ presence: 'online', conn_hub: 'hub-b' });
    await a.presence.hubStarted();
    // PostgreSQL: hub A's start is none of hub B's business. SQLite: one hub per data dir, whatever was online was its.
    expect((await row(t2))?.presence).toBe(kind === 'postgres' ? 'online' : 'offline');
  });
});
