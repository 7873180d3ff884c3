/**
 * Per-terminal ingest quotas (issue 20, item 3), against a real broker and real mqtt clients: a flooding terminal is
 * acknowledged but not stored beyond its quota, counted, alerted on once; its neighbours are unaffected; an outbox
 * replay after an outage passes whole at the default limits; the daily event cap holds, across a restart too.
 */
import fs from 'node:fs';
import type { MqttClient } from 'mqtt';
import { EXAMPLES } from '@kiosk-fleet/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../config.ts';
import { queryNumber } from '../db/test-query.ts';
import { startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';
import { createLogger } from '../log.ts';
import { createMetrics } from '../metrics.ts';
import { DEFAULT_QUOTAS, IngestQuota, type FloodState } from './quota.ts';

const count = (hub: TestHub, table: string, id: string) => queryNumber(hub.engine, `SELECT count(*) AS n FROM ${table} WHERE terminal_id = ?`, id);

function event(seq: number, epoch = 'epochEVT01') {
  return JSON.stringify({ ...EXAMPLES.events, epoch, seq, ts: new Date().toISOString() });
}

/** Publishes every payload at QoS 1 with up to `window` unacknowledged (as the agent replays); resolves when all are acked. */
async function sendAll(c: MqttClient, topic: string, payloads: string[], window = 256): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < payloads.length) await c.publishAsync(topic, payloads[next++]!, { qos: 1 });
  };
  await Promise.all(Array.from({ length: window }, lane));
}

interface AlertItem {
  id: number;
  rule: string;
  state: string;
  terminalId: string | null;
  details: Record<string, unknown>;
}

async function alertsOf(hub: TestHub, terminalId: string, rule: string): Promise<AlertItem[]> {
  const res = await hub.api(`/api/v1/alerts?terminal=${terminalId}&rule=${rule}&state=all`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: AlertItem[] }).items;
}

describe('the token bucket', () => {
  const quota = (telemetry: { rate: number; burst: number }, floods: [string, FloodState | null][] = []) =>
    new IngestQuota(
      { streams: { ...DEFAULT_QUOTAS, telemetry }, eventsPerDay: 0, floodQuietMs: 1000 },
      createMetrics(),
      createLogger('silent'),
      (id, s) => floods.push([id, s]),
    );

  test('a burst, then the rate; a quiet terminal gets its burst back; presence is not limited', () => {
    const floods: [string, FloodState | null][] = [];
    const q = quota({ rate: 2, burst: 3 }, floods);
    const t0 = 1_000_000;
    expect([1, 2, 3, 4].map(() => q.admit('A', 'telemetry', t0))).toEqual([true, true, true, false]);
    expect(q.admit('A', 'events', t0)).toBe(true);
    expect(q.admit('A', 'presence', t0)).toBe(true);
    expect(q.admit('A', 'telemetry', t0 + 499)).toBe(false);
    expect(q.admit('A', 'telemetry', t0 + 1000)).toBe(true);
    expect(floods).toEqual([['A', { since: t0, last: t0, dropped: { telemetry: 1 } }]]);
    // quiet for the flood's quiet time after its last drop (t0 + 499): over; quiet long enough: the whole burst again
    q.tick(t0 + 1498);
    expect(floods).toHaveLength(1);
    q.tick(t0 + 1499);
    expect(floods[1]).toEqual(['A', null]);
    expect([1, 2, 3, 4].map(() => q.admit('A', 'telemetry', t0 + 60_000))).toEqual([true, true, true, false]);
  });

  test('every terminal has its own buckets, however many there are', () => {
    const q = quota({ rate: 1, burst: 1 });
    const ids = Array.from({ length: 5000 }, (_, i) => `GZ-T-001-${i}`);
    expect(ids.every((id) => q.admit(id, 'telemetry', 1000))).toBe(true);
    expect(ids.some((id) => q.admit(id, 'telemetry', 1000))).toBe(false);
  });
});

