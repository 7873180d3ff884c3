/**
 * The simulated updater over a real broker: simulated terminals answer update/target with the real updater's
 * states on update/status, take the new app version, wait for a citizen session, and with the control API's
 * lever fail the health check (rolled back, and not retried).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePayload, topicFor, type UpdateStatus, type UpdateTarget } from '@kiosk-fleet/protocol';
import { createLogger } from '../log.ts';
import { quiet } from '../test-support/agent.ts';
import { startBroker, subscriber, waitFor, type TestBroker } from '../test-support/broker.ts';
import { DEFAULT_FLEET } from './cli.ts';
import { createControlApi } from './control.ts';
import { loadFleet, selectTerminals } from './fleet.ts';
import { Simulator } from './simulator.ts';

let broker: TestBroker;
let sim: Simulator;
let ids: string[];

function target(version: string, rolloutId = 'r-sim'): UpdateTarget {
  return {
    v: 1,
    release: { id: `app-${version}`, kind: 'app', version, url: 'http://127.0.0.1:1/unused', size: 1, sha256: version.replaceAll('.', '').padEnd(64, 'a'), manifest: 'e30=', signature: 'c2ln' },
    rolloutId,
    urgent: false,
  };
}

function statuses(id: string): UpdateStatus[] {
  return broker.published
    .filter((m) => m.topic === topicFor(id, 'update/status'))
    .map((m) => {
      const p = parsePayload('update/status', Buffer.from(m.payload));
      if (!p.ok) throw new Error(p.message);
      return p.value;
    });
}

beforeAll(async () => {
  broker = await startBroker();
  const terminals = selectTerminals(loadFleet(DEFAULT_FLEET), 4);
  ids = terminals.map((t) => t.id);
  sim = new Simulator({
    terminals,
    hubUrl: broker.url,
    secrets: {},
    interval: 30,
    localAddresses: [],
    ramp: 100,
    chaos: 0,
    summaryEveryMs: 60_000,
    logger: createLogger({ level: 'silent', destination: quiet }),
    updateStepMs: 20,
  });
  await sim.start();
  await waitFor(() => sim.connectedCount() === 4, 10_000, 'connected');
});

afterAll(async () => {
  await sim?.stop();
  await broker?.close();
});

describe('simulated updater', () => {
  it('walks the states to committed and runs the new version; with the health lever it rolls back and does not retry', async () => {
    const [ok, sick] = [ids[0]!, ids[1]!];
    const control = createControlApi(sim);
    const lever = await control.request(`/terminals/${sick}/update-health`, { method: 'POST', body: JSON.stringify({ fail: true }) });
    expect(((await lever.json()) as { update: { failHealthCheck: boolean } }).update.failHealthCheck).toBe(true);
    expect((await control.request(`/terminals/${sick}/update-health`, { method: 'POST', body: '{"fail":"yes"}' })).status).toBe(400);

    const hub = await subscriber(broker.url, '#');
    for (const id of [ok, sick]) await hub.client.publishAsync(topicFor(id, 'update/target'), JSON.stringify(target('9.1.0')), { qos: 1, retain: true });
    await waitFor(() => statuses(ok).some((s) => s.state === 'committed'), 10_000, 'committed');
    expect(statuses(ok).map((s) => s.state)).toEqual(['downloading', 'verifying', 'waiting', 'installing', 'switching', 'restarting', 'health-check', 'committed']);
    expect(statuses(ok).every((s) => s.releaseId === 'app-9.1.0' && s.rolloutId === 'r-sim' && s.version === '9.1.0')).toBe(true);
    expect(sim.terminals.get(ok)!.appVersion).toBe('9.1.0');

    await waitFor(() => statuses(sick).some((s) => s.state === 'failed'), 10_000, 'failed');
    expect(statuses(sick).slice(-2)).toMatchObject([{ state: 'rolling-back' }, { state: 'failed', error: { code: 'health-check-failed' } }]);
    expect(sim.terminals.get(sick)!.appVersion).not.toBe('9.1.0');
    // the hub re-sends the retained target on reconnect: a failed release is answered, not installed again
    const before = statuses(sick).length;
    await hub.client.publishAsync(topicFor(sick, 'update/target'), JSON.stringify({ ...target('9.1.0'), token: 'fresh' }), { qos: 1, retain: true });
    sim.terminals.get(sick)!.networkDrop(50);
    await waitFor(() => statuses(sick).slice(before).some((s) => s.error?.code === 'previously-failed'), 10_000, 'previously-failed');
    expect(statuses(sick).slice(before).map((s) => s.state)).not.toContain('installing');
    await hub.close();
  }, 20_000);

  it('a citizen session holds the install; release: null before installing cancels it', async () => {
    const id = ids[2]!;
    const t = sim.terminals.get(id)!;
    t.agent.beginSession();
    const hub = await subscriber(broker.url, '#');
    await hub.client.publishAsync(topicFor(id, 'update/target'), JSON.stringify(target('9.2.0')), { qos: 1, retain: true });
    await waitFor(() => statuses(id).some((s) => s.state === 'waiting'), 10_000, 'waiting');
    await new Promise((r) => setTimeout(r, 300));
    expect(statuses(id).map((s) => s.state)).not.toContain('installing');
    await hub.client.publishAsync(topicFor(id, 'update/target'), JSON.stringify({ v: 1, release: null, rolloutId: 'r-sim', urgent: false }), { qos: 1, retain: true });
    await waitFor(() => statuses(id).at(-1)?.state === 'idle', 10_000, 'cancelled');
    t.agent.endSession();
    await new Promise((r) => setTimeout(r, 300));
    expect(statuses(id).map((s) => s.state)).not.toContain('installing');
    expect(t.appVersion).not.toBe('9.2.0');
    await hub.close();
  }, 20_000);

  it('waits for the maintenance window of its applied config, as the real updater does; an urgent target does not', async () => {
    const id = ids[3]!;
    const t = sim.terminals.get(id)!;
    const hub = await subscriber(broker.url, '#');
    // a window that is never open (an empty day list everywhere)
    const closed = { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] };
    await hub.client.publishAsync(topicFor(id, 'config/desired'), JSON.stringify({ v: 1, version: 1, config: { maintenanceWindow: closed } }), { qos: 1, retain: true });
    await waitFor(() => t.agent.appliedConfig?.version === 1, 10_000, 'config applied');
    await hub.client.publishAsync(topicFor(id, 'update/target'), JSON.stringify(target('9.3.0')), { qos: 1, retain: true });
    await waitFor(() => statuses(id).some((s) => s.state === 'waiting' && s.error?.code === 'outside-window'), 10_000, 'outside-window');
    await new Promise((r) => setTimeout(r, 300));
    expect(statuses(id).map((s) => s.state)).not.toContain('installing');
    // the same release, now urgent: installed at once
    await hub.client.publishAsync(topicFor(id, 'update/target'), JSON.stringify({ ...target('9.3.0'), urgent: true }), { qos: 1, retain: true });
    await waitFor(() => statuses(id).some((s) => s.state === 'committed'), 20_000, 'committed');
    expect(t.appVersion).toBe('9.3.0');
    await hub.close();
  }, 30_000);
});
