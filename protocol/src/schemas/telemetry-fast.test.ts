/**
 * The hand-written telemetry check against zod, the source of truth: over the documented example (README) and
 * thousands of seeded variants, valid and invalid, both must agree on every verdict, and on every accepted value
 * down to key order (the hub stores parts of it as JSON text).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EXAMPLES } from '../examples.ts';
import { parsePayload, telemetrySchema } from './messages.ts';
import { fastTelemetry } from './telemetry-fast.ts';
import { seededRandom } from '../seeded-random.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };


const clone = <T>(x: T): T => structuredClone(x);

/** zod alone, as parsePayload answered before the fast path existed (after its JSON and version checks). */
function zodOnly(json: unknown) {
  const r = telemetrySchema.safeParse(json);
  return r.success ? { ok: true as const, value: r.data } : { ok: false as const, reason: 'schema' as const, message: z.prettifyError(r.error) };
}

/** Every object's own keys, in order, all the way down (toEqual alone ignores keys holding undefined). */
function keysOf(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(keysOf);
  if (typeof x !== 'object' || x === null) return typeof x;
  return Object.entries(x).map(([k, v]) => [k, keysOf(v)]);
}

/** Asserts the contract on one JSON text; returns whether zod accepted it. */
function check(text: string): boolean {
  const json: unknown = JSON.parse(text);
  const zr = telemetrySchema.safeParse(json);
  const fast = fastTelemetry(json);
  if (fast !== undefined) {
    // Never accept what zod refuses, never return another value (key order included).
    expect(zr.success, text).toBe(true);
    expect(fast, text).toEqual(zr.data);
    expect(keysOf(fast), text).toStrictEqual(keysOf(zr.data));
    expect(JSON.stringify(fast), text).toBe(JSON.stringify(zr.data));
  }
  // ...and not silently slow: what zod accepts (without the oddities left to zod) the fast path takes too.
  if (zr.success && !text.includes('__proto__')) expect(fast, text).toBeDefined();
  // parsePayload gives the same answer as zod alone (reason and message included).
  const v = (json as { v?: unknown } | null)?.v;
  if (typeof json === 'object' && json !== null && v === 1) expect(parsePayload('telemetry', Buffer.from(text))).toEqual(zodOnly(json));
  return zr.success;
}

