/**
 * The availability report's store on every engine here: the same rows (queries/test-fleet.ts: a month of presence
 * transitions and hourly rollups, maintenance, decommissioned terminals) give the same store answers and the same
 * report, byte for byte as JSON. A node is matched case-sensitively, as everywhere else (`gz` is not `GZ`).
 */
import { isUnderNode } from '@kiosk-fleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineKind } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { DAY, fillFleet, HISTORY_FROM, HOUR, NOW, type Fleet } from '../queries/test-fleet.ts';
import { availability, availabilityCsv } from './availability.ts';
import { createReportStore } from './index.ts';
import type { ReportStore } from './store.ts';

interface Open {
  kind: EngineKind;
  t: TestEngine;
  store: ReportStore;
}

let open: Open[] = [];
let fleet: Fleet;

beforeAll(async () => {
  open = [];
  for (const kind of TEST_ENGINES) {
    const t = await openTestEngine(kind);
    fleet = await fillFleet(t.engine);
    open.push({ kind, t, store: createReportStore(t.engine) });
  }
}, 120_000);

afterAll(async () => {
  for (const o of open) await o.t.close();
});

async function same<T>(what: string, ask: (s: ReportStore) => Promise<T>): Promise<T> {
  const answers: T[] = [];
  for (const o of open) answers.push(await ask(o.store));
  for (let i = 1; i < answers.length; i++) expect(JSON.stringify(answers[i]), `${what} on ${open[i]!.kind}`).toBe(JSON.stringify(answers[0]));
  return answers[0]!;
}

describe(`availability report on ${TEST_ENGINES.join(' and ')}`, () => {
  it('store: terminals under a node in a period, one terminal, maintenance, histories', async () => {
    for (const node of [null, ...fleet.nodes]) {
      for (const [from, to] of [[HISTORY_FROM, NOW], [NOW - 3 * DAY, NOW - DAY]] as const) {
        const got = await same(`terminals ${node}`, (s) => s.terminals(node, from, to));
        const want = fleet.terminals
          .filter((t) => (node === null || isUnderNode(t.station, node)) && t.createdAt < to && (t.decommissionedAt === null || t.decommissionedAt > from))
          .map((t) => t.id)
          .sort();
        expect(got.map((t) => t.id), `${node}`).toEqual(want);
      }
    }
    await same('terminal', (s) => s.terminal(fleet.busy[0]!));
    expect(await same('terminal', (s) => s.terminal('NOPE'))).toBeUndefined();
    expect((await same('maintenance', (s) => s.maintenance(NOW - 6 * DAY, NOW))).length).toBe(2);
    const spans = fleet.terminals.map((t, i) => ({ id: t.id, from: NOW - (i + 2) * DAY + i * 1000, to: NOW - i * HOUR, rollupsFrom: Math.floor((NOW - (i + 2) * DAY) / HOUR) * HOUR }));
    const histories = await same('histories', (s) => s.histories([...spans, { id: 'NOPE', from: HISTORY_FROM, to: NOW, rollupsFrom: HISTORY_FROM }]));
    expect(histories).toHaveLength(spans.length + 1);
    expect(histories.filter((h) => h.rollups.length > 0)).toHaveLength(fleet.busy.length);
    expect(histories.some((h) => h.transitions.length > 0 && h.stateBefore !== null)).toBe(true);
    expect(histories.at(-1)).toEqual({ stateBefore: null, transitions: [], rollups: [] });
  }, 60_000);

  it('the report per terminal, station, district and city: the same on every engine, `gz` apart from `GZ`', async () => {
    for (const nodeId of [null, 'GZ', 'GZ-YX', 'gz', 'GZ-YX-001']) {
      for (const [from, to] of [[HISTORY_FROM, NOW], [NOW - 7 * DAY + 1234, NOW - 2 * DAY - 5678]] as const) {
        const rep = await same(`report ${nodeId}`, (s) => availability(s, { nodeId, from, to }));
        await same(`csv ${nodeId}`, async (s) => availabilityCsv(await availability(s, { nodeId, from, to })));
        if (nodeId === 'GZ') expect(rep.terminals.every((t) => t.id.startsWith('GZ-'))).toBe(true);
        if (nodeId === 'gz') expect(rep.city.map((c) => c.id)).toEqual(['gz']);
        if (nodeId === null) expect(rep.city.map((c) => c.id).sort()).toEqual(['GZ', 'gz']);
      }
    }
    const one = await same('one terminal', (s) => availability(s, { nodeId: null, terminalId: fleet.busy[0]!, from: HISTORY_FROM, to: NOW }));
    expect(one.terminals.map((t) => t.id)).toEqual([fleet.busy[0]]);
    expect(Object.values(one.terminals[0]!.services).some((x) => (x?.availableSeconds ?? 0) > 0)).toBe(true);
  }, 60_000);
});
