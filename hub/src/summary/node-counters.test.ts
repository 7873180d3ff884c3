import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { EXAMPLES, isTerminalType, isUnderNode, payloadSchemas, SERVICE_IDS, servicesOfType, TERMINAL_TYPES, type PayloadOf, type TerminalType } from '@kiosk-fleet/protocol';
import { importFleet, parseFleetJson } from '../fleet/import.ts';
import { startTestHub, type TestHub } from '../test-support.ts';
import { createFleetStore } from '../fleet/index.ts';
import { openEngine } from '../db/open-engine.ts';
import { testDatabaseUrl } from '../db/postgres/test-database.ts';
import { execute, queryNumber } from '../db/test-query.ts';
import { parseDatabaseUrl } from '../db/url.ts';

/**
 * The summary as the API computed it before the counters: every active terminal under the node read from SQL, its
 * child found by prefix, its services parsed. The counters must give exactly this.
 */
async function fromScratch(hub: TestHub, id: string) {
  const empty = () => ({ total: 0, online: 0, offline: 0, stale: 0, unknown: 0, withFault: 0 });
  const children = (await hub.queries.children(id)).map((ch) => ({ id: ch.id, ...empty() }));
  const totals = empty();
  const offered = new Map<string, number>();
  const available = new Map<string, number>();
  const under = await hub.queries.underNode(id);
  for (const t of under) {
    const presence = (t.presence ?? 'unknown') as 'online' | 'offline' | 'stale' | 'unknown';
    const child = children.find((ch) => isUnderNode(t.stationId, ch.id));
    for (const counts of child ? [totals, child] : [totals]) {
      counts.total++;
      counts[presence]++;
      if ((t.faultCount ?? 0) > 0) counts.withFault++;
    }
    if (isTerminalType(t.type)) for (const sv of servicesOfType(t.type)) offered.set(sv, (offered.get(sv) ?? 0) + 1);
    if (presence === 'online') for (const sv of (JSON.parse(t.services ?? 'null') as string[] | null) ?? []) available.set(sv, (available.get(sv) ?? 0) + 1);
  }
  // Per station: the services its terminals' types offer, and those an online terminal can offer now.
  const stationOffers = new Map<string, Set<string>>();
  const stationHas = new Map<string, Set<string>>();
  for (const t of under) {
    const offers = stationOffers.get(t.stationId) ?? new Set<string>();
    stationOffers.set(t.stationId, offers);
    const has = stationHas.get(t.stationId) ?? new Set<string>();
    stationHas.set(t.stationId, has);
    if (isTerminalType(t.type)) for (const sv of servicesOfType(t.type)) offers.add(sv);
    if (t.presence === 'online') for (const sv of (JSON.parse(t.services ?? 'null') as string[] | null) ?? []) has.add(sv);
  }
  const stationsWithout = (sv: string) =>
    [...stationOffers.keys()].sort().filter((st) => stationOffers.get(st)!.has(sv) && !stationHas.get(st)!.has(sv));
  const services = SERVICE_IDS.filter((sv) => offered.has(sv)).map((sv) => ({
    service: sv,
    offeredBy: offered.get(sv) ?? 0,
    availableNow: available.get(sv) ?? 0,
    stationsWithout: stationsWithout(sv),
  }));
  return { totals, children, services };
}

async function expectSameAsScratch(hub: TestHub, when: string): Promise<void> {
  const nodes = await hub.registry.nodes();
  for (const n of nodes) {
    const counted = await hub.nodeCounters.summary(n.id, (await hub.queries.children(n.id)).map((c) => c.id));
    expect(counted, `${n.id} after ${when}`).toEqual(await fromScratch(hub, n.id));
  }
  // The list pages the entries answer are the ones SQL answers, page after page.
  for (const node of [undefined, ...nodes.map((n) => n.id)]) {
    for (const scope of [null, 'GZ-YX']) {
      for (const extra of [{}, { presence: 'online' }, { presence: 'offline' }, { presence: 'unknown' }, { fault: 'any' }, { type: 'id-card', presence: 'online' }]) {
        let after: string | undefined;
        for (let pageNo = 0; pageNo < 20; pageNo++) {
          const f = { node, scope, ...extra, after, limit: 4 };
          const ids = await hub.nodeCounters.page(f);
          const sql = await hub.queries.terminals(f);
          expect(ids, `page ${JSON.stringify(f)} after ${when}`).toEqual(sql.map((r) => r.id));
          expect(await hub.queries.terminalsByIds(ids!)).toEqual(sql);
          if (sql.length < 4) break;
          after = sql[sql.length - 1]!.id;
        }
      }
    }
  }
  expect(await hub.nodeCounters.page({ q: 'GZ', limit: 4 })).toBeNull();
  expect(await hub.nodeCounters.page({ fault: 'camera', limit: 4 })).toBeNull();
  expect(await hub.nodeCounters.page({ state: 'all', limit: 4 })).toBeNull();
}

