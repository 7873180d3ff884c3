import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { testEngineKind } from '../db/postgres/test-database.ts';
import { presence, startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';

let hub: TestHub;
let dash: string;
const T = {} as Record<'a' | 'b' | 'c' | 'd', { id: string; secret: string }>;

interface List<T> {
  items: T[];
  nextCursor: string | null;
}
const get = async <R>(p: string) => {
  const res = await hub.api(p);
  if (res.status !== 200) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return (await res.json()) as R;
};
const ids = async (query: string) => (await get<List<{ id: string }>>(`/api/v1/terminals?${query}`)).items.map((x) => x.id);

beforeAll(async () => {
  dash = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-dash-'));
  fs.writeFileSync(path.join(dash, 'index.html'), '<!doctype html><title>KF</title>');
  fs.mkdirSync(path.join(dash, 'assets'));
  fs.writeFileSync(path.join(dash, 'assets', 'app.js'), 'console.log(1)');
  fs.writeFileSync(path.join(dash, 'assets', 'big.js'), `export const fleet = ${JSON.stringify(Array.from({ length: 2000 }, (_, i) => `GZ-YX-${i}`))};`);
  // the copies the dashboard's build writes beside each file (dashboard/vite.config.ts, precompress)
  const big = fs.readFileSync(path.join(dash, 'assets', 'big.js'));
  fs.writeFileSync(path.join(dash, 'assets', 'big.js.gz'), zlib.gzipSync(big, { level: 9 }));
  fs.writeFileSync(path.join(dash, 'assets', 'big.js.br'), zlib.brotliCompressSync(big));
  hub = await startTestHub({ dashboardDir: dash });
  T.a = await hub.terminal('GZ-YX-001-01', { station: 'GZ-YX-001', type: 'id-card' });
  T.b = await hub.terminal('GZ-YX-002-01', { station: 'GZ-YX-002', type: 'weijingwu' });
  T.c = await hub.terminal('GZ-TH-001-01', { station: 'GZ-TH-001', type: 'id-card' });
  T.d = await hub.terminal('GZ-TH-001-02', { station: 'GZ-TH-001', type: 'police-multi' });
  // a: online, all peripherals ok; b: online, receipt printer in fault; c: went offline; d: never seen.
  const okAll = { idCardReader: { status: 'ok' }, fingerprintScanner: { status: 'ok' }, camera: { status: 'ok' }, receiptPrinter: { status: 'ok' }, touchscreen: { status: 'ok' } };
  const ca = await hub.connect(T.a.id, T.a.secret);
  await ca.publishAsync(topicFor(T.a.id, 'presence'), presence('bootA0000', 1), { qos: 1 });
  for (let i = 1; i <= 5; i++) {
    await ca.publishAsync(
      topicFor(T.a.id, 'telemetry'),
      telemetry(i, { ts: new Date(Date.UTC(2026, 10, 26, 1, 0, i * 30)).toISOString(), peripherals: okAll, host: { cpu: i * 10, memUsed: 1, memTotal: 2, diskUsed: 1, diskTotal: 4, tempC: 40, uptime: 100 } }),
      { qos: 1 },
    );
  }
  const cb = await hub.connect(T.b.id, T.b.secret);
  await cb.publishAsync(topicFor(T.b.id, 'presence'), presence('bootB0000', 1), { qos: 1 });
  await cb.publishAsync(
    topicFor(T.b.id, 'telemetry'),
    telemetry(1, { peripherals: { idCardReader: { status: 'ok' }, qrScanner: { status: 'ok' }, receiptPrinter: { status: 'fault', code: 'JAM' }, touchscreen: { status: 'ok' } } }),
    { qos: 1 },
  );
  await cb.publishAsync(
    topicFor(T.b.id, 'events'),
    JSON.stringify({ v: 1, epoch: 'epochAAAA1', seq: 1, ts: new Date().toISOString(), kind: 'peripheral.fault', severity: 'critical', peripheral: 'receiptPrinter', code: 'JAM' }),
    { qos: 1 },
  );
  const cc = await hub.connect(T.c.id, T.c.secret);
  await cc.publishAsync(topicFor(T.c.id, 'presence'), presence('bootC0000', 1), { qos: 1 });
  await cc.endAsync();
  await until(async () => (await ids('presence=offline')).includes(T.c.id));
});
afterAll(async () => {
  await hub.stop();
  fs.rmSync(dash, { recursive: true, force: true });
});

describe('auth', () => {
  test('health needs no token; everything else is 401 without the right one', async () => {
    const health = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/health`);
    expect(health.status).toBe(200);
    // KF_TEST_ENGINE picks the engine of this run's hubs (pnpm test / pnpm test:postgres); health names it.
    expect(await health.json()).toMatchObject({ status: 'ok', connectedTerminals: 2, timeZone: 'Asia/Shanghai', database: { engine: testEngineKind(), status: 'ok', error: null } });
    for (const p of ['/api/v1/terminals', '/api/v1/nodes', '/metrics']) {
      const none = await fetch(`http://127.0.0.1:${hub.httpPort}${p}`);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      const wrong = await fetch(`http://127.0.0.1:${hub.httpPort}${p}`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
    }
  });
});

