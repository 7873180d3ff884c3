import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { Aedes, type AedesOptions } from 'aedes';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPersistence, ExactRetainedPersistence } from './persistence.ts';

const topics = async (r: Readable) => (await r.toArray()).map((p: { topic: string }) => p.topic).sort();
const retained = (topic: string, text: string) => ({ cmd: 'publish', topic, payload: Buffer.from(text), qos: 1, retain: true });

describe('retained messages by exact topic', () => {
  test('an exact topic finds its own message only; an empty payload clears it; wildcards still match', async () => {
    const p = new ExactRetainedPersistence();
    for (const t of ['kf/v1/A-01/config/desired', 'kf/v1/A-02/config/desired', 'kf/v1/A-01/commands']) await p.storeRetained(retained(t, t));
    expect(await topics(p.createRetainedStreamCombi(['kf/v1/A-02/config/desired']))).toEqual(['kf/v1/A-02/config/desired']);
    expect(await topics(p.createRetainedStreamCombi(['kf/v1/A-01/config/desired', 'kf/v1/A-01/commands', 'kf/v1/A-09/commands']))).toEqual([
      'kf/v1/A-01/commands',
      'kf/v1/A-01/config/desired',
    ]);
    expect(await topics(p.createRetainedStream('kf/v1/+/config/desired'))).toEqual(['kf/v1/A-01/config/desired', 'kf/v1/A-02/config/desired']);
    expect(await topics(p.createRetainedStreamCombi(['kf/v1/A-01/#', 'kf/v1/A-02/config/desired']))).toEqual([
      'kf/v1/A-01/commands',
      'kf/v1/A-01/config/desired',
      'kf/v1/A-02/config/desired',
    ]);

    await p.storeRetained(retained('kf/v1/A-02/config/desired', ''));
    expect(await topics(p.createRetainedStreamCombi(['kf/v1/A-02/config/desired']))).toEqual([]);
    expect(await topics(p.createRetainedStream('kf/v1/+/config/desired'))).toEqual(['kf/v1/A-01/config/desired']);
    // A newer retained message replaces the older one.
    await p.storeRetained(retained('kf/v1/A-01/config/desired', 'v2'));
    const [latest] = await p.createRetainedStreamCombi(['kf/v1/A-01/config/desired']).toArray();
    expect((latest as { payload: Buffer }).payload.toString()).toBe('v2');
  });
});

describe('in a real Aedes broker', () => {
  let broker: Aedes;
  let server: net.Server;
  let url: string;

  beforeAll(async () => {
    broker = await Aedes.createBroker({ persistence: createPersistence() as AedesOptions['persistence'] });
    server = net.createServer((s) => broker.handle(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => broker.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('a subscriber gets the retained message of its own topic on SUBSCRIBE, and a wildcard subscriber all of them', async () => {
    const pub = await mqtt.connectAsync(url, { clientId: 'publisher' });
    await pub.publishAsync('kf/v1/B-01/config/desired', 'one', { qos: 1, retain: true });
    await pub.publishAsync('kf/v1/B-02/config/desired', 'two', { qos: 1, retain: true });
    await pub.endAsync();

    const got = async (pattern: string, n: number) => {
      const c = await mqtt.connectAsync(url, { clientId: `sub-${n}-${Math.random()}` });
      const msgs: string[] = [];
      c.on('message', (topic, payload, packet) => msgs.push(`${topic}=${payload.toString()}${packet.retain ? ' (retained)' : ''}`));
      await c.subscribeAsync(pattern, { qos: 1 });
      await new Promise((r) => setTimeout(r, 200));
      await c.endAsync();
      return msgs.sort();
    };
    expect(await got('kf/v1/B-02/config/desired', 1)).toEqual(['kf/v1/B-02/config/desired=two (retained)']);
    expect(await got('kf/v1/+/config/desired', 2)).toEqual(['kf/v1/B-01/config/desired=one (retained)', 'kf/v1/B-02/config/desired=two (retained)']);
  });
});