/** A small deterministic generator (tests must not depend on luck). */
function rng(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

const TYPES = Object.keys(TERMINAL_TYPES) as TerminalType[];
const STATIONS = ['GZ-YX-001', 'GZ-YX-002', 'GZ-TH-001', 'GZ-TH-002', 'SZ-FT-001'];

function telemetryOf(type: TerminalType, seq: number, pick: () => number): PayloadOf<'telemetry'> {
  const statuses = ['ok', 'ok', 'ok', 'degraded', 'fault', 'unknown'] as const;
  const peripherals = Object.fromEntries(TERMINAL_TYPES[type].peripherals.map((p) => [p, { status: statuses[Math.floor(pick() * statuses.length)]! }]));
  return payloadSchemas.telemetry.parse({
    ...EXAMPLES.telemetry,
    epoch: 'epochCNT01',
    seq,
    ts: new Date().toISOString(),
    peripherals,
    app: { ...EXAMPLES.telemetry.app, up: pick() > 0.1 },
  });
}

describe('node counters', () => {
  let hub: TestHub;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-counters-'));
  // Flapping after 3 transitions in 10 minutes, so the random mix makes some terminals flap.
  const overrides = { presence: { staleCheckMs: 3_600_000, flapTransitions: 3, flapWindowMs: 600_000 } };
  const terminals: { id: string; type: TerminalType }[] = [];

  beforeAll(async () => {
    hub = await startTestHub(overrides, dir);
    const pick = rng(7);
    for (let i = 0; i < 30; i++) {
      const type = TYPES[i % TYPES.length]!;
      const station = STATIONS[Math.floor(pick() * STATIONS.length)]!;
      const { id } = await hub.terminal(`${station}-${String(i).padStart(2, '0')}`, { station, type });
      terminals.push({ id, type });
    }
  });

  afterAll(async () => {
    await hub.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('equal a count from scratch after presence, services, moves, decommissions, imports, flapping and a restart', async () => {
    const pick = rng(11);
    const seq = new Map<string, number>();
    const boot = new Map<string, number>();
    await expectSameAsScratch(hub, 'registration');
    for (let step = 1; step <= 400; step++) {
      const t = terminals[Math.floor(pick() * terminals.length)]!;
      const r = pick();
      let what: string;
      if (r < 0.3) {
        what = `telemetry ${t.id}`;
        const n = (seq.get(t.id) ?? 0) + 1;
        seq.set(t.id, n);
        await hub.ingest.handle(t.id, 'telemetry', telemetryOf(t.type, n, pick));
      } else if (r < 0.45) {
        what = `birth ${t.id}`;
        const b = (boot.get(t.id) ?? 0) + 1;
        boot.set(t.id, b);
        const birth = { ...EXAMPLES.presence, bootId: `boot${t.id.replace(/-/g, '')}${b}`, connSeq: 1, ts: new Date().toISOString() };
        await hub.ingest.handle(t.id, 'presence', payloadSchemas.presence.parse(birth));
      } else if (r < 0.55) {
        what = `connected ${t.id}`;
        await hub.presence.connected(t.id, pick() < 0.2);
      } else if (r < 0.7) {
        what = `disconnected ${t.id}`;
        await hub.presence.disconnected(t.id, pick() < 0.5 ? 'clean' : 'connection-lost');
      } else if (r < 0.75) {
        what = 'stale check';
        await hub.presence.checkStale(Date.now() + 3_600_000);
      } else if (r < 0.85) {
        const station = STATIONS[Math.floor(pick() * STATIONS.length)]!;
        what = `move ${t.id} to ${station}`;
        const res = await hub.api(`/api/v1/terminals/${t.id}/move`, { method: 'POST', json: { station } });
        expect([200, 409]).toContain(res.status); // 409: decommissioned already
      } else if (r < 0.88) {
        what = `decommission ${t.id}`;
        expect((await hub.api(`/api/v1/terminals/${t.id}/decommission`, { method: 'POST' })).status).toBe(200);
      } else if (r < 0.93) {
        const station = STATIONS[Math.floor(pick() * STATIONS.length)]!;
        const id = `${station}-N${step}`;
        const type = TYPES[Math.floor(pick() * TYPES.length)]!;
        what = `import ${id}`;
        const res = await hub.api('/api/v1/import', { method: 'POST', json: { terminals: [{ id, station, type, serial: `SN-${id}` }] } });
        expect(res.status).toBe(200);
        terminals.push({ id, type });
      } else {
        what = `register ${t.id}-R${step}`;
        const type = TYPES[Math.floor(pick() * TYPES.length)]!;
        const { id } = await hub.terminal(`${t.id}-R${step}`.slice(0, 64), { station: STATIONS[step % STATIONS.length]!, type });
        terminals.push({ id, type });
      }
      if (step % 10 === 0) await expectSameAsScratch(hub, `step ${step}: ${what}`);
    }
    const flapping = await queryNumber(hub.engine, 'SELECT count(*) FROM terminal_state WHERE flapping <> 0');
    expect(flapping).toBeGreaterThan(0); // the mix did exercise the transitions stored without an event
    await expectSameAsScratch(hub, 'the mix');

    // A restart: seeded from the tables, then every terminal left online goes offline (hub-restart).
    await hub.stop();
    hub = await startTestHub(overrides, dir);
    await expectSameAsScratch(hub, 'a restart');
    // 400 steps with 41 full recounts: about 40 s on PostgreSQL on the shared 2-core machine.
  }, 120_000);

  test('see writes made by another connection to the database (the import CLI while the hub runs)', async () => {
    const before = (await hub.nodeCounters.summary('GZ', [])).totals.total;
    // A connection of its own, as the CLI opens it: SQLite's file in the data dir, or the same PostgreSQL database.
    const other = await openEngine(parseDatabaseUrl(await testDatabaseUrl(dir, inject('pgUrl'))), dir);
    try {
      const fleet = parseFleetJson({ terminals: [{ id: 'GZ-YX-001-CLI', station: 'GZ-YX-001', type: 'id-card', serial: 'SN-CLI' }] });
      await importFleet(other.engine, createFleetStore(other.engine), fleet, 'cli');
      await execute(other.engine, "UPDATE terminal_state SET presence = 'online', services = '[\"progress-inquiry\"]' WHERE terminal_id = 'GZ-YX-001-CLI'");
    } finally {
      await other.close();
    }
    expect((await hub.nodeCounters.summary('GZ', [])).totals.total).toBe(before + 1);
    await expectSameAsScratch(hub, 'a write by another connection');
  });
});
