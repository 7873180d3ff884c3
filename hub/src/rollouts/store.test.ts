/**
 * The RolloutStore contract on both engines: what the service relies on after a restart (every rollout back, oldest
 * first, spec and state exactly as saved), a save that rewrites the state but never the spec, and one store
 * answering for another (two hubs on one database).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createRollout, pause, type FleetTerminal, type RolloutSpec } from './engine.ts';
import type { RolloutRecord } from './service.ts';
import { createRolloutStore, type RolloutStore } from './store.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 11, 1, 8);
const fleet: FleetTerminal[] = ['GZ-TH-001', 'GZ-TH-002'].flatMap((st) =>
  [1, 2, 3].map((i) => ({ id: `${st}-0${i}`, type: i === 3 ? 'endorsement' : 'id-card', ancestors: [st, 'GZ-TH', 'GZ'] })),
);

function record(id: string, createdAt: number, by = 'admin'): RolloutRecord {
  const spec: RolloutSpec = {
    id,
    release: { id: 'app-3.3.0', version: '3.3.0', terminalTypes: ['id-card'] },
    scope: { nodeIds: ['GZ'] },
    waves: [
      { kind: 'pilot', name: '试点 pilot', stations: ['GZ-TH-001'] },
      { kind: 'share', name: 'half', nodeId: 'GZ-TH', ratio: 0.5 },
      { kind: 'rest', name: 'city' },
    ],
    gate: { successRatio: 0.95, soakMs: 30 * MIN, failureRateTolerance: 0.05 },
    maxInFlight: 10,
    inFlightTimeoutMs: 60 * MIN,
    waveTimeoutMs: null,
    urgent: false,
  };
  return { v: 1, spec, state: createRollout(spec, fleet, createdAt).state, createdBy: by };
}

describe.each(TEST_ENGINES)('RolloutStore on %s', (kind) => {
  let t: TestEngine;
  let store: RolloutStore;
  beforeEach(async () => {
    t = await openTestEngine(kind);
    store = createRolloutStore(t.engine);
  });
  afterEach(async () => {
    await t.close();
  });

  it('gives back every rollout exactly as saved, oldest first (ties by id), and nothing for an unknown id', async () => {
    const b = record('r-b', T0 + MIN);
    const a = record('r-a', T0 + MIN, 'zhangwei');
    const old = record('r-z', T0);
    for (const r of [b, a, old]) await store.save(r);
    expect(await store.load('r-a')).toEqual(a);
    // byte-for-byte: what the API serves from a record is the same on both engines
    expect(JSON.stringify(await store.load('r-b'))).toBe(JSON.stringify(b));
    expect(await store.load('r-nope')).toBeUndefined();
    expect((await store.list()).map((r) => r.spec.id)).toEqual(['r-z', 'r-a', 'r-b']);
    expect(await store.list()).toEqual([old, a, b]);
  });

  it('a second save rewrites the state (and what is derived from it), never the spec or who created it', async () => {
    const r = record('r-1', T0);
    await store.save(r);
    const paused = pause(r.state, T0 + 5 * MIN, '节前暂停 / paused before the holiday').state;
    // a caller that hands in another spec or creator by mistake does not change what was fixed at creation
    await store.save({ ...r, spec: { ...r.spec, maxInFlight: 99 }, state: paused, createdBy: 'someone-else' });
    const back = (await store.load('r-1'))!;
    expect(back.state).toEqual(paused);
    expect(back.state.status).toBe('paused');
    expect(back.spec).toEqual(r.spec);
    expect(back.createdBy).toBe('admin');
    expect(await store.list()).toHaveLength(1);
  });

  it('another hub on the same database sees a save at once', async () => {
    const other = createRolloutStore(t.engine);
    const r = record('r-2', T0);
    await store.save(r);
    expect(await other.load('r-2')).toEqual(r);
    expect(await other.list()).toEqual([r]);
  });

  it('exclusive: two hubs changing one rollout at once take turns (neither overwrites the other), other rollouts do not wait', async () => {
    const other = createRolloutStore(t.engine);
    await store.save(record('r-3', T0));
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const first = store.exclusive('r-3', async () => {
      order.push('a in');
      entered();
      await held;
      order.push('a out');
    });
    await inside;
    const second = other.exclusive('r-3', async () => {
      order.push('b');
    });
    // a different rollout is not held up by r-3's turn
    await other.exclusive('r-4', async () => {
      order.push('r-4');
    });
    await new Promise((r) => setTimeout(r, 100));
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(kind === 'postgres' ? ['a in', 'r-4', 'a out', 'b'] : ['a in', 'b', 'r-4', 'a out']);
  });
});
