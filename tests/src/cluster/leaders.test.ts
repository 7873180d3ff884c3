/**
 * Jobs run once (issue 19): three hub processes on one PostgreSQL database. Each background job (rollouts, alerts,
 * webhooks, retention, reaper) has exactly one leader (`kf_job_leader{job}` in each hub's /metrics); a real fault of
 * a simulated terminal reaches the duty system's webhook exactly once; SIGKILL the leader and another hub leads every
 * job within 15 s, picks up a running rollout from the tables and takes it to its next wave, and still no webhook
 * is delivered twice (each delivery carries an Idempotency-Key).
 *
 * The rollout's terminals are plain MQTT clients answering their `update/target` with `update/status` as an agent's
 * updater would (tests/src/updates/ covers real updaters): the pilot on the third hub, through which the rollout is
 * made; the next wave's terminal connects after the failover to the hub that then leads the rollouts, whose broker
 * holds the target it published (a target published on one hub reaching a terminal on another is the change feed's,
 * tests/src/cluster/ of that work). The simulator is on the second hub, so nothing is lost with the first.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { downTopics, topicFor } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { appBundle, buildRelease } from '../../../agent/src/updater/testing.ts';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { describeCluster, startCluster, type Cluster } from '../helpers/cluster.ts';
import type { HubProcess } from '../helpers/hub.ts';

const JOBS = ['rollouts', 'alerts', 'webhooks', 'retention', 'reaper'];
const T1 = 'GZ-YX-001-01';
const T2 = 'GZ-YX-001-02';
const PILOT = 'GZ-TH-001-01';
const REST = 'GZ-TH-002-01';

interface Received {
  key: string | undefined;
  event: string | undefined;
  body: { event: string; alert: { id: number; terminalId: string | null; rule: string } };
}

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await fn().catch((err: unknown) => ((last = err), null));
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The jobs a hub says it leads on /metrics; null when it does not answer (killed). */
async function led(h: HubProcess): Promise<string[] | null> {
  const res = await h.api('/metrics').catch(() => null);
  if (!res?.ok) return null;
  const text = await res.text();
  return JOBS.filter((j) => new RegExp(`^kf_job_leader\\{job="${j}"\\} 1$`, 'm').test(text));
}

/** Every job led by exactly one of `hubs`: the leader of each job by hub index. */
async function leaders(hubs: HubProcess[]): Promise<Map<string, number> | null> {
  const all = await Promise.all(hubs.map(led));
  const out = new Map<string, number>();
  for (const j of JOBS) {
    const who = all.flatMap((l, i) => (l?.includes(j) ? [i] : []));
    if (who.length !== 1) return null;
    out.set(j, who[0]!);
  }
  return out;
}

let c: Cluster;
let tmp: string;
let receiver: http.Server;
const received: Received[] = [];
let sim: SimulatorProcess;
const clients: MqttClient[] = [];
let secrets = new Map<string, string>();
const targets = new Map<string, { release: { id: string } | null; rolloutId?: string }[]>();

async function json<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

