/**
 * The availability report against a scripted timeline. The timeline is written through the hub's own stores
 * (presence transitions, hourly rollups, maintenance) at fixed past times instead of being lived through: the report
 * reads exactly these rows, so the expected figures are worked out by hand below and must match to the second.
 * (Rollups themselves come from raw samples by retention/service.ts, which has its own tests.)
 *
 * Station GZ-R-001, report 00:00–05:00 UTC on 2026-03-02:
 *   T1 (id-card): online from before 00:00; offline 01:15–01:45; in its own maintenance 03:00–03:30; station
 *       maintenance 03:30–04:00; online 04:00–05:00 but no rollup for that hour (no data).
 *       rollups: 00h all services 1; 01h ID card services 0.5 with the fingerprint scanner ok in half the samples;
 *       02h every service 0.75 with all peripherals ok (so the app was down).
 *   T2 (police-multi): offline all along; the station maintenance covers it too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operator } from '../auth/testing.ts';
import { createPresenceStore } from '../presence/store.ts';
import { createRetentionStore, NO_METRICS } from '../retention/store.ts';
import { startTestHub, type TestHub } from '../test-support.ts';
import type { AvailabilityReport } from './availability.ts';

const H = 3_600_000;
const H0 = Date.parse('2026-03-02T00:00:00Z');
const M = 60_000;
const T1 = 'GZ-R-001-01';
const T2 = 'GZ-R-001-02';
let hub: TestHub;

const allOk = { idCardReader: 1, fingerprintScanner: 1, camera: 1, receiptPrinter: 1, touchscreen: 1 };

beforeAll(async () => {
  hub = await startTestHub();
  const old = H0 - 30 * 24 * H;
  for (const id of ['GZ', 'GZ-R', 'GZ-R-001', 'GZ-R-002']) if (!(await hub.registry.node(id))) await hub.registry.createNode({ id, name: { zh: id, en: id } }, old);
  await hub.registry.insertTerminal({ id: T1, type: 'id-card', serial: 'S1', station: 'GZ-R-001' }, 'test', old);
  await hub.registry.insertTerminal({ id: T2, type: 'police-multi', serial: 'S2', station: 'GZ-R-001' }, 'test', old);
  const p = createPresenceStore(hub.engine);
  await p.insertTransition({ terminalId: T1, at: H0 - H, fromState: 'unknown', toState: 'online', reason: 'connected', bootId: null, connSeq: null });
  await p.insertTransition({ terminalId: T1, at: H0 + H + 15 * M, fromState: 'online', toState: 'offline', reason: 'connection-lost', bootId: null, connSeq: null });
  await p.insertTransition({ terminalId: T1, at: H0 + H + 45 * M, fromState: 'offline', toState: 'online', reason: 'connected', bootId: null, connSeq: null });
  await p.insertTransition({ terminalId: T2, at: H0 - 2 * H, fromState: 'unknown', toState: 'online', reason: 'connected', bootId: null, connSeq: null });
  await p.insertTransition({ terminalId: T2, at: H0 - H, fromState: 'online', toState: 'offline', reason: 'power-loss', bootId: null, connSeq: null });
  const r = createRetentionStore(hub.engine);
  const rollup = (hour: number, services: Record<string, number>, ok: Record<string, number>) =>
    r.writeRollups([{ terminalId: T1, hour, samples: 120, ...NO_METRICS, peripheralOk: JSON.stringify(ok), services: JSON.stringify(services) }], null);
  await rollup(H0, { 'id-card-application': 1, 'id-card-collection': 1, 'progress-inquiry': 1 }, allOk);
  await rollup(H0 + H, { 'id-card-application': 0.5, 'id-card-collection': 0.5, 'progress-inquiry': 1 }, { ...allOk, fingerprintScanner: 0.5 });
  await rollup(H0 + 2 * H, { 'id-card-application': 0.75, 'id-card-collection': 0.75, 'progress-inquiry': 0.75 }, allOk);
  await rollup(H0 + 3 * H, { 'id-card-application': 1, 'id-card-collection': 1, 'progress-inquiry': 1 }, allOk);
  const m = (targetKind: 'terminal' | 'node', targetId: string, nodeId: string, reason: string, startsAt: number, endsAt: number, createdBy: string, createdAt: number) =>
    hub.alerts.store.addMaintenance({ targetKind, targetId, nodeId, reason, startsAt, endsAt, createdBy, createdAt });
  await m('terminal', T1, 'GZ-R-001', 'screen swap', H0 + 3 * H, H0 + 3 * H + 30 * M, 'test', old);
  await m('node', 'GZ-R-001', 'GZ-R-001', 'power works', H0 + 3 * H + 30 * M, H0 + 4 * H, 'test', old);
  // outside the period: must not count
  await m('terminal', T2, 'GZ-R-001', 'later', H0 + 6 * H, H0 + 7 * H, 'test', old);
}, 30_000);

afterAll(async () => {
  await hub?.stop();
});

const q = (extra = '') => `/api/v1/reports/availability?from=${new Date(H0).toISOString()}&to=${new Date(H0 + 5 * H).toISOString()}${extra}`;

describe('availability report', () => {
  it('matches the scripted timeline to the second, per terminal, station, district and city', async () => {
    const res = await hub.api(q('&node=GZ-R'));
    expect(res.status).toBe(200);
    const rep = (await res.json()) as AvailabilityReport;
    const t1 = rep.terminals.find((t) => t.id === T1)!;
    expect(t1).toMatchObject({ periodSeconds: 18_000, plannedSeconds: 3600, offlineSeconds: 1800 });
    expect(t1.services['id-card-application']).toEqual({
      terminals: 1,
      plannedSeconds: 3600,
      expectedSeconds: 14_400,
      availableSeconds: 7200,
      share: 0.5,
      downtimeSeconds: { offline: 1800, peripheralFault: 900, appDown: 900, noData: 3600 },
    });
    expect(t1.services['id-card-collection']).toEqual(t1.services['id-card-application']);
    expect(t1.services['progress-inquiry']).toEqual({
      terminals: 1,
      plannedSeconds: 3600,
      expectedSeconds: 14_400,
      availableSeconds: 8100,
      share: 0.5625,
      downtimeSeconds: { offline: 1800, peripheralFault: 0, appDown: 900, noData: 3600 },
    });
    const t2 = rep.terminals.find((t) => t.id === T2)!;
    expect(t2).toMatchObject({ periodSeconds: 18_000, plannedSeconds: 1800, offlineSeconds: 16_200 });
    expect(Object.keys(t2.services).sort()).toEqual(['document-submission', 'household-certificate', 'progress-inquiry', 'traffic-fine-payment']);
    expect(t2.services['household-certificate']).toEqual({
      terminals: 1,
      plannedSeconds: 1800,
      expectedSeconds: 16_200,
      availableSeconds: 0,
      share: 0,
      downtimeSeconds: { offline: 16_200, peripheralFault: 0, appDown: 0, noData: 0 },
    });
    for (const level of [rep.stations, rep.districts, rep.city]) {
      expect(level).toHaveLength(1);
      const row = level[0]!;
      expect(row).toMatchObject({ terminals: 2, periodSeconds: 36_000, plannedSeconds: 5400, offlineSeconds: 18_000 });
      expect(row.services['progress-inquiry']).toEqual({
        terminals: 2,
        plannedSeconds: 5400,
        expectedSeconds: 30_600,
        availableSeconds: 8100,
        share: 8100 / 30_600,
        downtimeSeconds: { offline: 18_000, peripheralFault: 0, appDown: 900, noData: 3600 },
      });
      expect(row.services['id-card-application']).toMatchObject({ terminals: 1, plannedSeconds: 3600, share: 0.5 });
    }
    expect(rep.stations[0]!.id).toBe('GZ-R-001');
    expect(rep.districts[0]!.id).toBe('GZ-R');
  });

  it('as CSV: one line per level, id and service', async () => {
    const res = await hub.api(q('&node=GZ-R-001&format=csv'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await res.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe('level,id,service,terminals,expected_s,available_s,available_share,offline_s,peripheral_fault_s,app_down_s,no_data_s,planned_s');
    expect(lines).toContain('station,GZ-R-001,progress-inquiry,2,30600,8100,0.264706,18000,0,900,3600,5400');
    expect(lines).toContain('terminal,GZ-R-001-01,id-card-application,1,14400,7200,0.5,1800,900,900,3600,3600');
    // a service only the ID-card machine offers: the station's line counts that one terminal and its planned time
    expect(lines).toContain('station,GZ-R-001,id-card-application,1,14400,7200,0.5,1800,900,900,3600,3600');
    expect(lines).toContain('station,GZ-R-001,household-certificate,1,16200,0,0,16200,0,0,0,1800');
    expect(lines).toContain('terminal,GZ-R-001-02,traffic-fine-payment,1,16200,0,0,16200,0,0,0,1800');
    // city + district + station lines for 7 services (3 + 4, progress inquiry shared: 6 distinct), 3 + 4 terminal lines
    expect(lines.length).toBe(1 + 3 * 6 + 3 + 4);
  });

  it('one terminal only; bad periods and nodes outside scope are refused', async () => {
    const one = (await (await hub.api(q(`&terminal=${T2}`))).json()) as AvailabilityReport;
    expect(one.terminals.map((t) => t.id)).toEqual([T2]);
    expect((await hub.api(`/api/v1/reports/availability?from=${new Date(H0).toISOString()}&to=${new Date(H0).toISOString()}`)).status).toBe(400);
    expect((await hub.api('/api/v1/reports/availability?from=yesterday&to=today')).status).toBe(400);
    expect((await hub.api(q('&node=GZ-NOPE'))).status).toBe(404);
    const other = await operator(hub, 'viewer-r2', 'viewer', 'GZ-R-002');
    expect((await other.api(q('&node=GZ-R-001'))).status).toBe(404);
    expect((await other.api(q(`&terminal=${T1}`))).status).toBe(404);
    // in their own scope there is nothing to report
    expect(((await (await other.api(q())).json()) as AvailabilityReport).terminals).toEqual([]);
  }, 30_000);
});
