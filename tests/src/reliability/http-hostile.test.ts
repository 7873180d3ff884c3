/**
 * Hostile HTTP input against a real hub process. Every route of the hub's own OpenAPI document gets bodies, query
 * strings and path ids generated from its schemas by fast-check — valid ones and broken ones — and must answer a
 * 4xx with `{ error: { code, message } }` or a success, never a 500, never a crash. Routes added to the hub later
 * are fuzzed automatically, since the arbitraries are built from /api/v1/openapi.json at test time.
 * Replay a failure with KF_FUZZ_SEED=<seed> (fast-check prints the seed and the shrunk counterexample).
 */
import http from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { fuzzSeed, provisionFleet } from '../helpers/reliability-util.ts';

type Schema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  pattern?: string;
  format?: string;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  default?: unknown;
};
type Param = { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: Schema };
type Operation = { parameters?: Param[]; requestBody?: { content?: Record<string, { schema?: Schema }> } };
type OpenApi = { paths: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, Schema> } };

const SEED = fuzzSeed(1126);
/** Strings that have broken SQL, shells, HTML, paths and parsers elsewhere. */
const NASTY = [
  "' OR '1'='1",
  "'; DROP TABLE terminals; --",
  '" OR ""="',
  '%',
  '_',
  '\\',
  '%_%\\',
  '\u0000',
  '../../../../etc/passwd',
  '..%2f..%2fetc%2fpasswd',
  '<script>alert(1)</script>',
  '${7*7}{{7*7}}',
  '$.a[0]',
  '💥🧨\uD800',
  '\u202Egnp.exe',
  'a'.repeat(5000),
  'null',
  '-1',
  '1e309',
  '__proto__',
  'constructor',
];

let hub: HubProcess;
let doc: OpenApi;
let ids: string[];

beforeAll(async () => {
  hub = await spawnHub();
  ids = (await provisionFleet(hub, 5, 'HT')).map((t) => t.id);
  const res = await hub.api('/api/v1/openapi.json');
  expect(res.status).toBe(200);
  doc = (await res.json()) as OpenApi;
});

afterAll(async () => {
  await hub?.stop();
});

function resolve(s: Schema): Schema {
  if (!s.$ref) return s;
  const name = s.$ref.replace('#/components/schemas/', '');
  const target = doc.components?.schemas?.[name];
  if (!target) throw new Error(`unresolved ${s.$ref}`);
  return resolve(target);
}

/** A valid value for a JSON schema, kept small (arrays up to 3, strings within their bounds). */
function valid(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(schema);
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  if (s.anyOf ?? s.oneOf) return fc.oneof(...(s.anyOf ?? s.oneOf)!.map((x) => valid(x, depth + 1)));
  if (s.allOf) return valid(Object.assign({}, ...s.allOf.map(resolve)) as Schema, depth + 1);
  const type = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (type.length > 1) return fc.oneof(...type.map((t) => valid({ ...s, type: t }, depth + 1)));
  switch (type[0]) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return fc.integer({ min: Math.ceil(s.minimum ?? s.exclusiveMinimum ?? -1e6), max: Math.floor(s.maximum ?? s.exclusiveMaximum ?? 1e6) });
    case 'number':
      return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true, noDefaultInfinity: true });
    case 'string': {
      if (s.format === 'date-time') return fc.date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
      const min = s.minLength ?? 0;
      const max = Math.min(s.maxLength ?? 40, min + 40);
      const base = fc.string({ minLength: min, maxLength: max });
      // Existing ids and nasty strings make the valid bodies reach deeper than random text would.
      const known = [...ids, 'GZ', 'GZ-HT', 'GZ-HT-001'].filter((x) => x.length >= min && x.length <= (s.maxLength ?? 1e9));
      if (s.format === 'uri') return fc.oneof(fc.webUrl(), fc.constantFrom('http://127.0.0.1:9/x', 'file:///etc/passwd', 'javascript:alert(1)', 'http://[::1]:0/'));
      return known.length ? fc.oneof(base, fc.constantFrom(...known)) : base;
    }
    case 'array':
      return fc.array(s.items ? valid(s.items, depth + 1) : fc.anything(), { minLength: s.minItems ?? 0, maxLength: Math.max(s.minItems ?? 0, 3) });
    case 'object':
    default: {
      if (!s.properties) return depth > 3 ? fc.constant({}) : fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, v] of Object.entries(s.properties)) model[k] = depth > 4 ? fc.constant(null) : valid(v, depth + 1);
      return fc.record(model, { requiredKeys: (s.required ?? []).filter((k) => k in model) });
    }
  }
}

