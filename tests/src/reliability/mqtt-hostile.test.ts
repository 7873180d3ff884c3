/**
 * Hostile MQTT input against a real hub process, while a legitimate terminal keeps reporting: mutated packets (a
 * seeded PRNG over mqtt-packet's generate; replay a failure with KF_FUZZ_SEED=<seed>), invalid UTF-8 in topics,
 * thousands of topic levels, a declared remaining length of 256 MB, connections that never send CONNECT, and a
 * flood of wrong passwords from one address. The hub must stay up, keep serving the legitimate terminal (every
 * acknowledged sample stored exactly once), limit the offender, and count what it refused in /metrics.
 *
 * Hostile traffic comes from other loopback addresses (127.0.0.7x) so that the per-address login throttle it
 * provokes is the offender's, not the legitimate terminal's (127.0.0.1).
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import {
  connectTerminal,
  fuzzSeed,
  hubQuery,
  metric,
  prng,
  provisionFleet,
  pumpTelemetry,
  rawConnect,
  sleep,
  waitFor,
  within,
  type RawConn,
  type TelemetryPump,
} from '../helpers/reliability-util.ts';

const SEED = fuzzSeed(20261126);
const FUZZ_FROM = '127.0.0.71';
const IDLE_FROM = '127.0.0.72';
const FLOOD_FROM = '127.0.0.73';

const sample = (epoch: string, seq: number) => JSON.stringify({ ...EXAMPLES.telemetry, epoch, seq, ts: new Date().toISOString() });

let hub: HubProcess;
let creds: { id: string; secret: string }[];
let legit: { id: string; secret: string };
let legitClient: MqttClient;
let pump: TelemetryPump;
const idle: RawConn[] = [];
const clients: MqttClient[] = [];

function connectPacket(id: string, secret: string): Buffer {
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: id, username: id, password: Buffer.from(secret) });
}

/** Opens a raw connection authenticated as `id` (CONNECT sent, CONNACK 0 awaited). */
async function rawSession(id: string, secret: string, from = FUZZ_FROM): Promise<RawConn> {
  const c = await rawConnect(hub.mqttPort, from);
  c.socket.write(connectPacket(id, secret));
  await waitFor(`CONNACK for ${id}`, () => c.received().length >= 4 || c.isClosed(), 10_000, 10);
  const ack = c.received();
  if (ack[0] !== 0x20 || ack[3] !== 0) throw new Error(`${id} not accepted: ${ack.toString('hex')}`);
  return c;
}

async function storedRows(id: string): Promise<number> {
  const q = await hubQuery(hub.dataDir);
  let n = 0;
  for (const t of ['telemetry', 'events', 'config_reports', 'command_results', 'update_status']) {
    n += Number((await q(`SELECT count(*) AS n FROM ${t} WHERE terminal_id = ?`, id))[0]!.n);
  }
  return n;
}

beforeAll(async () => {
  hub = await spawnHub();
  creds = await provisionFleet(hub, 12, 'MQ');
  legit = creds[0]!;
  legitClient = await connectTerminal(hub.mqttUrl, legit.id, legit.secret);
  pump = pumpTelemetry(legitClient, legit.id, topicFor(legit.id, 'telemetry'), sample, 40);
  // Connections that never send CONNECT, opened first so that Aedes' connect timeout runs during the other tests.
  for (let i = 0; i < 50; i++) idle.push(await rawConnect(hub.mqttPort, IDLE_FROM));
});

afterAll(async () => {
  await pump?.stop();
  for (const c of clients) c.end(true);
  legitClient?.end(true);
  for (const c of idle) c.socket.destroy();
  await hub?.stop();
});

