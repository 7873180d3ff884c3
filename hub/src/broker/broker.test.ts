import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { closed, rawSocket, startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';
import { queryNumber } from '../db/test-query.ts';
import { LOGIN_SLOT_MS, MAX_LOGINS_IN_FLIGHT } from './broker.ts';

let hub: TestHub;
let a: { id: string; secret: string };
let b: { id: string; secret: string };

beforeAll(async () => {
  hub = await startTestHub();
  a = await hub.terminal('GZ-T-001-01');
  b = await hub.terminal('GZ-T-001-02');
});
afterAll(() => hub.stop());

describe('authentication', () => {
  test('the right secret connects', async () => {
    const c = await hub.connect(a.id, a.secret);
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  test('a wrong secret, an unknown id and a username unlike the client id are refused and counted', async () => {
    const before = await hub.metric('kf_auth_failures_total', { reason: 'bad-credentials' });
    await expect(hub.connect(a.id, 'wrong')).rejects.toThrow(/Not authorized/i);
    await expect(hub.connect('GZ-T-001-99', a.secret)).rejects.toThrow(/Not authorized/i);
    await expect(hub.connect(a.id, a.secret, { username: b.id })).rejects.toThrow(/Not authorized/i);
    expect(await hub.metric('kf_auth_failures_total', { reason: 'bad-credentials' })).toBe(before + 2);
    expect(await hub.metric('kf_auth_failures_total', { reason: 'username-not-client-id' })).toBeGreaterThanOrEqual(1);
  });

  test('a will on another terminal topic is refused', async () => {
    await expect(
      hub.connect(a.id, a.secret, { will: { topic: topicFor(b.id, 'presence'), payload: Buffer.from('x'), qos: 1, retain: true } }),
    ).rejects.toThrow(/Not authorized/i);
  });
});

describe('repeated failures', () => {
  test('an address that keeps failing is slowed down; the right secret still gets in afterwards', async () => {
    const h = await startTestHub();
    try {
      const t = await h.terminal('GZ-T-001-05');
      for (let i = 0; i < 6; i++) await expect(h.connect(t.id, 'wrong')).rejects.toThrow(/Not authorized/i);
      expect(await h.metric('kf_auth_delayed_total')).toBeGreaterThanOrEqual(2);
      const c = await h.connect(t.id, t.secret);
      expect(c.connected).toBe(true);
      await c.endAsync();
    } finally {
      await h.stop();
    }
  });
});

describe('ACL', () => {
  test('publishing on another terminal topic closes the connection and is counted; nothing is stored', async () => {
    const before = await hub.metric('kf_messages_rejected_total', { reason: 'acl-publish' });
    const c = await hub.connect(a.id, a.secret);
    const gone = closed(c);
    c.publish(topicFor(b.id, 'telemetry'), telemetry(1), { qos: 1 });
    await gone;
    expect(await hub.metric('kf_messages_rejected_total', { reason: 'acl-publish' })).toBe(before + 1);
    expect(await queryNumber(hub.engine, 'SELECT count(*) AS n FROM telemetry WHERE terminal_id = ?', b.id)).toBe(0);
  });

  test('publishing on an own down topic (hub → terminal) closes the connection', async () => {
    const c = await hub.connect(a.id, a.secret);
    const gone = closed(c);
    c.publish(topicFor(a.id, 'commands'), '{}', { qos: 1 });
    await gone;
  });

  test('subscribing to kf/#, to another terminal topics or to an own up topic gets SUBACK 128 (counted); own down topics are granted', async () => {
    const before = await hub.metric('kf_messages_rejected_total', { reason: 'acl-subscribe' });
    const c = await hub.connect(a.id, a.secret);
    const topics = ['kf/#', topicFor(b.id, 'commands'), topicFor(a.id, 'telemetry'), topicFor(a.id, 'commands'), topicFor(a.id, 'config/desired')];
    // mqtt.js turns a 128 return code into an error; one topic per SUBSCRIBE tells them apart.
    const granted: { qos: number }[] = [];
    for (const t of topics) granted.push(await c.subscribeAsync(t, { qos: 1 }).then((g) => g[0]!, () => ({ qos: 128 })));
    expect(granted.map((g) => g.qos)).toEqual([128, 128, 128, 1, 1]);
    expect(await hub.metric('kf_messages_rejected_total', { reason: 'acl-subscribe' })).toBe(before + 3);
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  test('a terminal never receives another terminal messages', async () => {
    const ca = await hub.connect(a.id, a.secret);
    const got: string[] = [];
    ca.on('message', (t) => got.push(t));
    await ca.subscribeAsync(topicFor(a.id, 'commands'));
    const res = await hub.api(`/api/v1/terminals/${b.id}/commands`, { method: 'POST', json: { name: 'ping' } });
    expect(res.status).toBe(201);
    await hub.api(`/api/v1/terminals/${a.id}/commands`, { method: 'POST', json: { name: 'ping' } });
    await until(() => got.length >= 1);
    expect(got).toEqual([topicFor(a.id, 'commands')]);
    await ca.endAsync();
  });
});

describe('takeover', () => {
  test('a second connection with the same id closes the first', async () => {
    const first = await hub.connect(a.id, a.secret);
    const gone = closed(first);
    const second = await hub.connect(a.id, a.secret);
    await gone;
    expect(second.connected).toBe(true);
    await second.endAsync();
  });
});

describe('hub-side publishes', () => {
  test('a burst far larger than the in-flight window reaches the terminal whole and in order', { timeout: 30_000 }, async () => {
    const t = await hub.terminal('GZ-T-001-09');
    const c = await hub.connect(t.id, t.secret);
    const got: number[] = [];
    c.on('message', (_topic, payload) => got.push((JSON.parse(payload.toString()) as { args: { n: number } }).args.n));
    await c.subscribeAsync(topicFor(t.id, 'commands'), { qos: 1 });
    const n = 2_000;
    const now = new Date();
    const sent = Array.from({ length: n }, (_, i) =>
      hub.broker.publish(t.id, 'commands', { v: 1, id: `c${i}`, name: 'ping', args: { n: i }, issuedAt: now.toISOString(), expiresAt: now.toISOString() }),
    );
    await Promise.all(sent);
    await until(() => got.length === n, 20_000);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i));
    await c.endAsync();
  });
});

describe('login slots', () => {
  test(`connections that never log in hold a slot at most LOGIN_SLOT_MS: a terminal behind ${MAX_LOGINS_IN_FLIGHT + 16} of them still gets in, and waiting connections that reset do no harm`, async () => {
    const h = await startTestHub();
    const idle: net.Socket[] = [];
    try {
      const t = await h.terminal('GZ-T-001-07');
      for (let i = 0; i < MAX_LOGINS_IN_FLIGHT + 16; i++) idle.push(await rawSocket(h.mqttPort));
      // every slot is taken by a connection that sent nothing; the rest wait (Aedes' own connect timeout is 30 s)
      await until(async () => (await h.metric('kf_mqtt_logins_waiting')) === 16);
      // some of the waiting ones go away: the hub must not trip over their resets
      for (const s of idle.slice(-8)) s.resetAndDestroy();
      const c = await h.connect(t.id, t.secret, { connectTimeout: 4 * LOGIN_SLOT_MS });
      expect(c.connected).toBe(true);
      await c.endAsync();
      expect((await h.api('/api/v1/health')).status).toBe(200);
    } finally {
      for (const s of idle) s.destroy();
      await h.stop();
    }
  }, 30_000);
});
