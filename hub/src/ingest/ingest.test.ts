import { EAGER_BATCH } from './writer.ts';
import mqttPacket from 'mqtt-packet';
import { EXAMPLES } from '@kiosk-fleet/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { queryNumber, queryRows } from '../db/test-query.ts';
import { dropTestDatabase, testEngineKind } from '../db/postgres/test-database.ts';
import { closed, rawSocket, startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';

let hub: TestHub;
let a: { id: string; secret: string };
let b: { id: string; secret: string };

// Tests that start a hub of their own: on PostgreSQL that creates and migrates a database, seconds on a loaded machine.
const HUB_START_TIMEOUT = 30_000;

/**
 * A terminal's message as its outbox stores it: a resend of (epoch, seq) is the same payload, the same `ts` (on
 * PostgreSQL `ts` is part of the dedupe key, the partition key of telemetry and events: store.postgres.ts).
 */
const outbox = new Map<string, string>();
const sample = (seq: number, epoch = 'epochAAAA1') => {
  const key = `${epoch}/${seq}`;
  if (!outbox.has(key)) outbox.set(key, telemetry(seq, {}, epoch));
  return outbox.get(key)!;
};

const count = (table: string, id: string) => queryNumber(hub.engine, `SELECT count(*) AS n FROM ${table} WHERE terminal_id = ?`, id);

beforeAll(async () => {
  hub = await startTestHub();
  a = await hub.terminal('GZ-T-001-01');
  b = await hub.terminal('GZ-T-001-02');
});
afterAll(() => hub.stop());

describe('ingest', () => {
  test('a PUBACKed sample is already committed, with the hub receive time beside the terminal time', async () => {
    const c = await hub.connect(a.id, a.secret);
    const before = Date.now();
    await c.publishAsync(topicFor(a.id, 'telemetry'), telemetry(1, { ts: '2026-01-01T00:00:00.000Z' }), { qos: 1 });
    // No waiting: the row must be there the moment the PUBACK arrived.
    const [row] = (await queryRows(hub.engine, 'SELECT ts, received_at AS "receivedAt", cpu FROM telemetry WHERE terminal_id = ? AND seq = 1', a.id)) as {
      ts: number;
      receivedAt: number;
      cpu: number;
    }[];
    expect(row!.ts).toBe(Date.parse('2026-01-01T00:00:00.000Z'));
    expect(row!.receivedAt).toBeGreaterThanOrEqual(before);
    expect(row!.cpu).toBe(12.5);
    await c.endAsync();
  });

  test('a duplicate (terminal, stream, epoch, seq) is stored once; a gap is visible', async () => {
    const c = await hub.connect(b.id, b.secret);
    for (const seq of [1, 2, 2, 5]) await c.publishAsync(topicFor(b.id, 'telemetry'), sample(seq), { qos: 1 });
    expect(await count('telemetry', b.id)).toBe(3);
    expect(await hub.metric('kf_messages_duplicate_total', { kind: 'telemetry' })).toBeGreaterThanOrEqual(1);
    const detail = (await (await hub.api(`/api/v1/terminals/${b.id}`)).json()) as {
      streams: { stream: string; firstSeq: number; maxSeq: number; count: number; missing: number }[];
    };
    expect(detail.streams).toEqual([expect.objectContaining({ stream: 'telemetry', firstSeq: 1, maxSeq: 5, count: 3, missing: 2 })]);
    // A new epoch (a re-imaged terminal) starts again at 1 and is not a duplicate.
    await c.publishAsync(topicFor(b.id, 'telemetry'), telemetry(1, {}, 'epochBBBB2'), { qos: 1 });
    expect(await count('telemetry', b.id)).toBe(4);
    await c.endAsync();
  });

  test('telemetry counters follow a change of epoch, a late sample of the old one and several epochs in one batch', async () => {
    const t = await hub.terminal('GZ-T-001-03');
    const c = await hub.connect(t.id, t.secret);
    const send = (seq: number, epoch: string) => c.publishAsync(topicFor(t.id, 'telemetry'), sample(seq, epoch), { qos: 1 });
    for (const seq of [1, 2, 3]) await send(seq, 'epochCCCC1');
    for (const seq of [1, 2]) await send(seq, 'epochCCCC2');
    await send(4, 'epochCCCC1'); // a late replay of the old epoch
    await send(2, 'epochCCCC1'); // a duplicate: not counted
    // Unawaited, so that they may share a batch: epochs alternating within it.
    await Promise.all([send(3, 'epochCCCC2'), send(5, 'epochCCCC1'), send(4, 'epochCCCC2'), send(6, 'epochCCCC3')]);
    await c.endAsync();
    const detail = (await (await hub.api(`/api/v1/terminals/${t.id}`)).json()) as {
      streams: { stream: string; epoch: string; firstSeq: number; maxSeq: number; count: number; missing: number }[];
    };
    const byEpoch = Object.fromEntries(detail.streams.map((x) => [x.epoch, x]));
    expect(detail.streams).toHaveLength(3);
    expect(byEpoch.epochCCCC1).toMatchObject({ stream: 'telemetry', firstSeq: 1, maxSeq: 5, count: 5, missing: 0 });
    expect(byEpoch.epochCCCC2).toMatchObject({ stream: 'telemetry', firstSeq: 1, maxSeq: 4, count: 4, missing: 0 });
    expect(byEpoch.epochCCCC3).toMatchObject({ stream: 'telemetry', firstSeq: 6, maxSeq: 6, count: 1, missing: 0 });
    expect(await count('telemetry', t.id)).toBe(10);
  });

  test('malformed JSON, an unsupported version and a wrong schema are acknowledged, counted, not stored; others keep landing', async () => {
    const bad = await hub.connect(a.id, a.secret);
    const good = await hub.connect(b.id, b.secret);
    const stored = await count('telemetry', a.id);
    const m = async (reason: string) => hub.metric('kf_messages_rejected_total', { reason });
    const [j, v, s] = [await m('invalid-json'), await m('unsupported-version'), await m('schema')];
    // publishAsync resolves on PUBACK: a poison message must not block the outbox.
    await bad.publishAsync(topicFor(a.id, 'telemetry'), '{"v":1,', { qos: 1 });
    await bad.publishAsync(topicFor(a.id, 'telemetry'), telemetry(50, { v: 99 }), { qos: 1 });
    await bad.publishAsync(topicFor(a.id, 'telemetry'), telemetry(51, { host: { cpu: 'high' } }), { qos: 1 });
    await bad.publishAsync(topicFor(a.id, 'events'), JSON.stringify({ v: 1, kind: 'nope' }), { qos: 1 });
    await good.publishAsync(topicFor(b.id, 'telemetry'), telemetry(6), { qos: 1 });
    expect(bad.connected).toBe(true);
    expect(await count('telemetry', a.id)).toBe(stored);
    expect(await count('events', a.id)).toBe(0);
    expect(await m('invalid-json')).toBe(j + 1);
    expect(await m('unsupported-version')).toBe(v + 1);
    expect(await m('schema')).toBe(s + 2);
    expect(await queryNumber(hub.engine, 'SELECT count(*) AS n FROM telemetry WHERE terminal_id = ? AND seq = 6', b.id)).toBe(1);
    await bad.endAsync();
    await good.endAsync();
  });

  test('a packet declaring 1 MiB is refused before its body is buffered; another terminal still lands', async () => {
    const before = await hub.metric('kf_messages_rejected_total', { reason: 'oversize' });
    const good = await hub.connect(b.id, b.secret);
    const sock = await rawSocket(hub.mqttPort);
    const gone = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    sock.write(
      mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: a.id, keepalive: 30, username: a.id, password: Buffer.from(a.secret) }),
    );
    // Fixed header of a QoS 0 PUBLISH declaring 1 MiB (varint 0x80 0x80 0x40), then only a few bytes of it.
    sock.write(Buffer.from([0x30, 0x80, 0x80, 0x40, 0x00, 0x03, 0x61, 0x62, 0x63]));
    await gone; // without the guard the broker would wait for the remaining megabyte and the socket would stay open
    expect(await hub.metric('kf_messages_rejected_total', { reason: 'oversize' })).toBe(before + 1);
    await good.publishAsync(topicFor(b.id, 'telemetry'), telemetry(7), { qos: 1 });
    expect(await queryNumber(hub.engine, 'SELECT count(*) AS n FROM telemetry WHERE terminal_id = ? AND seq = 7', b.id)).toBe(1);
    await good.endAsync();
  });

  test('a payload just under KF_MAX_PAYLOAD passes the guard (and fails only its schema)', async () => {
    const c = await hub.connect(a.id, a.secret);
    const before = await hub.metric('kf_messages_rejected_total', { reason: 'invalid-json' });
    await c.publishAsync(topicFor(a.id, 'telemetry'), Buffer.alloc(hub.config.maxPayload - 100, 0x20), { qos: 1 });
    expect(c.connected).toBe(true);
    expect(await hub.metric('kf_messages_rejected_total', { reason: 'invalid-json' })).toBe(before + 1);
    await c.endAsync();
  });

  test('a terminal clock ahead of the hub or a year behind (dead RTC) is flagged; hours behind (outbox replay) is not', async () => {
    const c = await hub.connect(a.id, a.secret);
    const ahead = new Date(Date.now() + 10 * 60_000).toISOString();
    const behind = new Date(Date.now() - 3 * 3_600_000).toISOString();
    await c.publishAsync(topicFor(a.id, 'telemetry'), telemetry(200, { ts: ahead }), { qos: 1 });
    await c.publishAsync(topicFor(a.id, 'telemetry'), telemetry(201, { ts: behind }), { qos: 1 });
    await c.publishAsync(topicFor(a.id, 'telemetry'), telemetry(203, { ts: new Date(Date.now() - 365 * 86_400_000).toISOString() }), { qos: 1 });
    const res = (await (await hub.api(`/api/v1/terminals/${a.id}/telemetry?limit=1000`)).json()) as { items: { seq: number; clockSkewed: boolean }[] };
    const bySeq = new Map(res.items.map((x) => [x.seq, x.clockSkewed]));
    expect(bySeq.get(200)).toBe(true);
    expect(bySeq.get(201)).toBe(false);
    expect(bySeq.get(203)).toBe(true);
    // A dead-RTC sample is live data: it updates the latest state.
    const dead = (await (await hub.api(`/api/v1/terminals/${a.id}`)).json()) as { latest: { ts: string } };
    expect(Date.now() - Date.parse(dead.latest.ts)).toBeLessThan(60_000);
    // The sample from the future does not freeze the latest state: a normal one after it still updates it.
    await c.publishAsync(topicFor(a.id, 'telemetry'), telemetry(202, { host: { ...EXAMPLES.telemetry.host, net: undefined, cpu: 77 } }), { qos: 1 });
    const d = (await (await hub.api(`/api/v1/terminals/${a.id}`)).json()) as { latest: { host: { cpu: number } } };
    expect(d.latest.host.cpu).toBe(77);
    await c.endAsync();
  });

  test('events, config reports, command results and update status are stored once each', async () => {
    const c = await hub.connect(a.id, a.secret);
    const ev = { v: 1, epoch: 'epochAAAA1', seq: 1, ts: new Date().toISOString(), kind: 'paper.low', severity: 'warning', peripheral: 'receiptPrinter' };
    await c.publishAsync(topicFor(a.id, 'events'), JSON.stringify(ev), { qos: 1 });
    await c.publishAsync(topicFor(a.id, 'events'), JSON.stringify(ev), { qos: 1 });
    await c.publishAsync(
      topicFor(a.id, 'config/reported'),
      JSON.stringify({ v: 1, epoch: 'epochAAAA1', seq: 1, ts: new Date().toISOString(), version: 3, status: 'applied' }),
      { qos: 1 },
    );
    await c.publishAsync(
      topicFor(a.id, 'update/status'),
      JSON.stringify({ v: 1, epoch: 'epochAAAA1', seq: 1, ts: new Date().toISOString(), state: 'downloading', progress: 0.5 }),
      { qos: 1 },
    );
    expect(await count('events', a.id)).toBe(1);
    expect(await count('config_reports', a.id)).toBe(1);
    expect(await count('update_status', a.id)).toBe(1);
    await c.endAsync();
  });
});

