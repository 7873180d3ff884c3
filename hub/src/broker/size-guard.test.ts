import mqttPacket from 'mqtt-packet';
import { describe, expect, test } from 'vitest';
import { PacketLengthGuard } from './size-guard.ts';

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
