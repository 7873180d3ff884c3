/**
 * Impersonation against a real hub process: a terminal cannot publish or subscribe as another, cannot log in under
 * another's id, a decommissioned terminal's secret and a rotated secret are refused at once (and their live
 * connections closed), and no secret the hub ever issued appears in its logs or in an API answer other than the one
 * that issued it.
 */
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { connectTerminal, metric, provisionFleet, rawConnect, waitFor, hubQuery, within } from '../helpers/reliability-util.ts';

let hub: HubProcess;
let creds: { id: string; secret: string }[];
/** Every secret the hub handed out in this file. */
const issued: string[] = [];
const clients: MqttClient[] = [];

const sample = (epoch: string, seq: number) => JSON.stringify({ ...EXAMPLES.telemetry, epoch, seq, ts: new Date().toISOString() });

async function rows(id: string): Promise<number> {
  return Number((await (await hubQuery(hub.dataDir))('SELECT count(*) AS n FROM telemetry WHERE terminal_id = ?', id))[0]!.n);
}

async function connect(id: string, secret: string, opts: Parameters<typeof connectTerminal>[3] = {}): Promise<MqttClient> {
  const c = await connectTerminal(hub.mqttUrl, id, secret, opts);
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

/** The CONNACK return code the hub answers to a CONNECT (0 = accepted). */
async function connackCode(packet: Parameters<typeof mqttPacket.generate>[0]): Promise<number> {
  const c = await rawConnect(hub.mqttPort, '127.0.0.81');
  c.socket.write(mqttPacket.generate(packet));
  await waitFor('CONNACK', () => c.received().length >= 4 || c.isClosed(), 15_000, 5);
  const r = c.received();
  c.socket.destroy();
  return r.length >= 4 ? r[3]! : -1;
}

beforeAll(async () => {
  // debug: the most the hub would ever log in production troubleshooting must still hold no secret.
  hub = await spawnHub({ env: { KF_LOG_LEVEL: 'debug' } });
  creds = await provisionFleet(hub, 6, 'IM');
  issued.push(...creds.map((c) => c.secret));
});

afterEach(() => {
  for (const c of clients.splice(0)) c.end(true);
});

afterAll(async () => {
  await hub?.stop();
});

describe('impersonation', () => {
  it('a terminal publishing on another terminal’s topic is disconnected and nothing is stored for either', async () => {
    const [a, b] = [creds[0]!, creds[1]!];
    const before = await metric(hub, 'kf_messages_rejected_total', { reason: 'acl-publish' });
    const c = await connect(a.id, a.secret);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish(topicFor(b.id, 'telemetry'), sample('impersonate', 1), { qos: 1 });
    expect(await within(closed, 5000)).toBe(true);
    expect(await rows(b.id)).toBe(0);
    expect(await rows(a.id)).toBe(0);
    expect(await metric(hub, 'kf_messages_rejected_total', { reason: 'acl-publish' })).toBeGreaterThan(before);
    // Also with QoS 0, and on a topic outside the fleet's tree.
    for (const topic of [topicFor(b.id, 'events'), '$SYS/x', 'kf/v1/t/+/telemetry']) {
      const c2 = await connect(a.id, a.secret);
      const closed2 = new Promise<void>((r) => c2.once('close', () => r()));
      c2.publish(topic, sample('impersonate', 2), { qos: 0 });
      expect(await within(closed2, 5000)).toBe(true);
    }
    expect(await rows(b.id)).toBe(0);
  });

  it('the same rules hold over MQTT-over-WebSocket (/mqtt on the HTTP port)', async () => {
    const [a, b] = [creds[0]!, creds[1]!];
    const wsUrl = `ws://127.0.0.1:${hub.httpPort}/mqtt`;
    const ws = await connectTerminal(wsUrl, a.id, a.secret);
    clients.push(ws);
    ws.on('error', () => undefined);
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.publish(topicFor(b.id, 'telemetry'), sample('impersonatews', 1), { qos: 1 });
    expect(await within(closed, 5000)).toBe(true);
    expect(await rows(b.id)).toBe(0);
    await expect(connectTerminal(wsUrl, b.id, a.secret)).rejects.toThrow(/Not authorized|Bad username/i);
  });

  it('a terminal cannot log in under another id, with a will on another’s topic, or subscribe to another’s commands', async () => {
    const [a, b] = [creds[0]!, creds[1]!];
    const base = { cmd: 'connect' as const, protocolId: 'MQTT' as const, protocolVersion: 4 as const, clean: true, keepalive: 30 };
    // Another's id with one's own credentials; one's id as username with another's client id; another's id, own secret.
    expect(await connackCode({ ...base, clientId: b.id, username: a.id, password: Buffer.from(a.secret) })).toBe(5);
    expect(await connackCode({ ...base, clientId: a.id, username: b.id, password: Buffer.from(a.secret) })).toBe(5);
    expect(await connackCode({ ...base, clientId: b.id, username: b.id, password: Buffer.from(a.secret) })).toBe(5);
    expect(await connackCode({ ...base, clientId: a.id, username: a.id, password: Buffer.from(a.secret), will: { topic: topicFor(b.id, 'presence'), payload: Buffer.from('{}'), qos: 1, retain: true } })).toBe(5);
    // Empty and absent passwords.
    expect(await connackCode({ ...base, clientId: a.id, username: a.id, password: Buffer.alloc(0) })).toBe(5);
    expect(await connackCode({ ...base, clientId: a.id, username: a.id })).toBe(5);

    const c = await connect(a.id, a.secret);
    // mqtt.js reports a refused subscription (SUBACK 0x80) as an error carrying the SUBACK packet.
    const granted = await new Promise<unknown[]>((resolve) =>
      c.subscribe([topicFor(b.id, 'commands'), topicFor(b.id, 'config/desired'), 'kf/v1/t/#', '#'], { qos: 1 }, (err, g) =>
        resolve((err as { packet?: { granted?: unknown[] } } | null)?.packet?.granted ?? (g ?? []).map((x) => x.qos)),
      ),
    );
    expect(granted).toEqual([128, 128, 128, 128]);
    // Its own down topics are granted.
    const own = await c.subscribeAsync(topicFor(a.id, 'commands'), { qos: 1 });
    expect(own[0]!.qos).toBe(1);
  });

  it('a decommissioned terminal is disconnected and its old secret refused, also after a hub restart', async () => {
    const t = creds[2]!;
    const c = await connect(t.id, t.secret);
    await c.publishAsync(topicFor(t.id, 'telemetry'), sample('decommission', 1), { qos: 1 });
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    const res = await hub.api(`/api/v1/terminals/${t.id}/decommission`, { method: 'POST', json: { reason: 'stolen' } });
    expect(res.status).toBe(200);
    expect(await within(closed, 5000)).toBe(true);
    await expect(connectTerminal(hub.mqttUrl, t.id, t.secret)).rejects.toThrow(/Not authorized|Bad username/i);
    await hub.restart();
    await expect(connectTerminal(hub.mqttUrl, t.id, t.secret)).rejects.toThrow(/Not authorized|Bad username/i);
    expect(await rows(t.id)).toBe(1);
    // A new secret cannot be issued for it either.
    expect((await hub.api(`/api/v1/terminals/${t.id}/secret`, { method: 'POST' })).status).toBe(409);
  });

  it('a rotated secret stops working at once: the live connection closes, the old secret is refused, the new one works', async () => {
    const t = creds[3]!;
    const c = await connect(t.id, t.secret);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    const res = await hub.api(`/api/v1/terminals/${t.id}/secret`, { method: 'POST' });
    expect(res.status).toBe(200);
    const { secret } = (await res.json()) as { secret: string };
    issued.push(secret);
    expect(secret).not.toBe(t.secret);
    expect(await within(closed, 5000)).toBe(true);
    await expect(connectTerminal(hub.mqttUrl, t.id, t.secret)).rejects.toThrow(/Not authorized|Bad username/i);
    const fresh = await connect(t.id, secret);
    await fresh.publishAsync(topicFor(t.id, 'telemetry'), sample('rotatedsecret', 1), { qos: 1 });
    expect(await rows(t.id)).toBe(1);
    // Registering a terminal issues a secret too.
    const reg = await hub.api('/api/v1/terminals', { method: 'POST', json: { id: 'GZ-IM-001-0099', type: 'id-card', serial: 'SN-IM-99', station: 'GZ-IM-001' } });
    expect(reg.status).toBe(201);
    issued.push(((await reg.json()) as { secret: string }).secret);
  });

  it('no issued secret, nor the admin token, appears in the hub’s logs or in any read answer of the API', async () => {
    // Make the hub log as much as it can about these terminals: refused logins with the right id, ACL refusals.
    for (const t of creds.slice(4)) {
      await expect(connectTerminal(hub.mqttUrl, t.id, `${t.secret}x`)).rejects.toThrow();
      const c = await connect(t.id, t.secret);
      const closed = new Promise<void>((r) => c.once('close', () => r()));
      c.publish(topicFor(creds[0]!.id, 'telemetry'), sample('secretsinlogs', 1), { qos: 1 });
      await within(closed, 5000);
    }
    const reads = await Promise.all(
      ['/api/v1/terminals?state=all', ...creds.map((c) => `/api/v1/terminals/${c.id}`), '/metrics', '/api/v1/nodes'].map(async (p) => (await hub.api(p)).text()),
    );
    const logs = hub.logs.join('\n');
    expect(issued.length).toBeGreaterThanOrEqual(8);
    for (const s of issued) {
      expect(logs.includes(s), 'a secret is in the hub logs').toBe(false);
      for (const r of reads) expect(r.includes(s), 'a secret is in an API answer').toBe(false);
    }
    expect(logs.includes(hub.token), 'the admin token is in the hub logs').toBe(false);
  });
});
