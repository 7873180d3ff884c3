/**
 * The read side's contract: the same rows written into every engine here (test-fleet.ts) give the same answers,
 * byte for byte as JSON, to every QueryStore method; SQLite's answers are also checked against the fixture where a
 * user would notice (which terminals a filter shows, pages that add up, every sample once). Where PostgreSQL is not
 * installed only SQLite runs (TEST_ENGINES).
 */
import { isUnderNode } from '@kiosk-fleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineKind } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createQueryStore } from './index.ts';
import { BUCKET_FIELDS, type BucketField, type QueryStore, type TerminalFilter } from './store.ts';
import { DAY, fillFleet, HISTORY_FROM, HOUR, insertRows, NOW, type Fleet } from './test-fleet.ts';

interface Open {
  kind: EngineKind;
  t: TestEngine;
  q: QueryStore;
}

let open: Open[] = [];
let fleet: Fleet;

beforeAll(async () => {
  open = [];
  for (const kind of TEST_ENGINES) {
    const t = await openTestEngine(kind);
    open.push({ kind, t, q: createQueryStore(t.engine) });
    fleet = await fillFleet(t.engine);
  }
}, 120_000);

afterAll(async () => {
  for (const o of open) await o.t.close();
});

/** Asks every engine; each answer must equal SQLite's as JSON (key order and number formatting included). */
async function same<T>(what: string, ask: (q: QueryStore) => Promise<T>): Promise<T> {
  const answers: T[] = [];
  for (const o of open) answers.push(await ask(o.q));
  const want = JSON.stringify(answers[0]);
  for (let i = 1; i < answers.length; i++) {
    const got = answers[i];
    // The first row that differs, rather than two screens of JSON.
    if (Array.isArray(got) && Array.isArray(answers[0])) {
      const a = answers[0] as unknown[];
      const j = got.findIndex((x, k) => JSON.stringify(x) !== JSON.stringify(a[k]));
      if (j !== -1) expect(JSON.stringify(got[j]), `${what} on ${open[i]!.kind}, row ${j}`).toBe(JSON.stringify(a[j]));
    }
    expect(JSON.stringify(got), `${what} on ${open[i]!.kind}`).toBe(want);
  }
  return answers[0]!;
}

