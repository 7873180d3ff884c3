import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../log.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { openFeed, split, type ChangeFeed, type FeedMessage } from './feed.ts';

const log = createLogger('silent');

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('split', () => {
  it('keeps every payload under the NOTIFY limit and loses no item', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => `GZ-YX-${String(i % 100).padStart(3, '0')}-${i}`);
    const out = split('hub-1', 'config', 1, ids);
    expect(out.length).toBeGreaterThan(1);
    for (const p of out) expect(Buffer.byteLength(p)).toBeLessThan(8000);
    expect(out.flatMap((p) => (JSON.parse(p) as { i: string[] }).i)).toEqual(ids);
  });
});

describe.each(TEST_ENGINES)('change feed on %s', (kind) => {
  let t: TestEngine;
  const feeds: ChangeFeed[] = [];
  beforeEach(async () => {
    t = await openTestEngine(kind);
  });
  afterEach(async () => {
    await Promise.all(feeds.splice(0).map((f) => f.close()));
    await t.close();
  });

  async function feed(hubId: string): Promise<ChangeFeed> {
    const f = await openFeed(t.engine, hubId, log, { pingMs: 500, backoffMs: [50, 500] });
    feeds.push(f);
    return f;
  }

  it('delivers a publish to the publishing hub as its own, coalesced within the window', async () => {
    const a = await feed('hub-a');
    const own: FeedMessage[] = [];
    const others: FeedMessage[] = [];
    a.on('config', (m) => void own.push(m), { own: true });
    a.on('config', (m) => void others.push(m));
    await Promise.all([a.publish('config', ['T-1']), a.publish('config', ['T-2', 'T-3'])]);
    await until('own message', () => own.length > 0);
    expect(own).toHaveLength(1);
    expect(own[0]).toMatchObject({ channel: 'config', origin: 'hub-a', own: true, items: ['T-1', 'T-2', 'T-3'] });
    expect(others).toEqual([]);
  });

  it.runIf(kind === 'postgres')('delivers to another hub, and after its LISTEN connection was killed resyncs and hears again', async () => {
    const a = await feed('hub-a');
    const b = await feed('hub-b');
    const heard: string[] = [];
    let resyncs = 0;
    b.on('kick', (m) => {
      expect(m.origin).toBe('hub-a');
      heard.push(...m.items);
    }, { resync: () => void resyncs++ });
    await a.publish('kick', ['T-1']);
    await until('T-1 on hub-b', () => heard.includes('T-1'));

    const pid = b.listenerPid();
    expect(pid).not.toBeNull();
    if (t.engine.kind !== 'postgres') throw new Error('unreachable');
    await t.engine.pg.sql`select pg_terminate_backend(${pid})`;
    await until('resync after the LISTEN connection came back', () => resyncs > 0 && b.listenerPid() !== null);
    expect(b.listenerPid()).not.toBe(pid);
    await a.publish('kick', ['T-2']);
    await until('T-2 on hub-b', () => heard.includes('T-2'));
  });
});
