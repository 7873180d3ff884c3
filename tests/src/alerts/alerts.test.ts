/**
 * Alerts end to end: the real hub (child process) and the fleet simulator (child process) driving real peripheral
 * faults over MQTT. Rules run on the hub's own timer (KF_ALERT_EVALUATE_MS=300, no start grace) with the fault
 * threshold set to 0 minutes through the config tree, the way an operator would set it.
 *
 * Station GZ-YX-001 in the simulator's first four terminals: -01 and -04 are ID-card machines, -02 police-multi,
 * -03 quanjingtong; so -01 alone failing still leaves the station able to issue ID cards.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';

const STATION = 'GZ-YX-001';
const T1 = 'GZ-YX-001-01';
const T2 = 'GZ-YX-001-02';
const T4 = 'GZ-YX-001-04';
const SECRET = 'duty-system-shared-secret';

interface Alert {
  id: number;
  rule: string;
  severity: string;
  state: string;
  subject: { kind: string; id: string };
  terminalId: string | null;
  details: { services?: string[]; peripherals?: { id: string; code: string | null }[] };
  resolved: { resolution: string } | null;
  station: { id: string } | null;
}

let hub: HubProcess;
let sim: SimulatorProcess;
let receiver: http.Server;
const received: { headers: http.IncomingHttpHeaders; body: string; answered: number }[] = [];
let failFirst = 1;
const sse: string[] = [];
const sseAbort = new AbortController();

async function until<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await fn().catch((err: unknown) => ((last = err), null));
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const get = async <T>(p: string): Promise<T> => {
  const res = await hub.api(p);
  if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};
const alerts = (q: string) => get<{ items: Alert[] }>(`/api/v1/alerts?${q}`).then((r) => r.items);
const post = async <T>(p: string, json?: unknown): Promise<T> => {
  const res = await hub.api(p, { method: 'POST', ...(json === undefined ? {} : { json }) });
  if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};
const peripheral = async (id: string, p: string) => (await get<{ peripherals: Record<string, { status: string }> }>(`/api/v1/terminals/${id}`)).peripherals[p]?.status;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const answered = failFirst-- > 0 ? 500 : 200;
      received.push({ headers: req.headers, body, answered });
      res.statusCode = answered;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  hub = await spawnHub({ env: { KF_ALERT_START_GRACE_MS: '0', KF_ALERT_EVALUATE_MS: '300', KF_ALERT_WEBHOOK_BACKOFF_MS: '200' } });
  await post('/api/v1/webhooks', { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/kf`, secret: SECRET });
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, provision: true, count: 4, interval: 1 });
  const put = await hub.api('/api/v1/config/nodes/GZ', { method: 'PUT', json: { config: { alerts: { thresholds: { peripheralFaultMinutes: 0 } } }, expectedVersion: 0, reason: 'alert at once in tests' } });
  expect(put.status).toBe(200);
  // the live stream, read in the background for the whole file
  void (async () => {
    const res = await fetch(`${hub.url}/api/v1/events?node=GZ-YX`, { headers: { authorization: `Bearer ${hub.token}` }, signal: sseAbort.signal });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      sse.push(dec.decode(value));
    }
  })().catch(() => undefined);
  // every terminal reporting, nothing wrong yet
  await until(async () => (await get<{ items: { services: string[] | null }[] }>('/api/v1/terminals?node=GZ-YX-001')).items.every((t) => (t.services?.length ?? 0) > 0) || null, 30_000, 'first samples');
}, 180_000);

afterAll(async () => {
  sseAbort.abort();
  await sim?.stop();
  await hub?.stop();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
}, 60_000);

describe('alerts with the simulator', () => {
  it('a card-reader fault opens exactly one alert; recovery resolves it', async () => {
    expect(await alerts('node=GZ')).toEqual([]);
    await sim.control(`/terminals/${T1}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE', message: 'reader did not answer' });
    const [a] = await until(async () => {
      const list = await alerts(`terminal=${T1}`);
      return list.length > 0 ? list : null;
    }, 20_000, 'alert for the card reader');
    expect(a).toMatchObject({ rule: 'peripheral-fault', severity: 'critical', state: 'open', terminalId: T1, station: { id: STATION } });
    expect(a!.details.peripherals?.[0]).toMatchObject({ id: 'idCardReader', code: 'E_NO_RESPONSE' });
    // a few more evaluation rounds: still one alert, and -04 keeps the station issuing ID cards
    await new Promise((r) => setTimeout(r, 1500));
    expect((await alerts('node=GZ')).map((x) => [x.rule, x.subject.id])).toEqual([['peripheral-fault', T1]]);

    await sim.control(`/terminals/${T1}/recover`, { peripheral: 'idCardReader' });
    const done = await until(async () => {
      const [x] = await alerts(`terminal=${T1}&state=resolved`);
      return x?.id === a!.id ? x : null;
    }, 20_000, 'resolved by recovery');
    expect(done.resolved?.resolution).toBe('recovery');
    expect(await alerts('node=GZ')).toEqual([]);
    // the live stream carried the alert's changes
    const stream = sse.join('');
    expect(stream).toContain('"type":"alert"');
    expect(stream).toMatch(/"event":"opened"[^}]*"rule":"peripheral-fault"/);
    expect(stream).toMatch(/"event":"resolved"/);
  }, 60_000);

  it('the station losing its last ID-card-capable terminal raises the station alert; a self-test result is attached', async () => {
    await sim.control(`/terminals/${T1}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
    await until(async () => (await alerts(`terminal=${T1}`)).length === 1, 20_000, 'T1 alert');
    expect(await alerts('rule=station-service-lost')).toEqual([]);
    await sim.control(`/terminals/${T4}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
    const [st] = await until(async () => {
      const list = await alerts(`rule=station-service-lost&node=${STATION}`);
      return list.length > 0 ? list : null;
    }, 20_000, 'station alert');
    expect(st).toMatchObject({ subject: { kind: 'node', id: STATION }, severity: 'critical' });
    expect(st!.details.services).toEqual(expect.arrayContaining(['id-card-application', 'id-card-collection']));
    expect(st!.details.services).not.toContain('progress-inquiry'); // -02 and -03 still offer it
    // the queue puts the critical ones first
    expect((await alerts('node=GZ&sort=queue')).every((x) => x.severity === 'critical')).toBe(true);

    const [t1Alert] = await alerts(`terminal=${T1}`);
    await post(`/api/v1/alerts/${t1Alert!.id}/self-test`);
    const withResult = await until(async () => {
      const d = await get<{ selfTests: { status: string; result: unknown }[] }>(`/api/v1/alerts/${t1Alert!.id}`);
      return d.selfTests[0] && d.selfTests[0].status !== 'pending' && d.selfTests[0].status !== 'sent' ? d : null;
    }, 20_000, 'self-test result');
    expect(withResult.selfTests[0]!.status).toMatch(/ok|error/);
    expect(JSON.stringify(withResult.selfTests[0])).toContain('idCardReader');
    // The alert's history says which peripheral failed, read from the simulated agent's own result.
    const entry = await until(async () => {
      const d = await get<{ history: { action: string; data: unknown }[] }>(`/api/v1/alerts/${t1Alert!.id}`);
      return d.history.find((h) => h.action === 'self-test-result') ?? null;
    }, 20_000, 'self-test history entry');
    expect(entry.data).toMatchObject({ status: 'ok', summary: { passed: false, notOk: [{ id: 'idCardReader', status: 'fault', code: 'E_NO_RESPONSE' }] } });

    await sim.control(`/terminals/${T4}/recover`, { peripheral: 'idCardReader' });
    await until(async () => (await alerts(`rule=station-service-lost`)).length === 0, 20_000, 'station recovers');
    const [res] = await alerts(`rule=station-service-lost&state=resolved`);
    expect(res?.resolved?.resolution).toBe('recovery');
    await sim.control(`/terminals/${T1}/recover`, { peripheral: 'idCardReader' });
    await until(async () => (await alerts('node=GZ')).length === 0, 20_000, 'all clear');
  }, 90_000);

  it('a station in maintenance raises no alerts; when it ends, the fault that is still there does', async () => {
    const m = await post<{ id: number; active: boolean }>('/api/v1/maintenance', { nodeId: STATION, reason: 'reader replacement', endsAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect(m.active).toBe(true);
    await sim.control(`/terminals/${T2}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
    await until(async () => (await peripheral(T2, 'idCardReader')) === 'fault', 20_000, 'fault reaches the hub');
    // the hub has now seen the fault; give the engine several rounds
    await new Promise((r) => setTimeout(r, 2000));
    expect(await alerts('node=GZ')).toEqual([]);
    await post(`/api/v1/maintenance/${m.id}/end`);
    const [a] = await until(async () => {
      const list = await alerts(`terminal=${T2}`);
      return list.length > 0 ? list : null;
    }, 20_000, 'alert after maintenance');
    expect(a?.rule).toBe('peripheral-fault');
    await sim.control(`/terminals/${T2}/recover`, { peripheral: 'idCardReader' });
    await until(async () => (await alerts('node=GZ')).length === 0, 20_000, 'all clear');
  }, 60_000);

  it('a power loss opens an offline alert, and the station misses what only that terminal offers; both resolve when it is back', async () => {
    const cfg = await hub.api('/api/v1/config/nodes/GZ', { method: 'PUT', json: { config: { alerts: { thresholds: { peripheralFaultMinutes: 0, offlineMinutes: 0 } } }, expectedVersion: 1 } });
    expect(cfg.status).toBe(200);
    const before = (await get<{ boot: { bootId: string } }>(`/api/v1/terminals/${T2}`)).boot.bootId;
    await sim.control(`/terminals/${T2}/power-loss`, { seconds: 4 });
    const off = await until(async () => {
      const [x] = await alerts(`terminal=${T2}&rule=offline&state=all`);
      return x ?? null;
    }, 20_000, 'offline alert');
    expect(off.severity).toBe('major');
    await until(async () => {
      const d = await get<{ connected: boolean; boot: { bootId: string } }>(`/api/v1/terminals/${T2}`);
      return d.connected && d.boot.bootId !== before;
    }, 30_000, 'back after the power loss');
    const [resolved] = await until(async () => {
      const list = await alerts(`terminal=${T2}&rule=offline&state=resolved`);
      return list.length > 0 ? list : null;
    }, 20_000, 'offline alert resolved');
    expect(resolved!.resolved?.resolution).toBe('recovery');
    // document submission: only the police-multi machine offers it at this station
    const [st] = await until(async () => {
      const list = await alerts(`rule=station-service-lost&node=${STATION}&state=all&sort=newest`);
      return list.length > 0 && list[0]!.details.services?.includes('document-submission') ? list : null;
    }, 20_000, 'station alert for document submission');
    expect(st!.severity).toBe('major');
    expect(st!.details.services).not.toContain('id-card-application');
    await until(async () => (await alerts('node=GZ')).length === 0, 30_000, 'all clear');
  }, 90_000);

  it('the webhook got every change signed, and the delivery that got a 500 was retried', async () => {
    await until(async () => received.filter((r) => r.answered === 200).length >= 6 || null, 20_000, 'deliveries');
    const first = received[0]!;
    expect(first.answered).toBe(500);
    const retry = received.find((r, i) => i > 0 && r.headers['x-kf-delivery'] === first.headers['x-kf-delivery']);
    expect(retry?.answered).toBe(200);
    expect(retry?.body).toBe(first.body);
    for (const r of received) {
      const ts = String(r.headers['x-kf-timestamp']);
      const want = `sha256=${crypto.createHmac('sha256', SECRET).update(`${ts}.${r.body}`).digest('hex')}`;
      expect(r.headers['x-kf-signature']).toBe(want);
    }
    const events = received.filter((r) => r.answered === 200).map((r) => (JSON.parse(r.body) as { event: string }).event);
    expect(events).toEqual(expect.arrayContaining(['alert.opened', 'alert.resolved']));
    const hooks = await get<{ items: { deliveries: { delivered: number; failed: number } }[] }>('/api/v1/webhooks');
    expect(hooks.items[0]!.deliveries.failed).toBe(0);
    expect(hooks.items[0]!.deliveries.delivered).toBeGreaterThanOrEqual(6);
  });
});