describe('failed commits', () => {
  test('a batch that fails is retried message by message: the good ones commit, the failure is counted and not acknowledged', async () => {
    const before = { batch: await hub.metric('kf_write_failures_total', { scope: 'batch' }), msg: await hub.metric('kf_write_failures_total', { scope: 'message' }) };
    // A job that fails inside the transaction, queued in the same tick (so the same batch) as a terminal's sample.
    const bad = hub.writer.enqueue(() => {
      throw new Error('SQLITE_FULL: database or disk is full');
    });
    const good = hub.ingest.handle(b.id, 'telemetry', JSON.parse(telemetry(300)) as never);
    await expect(bad).rejects.toThrow(/SQLITE_FULL/);
    await good;
    expect(await queryNumber(hub.engine, 'SELECT count(*) AS n FROM telemetry WHERE terminal_id = ? AND seq = 300', b.id)).toBe(1);
    expect(await hub.metric('kf_write_failures_total', { scope: 'batch' })).toBe(before.batch + 1);
    expect(await hub.metric('kf_write_failures_total', { scope: 'message' })).toBe(before.msg + 1);
  });
});

describe('back-pressure', () => {
  test('with a full write queue PUBACKs wait instead of the queue growing; every acknowledged sample is stored', { timeout: HUB_START_TIMEOUT }, async () => {
    const small = await startTestHub({ ingest: { batchSize: 4, flushMs: 20, queueLimit: 8 } });
    try {
      const t = await small.terminal('GZ-T-001-09');
      const c = await small.connect(t.id, t.secret);
      const depths: number[] = [];
      const timer = setInterval(() => depths.push(small.writer.depth), 1);
      await Promise.all(Array.from({ length: 200 }, (_, i) => c.publishAsync(topicFor(t.id, 'telemetry'), telemetry(i + 1), { qos: 1 })));
      clearInterval(timer);
      expect(Math.max(...depths)).toBeLessThanOrEqual(8);
      expect(await small.metric('kf_write_backpressure_total')).toBeGreaterThan(0);
      expect(await queryNumber(small.engine, 'SELECT count(*) AS n FROM telemetry')).toBe(200);
      await c.endAsync();
    } finally {
      await small.stop();
    }
  });
});