const S = (n: number, ch = 'a') => ch.repeat(n);
/** Values worth trying anywhere: every JSON type, boundaries, wrong types. */
const ANY: Json[] = [null, true, false, 0, -0, 1, -1, 0.5, 1.5, 100, 100.0001, 2 ** 53, 2 ** 53 + 2, -60, 200, 200.5, -60.5, Number.MAX_SAFE_INTEGER, '', 'x', '1', S(64), S(65), S(512), S(513), [], [1], {}, { status: 'ok' }];
/** Per field, values near its own bounds, so that a good share of variants stays valid. */
const NEAR: Record<string, Json[]> = {
  v: [1, 2, 0, '1'],
  epoch: ['abcdefgh', 'abcdefg', S(64, 'Z'), S(65, 'Z'), 'abc_DEF-123', 'abc def gh', 'abcdéfgh'],
  seq: [1, 0, 2, Number.MAX_SAFE_INTEGER, 2 ** 53, 1.5, -1],
  ts: ['2026-11-26T02:00:30.000Z', '2026-11-26T02:00:30Z', '2026-11-26T10:00:30.123456+08:00', '2026-11-26T02:00Z', '2026-11-26 02:00:30Z', '2026-02-29T00:00:00Z', '2028-02-29T00:00:00Z', '2026-11-26T24:00:00Z', '2026-11-26T02:00:30', '1970-01-01T00:00:00.000Z', '2026-11-26T02:00:30.000+24:00', '2026-11-26T02:00:30.000-05:30'],
  cpu: [0, 100, 12.5, -0.1, 100.1],
  memUsed: [0, 2 ** 53, 2 ** 53 + 2, -1, 1610612736.5],
  memTotal: [0, 2 ** 53, -1],
  diskUsed: [0, 2 ** 53, -1],
  diskTotal: [0, 2 ** 53, 2 ** 54],
  tempC: [null, -60, 200, -60.5, 200.5, 48.25],
  uptime: [0, 10 * 365 * 86400, 10 * 365 * 86400 + 1, 0.5],
  net: [[], [{ iface: 'eth0', up: true }], Array.from({ length: 16 }, (_, i) => ({ iface: `e${i}`, up: i % 2 === 0 })), Array.from({ length: 17 }, () => ({ iface: 'e', up: true })), [{ iface: S(32), up: false }], [{ iface: S(33), up: false }], [{ iface: 'wlan0', up: 'yes' }], [{ iface: 'eth0', up: true, mac: 'x' }], [null]],
  status: ['ok', 'degraded', 'fault', 'absent', 'unknown', 'OK', 'broken'],
  code: ['E', S(64), '', S(65), 'PAPER_LOW'],
  message: ['', S(512), S(513), 'paper low', '纸张不足'],
  reads: [0, 1, Number.MAX_SAFE_INTEGER, 2 ** 53, -1, 1.5],
  failedReads: [0, 7, -1, 0.1],
  up: [true, false, 1, 'true'],
  version: ['3.2.1', '', S(64), S(65)],
  sessionActive: [true, false, null],
  transactionsOk: [0, 9, -1, 1.5, Number.MAX_SAFE_INTEGER],
  transactionsFailed: [0, 1, -1],
  telemetry: [0, 5, -1],
  events: [0, 3, 2.5],
  app: [{ up: false, sessionActive: true, transactionsOk: 0, transactionsFailed: 0 }, { up: true, sessionActive: false }, null],
  dropped: [{ telemetry: 1, events: 0 }, { telemetry: 1 }, null],
  peripherals: [{}, { camera: { status: 'ok' } }, { '1camera': { status: 'ok' } }, { [S(32, 'p')]: { status: 'ok' } }, { [S(33, 'p')]: { status: 'ok' } }, { 'card-reader': { status: 'ok' } }, { constructor: { status: 'ok' }, toString: { status: 'fault' } }, { hasOwnProperty: { status: 'ok' } }, []],
  host: [{}, null],
};
const KEYS = ['peripheralX', 'extra', 'net', 'app', 'dropped', 'code', 'message', 'reads', 'failedReads', 'version', 'Z9', 'constructor'];

/** Every (parent, key) pair of an object tree, so a mutation can pick one. */
function slots(root: Json): Array<[Obj | Json[], string | number]> {
  const out: Array<[Obj | Json[], string | number]> = [];
  const walk = (x: Json) => {
    if (Array.isArray(x)) x.forEach((c, i) => (out.push([x, i]), walk(c)));
    else if (x !== null && typeof x === 'object') for (const k of Object.keys(x)) out.push([x, k]), walk(x[k]!);
  };
  walk(root);
  return out;
}

/** One to three random changes to a copy of `base`: replace a value, delete a key, add a key, reorder keys. */
function mutate(base: Obj, rand: () => number): Obj {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const doc = clone(base);
  const times = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < times; i++) {
    const all = slots(doc);
    const [parent, key] = pick(all);
    const r = rand();
    if (r < 0.55) {
      const near = typeof key === 'string' ? NEAR[key] : undefined;
      (parent as Record<string | number, Json>)[key] = clone(near && rand() < 0.75 ? pick(near) : pick(ANY));
    } else if (r < 0.7 && !Array.isArray(parent)) {
      delete parent[key as string];
    } else if (r < 0.85 && !Array.isArray(parent)) {
      const k = pick(KEYS);
      parent[k] = clone(NEAR[k] ? pick(NEAR[k]) : pick(ANY));
    } else if (!Array.isArray(parent)) {
      // Same keys, another order: zod's output follows the schema's order, and so must the fast path's.
      const entries = Object.entries(parent);
      for (const [k] of entries) delete parent[k];
      for (const [k, v] of entries.sort(() => rand() - 0.5)) parent[k] = v;
    }
  }
  return doc;
}

