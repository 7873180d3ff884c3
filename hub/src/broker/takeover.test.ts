/**
 * Credential reuse (issue 20, item 10): two real mqtt clients with one terminal's credentials, from 127.0.0.1 and
 * 127.0.0.2 (both Linux loopback; the client socket is bound to its local address), reconnecting as an agent does.
 */
import fs from 'node:fs';
import net from 'node:net';
import { Writable } from 'node:stream';
import { MqttClient, type IClientOptions } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { queryNumber } from '../db/test-query.ts';
import { createLogger } from '../log.ts';
import { startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';

interface LogLine {
  level: number;
  msg: string;
  terminalId?: string;
  oldAddress?: string;
  newAddress?: string;
  address?: string;
}

let hub: TestHub;
const lines: LogLine[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  hub = await startTestHub({ alerts: { evaluateMs: 200, startGraceMs: 0, webhookBackoffMs: 50 } }, undefined, { log: createLogger('info', sink) });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.end(true);
});
afterAll(() => hub.stop());

/** A client from `localAddress` to `h`, reconnecting every `reconnectPeriod` ms like an agent (also after a refused CONNACK). */
function clientFrom(localAddress: string, id: string, secret: string, opts: IClientOptions = {}, h: TestHub = hub): MqttClient {
  const c = new MqttClient(() => net.createConnection({ port: h.mqttPort, host: '127.0.0.1', localAddress }), {
    clientId: id,
    username: id,
    password: secret,
    protocolVersion: 4,
    reconnectPeriod: 300,
    connectTimeout: 5000,
    reconnectOnConnackError: true,
    ...opts,
  });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

const connectedOnce = (c: MqttClient) => until(() => c.connected, 10_000);

async function alerts(terminalId: string, rule: string, h: TestHub = hub) {
  const res = await h.api(`/api/v1/alerts?terminal=${terminalId}&rule=${rule}&state=all`);
  return ((await res.json()) as { items: { id: number; state: string; severity: string; details: Record<string, unknown> }[] }).items;
}

async function presence(terminalId: string) {
  const res = await hub.api(`/api/v1/terminals/${terminalId}/presence?limit=100`);
  return ((await res.json()) as { items: { reason: string; address: string | null }[] }).items;
}

describe('credentials in use from two addresses', () => {
  test('the takeovers are logged with both addresses, a critical alert names them, the newer address is held off and the established terminal keeps reporting', { timeout: 60_000 }, async () => {
    const t = await hub.terminal('GZ-T-001-05');
    const refusedBefore = await hub.metric('kf_auth_failures_total', { reason: 'held-off' });
    const terminal = clientFrom('127.0.0.1', t.id, t.secret);
    await connectedOnce(terminal);
    await terminal.publishAsync(topicFor(t.id, 'telemetry'), telemetry(1), { qos: 1 });

    // the intruder comes along; both keep reconnecting as soon as they are kicked
    const intruder = clientFrom('127.0.0.2', t.id, t.secret);
    let intruderConnects = 0;
    intruder.on('connect', () => intruderConnects++);

    const alert = (await until(async () => (await alerts(t.id, 'credential-reuse')).find((a) => a.state !== 'resolved'), 15_000))!;
    expect(alert.severity).toBe('critical');
    expect(alert.details.addresses).toEqual(['127.0.0.1', '127.0.0.2']);
    // the intruder keeps trying and is refused each time, counted
    await until(async () => (await hub.metric('kf_auth_failures_total', { reason: 'held-off' })) >= refusedBefore + 3, 20_000);
    const held = (await alerts(t.id, 'credential-reuse'))[0]!;
    expect(held.details.heldOff).toMatchObject({ address: '127.0.0.2' });

    // the established terminal holds the connection and its samples are stored
    await until(() => terminal.connected, 10_000);
    const connects = intruderConnects;
    await new Promise((r) => setTimeout(r, 1500));
    expect(intruderConnects).toBe(connects);
    expect(terminal.connected).toBe(true);
    await terminal.publishAsync(topicFor(t.id, 'telemetry'), telemetry(2), { qos: 1 });
    expect(await queryNumber(hub.engine, 'SELECT count(*) AS n FROM telemetry WHERE terminal_id = ? AND seq = 2', t.id)).toBe(1);
    expect(intruderConnects).toBeLessThanOrEqual(2);

    // logged with the terminal id and both addresses; recorded for the API
    const takeovers = lines.filter((l) => l.msg === 'connection taken over from another address' && l.terminalId === t.id);
    expect(takeovers.length).toBeGreaterThanOrEqual(2);
    expect(takeovers[0]).toMatchObject({ oldAddress: '127.0.0.1', newAddress: '127.0.0.2' });
    expect(takeovers[1]).toMatchObject({ oldAddress: '127.0.0.2', newAddress: '127.0.0.1' });
    expect(lines.some((l) => l.msg === 'credentials in use from two addresses' && l.terminalId === t.id)).toBe(true);
    expect(lines.some((l) => l.msg.startsWith('repeated takeovers') && l.address === '127.0.0.2')).toBe(true);
    const detail = (await (await hub.api(`/api/v1/terminals/${t.id}`)).json()) as { lastAddress: string | null };
    expect(detail.lastAddress).toBe('127.0.0.1');
    const history = await presence(t.id);
    expect(history.filter((p) => p.reason === 'takeover').map((p) => p.address)).toEqual(expect.arrayContaining(['127.0.0.1', '127.0.0.2']));
  });

  test('a terminal reconnecting from its own address, or once from a new one (DHCP), is neither alerted on nor held off', { timeout: 60_000 }, async () => {
    const t = await hub.terminal('GZ-T-001-06');
    const refusedBefore = await hub.metric('kf_auth_failures_total', { reason: 'held-off' });
    // a network blip, five times in a row: the old connection still open when the new one logs in
    for (let i = 0; i < 5; i++) {
      const c = clientFrom('127.0.0.1', t.id, t.secret, { reconnectPeriod: 0 });
      await connectedOnce(c);
    }
    // then the address changes once, and the old connection never comes back
    const moved = clientFrom('127.0.0.3', t.id, t.secret, { reconnectPeriod: 0 });
    await connectedOnce(moved);
    await moved.publishAsync(topicFor(t.id, 'telemetry'), telemetry(1), { qos: 1 });
    await until(() => lines.some((l) => l.terminalId === t.id && l.newAddress === '127.0.0.3'), 5000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await alerts(t.id, 'credential-reuse')).toHaveLength(0);
    expect(await hub.metric('kf_auth_failures_total', { reason: 'held-off' })).toBe(refusedBefore);
    expect(moved.connected).toBe(true);
    expect(lines.filter((l) => l.terminalId === t.id && l.msg === 'connection taken over by a new one from the same address').length).toBeGreaterThanOrEqual(4);
    const detail = (await (await hub.api(`/api/v1/terminals/${t.id}`)).json()) as { lastAddress: string | null };
    expect(detail.lastAddress).toBe('127.0.0.3');
  });

  test('a restart keeps the hold-off and the open alert', { timeout: 60_000 }, async () => {
    const opts = { alerts: { evaluateMs: 200, startGraceMs: 0, webhookBackoffMs: 50 } };
    let h = await startTestHub(opts);
    const dir = h.dir;
    try {
      const t = await h.terminal('GZ-T-001-07');
      const terminal = clientFrom('127.0.0.1', t.id, t.secret, {}, h);
      await connectedOnce(terminal);
      const intruder = clientFrom('127.0.0.2', t.id, t.secret, {}, h);
      await until(async () => (await h.metric('kf_auth_failures_total', { reason: 'held-off' })) >= 1, 20_000);
      const before = (await alerts(t.id, 'credential-reuse', h)).find((a) => a.state !== 'resolved');
      expect(before).toBeDefined();
      terminal.end(true);
      intruder.end(true);
      await h.close();

      h = await startTestHub(opts, dir);
      // the intruder tries first this time: still held off
      const again = clientFrom('127.0.0.2', t.id, t.secret, { reconnectPeriod: 0, reconnectOnConnackError: false }, h);
      await until(async () => (await h.metric('kf_auth_failures_total', { reason: 'held-off' })) >= 1, 10_000);
      expect(again.connected).toBe(false);
      const back = clientFrom('127.0.0.1', t.id, t.secret, {}, h);
      await connectedOnce(back);
      await new Promise((r) => setTimeout(r, 1000));
      const after = await alerts(t.id, 'credential-reuse', h);
      expect(after.map((a) => [a.id, a.state])).toEqual([[before!.id, before!.state]]);
    } finally {
      await h.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