describe('hostile MQTT input', () => {
  it(`survives 600 mutated packets (seed ${SEED}), before and after CONNECT, and keeps serving the legitimate terminal`, async () => {
    const rnd = prng(SEED);
    const fuzzers = creds.slice(1, 9);
    const templates = (id: string): Packet[] => [
      { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: rnd.next() < 0.5, keepalive: rnd.int(120), clientId: id, username: id, password: Buffer.from('x'.repeat(rnd.int(60))) },
      { cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clean: true, keepalive: 0, clientId: id, will: { topic: topicFor(id, 'presence'), payload: rnd.bytes(20), qos: 1, retain: true } },
      { cmd: 'publish', topic: topicFor(id, 'telemetry'), payload: sample('fuzz', rnd.int(1000) + 1), qos: 1, messageId: rnd.int(65535) + 1, retain: false, dup: false },
      { cmd: 'publish', topic: topicFor(id, 'events'), payload: rnd.bytes(rnd.int(200)), qos: 0, retain: true, dup: false },
      { cmd: 'publish', topic: topicFor(legit.id, 'telemetry'), payload: sample('fuzz', 1), qos: 1, messageId: 7, retain: false, dup: false },
      { cmd: 'subscribe', messageId: rnd.int(65535) + 1, subscriptions: [{ topic: '#', qos: 1 }, { topic: topicFor(id, 'commands'), qos: 1 }] },
      { cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['#', '+/+'] },
      { cmd: 'puback', messageId: rnd.int(65535) + 1 },
      { cmd: 'pubrec', messageId: 9 },
      { cmd: 'pubrel', messageId: 9 },
      { cmd: 'pubcomp', messageId: 9 },
      { cmd: 'pingreq' },
      { cmd: 'connack', returnCode: 0, sessionPresent: false },
      { cmd: 'suback', messageId: 1, granted: [0, 1, 128] },
      { cmd: 'disconnect' },
    ];
    const mutate = (b: Buffer): Buffer => {
      const out = Buffer.from(b);
      switch (rnd.int(7)) {
        case 0: // flip a few bytes
          for (let i = 0, n = 1 + rnd.int(4); i < n; i++) out[rnd.int(out.length)] = rnd.int(256);
          return out;
        case 1: // truncate
          return out.subarray(0, rnd.int(out.length));
        case 2: // trailing garbage
          return Buffer.concat([out, rnd.bytes(1 + rnd.int(64))]);
        case 3: // reserved or wrong packet type / flags in the fixed header
          out[0] = (rnd.pick([0, 15, rnd.int(16)]) << 4) | rnd.int(16);
          return out;
        case 4: // a lying remaining length (small enough to pass the size guard)
          if (out.length > 1) out[1] = rnd.int(128);
          return out;
        case 5: // pure noise
          return rnd.bytes(1 + rnd.int(256));
        default: // the same packet twice, the second one damaged
          return Buffer.concat([b, mutate(b)]);
      }
    };

    const accepted = await metric(hub, 'kf_messages_in_total', { kind: 'telemetry' });
    const legitBefore = pump.acked.length;
    let cases = 0;
    let closedByHub = 0;
    const runCase = async (i: number): Promise<void> => {
      const who = fuzzers[i % fuzzers.length]!;
      const afterConnect = i % 2 === 1;
      const bytes = mutate(mqttPacket.generate(rnd.pick(templates(who.id))));
      let c: RawConn;
      try {
        c = afterConnect ? await rawSession(who.id, who.secret) : await rawConnect(hub.mqttPort, FUZZ_FROM);
      } catch (err) {
        throw new Error(`case ${i} (seed ${SEED}): could not open the connection: ${(err as Error).message}`);
      }
      c.socket.write(bytes);
      if (await within(c.closed, 150)) closedByHub++;
      c.socket.destroy();
      cases++;
    };
    // Eight at a time: one per fuzzing terminal, so that sessions do not take each other over.
    for (let i = 0; i < 600; i += 8) await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((k) => runCase(i + k)));

    expect(cases).toBe(600);
    expect(closedByHub).toBeGreaterThan(100);
    expect(hub.proc.exitCode).toBeNull();
    expect((await hub.api('/api/v1/health')).status).toBe(200);
    // The legitimate terminal never noticed and is still being acknowledged.
    await waitFor('legitimate samples after the fuzzing', () => pump.acked.length > legitBefore + 10);
    expect(pump.errors).toEqual([]);
    // Nothing a fuzzer sent landed on the legitimate terminal's rows (it tried to publish on its topic).
    const q = await hubQuery(hub.dataDir);
    expect(Number((await q("SELECT count(*) AS n FROM telemetry WHERE terminal_id = ? AND epoch = 'fuzz'", legit.id))[0]!.n)).toBe(0);
    expect(await metric(hub, 'kf_messages_in_total', { kind: 'telemetry' })).toBeGreaterThanOrEqual(accepted);
    expect(await metric(hub, 'kf_messages_rejected_total')).toBeGreaterThan(0);
  });

  it('closes a connection whose PUBLISH topic is invalid UTF-8, stores nothing from it', async () => {
    const who = creds[9]!;
    const before = await storedRows(who.id);
    const topic = topicFor(who.id, 'telemetry');
    for (const bad of [Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80])]) {
      const c = await rawSession(who.id, who.secret);
      const pkt = mqttPacket.generate({ cmd: 'publish', topic, payload: sample('utf8', 1), qos: 1, messageId: 1, retain: false, dup: false });
      // The topic starts after the fixed header (2 bytes here) and its 2-byte length; overwrite bytes inside the id.
      const at = 2 + 2 + 'kf/v1/t/'.length + 2;
      bad.copy(pkt, at);
      c.socket.write(pkt);
      expect(await within(c.closed, 5000)).toBe(true);
      // A PUBACK (0x40) must not have been sent for it.
      expect([...c.received().subarray(4)].includes(0x40)).toBe(false);
    }
    expect(await storedRows(who.id)).toBe(before);
    expect(pump.errors).toEqual([]);
  });

  it('refuses thousands of topic levels in PUBLISH and SUBSCRIBE without harm', async () => {
    const who = creds[9]!;
    const before = await storedRows(who.id);
    const deep = `${topicFor(who.id, 'telemetry')}${'/x'.repeat(5000)}`;
    const pub = await rawSession(who.id, who.secret);
    pub.socket.write(mqttPacket.generate({ cmd: 'publish', topic: deep, payload: sample('deep', 1), qos: 1, messageId: 2, retain: false, dup: false }));
    expect(await within(pub.closed, 5000)).toBe(true);

    const sub = await rawSession(who.id, who.secret);
    sub.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 5, subscriptions: [{ topic: `${'+/'.repeat(5000)}#`, qos: 1 }] }));
    const closed = await within(sub.closed, 3000);
    if (!closed) {
      // Not closed: then the subscription must have been refused (SUBACK return code 0x80).
      const r = sub.received();
      expect(r.subarray(4)[0]).toBe(0x90);
      expect(r.subarray(4).at(-1)).toBe(0x80);
      sub.socket.destroy();
    }
    expect(await storedRows(who.id)).toBe(before);
    expect(hub.proc.exitCode).toBeNull();
    expect(pump.errors).toEqual([]);
  });

  it('closes a connection that declares a 256 MB packet at once, before and after CONNECT, and counts it', async () => {
    const before = await metric(hub, 'kf_messages_rejected_total', { reason: 'oversize' });
    const who = creds[10]!;
    // Remaining length 268,435,455 (the MQTT maximum, varint ff ff ff 7f), then a trickle of body bytes.
    const header = (type: number) => Buffer.from([type, 0xff, 0xff, 0xff, 0x7f]);
    const pre = await rawConnect(hub.mqttPort, FUZZ_FROM);
    pre.socket.write(header(0x10));
    pre.socket.write(Buffer.alloc(4096, 0x41));
    const post = await rawSession(who.id, who.secret);
    post.socket.write(header(0x32));
    post.socket.write(Buffer.alloc(4096, 0x41));
    // A fifth length byte is not MQTT at all.
    const fifth = await rawConnect(hub.mqttPort, FUZZ_FROM);
    fifth.socket.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]));
    expect(await within(pre.closed, 5000)).toBe(true);
    expect(await within(post.closed, 5000)).toBe(true);
    expect(await within(fifth.closed, 5000)).toBe(true);
    expect(await metric(hub, 'kf_messages_rejected_total', { reason: 'oversize' })).toBeGreaterThanOrEqual(before + 2);
    expect(hub.logs.some((l) => l.includes('packet over KF_MAX_PAYLOAD'))).toBe(true);
    expect(pump.errors).toEqual([]);
  });

  it('slows a flood of wrong passwords from one address, counts and rate-limits its log lines, and still admits others', async () => {
    const victim = creds[11]!;
    const authBefore = await metric(hub, 'kf_auth_failures_total');
    const attempt = async (from: string): Promise<{ code: number; ms: number }> => {
      const c = await rawConnect(hub.mqttPort, from);
      const t0 = Date.now();
      c.socket.write(connectPacket(victim.id, `wrong-${Math.random()}`));
      await waitFor('CONNACK or close', () => c.received().length >= 4 || c.isClosed(), 15_000, 5);
      const r = c.received();
      c.socket.destroy();
      return { code: r.length >= 4 ? r[3]! : -1, ms: Date.now() - t0 };
    };
    // Sequential attempts: each failure makes the next answer from this address wait longer.
    const seq: { code: number; ms: number }[] = [];
    for (let i = 0; i < 7; i++) seq.push(await attempt(FLOOD_FROM));
    expect(seq.every((a) => a.code === 5 || a.code === 4)).toBe(true);
    // Past the few free attempts the hub holds its answer back (this is the limit, not a speed measurement).
    expect(seq.at(-1)!.ms).toBeGreaterThanOrEqual(700);

    // While the offender's next answer is held back, a terminal from another address logs in at once.
    const slow = attempt(FLOOD_FROM);
    const other = creds[10]!;
    const ok = connectTerminal(hub.mqttUrl, other.id, other.secret).then((c) => {
      clients.push(c);
      return 'legit';
    });
    expect(await Promise.race([slow.then(() => 'offender'), ok])).toBe('legit');
    await slow;

    // A parallel wave: all refused, all counted, the log does not grow with it.
    const logLinesBefore = hub.logs.filter((l) => l.includes('connection refused') && l.includes(FLOOD_FROM)).length;
    const wave = await Promise.all(Array.from({ length: 100 }, () => attempt(FLOOD_FROM)));
    expect(wave.every((a) => a.code === 5 || a.code === 4)).toBe(true);
    expect(await metric(hub, 'kf_auth_failures_total')).toBeGreaterThanOrEqual(authBefore + 108);
    const logLinesAfter = hub.logs.filter((l) => l.includes('connection refused') && l.includes(FLOOD_FROM)).length;
    expect(logLinesAfter - logLinesBefore).toBeLessThanOrEqual(5);
    expect(pump.errors).toEqual([]);
  });

  // F11-9 (fixed): `data` of an event (and `result` of a command result) was any JSON record; nested 20,000 deep
  // (40 KB, under KF_MAX_PAYLOAD) it passed the schema, then JSON.stringify in the ingest threw RangeError, the message
  // was never acknowledged and the connection closed — every time: a poison message for a real agent's outbox. The
  // protocol now bounds the depth (MAX_JSON_DEPTH), so it is refused by the schema, counted and acknowledged.
  it('acknowledges (counts, drops) a schema-valid payload nested 20,000 deep instead of closing the connection each time (finding F11-9)', async () => {
    const who = creds[9]!;
    const n = 20_000;
    const body = JSON.stringify({ ...EXAMPLES.events, epoch: 'deepnesting', seq: 1, ts: new Date().toISOString(), data: { x: 0 } }).replace('"x":0', `"x":${'['.repeat(n)}${']'.repeat(n)}`);
    for (let attempt = 0; attempt < 2; attempt++) {
      const c = await connectTerminal(hub.mqttUrl, who.id, who.secret);
      clients.push(c);
      c.on('error', () => undefined);
      const closed = new Promise<string>((r) => c.once('close', () => r('closed')));
      const outcome = await Promise.race([c.publishAsync(topicFor(who.id, 'events'), body, { qos: 1 }).then(() => 'acknowledged', () => 'failed'), closed, sleep(10_000).then(() => 'no answer')]);
      expect(outcome).toBe('acknowledged');
    }
    expect(hub.proc.exitCode).toBeNull();
    expect(pump.errors).toEqual([]);
  });

  it('acknowledges, counts and drops a payload with a NUL character (U+0000) in a string or a key, and stores the same terminal\'s next message', async () => {
    // PostgreSQL stores no U+0000 in text (22021): stored, such a message failed its whole write batch at every resend.
    const who = creds[11]!;
    const before = await storedRows(who.id);
    const rejected = await metric(hub, 'kf_messages_rejected_total', { reason: 'schema' });
    const c = await connectTerminal(hub.mqttUrl, who.id, who.secret);
    clients.push(c);
    const ts = () => new Date().toISOString();
    const event = (seq: number, message: string) => JSON.stringify({ ...EXAMPLES.events, epoch: 'nulEPOCH', seq, ts: ts(), message });
    // every publishAsync resolves on its PUBACK: acknowledged so that the terminal's outbox moves on
    await c.publishAsync(topicFor(who.id, 'events'), event(1, 'paper \u0000 low'), { qos: 1 });
    await c.publishAsync(topicFor(who.id, 'telemetry'), JSON.stringify({ ...EXAMPLES.telemetry, epoch: 'nulEPOCH', seq: 1, ts: ts(), app: { ...EXAMPLES.telemetry.app, version: '2.0\u0000' } }), { qos: 1 });
    await c.publishAsync(topicFor(who.id, 'events'), JSON.stringify({ ...EXAMPLES.events, epoch: 'nulEPOCH', seq: 2, ts: ts(), data: { 'k\u0000': 1 } }), { qos: 1 });
    expect(await metric(hub, 'kf_messages_rejected_total', { reason: 'schema' })).toBeGreaterThanOrEqual(rejected + 3);
    expect(hub.logs.some((l) => l.includes('payload rejected, not stored') && l.includes('U+0000'))).toBe(true);
    expect(await storedRows(who.id)).toBe(before);
    // the next clean message of the same terminal lands, and so does the legitimate terminal's
    const legitBefore = pump.acked.length;
    await c.publishAsync(topicFor(who.id, 'events'), event(3, 'paper low'), { qos: 1 });
    expect(await storedRows(who.id)).toBe(before + 1);
    await waitFor('legitimate samples after the NUL payloads', () => pump.acked.length > legitBefore + 3);
    expect(hub.proc.exitCode).toBeNull();
    expect(pump.errors).toEqual([]);
  });

  it('closes connections that never send CONNECT, while the legitimate terminal keeps working', async () => {
    // Aedes' connectTimeout is 30 s; these sockets were opened before the first test.
    await waitFor('idle connections closed by the hub', () => idle.every((c) => c.isClosed()), 45_000, 500);
    expect(idle.every((c) => c.received().length === 0)).toBe(true);
    expect(pump.errors).toEqual([]);
  });

  it('stored every acknowledged sample of the legitimate terminal exactly once', async () => {
    const acked = await pump.stop();
    expect(acked.length).toBeGreaterThan(50);
    const rows = (
      await (await hubQuery(hub.dataDir))('SELECT seq, count(*) AS n FROM telemetry WHERE terminal_id = ? AND epoch = ? GROUP BY seq', legit.id, pump.epoch)
    ).map((r) => ({ seq: Number(r.seq), n: Number(r.n) }));
    const stored = new Set(rows.map((r) => r.seq));
    expect(acked.filter((s) => !stored.has(s))).toEqual([]);
    expect(rows.filter((r) => r.n > 1)).toEqual([]);
    expect(pump.errors).toEqual([]);
    await sleep(0);
  });
});