describe('rate limit per terminal and stream', () => {
  let hub: TestHub;
  const RATE = 5;
  const BURST = 50;
  beforeAll(async () => {
    const defaults = parseConfig({}).quota;
    hub = await startTestHub({
      quota: { ...defaults, streams: { ...defaults.streams, telemetry: { rate: RATE, burst: BURST } }, floodQuietMs: 1500 },
      alerts: { evaluateMs: 200, startGraceMs: 0, webhookBackoffMs: 50 },
    });
  });
  afterAll(() => hub.stop());

  test('a flooding terminal gets every message acknowledged, stores at most its quota, is counted and alerted on once; others keep landing', { timeout: 60_000 }, async () => {
    const f = await hub.terminal('GZ-T-001-01');
    const o = await hub.terminal('GZ-T-001-02');
    const flooder = await hub.connect(f.id, f.secret);
    const other = await hub.connect(o.id, o.secret);
    const N = 2000;
    const started = Date.now();
    // the neighbour reports meanwhile, one sample at a time
    const neighbour = (async () => {
      for (let seq = 1; seq <= 20; seq++) await other.publishAsync(topicFor(o.id, 'telemetry'), telemetry(seq, {}, 'epochOTHER'), { qos: 1 });
    })();
    // every publishAsync resolves on its PUBACK: a dropped message is acknowledged like a stored one
    await sendAll(
      flooder,
      topicFor(f.id, 'telemetry'),
      Array.from({ length: N }, (_, i) => telemetry(i + 1, {}, 'epochFLOOD')),
      500,
    );
    const elapsedS = (Date.now() - started) / 1000;
    await neighbour;

    const stored = await count(hub, 'telemetry', f.id);
    expect(stored).toBeGreaterThanOrEqual(BURST);
    expect(stored).toBeLessThanOrEqual(BURST + Math.ceil(RATE * (elapsedS + 1)));
    expect(stored).toBeLessThan(N);
    expect(await hub.metric('kf_ingest_quota_dropped_total', { stream: 'telemetry', reason: 'rate' })).toBe(N - stored);
    expect(await count(hub, 'telemetry', o.id)).toBe(20);
    expect(flooder.connected).toBe(true);

    // one alert for the terminal, not one per message; it resolves once the flood stopped
    const open = (await until(async () => (await alertsOf(hub, f.id, 'terminal-flooding')).find((a) => a.state !== 'resolved'), 10_000))!;
    expect(open.details).toMatchObject({ dropped: { telemetry: expect.any(Number) } });
    const resolved = (await until(async () => (await alertsOf(hub, f.id, 'terminal-flooding')).find((a) => a.state === 'resolved'), 15_000))!;
    expect(resolved.id).toBe(open.id);
    expect(await alertsOf(hub, f.id, 'terminal-flooding')).toHaveLength(1);
    expect(await alertsOf(hub, o.id, 'terminal-flooding')).toHaveLength(0);

    // within its quota again, the terminal's samples are stored
    await flooder.publishAsync(topicFor(f.id, 'telemetry'), telemetry(N + 1, {}, 'epochFLOOD'), { qos: 1 });
    expect(await queryNumber(hub.engine, 'SELECT count(*) AS n FROM telemetry WHERE terminal_id = ? AND seq = ?', f.id, N + 1)).toBe(1);
  });
});

describe('default quotas', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub({ alerts: { evaluateMs: 200, startGraceMs: 0, webhookBackoffMs: 50 } });
  });
  afterAll(() => hub.stop());

  test('are the documented ones', () => {
    expect(hub.config.quota.streams).toEqual(DEFAULT_QUOTAS);
    expect(hub.config.quota.eventsPerDay).toBe(5000);
  });

  test('an outbox replay of 2,000 samples and 200 events after an outage is stored whole, at full speed', { timeout: 90_000 }, async () => {
    const t = await hub.terminal('GZ-T-001-03');
    let c = await hub.connect(t.id, t.secret);
    for (let seq = 1; seq <= 3; seq++) await c.publishAsync(topicFor(t.id, 'telemetry'), telemetry(seq, {}, 'epochREPLAY'), { qos: 1 });
    await c.endAsync();
    // 17 hours offline at the agent's default 30 s interval: the outbox holds 2,000 samples and some events
    const now = Date.now();
    const samples = Array.from({ length: 2000 }, (_, i) => telemetry(i + 4, { ts: new Date(now - (2000 - i) * 30_000).toISOString() }, 'epochREPLAY'));
    const events = Array.from({ length: 200 }, (_, i) =>
      JSON.stringify({ ...EXAMPLES.events, epoch: 'epochREPLAY', seq: i + 1, ts: new Date(now - (200 - i) * 300_000).toISOString() }),
    );
    c = await hub.connect(t.id, t.secret);
    await Promise.all([sendAll(c, topicFor(t.id, 'telemetry'), samples), sendAll(c, topicFor(t.id, 'events'), events, 16)]);
    expect(await count(hub, 'telemetry', t.id)).toBe(2003);
    expect(await count(hub, 'events', t.id)).toBe(200);
    expect(await hub.metric('kf_ingest_quota_dropped_total', { stream: 'telemetry', reason: 'rate' })).toBe(0);
    // no flooding alert for a replay
    await new Promise((r) => setTimeout(r, 1000));
    expect(await alertsOf(hub, t.id, 'terminal-flooding')).toHaveLength(0);
    await c.endAsync();
  });
});

describe('daily event cap', () => {
  test('events past the cap are acknowledged, counted and not stored; the cap holds across a hub restart', { timeout: 60_000 }, async () => {
    const CAP = 100;
    const overrides = { quota: { ...parseConfig({}).quota, eventsPerDay: CAP } };
    let hub = await startTestHub(overrides);
    const dir = hub.dir;
    try {
      const t = await hub.terminal('GZ-T-001-04');
      const o = await hub.terminal('GZ-T-001-05');
      const c = await hub.connect(t.id, t.secret);
      await sendAll(c, topicFor(t.id, 'events'), Array.from({ length: 150 }, (_, i) => event(i + 1)), 32);
      expect(await count(hub, 'events', t.id)).toBe(CAP);
      expect(await hub.metric('kf_ingest_quota_dropped_total', { stream: 'events', reason: 'daily-cap' })).toBe(50);
      // another terminal's events are its own
      const oc = await hub.connect(o.id, o.secret);
      await sendAll(oc, topicFor(o.id, 'events'), Array.from({ length: 10 }, (_, i) => event(i + 1)), 4);
      expect(await count(hub, 'events', o.id)).toBe(10);
      await hub.close();

      hub = await startTestHub(overrides, dir);
      const again = await hub.connect(t.id, t.secret);
      await sendAll(again, topicFor(t.id, 'events'), Array.from({ length: 10 }, (_, i) => event(i + 1, 'epochEVT02')), 4);
      expect(await count(hub, 'events', t.id)).toBe(CAP);
      expect(await hub.metric('kf_ingest_quota_dropped_total', { stream: 'events', reason: 'daily-cap' })).toBe(10);
    } finally {
      await hub.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
