import { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { describe, expect, test } from 'vitest';
import { guardStream, PacketLengthGuard } from './size-guard.ts';

const publish = (bytes: number) =>
  mqttPacket.generate({ cmd: 'publish', topic: 'kf/v1/t/A/telemetry', payload: Buffer.alloc(bytes, 1), qos: 0, retain: false, dup: false });

describe('PacketLengthGuard', () => {
  test('follows packet boundaries across arbitrary chunking', () => {
    const stream = Buffer.concat([publish(10), publish(200), mqttPacket.generate({ cmd: 'pingreq' }), publish(1000)]);
    for (const size of [1, 2, 3, 7, 64, stream.length]) {
      const g = new PacketLengthGuard(1100);
      for (let i = 0; i < stream.length; i += size) expect(g.scan(stream.subarray(i, i + size))).toBe(-1);
    }
  });

  test('flags a declared length over the limit as soon as the length bytes arrive, even split byte by byte', () => {
    const g = new PacketLengthGuard(1100);
    const big = publish(5000);
    expect(g.scan(publish(100))).toBe(-1);
    expect(g.scan(big.subarray(0, 2))).toBe(-1); // type + first length byte (continuation) is not yet over
    expect(g.scan(big.subarray(2, 3))).toBeGreaterThan(1100);
  });
});

describe('guardStream', () => {
  test('the PUBACKs written to one connection in one tick reach the socket as one write, in order', async () => {
    const writes: Buffer[] = [];
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        writes.push(chunk);
        cb();
      },
    });
    const conn = guardStream(socket, 65536, () => undefined);
    // As Aedes releases a committed batch: one writeToStream per PUBACK (three small writes each, corked by mqtt-packet).
    for (let id = 1; id <= 5; id++) mqttPacket.writeToStream({ cmd: 'puback', messageId: id }, conn);
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(1);
    const expected = Buffer.concat([1, 2, 3, 4, 5].map((id) => mqttPacket.generate({ cmd: 'puback', messageId: id })));
    expect(writes[0]).toStrictEqual(expected);
  });
});
