import { describe, expect, it } from 'vitest';
import { EXAMPLES } from '../examples.ts';
import { TOPIC_KINDS, type TopicKind } from '../topics.ts';
import { commandArgsSchemas, parsePayload, payloadSchemas } from './messages.ts';
import { terminalConfigSchema } from './config.ts';

type Json = Record<string, unknown>;
const clone = <T>(x: T): T => structuredClone(x) as T;

/** Set (or delete, with `undefined`) the value at a dotted path of a copy of `obj`. */
function mutate(obj: unknown, path: string, value: unknown): Json {
  const copy = clone(obj) as Json;
  const keys = path.split('.');
  let at: Json = copy;
  for (const k of keys.slice(0, -1)) at = at[k] as Json;
  const last = keys.at(-1)!;
  if (value === undefined) delete at[last];
  else at[last] = value;
  return copy;
}

const LONG = 'x'.repeat(5000);

/** For each kind: a required field, a wrongly typed field, an out-of-range number and a bounded string. */
const CASES: Record<TopicKind, { missing: string; wrongType: [string, unknown]; outOfRange: [string, number]; oversized: string }> = {
  presence: { missing: 'bootId', wrongType: ['connSeq', 'one'], outOfRange: ['interval', 0], oversized: 'agentVersion' },
  telemetry: { missing: 'host', wrongType: ['host.tempC', 'hot'], outOfRange: ['host.cpu', 101], oversized: 'peripherals.receiptPrinter.message' },
  events: { missing: 'kind', wrongType: ['seq', '7'], outOfRange: ['seq', 0], oversized: 'message' },
  'config/desired': { missing: 'config', wrongType: ['version', '12'], outOfRange: ['config.telemetryInterval', 1], oversized: 'config.announcement.zh' },
  'config/reported': { missing: 'status', wrongType: ['version', true], outOfRange: ['version', -1], oversized: 'reason' },
  commands: { missing: 'expiresAt', wrongType: ['args', 'none'], outOfRange: ['v', 0], oversized: 'name' },
  'commands/result': { missing: 'id', wrongType: ['status', 1], outOfRange: ['seq', -5], oversized: 'id' },
  'update/target': { missing: 'release', wrongType: ['release.size', 'big'], outOfRange: ['release.size', -1], oversized: 'release.url' },
  'update/status': { missing: 'state', wrongType: ['progress', 'half'], outOfRange: ['progress', 1.5], oversized: 'version' },
};

describe.each(TOPIC_KINDS)('payload %s', (kind) => {
  const schema = payloadSchemas[kind];
  const example = EXAMPLES[kind];
  const c = CASES[kind];

  it('accepts its documented example', () => {
    expect(schema.safeParse(example).error).toBeUndefined();
    expect(parsePayload(kind, JSON.stringify(example))).toMatchObject({ ok: true });
  });

  it('rejects a missing field', () => {
    expect(schema.safeParse(mutate(example, c.missing, undefined)).success).toBe(false);
  });

  it('rejects a wrong type', () => {
    expect(schema.safeParse(mutate(example, ...c.wrongType)).success).toBe(false);
  });

  it('rejects an out-of-range number', () => {
    expect(schema.safeParse(mutate(example, ...c.outOfRange)).success).toBe(false);
  });

  it('rejects an oversized string', () => {
    expect(schema.safeParse(mutate(example, c.oversized, LONG)).success).toBe(false);
  });

  it('rejects an unknown schema version, with its own reason', () => {
    expect(schema.safeParse(mutate(example, 'v', 2)).success).toBe(false);
    const r = parsePayload(kind, JSON.stringify(mutate(example, 'v', 2)));
    expect(r).toMatchObject({ ok: false, reason: 'unsupported-version' });
  });
});

describe('parsePayload', () => {
  it('labels invalid JSON and schema failures for the metrics', () => {
    expect(parsePayload('telemetry', '{not json')).toMatchObject({ ok: false, reason: 'invalid-json' });
    expect(parsePayload('telemetry', Buffer.from('null'))).toMatchObject({ ok: false, reason: 'unsupported-version' });
    const bad = parsePayload('telemetry', JSON.stringify(mutate(EXAMPLES.telemetry, 'host.cpu', 'high')));
    expect(bad).toMatchObject({ ok: false, reason: 'schema' });
    expect(bad.ok === false && bad.message).toMatch(/host\.cpu/);
  });

  it('ignores unknown fields from a newer agent', () => {
    const r = parsePayload('telemetry', JSON.stringify({ ...EXAMPLES.telemetry, futureField: 1 }));
    expect(r.ok && 'futureField' in r.value).toBe(false);
  });

  it('accepts any terminal clock, even a year off', () => {
    expect(parsePayload('telemetry', JSON.stringify({ ...EXAMPLES.telemetry, ts: '2025-01-01T00:00:00+08:00' })).ok).toBe(true);
  });
});

describe('terminal config', () => {
  it('refuses unknown keys with their path', () => {
    const r = terminalConfigSchema.safeParse({ telemetryInterval: 30, updatePolicy: { windowOnly: true, typo: 1 } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['updatePolicy']);
  });

  it('checks the arguments of known commands', () => {
    expect(commandArgsSchemas['collect-logs'].parse({})).toEqual({ lines: 200 });
    expect(commandArgsSchemas['collect-logs'].safeParse({ lines: -1 }).success).toBe(false);
  });
});

describe('free-form JSON bags', () => {
  it('refuse nesting deeper than MAX_JSON_DEPTH without overflowing the stack', () => {
    // Built as text: JSON.stringify itself overflows on such a value, which is how this poisoned the hub.
    const deep = `${'{"a":'.repeat(20_000)}{}${'}'.repeat(20_000)}`;
    const r = parsePayload('events', JSON.stringify({ ...EXAMPLES.events, data: 0 }).replace('"data":0', `"data":${deep}`));
    expect(r).toMatchObject({ ok: false, reason: 'schema' });
    expect(r.ok === false && r.message).toMatch(/nested deeper/);
    expect(parsePayload('events', JSON.stringify({ ...EXAMPLES.events, data: { a: { b: [1, { c: 2 }] } } })).ok).toBe(true);
  });
});

describe('U+0000 (PostgreSQL stores no NUL in text)', () => {
  it('refuses a payload with a NUL in a string or a key, naming where, on the fast telemetry path too', () => {
    const str = parsePayload('events', JSON.stringify({ ...EXAMPLES.events, message: 'paper \u0000 low' }));
    expect(str).toMatchObject({ ok: false, reason: 'schema', message: expect.stringContaining('message: text with a NUL character (U+0000)') });
    const key = parsePayload('events', JSON.stringify({ ...EXAMPLES.events, data: { 'a\u0000': 1 } }));
    expect(key).toMatchObject({ ok: false, reason: 'schema', message: expect.stringContaining('data.a') });
    const tel = parsePayload('telemetry', JSON.stringify({ ...EXAMPLES.telemetry, app: { ...EXAMPLES.telemetry.app, version: '3.2\u0000' } }));
    expect(tel).toMatchObject({ ok: false, reason: 'schema' });
  });

  it('accepts the six characters \\u0000 as text (an escaped backslash, no NUL)', () => {
    expect(parsePayload('events', JSON.stringify({ ...EXAMPLES.events, message: 'C:\\u0000' })).ok).toBe(true);
  });
});