/** A value that breaks its schema somewhere: a missing required key, a wrong type, an extra key, or junk. */
function broken(schema: Schema): fc.Arbitrary<unknown> {
  const s = resolve(schema);
  const junk = fc.oneof(fc.constantFrom(...NASTY), fc.anything({ maxDepth: 2 }), fc.constant(null), fc.double(), fc.constant([]));
  if (!s.properties || Object.keys(s.properties).length === 0) return junk;
  const keys = Object.keys(s.properties);
  const required = s.required ?? [];
  return fc.oneof(
    junk,
    required.length ? valid(s).chain((v) => fc.constantFrom(...required).map((k) => {
      const o = { ...(v as object) } as Record<string, unknown>;
      delete o[k];
      return o;
    })) : junk,
    valid(s).chain((v) => fc.tuple(fc.constantFrom(...keys), junk).map(([k, j]) => ({ ...(v as object), [k]: j }))),
    valid(s).chain((v) => fc.tuple(fc.constantFrom(...keys), fc.constantFrom(...NASTY)).map(([k, n]) => ({ ...(v as object), [k]: n }))),
  );
}

const pathValue = () => fc.oneof(fc.constantFrom(...ids), fc.constantFrom(...NASTY), fc.string({ maxLength: 80 }), fc.constant('GZ-HT-001-0001/../../../etc'));

interface Answer {
  status: number;
  body: string;
}