describe('one batch per event-loop turn', () => {
  test('a deep write queue is written a batch per turn, so HTTP requests and other connections get their turn in between', { timeout: HUB_START_TIMEOUT }, async () => {
    const h = await startTestHub({ ingest: { batchSize: 4, flushMs: 0, queueLimit: 100 } });
    try {
      let done = 0;
      const all = Array.from({ length: 12 }, () => h.writer.enqueue(() => undefined).then(() => done++));
      // queued after the writer's own flush: runs in the same check phase, before the writer's next turn
      const afterFirstTurn = await new Promise<{ done: number; left: number }>((resolve) => setImmediate(() => resolve({ done, left: h.writer.depth })));
      // one batch was taken in the first turn, the rest waits
      expect(afterFirstTurn.left).toBe(8);
      // SQLite commits within the turn; a PostgreSQL commit is a round trip, it lands in a later turn
      if (testEngineKind() === 'sqlite') expect(afterFirstTurn.done).toBe(4);
      await Promise.all(all);
      expect(done).toBe(12);
    } finally {
      await h.stop();
    }
  });
});

describe('when a batch is written', () => {
  test(`a few jobs wait flushMs to share a commit; EAGER_BATCH of them are written at the end of their turn`, async () => {
    // (the hub's own start waits for this flushMs once)
    const h = await startTestHub({ ingest: { batchSize: 1000, flushMs: 1500, queueLimit: 10_000 } });
    try {
      const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
      let few = 0;
      const fewDone = Array.from({ length: 3 }, () => h.writer.enqueue(() => undefined).then(() => few++));
      await endOfTurn();
      await endOfTurn();
      expect(few).toBe(0);
      let many = 0;
      const manyDone = Array.from({ length: EAGER_BATCH }, () => h.writer.enqueue(() => undefined).then(() => many++));
      await endOfTurn();
      // the eager batch took the three waiting ones along, at the end of the turn (not flushMs later)
      expect(h.writer.depth).toBe(0);
      // SQLite commits within the turn; a PostgreSQL commit is a round trip, it lands in a later turn
      if (testEngineKind() === 'sqlite') {
        expect(many).toBe(EAGER_BATCH);
        expect(few).toBe(3);
      }
      await Promise.all([...fewDone, ...manyDone]);
      expect(many).toBe(EAGER_BATCH);
      expect(few).toBe(3);
    } finally {
      await h.stop();
    }
  }, 20_000);
});

describe('closing', () => {
  test('close() drains: a sample in flight when the hub stops is either acknowledged and stored or not acknowledged', { timeout: HUB_START_TIMEOUT }, async () => {
    const h = await startTestHub();
    const t = await h.terminal('GZ-T-001-08');
    const c = await h.connect(t.id, t.secret);
    const acked: number[] = [];
    const sends = Array.from({ length: 50 }, (_, i) =>
      c.publishAsync(topicFor(t.id, 'telemetry'), telemetry(i + 1), { qos: 1 }).then(() => acked.push(i + 1), () => undefined),
    );
    await until(() => acked.length > 0);
    const dir = h.dir;
    await h.close();
    void sends;
    const reopened = await startTestHub({}, dir);
    try {
      const rows = (await queryRows(reopened.engine, 'SELECT seq FROM telemetry')) as { seq: number }[];
      const stored = new Set(rows.map((r) => r.seq));
      for (const seq of acked) expect(stored.has(seq)).toBe(true);
    } finally {
      c.end(true);
      await reopened.stop();
      (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
      await dropTestDatabase(dir);
    }
  });
});