/** A terminal that answers a release target with update/status up to `committed`, as the updater reports it. */
async function rolloutTerminal(h: HubProcess, id: string, secret: string): Promise<void> {
  const client = await mqtt.connectAsync(h.mqttUrl, { clientId: id, username: id, password: secret, protocolVersion: 4, reconnectPeriod: 0 });
  clients.push(client);
  const epoch = crypto.randomBytes(8).toString('base64url').slice(0, 10);
  let seq = 0;
  targets.set(id, []);
  client.on('message', (topic, payload) => {
    if (topic !== topicFor(id, 'update/target')) return;
    const t = JSON.parse(payload.toString()) as { release: { id: string; version: string } | null; rolloutId?: string };
    targets.get(id)!.push(t);
    if (!t.release) return;
    const release = t.release;
    void (async () => {
      for (const state of ['downloading', 'verifying', 'installing', 'committed']) {
        const status = { v: 1, epoch, seq: ++seq, ts: new Date().toISOString(), rolloutId: t.rolloutId, releaseId: release.id, version: release.version, state };
        await client.publishAsync(topicFor(id, 'update/status'), JSON.stringify(status), { qos: 1 });
      }
    })();
  });
  await client.subscribeAsync(downTopics(id), { qos: 1 });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-leaders-'));
  const keys = generateReleaseKeyPair();
  const pub = path.join(tmp, 'release-public.pem');
  fs.writeFileSync(pub, keys.publicKeyPem);
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push({ key: req.headers['idempotency-key'] as string | undefined, event: req.headers['x-kf-event'] as string | undefined, body: JSON.parse(body) as Received['body'] });
      res.statusCode = 200;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));

  c = await startCluster({
    hubs: 3,
    env: { KF_ALERT_START_GRACE_MS: '0', KF_ALERT_EVALUATE_MS: '300', KF_ALERT_WEBHOOK_BACKOFF_MS: '200', KF_RELEASE_KEYS: pub },
  });
  const [h1, h2, h3] = c.hubs as [HubProcess, HubProcess, HubProcess];
  await json(await h1.api('/api/v1/webhooks', { method: 'POST', json: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/duty`, secret: 'duty-secret-0123456789' } }), 201);
  sim = await spawnSimulator({ hubUrl: h2.mqttUrl, apiUrl: h2.url, token: h2.token, provision: true, count: 2, interval: 1 });
  await json(await h2.api('/api/v1/config/nodes/GZ', { method: 'PUT', json: { config: { alerts: { thresholds: { peripheralFaultMinutes: 0 } } }, expectedVersion: 0 } }));

  // the rollout: a signed release, a pilot terminal and one for the next wave, both on the third hub
  const release = await buildRelease({ workDir: tmp, version: '2.0.0', files: appBundle('2.0.0', true), privateKey: privateKeyFromPem(keys.privateKeyPem), terminalTypes: ['id-card'] });
  const up = await h1.api('/api/v1/releases', {
    method: 'POST',
    body: release.artifact,
    headers: { 'x-kf-manifest': release.manifestB64, 'x-kf-signature': release.signature, 'content-type': 'application/gzip' },
  });
  expect(up.status, await up.text()).toBe(201);
  const imported = await h3.importFleet({
    city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
    districts: [{ id: 'GZ-TH', name: { zh: '天河', en: 'Tianhe' } }],
    stations: [
      { id: 'GZ-TH-001', district: 'GZ-TH', name: { zh: '一所', en: 'Station 1' } },
      { id: 'GZ-TH-002', district: 'GZ-TH', name: { zh: '二所', en: 'Station 2' } },
    ],
    terminals: [PILOT, REST].map((id) => ({ id, station: id.slice(0, 9), type: 'id-card', serial: `SN-${id}` })),
  });
  secrets = new Map(imported.terminals.created.map((t) => [t.id, t.secret]));
  await rolloutTerminal(h3, PILOT, secrets.get(PILOT)!);
}, 240_000);

afterAll(async () => {
  for (const cl of clients) cl.end(true);
  await sim?.stop();
  await c?.stop();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describeCluster('job leadership across hubs', () => {
  it('one leader per job; a fault reaches the webhook once; the leader killed: another leads within 15 s, the rollout goes on, no webhook twice', async () => {
    const hubs = c.hubs;
    const first = await until('one leader per job', () => leaders(hubs));
    // hub-1 started first and took every job
    expect([...first.values()]).toEqual(JOBS.map(() => 0));

    // a card-reader fault of a terminal on hub-2 (not the leader): one alert, one delivery
    await sim.control(`/terminals/${T1}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
    const opened1 = await until('the fault delivered', async () => received.find((r) => r.body.event === 'alert.opened' && r.body.alert.terminalId === T1));
    expect(opened1.key).toBeTruthy();

    // the rollout, made through hub-3: the pilot commits there; the next wave waits for the soak (a tick)
    const h3 = hubs[2]!;
    const r = await json<{ id: string }>(
      await h3.api('/api/v1/rollouts', {
        method: 'POST',
        json: {
          releaseId: 'app-2.0.0',
          nodeIds: ['GZ-TH'],
          waves: [{ kind: 'pilot', terminals: [PILOT] }, { kind: 'rest' }],
          gate: { successRatio: 1, soakMinutes: 0.005, failureRateTolerance: 0.05 },
        },
      }),
      201,
    );
    await until('the pilot committed', async () => {
      const v = await json<{ terminals: Record<string, { phase: string }> }>(await h3.api(`/api/v1/rollouts/${r.id}`));
      return v.terminals[PILOT]?.phase === 'committed';
    });
    const before = await json<{ wave: number; terminals: Record<string, { phase: string }> }>(await h3.api(`/api/v1/rollouts/${r.id}`));
    expect(before.wave).toBe(0);
    expect(before.terminals[REST]?.phase).toBe('pending');

    // SIGKILL the leader
    await hubs[0]!.kill('SIGKILL');
    const killedAt = Date.now();
    const next = await until('a new leader for every job', () => leaders(hubs.slice(1)), 15_000);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(new Set(next.values()).size).toBeGreaterThanOrEqual(1);
    // GET /api/v1/hubs says the same (leaderOf, as of each hub's last lease renewal)
    await until('/api/v1/hubs names the leaders', async () => {
      const list = await json<{ items: { id: string; leaderOf: string[] }[] }>(await hubs[1]!.api('/api/v1/hubs'));
      return JOBS.every((j) => list.items.filter((h) => h.leaderOf.includes(j)).map((h) => h.id).join() === `hub-${next.get(j)! + 2}`);
    }, 15_000);

    // the new rollouts leader picked the rollout up from the tables: the pilot soaked, the next wave was sent
    await until('the next wave targeted', async () => {
      const v = await json<{ wave: number; terminals: Record<string, { phase: string }> }>(await h3.api(`/api/v1/rollouts/${r.id}`));
      return v.wave === 1 && v.terminals[REST]?.phase === 'targeted';
    }, 15_000);
    const leaderHub = hubs[next.get('rollouts')! + 1]!;
    await rolloutTerminal(leaderHub, REST, secrets.get(REST)!);
    await until('the next wave gets its target', async () => targets.get(REST)!.some((t) => t.release?.id === 'app-2.0.0' && t.rolloutId === r.id), 15_000);
    const done = await until('the rollout completed', async () => {
      const v = await json<{ status: string; wave: number }>(await hubs[1]!.api(`/api/v1/rollouts/${r.id}`));
      return v.status === 'completed' ? v : null;
    }, 60_000);
    expect(done.status).toBe('completed');

    // another fault, raised and delivered by the new leaders
    await sim.control(`/terminals/${T2}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
    await until('the second fault delivered', async () => received.find((x) => x.body.event === 'alert.opened' && x.body.alert.terminalId === T2));
    // a few more evaluation and delivery rounds on every hub
    await new Promise((res) => setTimeout(res, 3000));
    const opened = received.filter((x) => x.body.event === 'alert.opened');
    expect(opened.map((x) => x.body.alert.terminalId)).toEqual(expect.arrayContaining([T1, T2]));
    // each alert opened once (the station's own alert too, if its services went), and delivered once
    const ids = opened.map((x) => x.body.alert.id);
    expect(new Set(ids).size).toBe(ids.length);
    const open = await json<{ items: { rule: string; subject: { id: string } }[] }>(await hubs[1]!.api('/api/v1/alerts?node=GZ'));
    const subjects = open.items.map((a) => `${a.rule}|${a.subject.id}`);
    expect(new Set(subjects).size).toBe(subjects.length);
    expect(subjects).toEqual(expect.arrayContaining([`peripheral-fault|${T1}`, `peripheral-fault|${T2}`]));
    const keys = received.map((x) => x.key);
    expect(new Set(keys).size).toBe(keys.length);
  }, 240_000);
});