async function call(method: string, url: string, body?: string, contentType = 'application/json'): Promise<Answer> {
  const controller = new AbortController();
  // A hang is what this catches, not a slow answer: a login runs scrypt at N=2^17 (~1 s idle, two at a time), so on a
  // loaded machine a few queued logins take several seconds each.
  const timer = setTimeout(() => controller.abort(), 20_000);
  try {
    const res = await fetch(`${hub.url}${url}`, {
      method: method.toUpperCase(),
      headers: { authorization: `Bearer ${hub.token}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
      ...(body !== undefined ? { body } : {}),
      signal: controller.signal,
    });
    // Server-sent events never end: the status and headers are the answer.
    if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
      controller.abort();
      return { status: res.status, body: '' };
    }
    return { status: res.status, body: await res.text() };
  } finally {
    clearTimeout(timer);
  }
}

function assertAnswer(a: Answer, what: string): void {
  if (a.status >= 500) throw new Error(`${what} → ${a.status} ${a.body.slice(0, 300)}`);
  if (a.status >= 400) {
    let j: { error?: { code?: unknown; message?: unknown } };
    try {
      j = JSON.parse(a.body) as typeof j;
    } catch {
      throw new Error(`${what} → ${a.status} without a JSON error body: ${a.body.slice(0, 200)}`);
    }
    if (typeof j.error?.code !== 'string' || typeof j.error.message !== 'string' || j.error.message.length === 0) {
      throw new Error(`${what} → ${a.status} without { error: { code, message } }: ${a.body.slice(0, 200)}`);
    }
  }
}

/** encodeURIComponent, except that a lone surrogate goes out as the bytes Node would send (EF BF BD). */
function enc(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return [...Buffer.from(v)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  }
}

function buildUrl(p: string, params: Param[], pathVals: Record<string, string>, query: Record<string, unknown>): string {
  let url = `/api/v1${p}`;
  for (const prm of params.filter((x) => x.in === 'path')) url = url.replace(`{${prm.name}}`, enc(pathVals[prm.name] ?? 'x'));
  const qs = Object.entries(query)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${enc(k)}=${enc(typeof v === 'string' ? v : JSON.stringify(v))}`)
    .join('&');
  return qs ? `${url}?${qs}` : url;
}

function operations(): { method: string; path: string; op: Operation }[] {
  const out: { method: string; path: string; op: Operation }[] = [];
  for (const [p, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) out.push({ method, path: p, op });
  return out;
}

describe('hostile HTTP input', () => {
  it('the OpenAPI document lists the routes the fuzzing relies on', () => {
    const paths = Object.keys(doc.paths);
    for (const p of ['/terminals', '/terminals/{id}', '/nodes', '/import']) expect(paths).toContain(p);
  });

  it(`every route, with generated valid and broken bodies, queries and ids, answers 2xx or 4xx with a reason (seed ${SEED})`, async () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(10);
    let requests = 0;
    for (const { method, path: p, op } of ops) {
      const params = op.parameters ?? [];
      const bodySchema = op.requestBody?.content?.['application/json']?.schema;
      const queryParams = params.filter((x) => x.in === 'query');
      const queryArb = fc.record(
        Object.fromEntries(queryParams.map((q) => [q.name, fc.oneof(valid(q.schema).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))), fc.constantFrom(...NASTY), fc.string({ maxLength: 30 }))])),
        { requiredKeys: [] },
      );
      const pathArb = fc.record(Object.fromEntries(params.filter((x) => x.in === 'path').map((x) => [x.name, pathValue()])));
      const bodyArb = bodySchema ? fc.oneof(valid(bodySchema), broken(bodySchema)) : fc.constant(undefined);
      const started = Date.now();
      await fc.assert(
        fc.asyncProperty(pathArb, queryArb, bodyArb, async (pv, q, body) => {
          const url = buildUrl(p, params, pv as Record<string, string>, q);
          const a = await call(method, url, body === undefined ? (method === 'get' ? undefined : '') : JSON.stringify(body));
          requests++;
          assertAnswer(a, `${method.toUpperCase()} ${url} ${JSON.stringify(body)?.slice(0, 200)}`);
        }),
        // Login hashes with scrypt and slows failed attempts down on purpose: a few runs are enough there.
        { seed: SEED, numRuns: p === '/auth/login' ? 5 : Number(process.env.KF_FUZZ_RUNS ?? 12), endOnFailure: true },
      );
      if (process.env.KF_FUZZ_TIMING) console.info(`${method} ${p}: ${Date.now() - started} ms`);
    }
    expect(requests).toBeGreaterThan(200);
    expect(hub.proc.exitCode).toBeNull();
    expect(hub.logs.filter((l) => l.includes('"msg":"request failed"'))).toEqual([]);
  }, 240_000);

  it('bodies that are not JSON, or not what the content type says, are refused with a reason', async () => {
    for (const { method, path: p, op } of operations()) {
      if (!op.requestBody) continue;
      const url = buildUrl(p, op.parameters ?? [], { id: ids[0]! }, {});
      for (const [body, type] of [
        ['{"unterminated": ', 'application/json'],
        ['\u0000\u0001\u0002', 'application/json'],
        ['[1,2,3]', 'application/json'],
        ['{"__proto__": {"admin": true}}', 'application/json'],
        ['<xml/>', 'application/xml'],
        ['a=1&b=2', 'application/x-www-form-urlencoded'],
        [JSON.stringify({ id: 1 }), 'text/plain'],
      ] as const) {
        const a = await call(method, url, body, type);
        assertAnswer(a, `${method.toUpperCase()} ${url} ${type} ${JSON.stringify(body)}`);
      }
    }
    expect(hub.proc.exitCode).toBeNull();
  });

  // F11-8 (fixed upstream): POST /rollouts/{id}/pause read its optional body with c.req.json() and then
  // `body.message`: a JSON `null` body was a TypeError and a 500 (found by the fuzzing above with KF_FUZZ_SEED=7 KF_FUZZ_RUNS=60).
  it('JSON null, numbers, strings and arrays as bodies are refused with a reason on every route (finding F11-8)', async () => {
    for (const { method, path: p, op } of operations()) {
      if (method === 'get') continue;
      const url = buildUrl(p, op.parameters ?? [], { id: ids[0]! }, {});
      for (const body of ['null', '5', '"x"', 'true', '[]', '[null]']) {
        assertAnswer(await call(method, url, body), `${method.toUpperCase()} ${url} ${body}`);
      }
    }
  });

  it('SQL metacharacters in every list filter are data, not syntax', async () => {
    const before = ((await (await hub.api('/api/v1/terminals?state=all&limit=1000')).json()) as { items: unknown[] }).items.length;
    for (const { method, path: p, op } of operations()) {
      if (method !== 'get') continue;
      for (const q of (op.parameters ?? []).filter((x) => x.in === 'query')) {
        for (const nasty of NASTY) {
          const url = buildUrl(p, op.parameters ?? [], { id: ids[0]! }, { [q.name]: nasty });
          assertAnswer(await call('get', url), `GET ${url}`);
        }
      }
    }
    // Nothing was dropped or changed by any of it.
    const after = ((await (await hub.api('/api/v1/terminals?state=all&limit=1000')).json()) as { items: unknown[] }).items.length;
    expect(after).toBe(before);
    // LIKE wildcards in a search are literal characters: no terminal id or serial contains them.
    for (const q of ['%', '_', '%_%']) {
      const r = (await (await hub.api(`/api/v1/terminals?state=all&q=${encodeURIComponent(q)}`)).json()) as { items: unknown[] };
      expect(r.items, `q=${q}`).toEqual([]);
    }
  });

  // F11-2 (fixed in 88f9877): the node filter used to pass `%` and `_` to LIKE unescaped (`node=%` listed the city).
  it('a node filter made of LIKE wildcards matches no node (finding F11-2)', async () => {
    for (const node of ['%', 'GZ-H_', '_%']) {
      // state=all: the fuzzing above may have decommissioned terminals.
      const r = (await (await hub.api(`/api/v1/terminals?state=all&node=${encodeURIComponent(node)}`)).json()) as { items: unknown[] };
      expect(r.items, `node=${node}`).toEqual([]);
    }
  });

  it('an oversized body without a valid token is refused before it is read', async () => {
    const res = await fetch(`${hub.url}/api/v1/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(32 * 1024 * 1024) });
    // Either answer is right: refused for the token (401) or for the size (413), before the body is parsed.
    expect([401, 413]).toContain(res.status);
    expect((await hub.api('/api/v1/health')).status).toBe(200);
  });

  // F11-3 (fixed upstream): the API used to read, parse and accept a 12 MB JSON body.
  it('oversized bodies are refused with a 4xx and the hub keeps serving (finding F11-3)', async () => {
    const big = JSON.stringify({ id: 'GZ-HT-001-0999', type: 'id-card', serial: 'S', station: 'GZ-HT-001', pad: 'x'.repeat(12 * 1024 * 1024) });
    for (const [method, url] of [['post', '/api/v1/terminals'], ['post', '/api/v1/import'], ['put', `/api/v1/config/terminals/${ids[0]}`]] as const) {
      const a = await call(method, url, big);
      expect(a.status, `${method} ${url}`).toBeGreaterThanOrEqual(400);
      assertAnswer(a, `${method.toUpperCase()} ${url} (12 MB)`);
    }
    expect((await hub.api('/api/v1/health')).status).toBe(200);
  });

  it('path traversal in ids and static paths never leaves the hub’s own files', async () => {
    const raw = (p: string) =>
      new Promise<Answer>((resolveAnswer, reject) => {
        // node's http client sends the path as given, unlike fetch, which normalises `..`.
        const req = http.request({ host: '127.0.0.1', port: hub.httpPort, path: p, headers: { authorization: `Bearer ${hub.token}` } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        });
        req.on('error', reject);
        req.end();
      });
    for (const p of [
      '/../../../../etc/passwd',
      '/..%2f..%2f..%2f..%2fetc%2fpasswd',
      '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/assets/..%5c..%5c..%5cetc%5cpasswd',
      '/api/v1/terminals/..%2f..%2f..%2fetc%2fpasswd',
      '/api/v1/terminals/%2e%2e/telemetry',
      '/api/v1/nodes/..%2F..%2Fkiosk-fleet.db',
      '/kiosk-fleet.db',
      '/../kiosk-fleet.db',
      '/admin-token',
      '/../../hub/package.json',
    ]) {
      const a = await raw(p);
      expect(a.status, p).toBeLessThan(500);
      expect(a.body, p).not.toMatch(/root:.*:0:0:/);
      expect(a.body, p).not.toContain('SQLite format');
      expect(a.body, p).not.toContain(hub.token);
      expect(a.body, p).not.toContain('"@kiosk-fleet/hub"');
    }
  });

  // F11-1 (fixed upstream): a malformed percent-escape used to reach decodeURIComponent in the static handler (500).
  it('malformed percent-escapes never give a 500 (finding F11-1)', async () => {
    for (const p of ['/%E0%A4%A', '/%zz', '/assets/%', '/api/v1/terminals/%E0%A4%A']) {
      const a = await call('get', p);
      assertAnswer(a, `GET ${p}`);
    }
  });

  it('every API route but health and the OpenAPI document refuses a missing or wrong token', async () => {
    for (const { method, path: p, op } of operations()) {
      // Open by design: health, the OpenAPI document, and login (it is how a token or session is obtained).
      if (p === '/health' || p === '/openapi.json' || p === '/auth/login') continue;
      const url = buildUrl(p, op.parameters ?? [], { id: ids[0]! }, {});
      for (const auth of [undefined, 'Bearer nope', `Bearer ${hub.token}x`, `Basic ${Buffer.from(`admin:${hub.token}`).toString('base64')}`, hub.token]) {
        const res = await fetch(`${hub.url}${url}`, { method: method.toUpperCase(), headers: auth ? { authorization: auth } : {}, ...(method === 'get' ? {} : { body: '{}' }) });
        expect(res.status, `${method} ${url} with ${auth?.slice(0, 12)}`).toBe(401);
        await res.body?.cancel();
      }
    }
    const m = await fetch(`${hub.url}/metrics`);
    expect(m.status).toBe(401);
  });
});
