/**
 * The node counters on every engine here: seeded from the same rows they give the same summaries and list pages as
 * a count from scratch (and as each other); moved by the hub's change events and by what they follow in the tables
 * themselves (presence transitions stored without an event, another writer's registrations), they still equal a
 * count from scratch. PostgreSQL only: two writers committing transitions out of id order lose neither.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { isTerminalType, isUnderNode, SERVICE_IDS, servicesOfType } from '@kiosk-fleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, EngineKind } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import type { Change } from '../ingest/writer.ts';
import { createQueryStore } from '../queries/index.ts';
import type { QueryStore } from '../queries/store.ts';
import { fillFleet, insertRows, NOW, type Fleet } from '../queries/test-fleet.ts';
import { DB_FILE } from '../store/db.ts';
import { createNodeCounters } from './index.ts';
import type { NodeCounters } from './node-counters.ts';
import { GAP_MS, IdFollower } from './store.postgres.ts';

interface Open {
  kind: EngineKind;
  t: TestEngine;
  q: QueryStore;
  counters: NodeCounters;
}

let open: Open[] = [];
let fleet: Fleet;

beforeAll(async () => {
  open = [];
  for (const kind of TEST_ENGINES) {
    const t = await openTestEngine(kind);
    fleet = await fillFleet(t.engine);
    open.push({ kind, t, q: createQueryStore(t.engine), counters: createNodeCounters(t.engine) });
  }
}, 120_000);

afterAll(async () => {
  for (const o of open) await o.t.close();
});

/** The summary as the API computed it before the counters (summary/node-counters.test.ts has the same). */
async function fromScratch(q: QueryStore, id: string) {
  const empty = () => ({ total: 0, online: 0, offline: 0, stale: 0, unknown: 0, withFault: 0 });
  const children = (await q.children(id)).map((ch) => ({ id: ch.id, ...empty() }));
  const totals = empty();
  const offered = new Map<string, number>();
  const available = new Map<string, number>();
  const stationOffers = new Map<string, Set<string>>();
  const stationHas = new Map<string, Set<string>>();
  for (const t of await q.underNode(id)) {
    const presence = (t.presence ?? 'unknown') as 'online' | 'offline' | 'stale' | 'unknown';
    const child = children.find((ch) => isUnderNode(t.stationId, ch.id));
    for (const counts of child ? [totals, child] : [totals]) {
      counts.total++;
      counts[presence]++;
      if ((t.faultCount ?? 0) > 0) counts.withFault++;
    }
    const services = presence === 'online' ? ((JSON.parse(t.services ?? 'null') as string[] | null) ?? []) : [];
    if (isTerminalType(t.type)) for (const sv of servicesOfType(t.type)) offered.set(sv, (offered.get(sv) ?? 0) + 1);
    for (const sv of services) available.set(sv, (available.get(sv) ?? 0) + 1);
    const offers = stationOffers.get(t.stationId) ?? new Set<string>();
    stationOffers.set(t.stationId, offers);
    const has = stationHas.get(t.stationId) ?? new Set<string>();
    stationHas.set(t.stationId, has);
    if (isTerminalType(t.type)) for (const sv of servicesOfType(t.type)) offers.add(sv);
    for (const sv of services) has.add(sv);
  }
  const services = SERVICE_IDS.filter((sv) => offered.has(sv)).map((sv) => ({
    service: sv,
    offeredBy: offered.get(sv) ?? 0,
    availableNow: available.get(sv) ?? 0,
    stationsWithout: [...stationOffers.keys()].sort().filter((st) => stationOffers.get(st)!.has(sv) && !stationHas.get(st)!.has(sv)),
  }));
  return { totals, children, services };
}