describe(`read queries on ${TEST_ENGINES.join(' and ')}: the same answers`, () => {
  it('the list: node and scope (case-sensitive, prefix siblings apart), type, presence, faults, text, state; pages that add up', async () => {
    const types = [...new Set(fleet.terminals.map((t) => t.type))].slice(0, 2);
    const extras: Partial<TerminalFilter>[] = [
      {},
      { presence: 'online' },
      { presence: 'unknown' },
      { fault: 'any' },
      { fault: 'camera' },
      { fault: 'touchscreen' },
      ...types.map((type) => ({ type })),
      { q: 'sn' },
      { q: '%' },
      { q: '_' },
      { q: 'yx-001-3A' },
      { q: 'abc\\' },
      { state: 'all' },
      { state: 'decommissioned' },
      { presence: 'online', fault: 'any' },
    ];
    let pages = 0;
    for (const node of [undefined, ...fleet.nodes]) {
      for (const scope of [null, 'GZ-YX']) {
        for (const extra of extras) {
          const all = await same('list', (q) => q.terminals({ node, scope, ...extra, limit: 1000 }));
          if (Object.keys(extra).length === 0) {
            const want = fleet.terminals
              .filter((t) => t.state === 'active' && (!node || isUnderNode(t.station, node)) && (!scope || isUnderNode(t.station, scope)))
              .map((t) => t.id)
              .sort();
            expect(all.map((t) => t.id)).toEqual(want);
          }
          let after: string | undefined;
          const paged: string[] = [];
          for (;;) {
            const page = await same('page', (q) => q.terminals({ node, scope, ...extra, after, limit: 3 }));
            pages++;
            paged.push(...page.map((t) => t.id));
            if (page.length < 3) break;
            after = page[page.length - 1]!.id;
          }
          expect(paged).toEqual(all.map((t) => t.id));
        }
      }
    }
    expect(pages).toBeGreaterThan(300);
    // The text search ignores the case of ASCII letters, as SQLite's LIKE does, and takes % _ \ literally.
    expect((await same('q', (q) => q.terminals({ q: 'yx-001-3A', limit: 100 }))).map((t) => t.id)).toEqual(['GZ-YX-001-3a', 'gz-YX-001-3a']);
    expect((await same('q', (q) => q.terminals({ q: '%', state: 'all', limit: 100 }))).every((t) => t.serial.includes('%'))).toBe(true);
  }, 60_000);

  it('rows by ids, detail, stream counters, child nodes, terminals under a node', async () => {
    const ids = fleet.terminals.map((t) => t.id);
    await same('byIds', (q) => q.terminalsByIds([ids[5]!, ids[0]!, ids[9]!, 'NOPE']));
    expect(await same('byIds empty', (q) => q.terminalsByIds([]))).toEqual([]);
    for (const id of [...ids, 'NOPE']) await same(`detail ${id}`, (q) => q.terminal(id));
    expect((await same('detail', (q) => q.terminal(fleet.busy[0]!)))?.lastAddress).toMatch(/^10\./);
    for (const id of fleet.busy) expect((await same(`streams ${id}`, (q) => q.streams(id))).length).toBe(3);
    for (const id of [...fleet.nodes, 'NOPE']) await same(`children ${id}`, (q) => q.children(id));
    for (const id of fleet.nodes) {
      const under = await same(`under ${id}`, async (q) => (await q.underNode(id)).sort((a, b) => (a.id < b.id ? -1 : 1)));
      expect(under.map((t) => t.id)).toEqual(fleet.terminals.filter((t) => t.state === 'active' && isUnderNode(t.station, id)).map((t) => t.id).sort());
    }
  }, 60_000);

  it('raw samples in pages by cursor: every sample once, decoded alike', async () => {
    for (const id of fleet.busy) {
      let after = null as Parameters<QueryStore['telemetryRaw']>[3];
      const seen: string[] = [];
      for (;;) {
        const page = await same(`raw ${id}`, (q) => q.telemetryRaw(id, NOW - 30 * HOUR, NOW, after, 400));
        seen.push(...page.map((r) => `${r.epoch}/${r.seq}`));
        if (page.length < 400) break;
        after = page[page.length - 1]!.cursor;
      }
      expect(seen.length).toBeGreaterThan(2500);
      expect(new Set(seen).size).toBe(seen.length);
    }
  }, 60_000);

  it('charts: buckets of raw samples (kept ones and fresh ones), hourly rollups, a late sample', async () => {
    const fieldLists: BucketField[][] = [[...BUCKET_FIELDS], ['cpuAvg', 'memPctAvg', 'diskPctAvg', 'tempAvg'], ['samples'], ['tempMin', 'memPctMax']];
    const buckets = [60_000, 300_000, 900_000, HOUR, DAY];
    const ask = async () => {
      for (const id of fleet.busy) {
        await same(`buckets ${id}`, (q) => q.telemetryBuckets(id, NOW - 24 * HOUR, NOW, 300_000, 1000));
        for (const b of buckets) {
          for (const fields of fieldLists) {
            await same(`chart ${id} ${b} ${fields.join(',')}`, (q) => q.chartRows(id, NOW - 24 * HOUR, NOW, b, fields, 1000));
            await same(`chart ${id} ${b} limit`, (q) => q.chartRows(id, NOW - 25 * HOUR + 7, NOW - HOUR, b, fields, 7));
          }
        }
        const month = await same(`rollup chart ${id}`, (q) => q.chartRows(id, HISTORY_FROM, NOW, null, ['cpuAvg', 'memPctAvg', 'tempMax'], 1000));
        expect(month.length).toBeGreaterThan(500);
        await same(`rollups ${id}`, (q) => q.rollups(id, NOW - 7 * DAY, NOW, 1000));
      }
    };
    await ask();
    const before = await same('before', (q) => q.chartRows(fleet.busy[1]!, NOW - 24 * HOUR, NOW, 300_000, ['samples', 'cpuAvg'], 1000));
    await ask(); // the second time from the kept buckets
    // A sample replayed late into an old bucket: every engine's kept chart must notice.
    for (const o of open) {
      await insertRows(o.t.engine, 'telemetry_samples', [
        { epoch_id: 3, ts: NOW - 20 * HOUR + 1234, seq: 999_999, recv_delay: 5, skewed: 0, cpu: 1234.5, mem_used: 1, mem_total: 3, disk_used: 1, disk_total: 7, temp: 333, uptime: 1, pstat: 0 },
      ]);
    }
    const after = await same('after', (q) => q.chartRows(fleet.busy[1]!, NOW - 24 * HOUR, NOW, 300_000, ['samples', 'cpuAvg'], 1000));
    expect(after).not.toEqual(before);
    await ask();
  }, 120_000);

  it('events and presence history, newest first, in pages by id', async () => {
    for (const id of fleet.busy) {
      for (const kind of [undefined, 'app.crash']) {
        let beforeId = Number.MAX_SAFE_INTEGER;
        let n = 0;
        for (;;) {
          const page = await same(`events ${id}`, (q) => q.events(id, NOW - 20 * DAY, NOW, beforeId, 25, kind));
          n += page.length;
          if (page.length < 25) break;
          beforeId = page[page.length - 1]!.id;
        }
        expect(n).toBeGreaterThan(kind ? 10 : 100);
      }
      const history = await same(`presence ${id}`, (q) => q.presenceHistory(id, HISTORY_FROM, NOW, Number.MAX_SAFE_INTEGER, 1000));
      expect(history.length).toBeGreaterThan(3);
      await same(`presence page ${id}`, (q) => q.presenceHistory(id, HISTORY_FROM, NOW, history[2]!.id, 2));
    }
  }, 60_000);
});
