/**
 * The alert engine against a real in-process hub (real broker, real SQLite): terminals report over MQTT, the engine
 * runs with an injected clock, so SLA escalation and thresholds are checked minute by minute without waiting.
 */
import http from 'node:http';
import type { SelfTestResult } from '@kiosk-fleet/protocol';
import type { AddressInfo } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operator } from '../auth/testing.ts';
import { createPresenceStore } from '../presence/store.ts';
import { startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';
import { Alerts } from './service.ts';
import { sign } from './webhooks.ts';

const MIN = 60_000;
const STATION = 'GZ-T-001';
const A = 'GZ-T-001-01';
const B = 'GZ-T-001-02';
const OK = { idCardReader: { status: 'ok' }, fingerprintScanner: { status: 'ok' }, camera: { status: 'ok' }, receiptPrinter: { status: 'ok' }, touchscreen: { status: 'ok' } };

let hub: TestHub;
let clock = Date.now();
let alerts: Alerts;
const clients = new Map<string, MqttClient>();
const seqs = new Map<string, number>();

/**
 * The injected clock only moves forward (maintenance and silences end at clock times), and each test starts at
 * least at the real time. Simulated terminals report with the same clock.
 */
function start(): number {
  clock = Math.max(clock + 1000, Date.now());
  return clock;
}

/** A sample from the terminal, its clock at `ts`; resolves once the hub committed it (PUBACK). */
async function sample(id: string, peripherals: Record<string, unknown> = {}, ts = clock): Promise<void> {
  const seq = (seqs.get(id) ?? 0) + 1;
  seqs.set(id, seq);
  await clients.get(id)!.publishAsync(topicFor(id, 'telemetry'), telemetry(seq, { ts: new Date(ts).toISOString(), peripherals: { ...OK, ...peripherals } }), { qos: 1 });
}

/** The terminals report the desired config applied (else, with the clock running ahead, config drift would rightly open alerts). */
let configSeq = 0;
async function applyConfig(): Promise<void> {
  configSeq++;
  for (const id of [A, B]) {
    const version = hub.configLayers.desired(id)!.version;
    await clients.get(id)!.publishAsync(topicFor(id, 'config/reported'), JSON.stringify({ v: 1, epoch: 'epochAAAA1', seq: configSeq, ts: new Date().toISOString(), version, status: 'applied' }), { qos: 1 });
  }
}

const fault = { status: 'fault', code: 'E_NO_RESPONSE', message: 'reader did not answer' };
const open = (rule?: string) => alerts.store.list({ scopes: [], states: ['open', 'acknowledged', 'assigned'], rule, sort: 'queue', offset: 0, limit: 100 });

beforeAll(async () => {
  // The hub's own engine waits an hour before its first run: these tests drive their own engine and clock.
  hub = await startTestHub({ alerts: { evaluateMs: 600_000, startGraceMs: 3_600_000, webhookBackoffMs: 50 } });
  for (const id of [A, B]) {
    const { secret } = await hub.terminal(id, { station: STATION });
    clients.set(id, await hub.connect(id, secret));
    await sample(id);
  }
  await until(async () => (await hub.registry.terminal(B)) && ((await hub.queries.terminal(B))?.presence === 'online' || null));
  alerts = await new Alerts(
    { engine: hub.engine, log: hub.log, registry: hub.registry, configLayers: hub.configLayers, auth: hub.auth, emit: (c) => hub.changed(...c) },
    { evaluateMs: 600_000, startGraceMs: 0, webhook: { backoffMs: 50, maxAttempts: 3 }, now: () => clock },
  ).init();
}, 30_000);

afterAll(async () => {
  await alerts?.close();
  await hub?.stop();
});

describe('alert lifecycle (injected clock)', () => {
  it('a card-reader fault opens one critical alert after the threshold, escalates after the SLA, and recovery resolves it', async () => {
    const t0 = start();
    clock = t0;
    expect((await alerts.engine.evaluate()).opened).toBe(0);
    await sample(A, { idCardReader: fault }, t0);
    clock = t0 + 4 * MIN + 59_000;
    expect((await alerts.engine.evaluate()).opened).toBe(0);
    clock = t0 + 5 * MIN;
    expect((await alerts.engine.evaluate()).opened).toBe(1);
    // evaluated again: still one alert, not a second
    clock += 1000;
    expect((await alerts.engine.evaluate()).opened).toBe(0);
    const [a] = await open('peripheral-fault');
    expect(await open('peripheral-fault')).toHaveLength(1);
    expect(a).toMatchObject({ subjectId: A, nodeId: STATION, severity: 'critical', state: 'open' });
    expect(a!.dueAt).toBe(t0 + 5 * MIN + 15 * MIN);

    clock = a!.dueAt - 1;
    expect((await alerts.engine.evaluate()).escalated).toBe(0);
    expect(alerts.view((await alerts.engine.alert(a!.id))!).overdue).toBe(false);
    clock = a!.dueAt;
    expect((await alerts.engine.evaluate()).escalated).toBe(1);
    expect((await alerts.engine.evaluate()).escalated).toBe(0); // once
    const esc = alerts.view((await alerts.engine.alert(a!.id))!);
    expect(esc.overdue).toBe(true);
    expect(esc.escalated).toEqual({ at: new Date(clock).toISOString(), to: 'GZ-T' });

    clock += MIN;
    await alerts.engine.acknowledge(a!.id, 'tech-li', 'on my way');
    await expect(alerts.engine.acknowledge(a!.id, 'tech-li')).rejects.toThrow(/already acknowledged/);
    expect(alerts.view((await alerts.engine.alert(a!.id))!).overdue).toBe(false);
    await alerts.engine.assign(a!.id, 'tech-wang', 'tech-li');
    await alerts.engine.note(a!.id, 'tech-wang', 'reader cable loose');
    expect(await alerts.engine.alert(a!.id)).toMatchObject({ state: 'assigned', assignedTo: 'tech-wang', acknowledgedBy: 'tech-li' });

    await sample(A, {});
    clock += MIN;
    expect((await alerts.engine.evaluate()).resolved).toBe(1);
    const done = (await alerts.engine.alert(a!.id))!;
    expect(done).toMatchObject({ state: 'resolved', resolution: 'recovery', resolvedBy: 'system', openKey: null });
    expect((await alerts.engine.history(a!.id)).map((h) => h.action)).toEqual(['opened', 'escalated', 'acknowledged', 'assigned', 'note', 'resolved']);
    expect(await open()).toHaveLength(0);
  });

  it('an acknowledged alert does not escalate; resolving by hand needs a note, and a condition that persists opens a new alert', async () => {
    const t0 = start();
    await sample(A, { camera: fault }, t0);
    clock = t0 + 5 * MIN;
    await alerts.engine.evaluate();
    const [a] = await open('peripheral-fault');
    expect(a?.severity).toBe('major');
    await alerts.engine.acknowledge(a!.id, 'tech-li');
    clock = a!.dueAt + 10 * MIN;
    expect((await alerts.engine.evaluate()).escalated).toBe(0);
    await expect(alerts.engine.resolve(a!.id, 'tech-li', '  ')).rejects.toThrow(/note/);
    await alerts.engine.resolve(a!.id, 'tech-li', 'replaced the camera');
    expect(await alerts.engine.alert(a!.id)).toMatchObject({ state: 'resolved', resolution: 'manual', resolutionNote: 'replaced the camera' });
    await expect(alerts.engine.resolve(a!.id, 'tech-li', 'again')).rejects.toThrow(/already resolved/);
    // the camera is still broken: a new alert, the old one stays in history
    await alerts.engine.evaluate();
    const [b] = await open('peripheral-fault');
    expect(b!.id).not.toBe(a!.id);
    expect((await alerts.store.list({ scopes: [], subject: A, rule: 'peripheral-fault', sort: 'newest', offset: 0, limit: 10 })).length).toBeGreaterThanOrEqual(3);
    await sample(A, {});
    await alerts.engine.evaluate();
    expect(await open()).toHaveLength(0);
  });

  it('a station that loses its last ID-card-capable terminal raises the station alert; maintenance at the station suppresses it', async () => {
    const t0 = start();
    await sample(A, { idCardReader: fault }, t0);
    clock = t0 + MIN;
    await alerts.engine.evaluate();
    expect(await open('station-service-lost')).toHaveLength(0); // B still issues ID cards
    await sample(B, { fingerprintScanner: fault }, t0);
    await alerts.engine.evaluate();
    const [st] = await open('station-service-lost');
    expect(st).toMatchObject({ subjectKind: 'node', subjectId: STATION, severity: 'critical' });
    // progress inquiry needs only the reader and the screen: B still offers it
    expect(JSON.parse(st!.details).services).toEqual(['id-card-application', 'id-card-collection']);
    await sample(B, {});
    await alerts.engine.evaluate();
    expect(await open('station-service-lost')).toHaveLength(0);
    expect((await alerts.engine.alert(st!.id))?.resolution).toBe('recovery');

    // the same outage inside a station maintenance: nothing opens, and nothing once it ends early either until re-evaluated
    const m = await alerts.engine.addMaintenance({ targetKind: 'node', targetId: STATION, nodeId: STATION, reason: 'reader swap', startsAt: clock, endsAt: clock + 60 * MIN }, 'tech-li');
    await sample(B, { fingerprintScanner: fault });
    clock += 10 * MIN;
    const r = await alerts.engine.evaluate();
    expect(r.opened).toBe(0);
    expect(r.suppressed).toBeGreaterThanOrEqual(2); // A's reader and the station
    expect(await open()).toHaveLength(0);
    await alerts.engine.endMaintenance(m.id);
    clock += 1000;
    expect((await alerts.engine.evaluate()).opened).toBe(3); // A's reader, B's scanner, the station
    await sample(A, {});
    await sample(B, {});
    await alerts.engine.evaluate();
    expect(await open()).toHaveLength(0);
  });

  it('a silenced rule opens nothing under its node until the silence ends; other rules still do', async () => {
    const s = await alerts.engine.addSilence({ nodeId: 'GZ-T', rule: 'peripheral-fault', until: clock + 30 * MIN, reason: 'known batch fault' }, 'admin');
    await sample(A, { idCardReader: fault, camera: fault });
    clock += 10 * MIN;
    await alerts.engine.evaluate();
    expect(await open('peripheral-fault')).toHaveLength(0);
    clock = s.until;
    await alerts.engine.evaluate();
    expect(await open('peripheral-fault')).toHaveLength(1);
    await sample(A, {});
    await alerts.engine.evaluate();
  });

  it('thresholds and SLA come from the effective config of the terminal (config layers)', async () => {
    const put = await hub.api(`/api/v1/config/nodes/${STATION}`, {
      method: 'PUT',
      json: { config: { alerts: { thresholds: { peripheralFaultMinutes: 0 }, sla: { critical: 2 } } }, expectedVersion: 0 },
    });
    expect(put.status).toBe(200);
    await until(() => hub.configLayers.desired(A)?.config.alerts?.thresholds?.peripheralFaultMinutes === 0);
    await applyConfig();
    const t0 = start();
    clock = t0;
    await sample(A, { idCardReader: fault }, t0);
    expect((await alerts.engine.evaluate()).opened).toBe(1);
    const [a] = await open('peripheral-fault');
    expect(a!.dueAt).toBe(t0 + 2 * MIN);
    await sample(A, {});
    await alerts.engine.evaluate();
  });
});

describe('flapping', () => {
  it('a flapping threshold set down the tree counts presence transitions in its window', async () => {
    const put = await hub.api(`/api/v1/config/nodes/${STATION}`, {
      method: 'PUT',
      json: { config: { alerts: { thresholds: { peripheralFaultMinutes: 0, flapping: { transitions: 2, windowMinutes: 10 } }, sla: { critical: 2 } } }, expectedVersion: 1 },
    });
    expect(put.status).toBe(200);
    await until(() => hub.configLayers.desired(B)?.config.alerts?.thresholds?.flapping?.transitions === 2);
    await applyConfig();
    const t0 = start();
    const p = createPresenceStore(hub.engine);
    await p.insertTransition({ terminalId: B, at: t0 - 3 * MIN, fromState: 'online', toState: 'offline', reason: 'connection-lost', bootId: null, connSeq: null });
    await p.insertTransition({ terminalId: B, at: t0 - 2 * MIN, fromState: 'offline', toState: 'online', reason: 'connected', bootId: null, connSeq: null });
    await alerts.engine.evaluate();
    expect(await open('flapping')).toHaveLength(0); // 2 is not more than 2
    await p.insertTransition({ terminalId: B, at: t0 - MIN, fromState: 'online', toState: 'online', reason: 'takeover', bootId: null, connSeq: null });
    await alerts.engine.evaluate();
    expect(await (await open('flapping')).map((a) => a.subjectId)).toEqual([B]);
    clock = t0 + 10 * MIN; // the first transition leaves the window
    await alerts.engine.evaluate();
    expect(await open('flapping')).toHaveLength(0);
  });
});

describe('webhook', () => {
  it('POSTs each change signed with HMAC-SHA256, retries after a 500, and shows a failure that ran out of attempts', async () => {
    const got: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    let failNext = 1;
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        if (req.url === '/down' || failNext-- > 0) {
          res.statusCode = 500;
          return res.end('boom');
        }
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      const secret = 'whsec-0123456789abcdef';
      const create = await hub.api('/api/v1/webhooks', { method: 'POST', json: { url: `http://127.0.0.1:${port}/duty`, secret } });
      expect(create.status).toBe(201);
      const hook = (await create.json()) as { id: number };
      expect(JSON.stringify(hook)).not.toContain(secret);

      const t0 = start();
      clock = t0;
      await sample(B, { idCardReader: fault }, t0);
      expect((await alerts.engine.evaluate()).opened).toBe(1);
      await until(() => got.length >= 2, 5000);
      const [first, second] = got;
      expect(second!.headers['x-kf-delivery']).toBe(first!.headers['x-kf-delivery']);
      expect(second!.body).toBe(first!.body);
      for (const g of [first!, second!]) {
        expect(g.headers['content-type']).toBe('application/json');
        expect(g.headers['x-kf-signature']).toBe(sign(secret, String(g.headers['x-kf-timestamp']), g.body));
      }
      const body = JSON.parse(second!.body) as { event: string; alert: { rule: string; terminalId: string; station: { id: string } } };
      expect(body).toMatchObject({ event: 'alert.opened', alert: { rule: 'peripheral-fault', terminalId: B, station: { id: STATION } } });
      // a duty system without a catalogue of its own gets the title as a code, its parameters and both texts
      expect((body.alert as unknown as { text: unknown }).text).toEqual({
        code: 'alert.peripheral-fault',
        params: { terminal: B, peripherals: ['idCardReader'] },
        en: `${B}: ID card reader in fault`,
        zh: `${B}：身份证读卡器故障`,
      });
      // the API sends the code and parameters beside the English title (the dashboard renders them)
      const [opened] = await open('peripheral-fault');
      const viewed = (await (await hub.api(`/api/v1/alerts/${opened!.id}`)).json()) as { title: string; text: unknown };
      expect(viewed).toMatchObject({ title: `${B}: ID card reader in fault`, text: { code: 'alert.peripheral-fault', params: { terminal: B, peripherals: ['idCardReader'] } } });
      await until(async () => {
        const d = (await (await hub.api(`/api/v1/webhooks/${hook.id}/deliveries`)).json()) as { items: { status: string; attempts: number; lastStatus: number }[] };
        return d.items[0]?.status === 'delivered' ? d.items[0] : null;
      });

      // a receiver that is down: retried maxAttempts (3) times, then failed, visible on the webhook
      const down = await hub.api('/api/v1/webhooks', { method: 'POST', json: { url: `http://127.0.0.1:${port}/down`, secret } });
      const downHook = (await down.json()) as { id: number };
      const [a] = await open('peripheral-fault');
      await alerts.engine.acknowledge(a!.id, 'tech-li');
      const failed = await until(async () => {
        const list = (await (await hub.api('/api/v1/webhooks')).json()) as { items: { id: number; deliveries: { failed: number }; lastFailure: { status: number; attempts: number } | null }[] };
        const w = list.items.find((x) => x.id === downHook.id);
        return w && w.deliveries.failed === 1 ? w : null;
      }, 5000);
      expect(failed!.lastFailure).toMatchObject({ status: 500, attempts: 3 });
      expect(got.filter((g) => g.headers['x-kf-event'] === 'acknowledged' && g.body.includes('"alert.acknowledged"')).length).toBe(4); // 1 ok + 3 down
      expect(await hub.metric('kf_alert_webhook_attempts_total', { outcome: 'failed' })).toBe(0); // this Alerts has no registry
    // the hub's gauge reads the table, whichever engine wrote it
    expect(await hub.metric('kf_alerts_open', { severity: 'critical' })).toBe(1);
      await hub.api(`/api/v1/webhooks/${downHook.id}`, { method: 'DELETE' });
      await hub.api(`/api/v1/webhooks/${hook.id}`, { method: 'DELETE' });
      await sample(B, {});
      await alerts.engine.evaluate();
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 20_000);
});

/** The terminal answers every command as a self-test whose card reader fails (the agent's result shape). */
const answering = new Set<string>();
async function answerSelfTests(id: string): Promise<void> {
  if (answering.has(id)) return;
  answering.add(id);
  const c = clients.get(id)!;
  await c.subscribeAsync(topicFor(id, 'commands'), { qos: 1 });
  c.on('message', (topic, payload) => {
    if (topic !== topicFor(id, 'commands')) return;
    const cmd = JSON.parse(payload.toString()) as { id: string };
    // the terminal's one sequence (a repeated seq is a duplicate the hub drops)
    const seq = (seqs.get(id) ?? 0) + 1;
    seqs.set(id, seq);
    void c.publishAsync(
      topicFor(id, 'commands/result'),
      JSON.stringify({ v: 1, epoch: 'epochAAAA1', seq, ts: new Date().toISOString(), id: cmd.id, status: 'ok', result: {
        passed: false,
        failing: ['idCardReader'],
        host: { cpu: 3 },
        peripherals: { idCardReader: { status: 'fault', code: 'E_NO_RESPONSE' }, printer: { status: 'ok' } },
        app: { up: true, sessionActive: false },
      } satisfies SelfTestResult }),
      { qos: 1 },
    );
  });
}

describe('alerts API', () => {
  it('lists the queue in scope, acts on an alert, runs a self-test and attaches its result', async () => {
    const t0 = start();
    clock = t0;
    await sample(A, { idCardReader: fault }, t0);
    await alerts.engine.evaluate();
    const [a] = await open('peripheral-fault');
    const list = (await (await hub.api(`/api/v1/alerts?node=${STATION}&severity=critical`)).json()) as { items: { id: number; station: { id: string; name: { en: string } } }[] };
    expect(list.items.map((x) => x.id)).toContain(a!.id);
    expect(list.items[0]!.station.id).toBe(STATION);
    expect((await hub.api('/api/v1/alerts?state=bogus')).status).toBe(400);
    expect((await hub.api('/api/v1/alerts?severity=urgent')).status).toBe(400);

    // scope: a technician of another station sees none of it; one of this district can act
    await hub.registry.createNode({ id: 'GZ-T-002', name: { zh: 'x', en: 'x' } });
    const other = await operator(hub, 'tech-other', 'technician', 'GZ-T-002');
    const mine = await operator(hub, 'tech-mine', 'technician', 'GZ-T');
    expect(((await (await other.api('/api/v1/alerts')).json()) as { items: unknown[] }).items).toHaveLength(0);
    expect((await other.api(`/api/v1/alerts/${a!.id}`)).status).toBe(404);
    expect((await other.api(`/api/v1/alerts/${a!.id}/acknowledge`, { method: 'POST', json: {} })).status).toBe(404);
    expect((await mine.api(`/api/v1/alerts/${a!.id}/acknowledge`, { method: 'POST', json: { note: 'seen' } })).status).toBe(200);
    expect((await mine.api(`/api/v1/alerts/${a!.id}/acknowledge`, { method: 'POST', json: {} })).status).toBe(409);
    expect((await mine.api(`/api/v1/alerts/${a!.id}/assign`, { method: 'POST', json: { to: 'tech-other' } })).status).toBe(400);
    expect((await mine.api(`/api/v1/alerts/${a!.id}/assign`, { method: 'POST', json: { to: 'tech-mine' } })).status).toBe(200);
    expect((await mine.api(`/api/v1/alerts/${a!.id}/resolve`, { method: 'POST', json: {} })).status).toBe(400);

    // self-test: the terminal answers the command, the result shows on the alert
    await answerSelfTests(A);
    const st = await mine.api(`/api/v1/alerts/${a!.id}/self-test`, { method: 'POST' });
    expect(st.status).toBe(201);
    expect(((await st.json()) as { selfTests: { status: string }[] }).selfTests[0]?.status).toMatch(/pending|sent|ok/);
    const withResult = await until(async () => {
      const d = (await (await mine.api(`/api/v1/alerts/${a!.id}`)).json()) as { selfTests: { status: string; result: unknown; requestedBy: string }[]; history: { action: string }[] };
      return d.selfTests[0]?.status === 'ok' ? d : null;
    });
    expect(withResult!.selfTests[0]).toMatchObject({ requestedBy: expect.stringContaining('tech-mine'), result: { passed: false, failing: ['idCardReader'] } });
    // the outcome is also in the alert's history (and so on the live stream and the webhooks)
    const h = await until(async () => {
      const d = (await (await mine.api(`/api/v1/alerts/${a!.id}`)).json()) as { history: { action: string; data: unknown }[] };
      return d.history.find((x) => x.action === 'self-test-result') ?? null;
    });
    expect(h!.data).toMatchObject({ status: 'ok', summary: { passed: false, notOk: [{ id: 'idCardReader', status: 'fault', code: 'E_NO_RESPONSE' }] } });
    // and said as a code the dashboard renders in the reader's language
    expect((h as unknown as { text: unknown }).text).toEqual({ code: 'alert.history.self-test-failed', params: { peripherals: ['idCardReader'] } });

    const res = await mine.api(`/api/v1/alerts/${a!.id}/resolve`, { method: 'POST', json: { note: 'reader replaced, self-test ok' } });
    expect(res.status).toBe(200);
    const resolved = (await res.json()) as { state: string; resolved: { resolution: string; note: string }; history: { action: string }[] };
    expect(resolved).toMatchObject({ state: 'resolved', resolved: { resolution: 'manual', note: 'reader replaced, self-test ok' } });
    expect(resolved.history.map((h) => h.action)).toEqual(['opened', 'acknowledged', 'assigned', 'self-test', 'self-test-result', 'resolved']);
    // every action is in the audit log
    const auditRes = (await (await hub.api('/api/v1/audit?limit=50')).json()) as { items: { action: string }[] };
    expect(auditRes.items.map((x) => x.action)).toEqual(expect.arrayContaining(['alert.acknowledge', 'alert.assign', 'alert.self-test', 'alert.resolve']));
    await sample(A, {});
    await alerts.engine.evaluate();
  }, 30_000);

  it("a station alert's self-test runs on each of the station's terminals that should offer the lost service", async () => {
    const t0 = start();
    await sample(A, { idCardReader: fault }, t0);
    await sample(B, { idCardReader: fault }, t0);
    clock = t0 + MIN;
    await alerts.engine.evaluate();
    const [st] = await open('station-service-lost');
    expect(st).toMatchObject({ subjectKind: 'node', subjectId: STATION });
    const view = (await (await hub.api(`/api/v1/alerts/${st!.id}`)).json()) as { station: { id: string; name: { zh: string; en: string } } };
    expect(view.station.id).toBe(STATION);

    for (const id of [A, B]) await answerSelfTests(id);
    const mine = await operator(hub, 'tech-station', 'technician', 'GZ-T');
    const res = await mine.api(`/api/v1/alerts/${st!.id}/self-test`, { method: 'POST' });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { selfTests: { terminalId: string }[] }).selfTests.map((x) => x.terminalId).sort()).toEqual([A, B]);
    // each terminal's own result shows on the alert, and in its history
    const done = await until(async () => {
      const d = (await (await mine.api(`/api/v1/alerts/${st!.id}`)).json()) as { selfTests: { terminalId: string; status: string; result: unknown }[]; history: { action: string; data: unknown }[] };
      return d.selfTests.every((x) => x.status === 'ok') && d.history.filter((h) => h.action === 'self-test-result').length === 2 ? d : null;
    });
    for (const x of done!.selfTests) expect(x.result).toMatchObject({ passed: false, failing: ['idCardReader'] });
    expect(done!.history.filter((h) => h.action === 'self-test').map((h) => (h.data as { terminalId: string }).terminalId).sort()).toEqual([A, B]);
    const auditRes = (await (await hub.api('/api/v1/audit?limit=50')).json()) as { items: { action: string; after: unknown }[] };
    expect(auditRes.items.find((x) => x.action === 'alert.self-test' && JSON.stringify(x.after).includes('commands'))?.after).toMatchObject({ commands: [{ terminalId: A }, { terminalId: B }] });

    // resolved: no more self-tests
    await sample(A, {});
    await sample(B, {});
    await alerts.engine.evaluate();
    expect((await mine.api(`/api/v1/alerts/${st!.id}/self-test`, { method: 'POST' })).status).toBe(409);
  }, 30_000);

  it('maintenance and silences through the API: validation, scope, listing', async () => {
    const bad = await hub.api('/api/v1/maintenance', { method: 'POST', json: { terminalId: A, nodeId: STATION, reason: 'x', endsAt: new Date(Date.now() + MIN).toISOString() } });
    expect(bad.status).toBe(400);
    const past = await hub.api('/api/v1/maintenance', { method: 'POST', json: { terminalId: A, reason: 'x', endsAt: new Date(Date.now() - MIN).toISOString() } });
    expect(past.status).toBe(400);
    const ok = await hub.api('/api/v1/maintenance', { method: 'POST', json: { terminalId: A, reason: 'screen swap', endsAt: new Date(Date.now() + 60 * MIN).toISOString() } });
    expect(ok.status).toBe(201);
    const m = (await ok.json()) as { id: number; active: boolean; nodeId: string };
    expect(m).toMatchObject({ active: true, nodeId: STATION });
    const listed = (await (await hub.api(`/api/v1/maintenance?node=${STATION}`)).json()) as { items: { id: number }[] };
    expect(listed.items.map((x) => x.id)).toContain(m.id);
    expect((await hub.api('/api/v1/maintenance', { method: 'POST', json: { terminalId: 'GZ-NOPE-001-01', reason: 'x', endsAt: new Date(Date.now() + MIN).toISOString() } })).status).toBe(404);
    const ended = (await (await hub.api(`/api/v1/maintenance/${m.id}/end`, { method: 'POST' })).json()) as { active: boolean };
    expect(ended.active).toBe(false);

    const sil = await hub.api('/api/v1/silences', { method: 'POST', json: { nodeId: STATION, rule: 'disk-full', until: new Date(Date.now() + MIN).toISOString() } });
    expect(sil.status).toBe(201);
    expect((await hub.api('/api/v1/silences', { method: 'POST', json: { nodeId: STATION, rule: 'no-such-rule', until: new Date(Date.now() + MIN).toISOString() } })).status).toBe(400);
    const mine = await operator(hub, 'tech-sil', 'technician', 'GZ-T');
    expect((await mine.api('/api/v1/silences', { method: 'POST', json: { nodeId: STATION, rule: 'disk-full', until: new Date(Date.now() + MIN).toISOString() } })).status).toBe(403);
    const { id } = (await sil.json()) as { id: number };
    expect(((await (await hub.api(`/api/v1/silences/${id}`, { method: 'DELETE' })).json()) as { active: boolean }).active).toBe(false);
  }, 30_000);
});