/** Every node's summary and every list page equal a count from scratch on each engine, and the engines agree. */
async function expectSameAsScratch(when: string): Promise<void> {
  const answers: string[] = [];
  for (const o of open) {
    const seen: unknown[] = [];
    for (const n of fleet.nodes) {
      const counted = await o.counters.summary(n, (await o.q.children(n)).map((c) => c.id));
      expect(counted, `${n} after ${when} on ${o.kind}`).toEqual(await fromScratch(o.q, n));
      seen.push(counted);
    }
    for (const node of [undefined, ...fleet.nodes]) {
      for (const extra of [{}, { presence: 'online' }, { presence: 'unknown' }, { fault: 'any' }]) {
        let after: string | undefined;
        for (;;) {
          const f = { node, scope: 'GZ', ...extra, after, limit: 3 };
          const ids = await o.counters.page(f);
          const rows = await o.q.terminals(f);
          expect(ids, `page ${JSON.stringify(f)} after ${when} on ${o.kind}`).toEqual(rows.map((r) => r.id));
          seen.push(ids);
          if (rows.length < 3) break;
          after = rows[rows.length - 1]!.id;
        }
      }
    }
    answers.push(JSON.stringify(seen));
  }
  for (let i = 1; i < answers.length; i++) expect(answers[i], `${when}: ${open[i]!.kind} against ${open[0]!.kind}`).toBe(answers[0]);
}

async function exec(e: Engine, sqliteSql: string, args: unknown[]): Promise<void> {
  if (e.kind === 'sqlite') e.db.prepare(sqliteSql).run(...args);
  else {
    let i = 0;
    await e.pg.sql.unsafe(sqliteSql.replace(/\?/g, () => `$${++i}`), args as never[]);
  }
}

