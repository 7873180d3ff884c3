/**
 * Replaying a backlog: a larger window while the outbox holds more than the live one, still in append order, each
 * message once, and the on-disk outbox empty afterwards. The broker here holds each PUBACK until a batch "commits"
 * every 20 ms, as the hub does, so the window is what limits the rate.
 */
import net from 'node:net';
import path from 'node:path';
import { Aedes } from 'aedes';
import { afterEach, expect, it } from 'vitest';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { SqliteOutbox } from './outbox/sqlite.ts';
import type { StreamBody } from './outbox/outbox.ts';
import { waitFor } from './test-support/broker.ts';
import { tempDir, testAgent } from './test-support/agent.ts';

const ID = 'GZ-YX-001-01';
const COUNT = 1500;
const teardown: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const t of teardown.splice(0).reverse()) await t();
});

it('replays a backlog of 1,500 in order, each once, with more than 16 but at most 256 in flight, and empties the outbox', async () => {
  const { dir, cleanup } = tempDir();
  teardown.push(cleanup);
  const outbox = new SqliteOutbox(path.join(dir, 'outbox.sqlite'), { maxBytes: 1e9, maxAgeMs: 86400_000 });
  const { v: _v, epoch: _e, seq: _s, ts: _t, ...body } = EXAMPLES.telemetry;
  const sample = structuredClone(body) as unknown as StreamBody<'telemetry'>;
  for (let i = 0; i < COUNT; i++) outbox.append('telemetry', sample);

  const seqs: number[] = [];
  let held: (() => void)[] = [];
  let maxHeld = 0;
  const broker = await Aedes.createBroker({
    authorizePublish: (client, packet, cb) => {
      if (client && packet.topic === topicFor(ID, 'telemetry')) {
        seqs.push((JSON.parse(packet.payload.toString()) as { seq: number }).seq);
        held.push(() => cb(null));
        maxHeld = Math.max(maxHeld, held.length);
      } else cb(null);
    },
  });
  const commit = setInterval(() => {
    const batch = held;
    held = [];
    for (const release of batch) release();
  }, 20);
  const server = net.createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  teardown.push(async () => {
    clearInterval(commit);
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const agent = testAgent({ hubUrl: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`, outbox, defaults: { telemetryInterval: 3600, logLevel: 'info', peripherals: {} } });
  teardown.push(() => outbox.close());
  teardown.push(() => agent.stop());
  await agent.start();
  await waitFor(() => seqs.length >= COUNT && outbox.stats().count === 0, 30_000, 'replay');
  // the agent's own first sample may follow the backlog (seq 1501): still in order, nothing twice
  expect(seqs.slice(0, COUNT)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  expect(maxHeld).toBeGreaterThan(16);
  expect(maxHeld).toBeLessThanOrEqual(256);
}, 60_000);
