/**
 * The engine as the hub runs it: started on the hub's change events, evaluating only the terminals a change names
 * (and their stations) and, on its timer, what fell due. After every step the full pass at the same clock must find
 * nothing to do: whatever the incremental runs decided is what evaluating everything decides.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';
import { Alerts } from './service.ts';

const MIN = 60_000;
const STATION = 'GZ-T-001';
const A = 'GZ-T-001-01';
const B = 'GZ-T-001-02';
const C = 'GZ-T-002-01';
const OK = { idCardReader: { status: 'ok' }, fingerprintScanner: { status: 'ok' }, camera: { status: 'ok' }, receiptPrinter: { status: 'ok' }, touchscreen: { status: 'ok' } };
const fault = { status: 'fault', code: 'E_NO_RESPONSE' };

let hub: TestHub;
let alerts: Alerts;
let clock = Date.now();
const secrets = new Map<string, string>();
const clients = new Map<string, MqttClient>();
const seqs = new Map<string, number>();

async function sample(id: string, peripherals: Record<string, unknown> = {}, ts = clock): Promise<void> {
  const seq = (seqs.get(id) ?? 0) + 1;
  seqs.set(id, seq);
  await clients.get(id)!.publishAsync(topicFor(id, 'telemetry'), telemetry(seq, { ts: new Date(ts).toISOString(), peripherals: { ...OK, ...peripherals } }), { qos: 1 });
}

const open = (rule?: string) => alerts.store.list({ scopes: [], states: ['open', 'acknowledged', 'assigned'], rule, sort: 'queue', offset: 0, limit: 100 });

/** Waits until the started engine has nothing pending and `check` holds, then runs the full pass: it must find nothing. */
async function settled(check: () => boolean): Promise<void> {
  await until(() => (alerts.engine.pending === 0 && check()) || null, 5000);
  const full = alerts.engine.evaluate();
  expect({ opened: full.opened, updated: full.updated, resolved: full.resolved, escalated: full.escalated }).toEqual({ opened: 0, updated: 0, resolved: 0, escalated: 0 });
}

beforeAll(async () => {
  // The hub's own engine waits an hour; this one starts at once, on the hub's bus, with its own clock.
  hub = await startTestHub({ alerts: { evaluateMs: 600_000, startGraceMs: 3_600_000, webhookBackoffMs: 50 } });
  for (const id of [A, B, C]) {
    // A and B are the ID-card machines of STATION; C stands at the next station
    const { secret } = await hub.terminal(id, { station: id === C ? 'GZ-T-002' : STATION });
    secrets.set(id, secret);
    clients.set(id, await hub.connect(id, secret));
    await sample(id);
  }
  await until(async () => (await hub.queries.terminal(C))?.presence === 'online' || null);
  alerts = new Alerts(
    { db: hub.db, log: hub.log, registry: hub.registry, configLayers: hub.configLayers, auth: hub.auth, presence: hub.presence, emit: (c) => hub.changed(...c) },
    { evaluateMs: 50, startGraceMs: 0, webhook: { backoffMs: 50 }, now: () => clock },
  );
  alerts.start(hub.bus);
  await until(() => alerts.engine.pending === 0 || null);
}, 30_000);

afterAll(async () => {
  await alerts?.close(hub?.bus);
  await hub?.stop();
});

describe('incremental alert runs (engine started on the hub bus, injected clock)', () => {
  it('offline past the threshold opens the offline alert; reconnecting resolves it', async () => {
    // first, while the injected clock is still the real one (presence is stamped with the hub's real time)
    clock = Math.max(clock, Date.now());
    await clients.get(C)!.endAsync();
    await until(async () => (await hub.queries.terminal(C))?.presence === 'offline' || null);
    await settled(() => true);
    expect(open('offline')).toHaveLength(0);
    clock = (await hub.queries.terminal(C))!.presenceSince! + 10 * MIN; // the deadline: no message
    await settled(() => open('offline').length === 1);
    clients.set(C, await hub.connect(C, secrets.get(C)!));
    await settled(() => open('offline').length === 0);
  });

  it('a fault opens its alert when its threshold passes (a deadline, no new message), and recovery resolves it', async () => {
    clock = Math.max(clock, Date.now());
    const t0 = clock;
    await sample(A, { camera: fault }, t0);
    await settled(() => true);
    expect(open('peripheral-fault')).toHaveLength(0);
    clock = t0 + 5 * MIN; // the timer's run finds A due
    await settled(() => open('peripheral-fault').length === 1);
    expect(open('peripheral-fault')[0]).toMatchObject({ subjectId: A, severity: 'major' });
    await sample(A, {});
    await settled(() => open('peripheral-fault').length === 0);
  });

  it('the station alert follows its terminals at once: both ID-card machines unable, then one back', async () => {
    clock += MIN;
    await sample(A, { idCardReader: fault });
    await sample(B, { fingerprintScanner: fault });
    await settled(() => open('station-service-lost').length === 1);
    expect(open('station-service-lost')[0]).toMatchObject({ subjectKind: 'node', subjectId: STATION, severity: 'critical' });
    expect(open('peripheral-fault')).toHaveLength(0);
    clock += 5 * MIN;
    await settled(() => open('peripheral-fault').length === 2);
    await sample(B, {});
    await settled(() => open('station-service-lost').length === 0 && open('peripheral-fault').length === 1);
    await sample(A, {});
    await settled(() => open().length === 0);
  });

  it('a maintenance that ends lets the outage it hid open', async () => {
    clock += MIN;
    const m = alerts.engine.addMaintenance({ targetKind: 'node', targetId: STATION, nodeId: STATION, reason: 'reader swap', startsAt: clock, endsAt: clock + 60 * MIN }, 'tech-li');
    await sample(A, { idCardReader: fault });
    await sample(B, { fingerprintScanner: fault });
    clock += 10 * MIN;
    await settled(() => true);
    expect(open()).toHaveLength(0);
    alerts.engine.endMaintenance(m.id);
    clock += 1000; // no message: the end of the maintenance alone makes the next run look again
    await settled(() => open().length === 3);
    await sample(A, {});
    await sample(B, {});
    await settled(() => open().length === 0);
  });

  it('a decommissioned terminal has its alerts closed as gone', async () => {
    clock += MIN;
    await sample(C, { camera: fault });
    clock += 5 * MIN;
    await settled(() => open('peripheral-fault').length === 1);
    const [a] = open('peripheral-fault');
    const res = await hub.api(`/api/v1/terminals/${C}/decommission`, { method: 'POST', json: { reason: 'replaced' } });
    expect(res.status).toBe(200);
    await settled(() => open('peripheral-fault').length === 0);
    expect(alerts.engine.alert(a!.id)).toMatchObject({ state: 'resolved', resolution: 'recovery', resolutionNote: 'terminal decommissioned' });
  });
});