const EXAMPLE = EXAMPLES.telemetry as unknown as Obj;
/** Shapes an agent really sends besides the documented one. */
const BASES: Obj[] = [
  EXAMPLE,
  { ...EXAMPLE, app: undefined as unknown as Json, host: { ...(EXAMPLE.host as Obj), tempC: null, net: undefined as unknown as Json } },
  { ...EXAMPLE, dropped: { telemetry: 12, events: 0 }, peripherals: {} },
  { ...EXAMPLE, app: { up: false, sessionActive: false, transactionsOk: 0, transactionsFailed: 0 } },
].map((b) => JSON.parse(JSON.stringify(b)) as Obj);

describe('fastTelemetry against telemetrySchema', () => {
  it('knows every field of the schema (a field added to telemetrySchema must be added to telemetry-fast.ts)', () => {
    const shape = telemetrySchema.shape;
    expect(Object.keys(shape)).toStrictEqual(['v', 'epoch', 'seq', 'ts', 'host', 'peripherals', 'app', 'dropped']);
    expect(Object.keys(shape.host.shape)).toStrictEqual(['cpu', 'memUsed', 'memTotal', 'diskUsed', 'diskTotal', 'tempC', 'uptime', 'net']);
    expect(Object.keys(shape.host.shape.net.unwrap().element.shape)).toStrictEqual(['iface', 'up']);
    expect(Object.keys(shape.peripherals.valueType.shape)).toStrictEqual(['status', 'code', 'message', 'reads', 'failedReads']);
    expect(Object.keys(shape.app.unwrap().shape)).toStrictEqual(['up', 'version', 'sessionActive', 'transactionsOk', 'transactionsFailed']);
    expect(Object.keys(shape.dropped.unwrap().shape)).toStrictEqual(['telemetry', 'events']);
  });

  it('takes the documented example (README) as zod does', () => {
    expect(check(JSON.stringify(EXAMPLES.telemetry))).toBe(true);
    expect(fastTelemetry(JSON.parse(JSON.stringify(EXAMPLES.telemetry)))).toBeDefined();
  });

  it('agrees with zod on 6,000 seeded variants, valid and invalid', { timeout: 60_000 }, () => {
    const rand = seededRandom(0x5eed);
    let valid = 0;
    const N = 6_000;
    for (let i = 0; i < N; i++) {
      const doc = mutate(BASES[i % BASES.length]!, rand);
      if (check(JSON.stringify(doc))) valid++;
    }
    // Both sides of the line are well covered.
    expect(valid).toBeGreaterThan(N * 0.2);
    expect(valid).toBeLessThan(N * 0.8);
  });

  it('agrees on what JSON makes that JavaScript literals do not', () => {
    const text = JSON.stringify(EXAMPLES.telemetry);
    const cases = [
      text.replace('"cpu":12.5', '"cpu":1e999'), // Infinity: zod 4 refuses it
      text.replace('"memUsed":1610612736', '"memUsed":-0'),
      text.replace('"seq":42', '"seq":4.2e1'),
      text.replace('"seq":42', '"seq":1e400'),
      text.replace('"peripherals":{', '"peripherals":{"__proto__":{"status":"ok"},'),
      text.replace('"peripherals":{', '"peripherals":{"__proto__":{"status":"bad"},'),
      text.replace('"host":{', '"__proto__":{"x":1},"host":{'),
      text.replace('"camera":{"status":"ok"}', '"camera":{"status":"ok","status":"fault"}'),
      text.replace('"v":1,', '"v":1,"v":1,'),
    ];
    for (const c of cases) check(c);
  });

  it('leaves non-objects and other versions to the checks before it', () => {
    for (const x of [null, 1, 'x', [], [EXAMPLES.telemetry], { ...EXAMPLES.telemetry, v: 2 }]) expect(fastTelemetry(x)).toBeUndefined();
  });
});