describe('terminal list filters', () => {
  test.each([
    ['node=GZ-YX', ['GZ-YX-001-01', 'GZ-YX-002-01']],
    ['node=GZ-TH-001', ['GZ-TH-001-01', 'GZ-TH-001-02']],
    ['type=id-card', ['GZ-TH-001-01', 'GZ-YX-001-01']],
    ['presence=online', ['GZ-YX-001-01', 'GZ-YX-002-01']],
    ['presence=offline', ['GZ-TH-001-01']],
    ['presence=unknown', ['GZ-TH-001-02']],
    ['fault=receiptPrinter', ['GZ-YX-002-01']],
    ['fault=any', ['GZ-YX-002-01']],
    ['fault=camera', []],
    ['q=TH-001-0', ['GZ-TH-001-01', 'GZ-TH-001-02']],
    ['q=SN-GZ-YX-002', ['GZ-YX-002-01']],
    ['node=GZ-YX&presence=online&type=weijingwu', ['GZ-YX-002-01']],
  ])('%s', async (query, expected) => {
    expect(await ids(query)).toEqual(expected);
  });

  test('bad filter values are 400 with the path', async () => {
    const res = await hub.api('/api/v1/terminals?presence=sleepy');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { details: { issues: { path: string[] }[] } } };
    expect(body.error.details.issues[0]!.path).toEqual(['presence']);
    expect((await hub.api('/api/v1/terminals?fault=toaster')).status).toBe(400);
  });

  test('pagination walks every terminal once', async () => {
    const seen: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const page: List<{ id: string }> = await get(`/api/v1/terminals?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.items.map((x) => x.id));
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(['GZ-TH-001-01', 'GZ-TH-001-02', 'GZ-YX-001-01', 'GZ-YX-002-01']);
  });
});

describe('terminal detail and history', () => {
  test('detail: presence with reason, latest sample, peripherals with since-when, versions, services now', async () => {
    const d = await get<Record<string, unknown>>(`/api/v1/terminals/${T.b.id}`);
    expect(d).toMatchObject({
      presence: { state: 'online', reason: 'connected', flapping: false },
      versions: { agent: '0.1.0', app: '3.2.1' },
      faults: ['receiptPrinter'],
      // weijingwu: appointment check-in needs the receipt printer; progress inquiry does not.
      services: ['progress-inquiry'],
      connected: true,
    });
    expect((d.peripherals as Record<string, { status: string; since: string }>).receiptPrinter).toMatchObject({ status: 'fault', code: 'JAM' });
    expect((d.latest as { host: { cpu: number } }).host.cpu).toBe(12.5);
    expect((await hub.api('/api/v1/terminals/GZ-NOPE-01')).status).toBe(404);
  });

  test('telemetry raw with pagination, and bucketed', async () => {
    const from = '2026-11-26T01:00:00Z';
    const to = '2026-11-26T02:00:00Z';
    const p1 = await get<{ items: { seq: number; host: { cpu: number } }[]; nextCursor: string | null }>(
      `/api/v1/terminals/${T.a.id}/telemetry?from=${from}&to=${to}&limit=3`,
    );
    expect(p1.items.map((x) => x.seq)).toEqual([1, 2, 3]);
    const p2 = await get<{ items: { seq: number }[]; nextCursor: string | null }>(
      `/api/v1/terminals/${T.a.id}/telemetry?from=${from}&to=${to}&limit=3&cursor=${p1.nextCursor}`,
    );
    expect(p2.items.map((x) => x.seq)).toEqual([4, 5]);
    expect(p2.nextCursor).toBeNull();
    const b = await get<{ items: { start: string; samples: number; cpuAvg: number; cpuMax: number }[] }>(
      `/api/v1/terminals/${T.a.id}/telemetry?from=${from}&to=${to}&bucket=1m`,
    );
    // Samples at :30, 1:00, 1:30, 2:00, 2:30 → minutes 0, 1, 1, 2, 2.
    expect(b.items.map((x) => [x.start, x.samples, x.cpuMax])).toEqual([
      ['2026-11-26T01:00:00.000Z', 1, 10],
      ['2026-11-26T01:01:00.000Z', 2, 30],
      ['2026-11-26T01:02:00.000Z', 2, 50],
    ]);
    expect((await hub.api(`/api/v1/terminals/${T.a.id}/telemetry?from=${to}&to=${from}`)).status).toBe(400);
  });

  test('chart points as rows of the asked-for fields (format=rows), as objects give them', async () => {
    const range = 'from=2026-11-26T01:00:00Z&to=2026-11-26T02:00:00Z';
    const rows = await get<{ bucket: string; fields: string[]; items: unknown[][]; nextCursor: null }>(
      `/api/v1/terminals/${T.a.id}/telemetry?${range}&bucket=1m&format=rows&fields=cpuAvg,memPctAvg,tempAvg`,
    );
    expect(rows).toEqual({
      bucket: '1m',
      fields: ['start', 'cpuAvg', 'memPctAvg', 'tempAvg'],
      items: [
        ['2026-11-26T01:00:00.000Z', 10, 50, 40],
        ['2026-11-26T01:01:00.000Z', 25, 50, 40],
        ['2026-11-26T01:02:00.000Z', 45, 50, 40],
      ],
      nextCursor: null,
    });
    const all = await get<{ fields: string[]; items: unknown[][] }>(`/api/v1/terminals/${T.a.id}/telemetry?${range}&bucket=1m&format=rows`);
    expect(all.fields).toEqual(['start', 'samples', 'cpuMin', 'cpuAvg', 'cpuMax', 'memPctAvg', 'memPctMax', 'diskPctAvg', 'diskPctMax', 'tempMin', 'tempAvg', 'tempMax']);
    expect(all.items[1]).toEqual(['2026-11-26T01:01:00.000Z', 2, 20, 25, 30, 50, 50, 25, 25, 40, 40, 40]);
    const rollups = await get<{ fields: string[]; items: unknown[] }>(`/api/v1/terminals/${T.a.id}/telemetry?${range}&bucket=rollup&format=rows&fields=cpuAvg`);
    expect(rollups).toMatchObject({ fields: ['start', 'cpuAvg'], items: [] });
    for (const bad of ['bucket=raw&format=rows', 'bucket=1m&format=rows&fields=cpuAvg,nope', 'cursor=12', 'format=csv']) {
      expect((await hub.api(`/api/v1/terminals/${T.a.id}/telemetry?${range}&${bad}`)).status, bad).toBe(400);
    }
  });

  test('events and presence history', async () => {
    const ev = await get<List<{ kind: string; peripheral: string }>>(`/api/v1/terminals/${T.b.id}/events`);
    expect(ev.items).toEqual([expect.objectContaining({ kind: 'peripheral.fault', peripheral: 'receiptPrinter' })]);
    expect((await get<List<unknown>>(`/api/v1/terminals/${T.b.id}/events?kind=paper.low`)).items).toEqual([]);
    const pr = await get<List<{ to: string; reason: string }>>(`/api/v1/terminals/${T.c.id}/presence`);
    expect(pr.items.map((x) => [x.to, x.reason])).toEqual([
      ['offline', 'clean'],
      ['online', 'connected'],
    ]);
  });
});

describe('tree and summary', () => {
  test('nodes list, node detail with children, summary per child and per service', async () => {
    const nodes = await get<List<{ id: string }>>('/api/v1/nodes?under=GZ-YX');
    expect(nodes.items.map((n) => n.id)).toEqual(['GZ-YX', 'GZ-YX-001', 'GZ-YX-002']);
    const node = await get<{ children: { id: string }[]; path: string[] }>('/api/v1/nodes/GZ-YX');
    expect(node.children.map((c) => c.id)).toEqual(['GZ-YX-001', 'GZ-YX-002']);
    expect(node.path).toEqual(['GZ', 'GZ-YX']);
    const s = await get<{
      totals: Record<string, number>;
      children: { id: string; total: number; online: number; withFault: number }[];
      services: { service: string; offeredBy: number; availableNow: number }[];
    }>('/api/v1/nodes/GZ/summary');
    expect(s.totals).toEqual({ total: 4, online: 2, offline: 1, stale: 0, unknown: 1, withFault: 1 });
    expect(s.children).toEqual([
      expect.objectContaining({ id: 'GZ-TH', total: 2, online: 0 }),
      expect.objectContaining({ id: 'GZ-YX', total: 2, online: 2, withFault: 1 }),
    ]);
    const svc = Object.fromEntries(s.services.map((x) => [x.service, [x.offeredBy, x.availableNow]]));
    expect(svc['id-card-application']).toEqual([2, 1]);
    expect(svc['appointment-check-in']).toEqual([1, 0]);
    expect(svc['progress-inquiry']).toEqual([4, 2]);
    const created = await hub.api('/api/v1/nodes', { method: 'POST', json: { id: 'GZ-YX-003', name: { zh: '三', en: 'three' } } });
    expect(created.status).toBe(201);
    expect((await hub.api('/api/v1/nodes', { method: 'POST', json: { id: 'GZ-QQ-001', name: { zh: 'x', en: 'x' } } })).status).toBe(400);
  });
});

describe('commands', () => {
  test('an online terminal gets the command; its result completes it', async () => {
    const c = await hub.connect(T.d.id, T.d.secret);
    const got: { id: string; name: string }[] = [];
    c.on('message', (_t, p) => got.push(JSON.parse(p.toString()) as { id: string; name: string }));
    await c.subscribeAsync(topicFor(T.d.id, 'commands'), { qos: 1 });
    const res = await hub.api(`/api/v1/terminals/${T.d.id}/commands`, { method: 'POST', json: { name: 'self-test' } });
    expect(res.status).toBe(201);
    const cmd = (await res.json()) as { id: string };
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ id: cmd.id, name: 'self-test' });
    await c.publishAsync(
      topicFor(T.d.id, 'commands/result'),
      JSON.stringify({ v: 1, epoch: 'epochDDDD1', seq: 1, ts: new Date().toISOString(), id: cmd.id, status: 'ok', result: { idCardReader: 'ok' } }),
      { qos: 1 },
    );
    const list = await get<List<{ id: string; status: string; result: unknown }>>(`/api/v1/terminals/${T.d.id}/commands`);
    expect(list.items[0]).toMatchObject({ id: cmd.id, status: 'ok', result: { idCardReader: 'ok' } });
    await c.endAsync();
  });

  test('a command for an offline terminal waits and is delivered when it subscribes; an expired one is not', async () => {
    const waiting = (await (await hub.api(`/api/v1/terminals/${T.c.id}/commands`, { method: 'POST', json: { name: 'ping' } })).json()) as { id: string; status: string };
    expect(waiting.status).toBe('pending');
    const short = (await (await hub.api(`/api/v1/terminals/${T.c.id}/commands`, { method: 'POST', json: { name: 'reboot', expiresInSeconds: 1 } })).json()) as { id: string };
    await new Promise((r) => setTimeout(r, 1100));
    const c = await hub.connect(T.c.id, T.c.secret);
    const got: string[] = [];
    c.on('message', (_t, p) => got.push((JSON.parse(p.toString()) as { id: string }).id));
    await c.subscribeAsync(topicFor(T.c.id, 'commands'), { qos: 1 });
    await until(() => got.length >= 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([waiting.id]);
    expect(got).not.toContain(short.id);
    await c.endAsync();
  });

  test('bad command names and arguments are 400 with the path', async () => {
    const bad = await hub.api(`/api/v1/terminals/${T.a.id}/commands`, { method: 'POST', json: { name: 'format-disk' } });
    expect(bad.status).toBe(400);
    const badArgs = await hub.api(`/api/v1/terminals/${T.a.id}/commands`, { method: 'POST', json: { name: 'collect-logs', args: { lines: -1 } } });
    expect(badArgs.status).toBe(400);
    const body = (await badArgs.json()) as { error: { details: { issues: { path: string[] }[] } } };
    expect(body.error.details.issues[0]!.path).toEqual(['args', 'lines']);
  });
});

describe('config', () => {
  test('desired config is versioned, delivered retained, and a stale expectedVersion is 409', async () => {
    const put = await hub.api(`/api/v1/config/terminals/${T.a.id}`, { method: 'PUT', json: { config: { telemetryInterval: 60 }, expectedVersion: 0 } });
    expect(put.status).toBe(200);
    expect(((await put.json()) as { version: number }).version).toBe(1);
    expect((await hub.api(`/api/v1/config/terminals/${T.a.id}`, { method: 'PUT', json: { config: {}, expectedVersion: 0 } })).status).toBe(409);
    expect((await hub.api(`/api/v1/config/terminals/${T.a.id}`, { method: 'PUT', json: { config: { telemetryIntervall: 5 } } })).status).toBe(400);
    const c = await hub.connect(T.a.id, T.a.secret);
    const got: { version: number }[] = [];
    c.on('message', (_t, p) => got.push(JSON.parse(p.toString()) as { version: number }));
    await c.subscribeAsync(topicFor(T.a.id, 'config/desired'), { qos: 1 });
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ v: 1, version: 1, config: { telemetryInterval: 60 } });
    await c.endAsync();
  });
});

describe('live and docs', () => {
  test('the SSE stream emits a change under the node, not others', async () => {
    const ac = new AbortController();
    const res = await hub.api('/api/v1/events?node=GZ-TH', { signal: ac.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const read = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString();
        if (text.includes(`"terminalId":"${T.d.id}"`)) return;
      }
    })();
    await until(() => text.includes('event: hello'));
    const cy = await hub.connect(T.a.id, T.a.secret); // under GZ-YX: must not appear
    const cd = await hub.connect(T.d.id, T.d.secret);
    await read;
    ac.abort();
    expect(text).toContain('event: change');
    expect(text).toContain('"type":"presence"');
    expect(text).not.toContain(T.a.id);
    await cy.endAsync();
    await cd.endAsync();
  });

  test('metrics, OpenAPI document, dashboard files with SPA fallback', async () => {
    const m = await (await hub.api('/metrics')).text();
    for (const name of ['kf_connected_terminals', 'kf_messages_in_total', 'kf_messages_rejected_total', 'kf_write_queue_depth', 'kf_batch_write_seconds']) {
      expect(m).toContain(name);
    }
    // the process's own metrics under prom-client's standard names, which stock Node.js dashboards query
    for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(m).toMatch(new RegExp(`^${name}[ {]`, 'm'));
    }
    // ...never under a kf_hub_ prefix (kf_hub_info is the hub's own: its id and version)
    expect(m).not.toMatch(/^kf_hub_(process|nodejs)_/m);
    const doc = (await (await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/terminals', '/terminals/{id}/telemetry', '/import', '/events']));
    const js = await fetch(`http://127.0.0.1:${hub.httpPort}/assets/app.js`);
    expect(js.headers.get('content-type')).toContain('javascript');
    const spa = await fetch(`http://127.0.0.1:${hub.httpPort}/terminals/GZ-YX-001-01`);
    expect(await spa.text()).toContain('<title>KF</title>');
    const escape = await fetch(`http://127.0.0.1:${hub.httpPort}/..%2f..%2fetc%2fpasswd`);
    expect(await escape.text()).toContain('<title>KF</title>');
    expect((await hub.api('/api/v1/nope')).status).toBe(404);
    for (const bad of ['/%E0%A4%A', '/%zz', '/assets/%']) {
      const r = await fetch(`http://127.0.0.1:${hub.httpPort}${bad}`);
      expect(r.status, bad).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('invalid-path');
    }
    expect((await hub.api('/api/v1/terminals/%E0%A4%A')).status).toBeLessThan(500);
    const big = await hub.api('/api/v1/nodes', { method: 'POST', json: { id: 'GZ-YX-009', name: { zh: 'x'.repeat(2 * 1024 * 1024), en: 'x' } } });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('payload-too-large');
  });

  test('dashboard files go out as the build precompressed them (brotli, gzip) to a browser that accepts it, and as they are otherwise', async () => {
    const original = fs.readFileSync(path.join(dash, 'assets', 'big.js'), 'utf8');
    const br = await fetch(`http://127.0.0.1:${hub.httpPort}/assets/big.js`, { headers: { 'accept-encoding': 'gzip, br' } });
    expect(br.headers.get('content-encoding')).toBe('br');
    expect(Number(br.headers.get('content-length'))).toBe(fs.statSync(path.join(dash, 'assets', 'big.js.br')).size);
    expect(br.headers.get('vary')).toContain('Accept-Encoding');
    expect(br.headers.get('cache-control')).toContain('immutable');
    expect(await br.text()).toBe(original); // fetch decodes it again
    const gz = await fetch(`http://127.0.0.1:${hub.httpPort}/assets/big.js`, { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    // the build's level-9 file, not a copy compressed on the fly
    expect(Number(gz.headers.get('content-length'))).toBe(fs.statSync(path.join(dash, 'assets', 'big.js.gz')).size);
    expect(await gz.text()).toBe(original);
    const index = await fetch(`http://127.0.0.1:${hub.httpPort}/stations/GZ-YX-001`);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(await index.text()).toContain('<title>KF</title>');
    const plain = await fetch(`http://127.0.0.1:${hub.httpPort}/assets/big.js`, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(await plain.text()).toBe(original);
  });

  test('without a dashboard build, / says how to build it', async () => {
    const h = await startTestHub({ dashboardDir: path.join(os.tmpdir(), 'kf-no-such-dashboard') });
    try {
      expect(await (await fetch(`http://127.0.0.1:${h.httpPort}/`)).text()).toMatch(/dashboard is not built/);
    } finally {
      await h.stop();
    }
  });
});

describe('numeric path and query values parse strictly', () => {
  const field = async (res: Response) => {
    const body = (await res.json()) as { error: { details?: { issues?: { path: string[] }[]; path?: string[] } } };
    return body.error.details?.issues?.[0]?.path ?? body.error.details?.path;
  };

  test('decimal digits within the safe range only, limits within their bounds: anything else is 400 naming the field', async () => {
    const bad: [string, string][] = [
      // 2^63: SQLite answered "datatype mismatch", a 500.
      ['/api/v1/alerts?cursor=9223372036854775808', 'cursor'],
      ['/api/v1/alerts?cursor=9007199254740992', 'cursor'],
      // `0x1` was alert 1; `1e0`, ` 1` and `1.0` were 1 as well.
      ['/api/v1/alerts/0x1', 'id'],
      ['/api/v1/alerts/1e0', 'id'],
      ['/api/v1/alerts/%201', 'id'],
      ['/api/v1/alerts/1.0', 'id'],
      ['/api/v1/alerts/0', 'id'],
      ['/api/v1/terminals?limit=-1', 'limit'],
      ['/api/v1/terminals?limit=NaN', 'limit'],
      ['/api/v1/terminals?limit=0x10', 'limit'],
      ['/api/v1/terminals?limit=1e2', 'limit'],
      ['/api/v1/terminals?limit=', 'limit'],
      ['/api/v1/terminals?limit=1001', 'limit'],
      ['/api/v1/audit?cursor=0x10', 'cursor'],
      ['/api/v1/audit?limit=Infinity', 'limit'],
      [`/api/v1/terminals/${T.a.id}/events?cursor=1e3`, 'cursor'],
      [`/api/v1/terminals/${T.a.id}/presence?cursor=-5`, 'cursor'],
      [`/api/v1/terminals/${T.a.id}/telemetry?from=2026-11-26T01:00:00Z&to=2026-11-26T02:00:00Z&cursor=1~0x1~2`, 'cursor'],
      [`/api/v1/terminals/${T.a.id}/commands?cursor=0x1~c1`, 'cursor'],
      [`/api/v1/config/terminals/${T.a.id}/history?limit=201`, 'limit'],
      [`/api/v1/config/terminals/${T.a.id}/history?cursor=0x2`, 'cursor'],
      [`/api/v1/config/terminals/${T.a.id}/diff?from=0x1`, 'from'],
      ['/api/v1/webhooks/1e0/deliveries', 'id'],
    ];
    for (const [p, name] of bad) {
      const res = await hub.api(p);
      expect(res.status, p).toBe(400);
      expect(await field(res), p).toEqual([name]);
    }
    // What the API hands out still works, and the hub keeps serving.
    expect((await hub.api('/api/v1/alerts?cursor=0&limit=1000')).status).toBe(200);
    expect((await hub.api('/api/v1/alerts/9007199254740991')).status).toBe(404);
    expect((await hub.api(`/api/v1/terminals/${T.a.id}/events?cursor=9007199254740991&limit=1`)).status).toBe(200);
    expect((await hub.api('/api/v1/health')).status).toBe(200);
  });
});
