import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePayload } from '@kiosk-fleet/protocol';
import { tempDir } from '../test-support/agent.ts';
import { MemoryOutbox } from './memory.ts';
import { OutboxRejectError, type Outbox, type OutboxLimits } from './outbox.ts';
import { SqliteOutbox } from './sqlite.ts';

const host = { cpu: 1, memUsed: 1, memTotal: 2, diskUsed: 1, diskTotal: 2, tempC: null, uptime: 5 };
const telemetry = { host, peripherals: { idCardReader: { status: 'ok' as const } } };
const event = { kind: 'paper.low' as const, severity: 'warning' as const };

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const kinds: [string, (limits: OutboxLimits) => Outbox][] = [
  ['memory', (l) => new MemoryOutbox(l)],
  [
    'sqlite',
    (l) => {
      const t = tempDir();
      const o = new SqliteOutbox(path.join(t.dir, 'outbox.sqlite'), l);
      cleanups.push(() => {
        o.close();
        t.cleanup();
      });
      return o;
    },
  ],
];

const roomy = { maxBytes: 10 * 1024 * 1024, maxAgeMs: 86400_000 };

describe.each(kinds)('%s outbox', (_name, make) => {
  it('numbers each stream from 1 contiguously and keeps append order across streams', () => {
    const o = make(roomy);
    o.append('telemetry', telemetry);
    o.append('events', event);
    o.append('telemetry', telemetry);
    const p = o.pending(0, 10);
    expect(p.map((e) => [e.kind, e.seq])).toEqual([
      ['telemetry', 1],
      ['events', 1],
      ['telemetry', 2],
    ]);
    for (const e of p) {
      const parsed = parsePayload(e.kind, e.payload);
      expect(parsed.ok).toBe(true);
      expect(JSON.parse(e.payload)).toMatchObject({ epoch: o.epoch, seq: e.seq, v: 1 });
    }
  });

  it('refuses a message that fails its schema without using up a seq', () => {
    const o = make(roomy);
    expect(() => o.append('telemetry', { ...telemetry, host: { ...host, cpu: 400 } })).toThrow(OutboxRejectError);
    o.append('telemetry', telemetry);
    expect(o.pending(0, 10).map((e) => e.seq)).toEqual([1]);
  });

  it('forgets a message once acknowledged and replays the rest in order', () => {
    const o = make(roomy);
    const a = o.append('telemetry', telemetry);
    o.append('telemetry', telemetry);
    o.append('events', event);
    o.ack(a.id);
    o.ack(a.id); // a duplicate ack is harmless
    expect(o.pending(0, 10).map((e) => `${e.kind}:${e.seq}`)).toEqual(['telemetry:2', 'events:1']);
    expect(o.stats().count).toBe(2);
  });

  it('over its byte bound drops the oldest telemetry first, events last, and reports the counts once', () => {
    const probe = make(roomy);
    const size = Buffer.byteLength(probe.append('telemetry', telemetry).payload);
    // room for about six telemetry messages
    const o = make({ maxBytes: size * 6 + 10, maxAgeMs: 86400_000 });
    o.append('events', event);
    for (let i = 0; i < 10; i++) o.append('telemetry', telemetry);
    const left = o.pending(0, 100);
    expect(left[0]?.kind).toBe('events');
    const seqs = left.filter((e) => e.kind === 'telemetry').map((e) => e.seq);
    expect(seqs.at(-1)).toBe(10);
    expect(seqs[0]).toBeGreaterThan(1);
    const dropped = o.takeDropped();
    expect(dropped.telemetry).toBe(10 - seqs.length);
    expect(dropped.events).toBe(0);
    expect(o.takeDropped()).toEqual({ telemetry: 0, events: 0 });
    expect(o.stats().bytes).toBeLessThanOrEqual(size * 6 + 10);
  });

  it('drops events only when no telemetry is left to drop', () => {
    const probe = make(roomy);
    const size = Buffer.byteLength(probe.append('events', event).payload);
    const o = make({ maxBytes: size * 3 + 5, maxAgeMs: 86400_000 });
    for (let i = 0; i < 5; i++) o.append('events', event);
    expect(o.pending(0, 100).map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(o.takeDropped()).toEqual({ telemetry: 0, events: 2 });
  });

  it('drops what is older than its age bound', () => {
    const o = make({ maxBytes: 10 * 1024 * 1024, maxAgeMs: 60_000 });
    const t0 = Date.parse('2026-11-26T00:00:00Z');
    o.append('telemetry', telemetry, new Date(t0));
    o.append('events', event, new Date(t0 + 1000));
    o.append('telemetry', telemetry, new Date(t0 + 120_000));
    expect(o.pending(0, 10).map((e) => `${e.kind}:${e.seq}`)).toEqual(['telemetry:2']);
    expect(o.takeDropped()).toEqual({ telemetry: 1, events: 1 });
  });

  it('remembers command ids so a redelivered command is recognised', () => {
    const o = make(roomy);
    expect(o.markCommandSeen('c-1')).toBe(true);
    expect(o.markCommandSeen('c-1')).toBe(false);
    expect(o.markCommandSeen('c-2')).toBe(true);
  });
});

describe('sqlite outbox on disk', () => {
  it('keeps its epoch, counters, pending messages and dropped counts across a reopen', () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const file = path.join(t.dir, 'outbox.sqlite');
    const a = new SqliteOutbox(file, roomy);
    const first = a.append('telemetry', telemetry);
    a.append('telemetry', telemetry);
    a.ack(first.id);
    a.markCommandSeen('c-9');
    const epoch = a.epoch;
    a.close();
    const b = new SqliteOutbox(file, roomy);
    cleanups.push(() => b.close());
    expect(b.epoch).toBe(epoch);
    expect(b.pending(0, 10).map((e) => e.seq)).toEqual([2]);
    expect(b.append('telemetry', telemetry).seq).toBe(3);
    expect(b.markCommandSeen('c-9')).toBe(false);
    expect(b.stats().count).toBe(2);
  });

  it('a new outbox file gets a new epoch', () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const a = new SqliteOutbox(path.join(t.dir, 'a.sqlite'), roomy);
    const b = new SqliteOutbox(path.join(t.dir, 'b.sqlite'), roomy);
    cleanups.push(() => {
      a.close();
      b.close();
    });
    expect(a.epoch).not.toBe(b.epoch);
    expect(a.epoch).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
  });
});
