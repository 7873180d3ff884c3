/**
 * Two hubs' rollout services on one PostgreSQL database (issue 19): only the leader ticks; a status applied on one
 * hub and the leader's tick on the other never overwrite each other (each change re-reads the rollout under the
 * store's per-rollout lock); a hub that becomes leader carries on a rollout another hub made.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { UpdateTarget } from '@kiosk-fleet/protocol';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import type { ReleaseRecord } from '../releases/artifact-store.ts';
import type { FleetTerminal } from './engine.ts';
import { RolloutService, type RolloutPorts } from './service.ts';
import { createRolloutStore } from './store.ts';
import { silentLogger } from './testing.ts';

const PILOT = 'GZ-TH-001-01';
const REST = 'GZ-TH-002-01';
const fleet: FleetTerminal[] = [PILOT, REST].map((id) => ({ id, type: 'id-card', ancestors: [id.slice(0, 9), 'GZ-TH', 'GZ'] }));
const release = { id: 'app-2.0.0', version: '2.0.0', terminalTypes: ['id-card'] } as unknown as ReleaseRecord;

function ports(sent: string[]): RolloutPorts {
  return {
    fleet: async () => fleet,
    health: async () => ({ online: true, newPeripheralFault: false, appAlive: true, failureRate: null, baselineFailureRate: null }),
    release: async (id) => (id === release.id ? release : undefined),
    makeTarget: (_r, _t, o) => ({ v: 1, release: null, rolloutId: o.rolloutId, urgent: false }) as UpdateTarget,
    publishTarget: async (terminalId) => {
      sent.push(terminalId);
    },
    emit: () => undefined,
  };
}

describe.skipIf(!TEST_ENGINES.includes('postgres'))('rollouts on two hubs sharing PostgreSQL', () => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await openTestEngine('postgres');
  });
  afterEach(async () => {
    await t.close();
  });

  function hub(leads: { now: boolean }, sent: string[]) {
    return new RolloutService({ store: createRolloutStore(t.engine), ports: ports(sent), logger: silentLogger(), shared: true, leads: () => leads.now }).init();
  }

  it('the leader ticks, the other hub applies statuses; neither overwrites the other; a new leader carries on', async () => {
    const aLeads = { now: true };
    const bLeads = { now: false };
    const sentA: string[] = [];
    const sentB: string[] = [];
    const a = await hub(aLeads, sentA);
    const b = await hub(bLeads, sentB);
    // made through b (not the leader): the pilot is targeted at once
    const r = await b.create({ releaseId: release.id, nodeIds: ['GZ-TH'], waves: [{ kind: 'pilot', terminals: [PILOT] }, { kind: 'rest' }], gate: { soakMs: 0 } }, 'admin');
    expect(sentB).toEqual([PILOT]);
    // a has never seen it; its tick re-reads what is stored (a non-leader's tick does nothing)
    await b.tickAll();
    await a.reload();
    // the pilot's statuses reach b while a ticks, over and over: every one of them must stick
    const ticks = (async () => {
      for (let i = 0; i < 20; i++) await a.tickAll();
    })();
    for (const state of ['downloading', 'verifying', 'installing', 'committed'] as const) {
      await b.onStatus(PILOT, { state, releaseId: release.id, rolloutId: r.id });
    }
    await ticks;
    await b.refresh(r.id);
    const after = b.get(r.id);
    // committed, then soaked and passed by a tick (soak 0): wave 1 sent by whichever hub ticked after the commit
    expect(['committed', 'soaked']).toContain(after.terminals[PILOT]!.phase);
    // a stops leading, b becomes leader: b carries the rollout on from the table
    aLeads.now = false;
    bLeads.now = true;
    await b.takeOver();
    await a.tickAll();
    await b.refresh(r.id);
    const v = b.get(r.id);
    expect(v.terminals[PILOT]!.phase).toBe('soaked');
    expect(v.wave).toBe(1);
    expect(v.terminals[REST]!.phase).toBe('targeted');
    // the next wave's target went out once, from one hub
    expect([...sentA, ...sentB].filter((id) => id === REST)).toEqual([REST]);
  });
});
