/**
 * Issue 20, item 6: a stream scoped to a station hears nothing of the rest of the fleet — no change, and no
 * heartbeat woken by another district's batches (heartbeats come on the 15 s schedule only).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { SSE_HEARTBEAT_MS } from './events.ts';
import { operator } from '../auth/testing.ts';
import { startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';

let hub: TestHub;
const aborts: AbortController[] = [];

beforeAll(async () => {
  hub = await startTestHub();
}, 60_000);
afterAll(async () => {
  for (const a of aborts) a.abort();
  await hub.stop();
});

/** Opens `/api/v1/events?node=` and collects everything the hub writes on it. */
async function openStream(node: string) {
  const ac = new AbortController();
  aborts.push(ac);
  const res = await hub.api(`/api/v1/events?node=${node}`, { signal: ac.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const s = { text: '', bytesAfterHello: 0, helloAt: 0 };
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const chunk = Buffer.from(value).toString();
        if (s.text.includes('event: hello')) s.bytesAfterHello += value.byteLength;
        s.text += chunk;
        if (s.helloAt === 0 && s.text.includes('event: hello')) s.helloAt = Date.now();
      }
    } catch {
      // aborted at the end
    }
  })();
  await until(() => s.helloAt > 0);
  return s;
}

const count = (text: string, event: string) => text.split(`event: ${event}\n`).length - 1;

test("another district's changes produce no bytes on a station's stream; its own changes arrive", async () => {
  const mine = await hub.terminal('GZ-YX-001-12', { station: 'GZ-YX-001' });
  const other = await hub.terminal('GZ-TH-001-01', { station: 'GZ-TH-001' });
  const scoped = await openStream('GZ-YX-001');
  const busy = await openStream('GZ-TH');
  const opened = Date.now();

  // GZ-TH is busy: one acknowledged (= committed, its own batch) sample at a time, until its own stream has seen 30.
  const c = await hub.connect(other.id, other.secret);
  for (let seq = 1; count(busy.text, 'change') < 30; seq++) {
    await c.publishAsync(topicFor(other.id, 'telemetry'), telemetry(seq), { qos: 1 });
    if (seq > 3000) throw new Error('the GZ-TH stream saw no changes');
  }
  const elapsed = Date.now() - opened;
  expect(scoped.text).not.toContain(other.id);
  expect(count(scoped.text, 'change')).toBe(0);
  // Only what the timer allows in the time it took (none at all when the loop ran in under 15 s).
  expect(count(scoped.text, 'heartbeat')).toBeLessThanOrEqual(Math.floor(elapsed / SSE_HEARTBEAT_MS));
  if (elapsed < SSE_HEARTBEAT_MS) expect(scoped.bytesAfterHello).toBe(0);

  // Its own station's change does arrive.
  const m = await hub.connect(mine.id, mine.secret);
  await m.publishAsync(topicFor(mine.id, 'telemetry'), telemetry(1), { qos: 1 });
  await until(() => scoped.text.includes(`"terminalId":"${mine.id}"`), 10_000);
  expect(scoped.text).not.toContain(other.id);
}, 120_000);

test("a revoked token's stream ends within seconds though nothing happens under its node", async () => {
  for (const id of ['GZ', 'GZ-YX', 'GZ-YX-001']) if (!(await hub.registry.node(id))) await hub.registry.createNode({ id, name: { zh: id, en: id } });
  const viewer = await operator(hub, 'yx001-viewer', 'viewer', 'GZ-YX-001');
  const ac = new AbortController();
  aborts.push(ac);
  const res = await viewer.api('/api/v1/events', { signal: ac.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let ended = false;
  void (async () => {
    try {
      while (!(await reader.read()).done);
    } catch {
      // aborted
    }
    ended = true;
  })();
  const tokenId = viewer.token.split('.')[1]!;
  expect((await hub.api(`/api/v1/auth/tokens/${tokenId}`, { method: 'DELETE' })).status).toBe(200);
  // Well inside the 15 s heartbeat: the stream does not wait for a change or a heartbeat to notice.
  await until(() => ended, 8000);
}, 60_000);