describe(`node counters on ${TEST_ENGINES.join(' and ')}`, () => {
  it('seeded from the tables: a count from scratch', async () => {
    await expectSameAsScratch('the seed');
  }, 60_000);

  it('moved by change events: presence, services and faults, a move, a decommission, a registration', async () => {
    const [a, b, c] = fleet.terminals.filter((t) => t.state === 'active' && t.presence !== null);
    for (const o of open) {
      const e = o.t.engine;
      await insertRows(e, 'presence_transitions', [{ terminal_id: a!.id, at: NOW, from_state: 'online', to_state: 'offline', reason: 'connection-lost' }]);
      await exec(e, "UPDATE terminal_state SET presence = 'offline' WHERE terminal_id = ?", [a!.id]);
      await exec(e, "UPDATE terminal_state SET presence = 'online', services = ?, fault_count = 0 WHERE terminal_id = ?", ['["progress-inquiry"]', b!.id]);
      await exec(e, 'UPDATE terminals SET station_id = ? WHERE id = ?', ['GZ-TH-001', c!.id]);
      await insertRows(e, 'placements', [{ terminal_id: c!.id, from_station: c!.station, to_station: 'GZ-TH-001', by: 'test', at: NOW, reason: null }]);
      await insertRows(e, 'terminals', [{ id: 'GZ-YXA-001-NEW', type: 'id-card', serial: 'N', station_id: 'GZ-YXA-001', state: 'active', secret_hash: 'x', created_at: NOW, decommissioned_at: null }]);
      await insertRows(e, 'terminal_state', [{ terminal_id: 'GZ-YXA-001-NEW', presence: 'online', services: '["id-card-application"]', fault_count: 1 }]);
      await insertRows(e, 'placements', [{ terminal_id: 'GZ-YXA-001-NEW', from_station: null, to_station: 'GZ-YXA-001', by: 'test', at: NOW, reason: 'registered' }]);
      const changes: Change[] = [
        { type: 'presence', terminalId: a!.id, at: NOW },
        { type: 'telemetry', terminalId: b!.id, at: NOW, data: { services: ['progress-inquiry'], faults: 0 } },
        { type: 'terminal', terminalId: c!.id, at: NOW, data: { station: 'GZ-TH-001' } },
        { type: 'terminal', terminalId: 'GZ-YXA-001-NEW', at: NOW, data: { registered: true } },
      ];
      await o.counters.apply(changes);
    }
    await expectSameAsScratch('change events');

    for (const o of open) {
      await exec(o.t.engine, "UPDATE terminals SET state = 'decommissioned', decommissioned_at = ? WHERE id = ?", [NOW, b!.id]);
      await insertRows(o.t.engine, 'placements', [{ terminal_id: b!.id, from_station: b!.station, to_station: null, by: 'test', at: NOW, reason: 'decommissioned' }]);
      await o.counters.apply([{ type: 'terminal', terminalId: b!.id, at: NOW, data: { state: 'decommissioned' } }]);
    }
    await expectSameAsScratch('a decommission');
  }, 60_000);

  it('follow what no event announces: transitions of a flapping terminal, another writer’s registration', async () => {
    const flapping = fleet.terminals.filter((t) => t.state === 'active' && t.presence === 'online')[0]!;
    for (const o of open) {
      const e = o.t.engine;
      // Presence stores a flapping terminal's transitions without broadcasting them.
      await insertRows(e, 'presence_transitions', [{ terminal_id: flapping.id, at: NOW + 1, from_state: 'online', to_state: 'stale', reason: 'stale' }]);
      await exec(e, "UPDATE terminal_state SET presence = 'stale' WHERE terminal_id = ?", [flapping.id]);
      // Another process (the import CLI): on SQLite another connection to the file, on PostgreSQL any connection.
      const other = e.kind === 'sqlite' ? new Database(path.join(o.t.dir, DB_FILE)) : null;
      const w: Engine = other ? { kind: 'sqlite', db: other as never } : e;
      await insertRows(w, 'terminals', [{ id: 'GZ-TH-001-CLI', type: 'police-multi', serial: 'C', station_id: 'GZ-TH-001', state: 'active', secret_hash: 'x', created_at: NOW, decommissioned_at: null }]);
      await insertRows(w, 'terminal_state', [{ terminal_id: 'GZ-TH-001-CLI', presence: 'unknown', services: null, fault_count: 0 }]);
      await insertRows(w, 'placements', [{ terminal_id: 'GZ-TH-001-CLI', from_station: null, to_station: 'GZ-TH-001', by: 'cli', at: NOW, reason: 'imported' }]);
      other?.close();
    }
    await expectSameAsScratch('unannounced writes');
    // And from scratch: a fresh set of counters agrees with the moved ones.
    for (const o of open) {
      const fresh = createNodeCounters(o.t.engine);
      for (const n of fleet.nodes) {
        const children = (await o.q.children(n)).map((c) => c.id);
        expect(await fresh.summary(n, children), `${n} fresh on ${o.kind}`).toEqual(await o.counters.summary(n, children));
      }
    }
  }, 60_000);

  it.runIf(TEST_ENGINES.includes('postgres'))('PostgreSQL: a transition committed after a later one is not lost', async () => {
    const o = open.find((x) => x.kind === 'postgres')!;
    const e = o.t.engine;
    if (e.kind !== 'postgres') throw new Error('not postgres');
    const [x, y] = fleet.terminals.filter((t) => t.state === 'active' && t.presence !== null).slice(3, 5);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const hasId = new Promise<void>((r) => (inserted = r));
    // Writer A takes the lower id and holds its transaction open; writer B takes the next id and commits first.
    const a = e.pg.sql.begin(async (sql) => {
      await sql`insert into presence_transitions (terminal_id, at, from_state, to_state, reason) values (${x!.id}, ${NOW + 2}, 'online', 'offline', 'clean')`;
      await sql`update terminal_state set presence = 'offline' where terminal_id = ${x!.id}`;
      inserted();
      await held;
    });
    await hasId;
    await e.pg.sql`insert into presence_transitions (terminal_id, at, from_state, to_state, reason) values (${y!.id}, ${NOW + 2}, 'offline', 'online', 'connected')`;
    await e.pg.sql`update terminal_state set presence = 'online' where terminal_id = ${y!.id}`;
    await o.counters.apply([{ type: 'presence', terminalId: y!.id, at: NOW }]);
    release();
    await a;
    await o.counters.apply([{ type: 'presence', terminalId: x!.id, at: NOW }]);
    for (const n of fleet.nodes) {
      expect(await o.counters.summary(n, (await o.q.children(n)).map((c) => c.id)), n).toEqual(await fromScratch(o.q, n));
    }
  }, 60_000);
});

describe('IdFollower', () => {
  it('takes each id once, waits GAP_MS for a missing one, then gives up on it', () => {
    const f = new IdFollower();
    f.reset(10);
    const rows = (ids: number[]) => ids.map((id) => ({ id, terminalId: `T${id}` }));
    expect(f.take(rows([11, 12, 14]), 0)).toEqual(['T11', 'T12', 'T14']);
    expect(f.floor).toBe(12); // 13 may still commit
    expect(f.take(rows([13, 14, 15]), 1000)).toEqual(['T13', 'T15']);
    expect(f.floor).toBe(15);
    expect(f.take(rows([17]), 2000)).toEqual(['T17']);
    expect(f.floor).toBe(15);
    expect(f.take(rows([17]), 2000 + GAP_MS)).toEqual([]);
    expect(f.floor).toBe(17); // 16 was rolled back
  }, 60_000);
});
