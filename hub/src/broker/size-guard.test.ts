import { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { describe, expect, test } from 'vitest';
import { gracefulStream, guardParser, HEADER_ALLOWANCE, packetLengthCheck, type MqttParser } from './size-guard.ts';

const publish = (bytes: number) =>
  mqttPacket.generate({ cmd: 'publish', topic: 'kf/v1/t/A/telemetry', payload: Buffer.alloc(bytes, 1), qos: 0, retain: false, dup: false });

/** A parser as Aedes makes one per connection, with the check installed; what it parsed and refused. */
function guarded(maxPayload: number) {
  const parser = mqttPacket.parser();
  const refused: (number | null)[] = [];
  const packets: number[] = [];
  const errors: string[] = [];
  guardParser(parser as unknown as MqttParser, packetLengthCheck(maxPayload, (declared) => refused.push(declared)));
  parser.on('packet', (p) => packets.push(p.length ?? 0));
  parser.on('error', (err) => errors.push(err.message));
  return { parser, refused, packets, errors };
}

describe('packetLengthCheck', () => {
  test('packets within the limit parse as before, across arbitrary chunking', () => {
    const stream = Buffer.concat([publish(10), publish(200), mqttPacket.generate({ cmd: 'pingreq' }), publish(1000)]);
    for (const size of [1, 2, 3, 7, 64, stream.length]) {
      const g = guarded(1100 - HEADER_ALLOWANCE);
      for (let i = 0; i < stream.length; i += size) g.parser.parse(stream.subarray(i, i + size));
      expect(g.packets).toHaveLength(4);
      expect(g.refused).toEqual([]);
      expect(g.errors).toEqual([]);
    }
  });

  test('fails the parser as soon as an over-limit length has arrived, before its body, even split byte by byte', () => {
    const g = guarded(1100 - HEADER_ALLOWANCE);
    const big = publish(5000);
    g.parser.parse(publish(100));
    g.parser.parse(big.subarray(0, 2)); // type + first length byte (continuation): not known yet
    expect(g.refused).toEqual([]);
    g.parser.parse(big.subarray(2, 3));
    expect(g.refused).toHaveLength(1);
    expect(g.refused[0]).toBeGreaterThan(1100);
    expect(g.errors).toHaveLength(1);
    expect(g.packets).toHaveLength(1);
  });

  test('a length field longer than MQTT allows is refused and counted the same way', () => {
    const g = guarded(65536);
    g.parser.parse(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]));
    expect(g.refused).toEqual([null]);
    expect(g.errors).toHaveLength(1);
  });
});

describe('gracefulStream', () => {
  test('the PUBACKs written to one connection in one tick reach the transport as one write, in order', async () => {
    const writes: Buffer[] = [];
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        writes.push(chunk);
        cb();
      },
    });
    const conn = gracefulStream(socket);
    // As Aedes releases a committed batch: one writeToStream per PUBACK (three small writes each, corked by mqtt-packet).
    for (let id = 1; id <= 5; id++) mqttPacket.writeToStream({ cmd: 'puback', messageId: id }, conn);
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(1);
    const expected = Buffer.concat([1, 2, 3, 4, 5].map((id) => mqttPacket.generate({ cmd: 'puback', messageId: id })));
    expect(writes[0]).toStrictEqual(expected);
  });

  test('destroying it ends the transport gracefully, after what was written', async () => {
    const writes: Buffer[] = [];
    let ended = false;
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        writes.push(chunk);
        cb();
      },
      final(cb) {
        ended = true;
        cb();
      },
    });
    const conn = gracefulStream(socket);
    mqttPacket.writeToStream({ cmd: 'connack', returnCode: 5, sessionPresent: false }, conn);
    await new Promise((r) => process.nextTick(r));
    conn.destroy();
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(writes)).toStrictEqual(mqttPacket.generate({ cmd: 'connack', returnCode: 5, sessionPresent: false }));
    expect(ended).toBe(true);
  });
});
