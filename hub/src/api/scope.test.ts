/**
 * Scope over every route, against an in-process hub (real broker, real SQLite file, real HTTP):
 * - every route of the OpenAPI document has an access rule;
 * - a district admin of GZ-YX gets 404 for the other district's terminals and nodes on every route that names one,
 *   exactly as for an id that does not exist;
 * - a viewer gets 403 on every write (but their own password, session and tokens);
 * - a technician gets 403 on config writes and may run commands;
 * - lists, summaries, the event stream, audit and users show only what lies under the caller's node;
 * - bodies that name a place outside the caller's node (register, move, import, new node) are 404.
 */
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { requireOperator } from '../auth/middleware.ts';
import type { ApiEnv } from './common.ts';
import { findPolicy, ROUTE_POLICIES } from '../auth/policy.ts';
import { operator, type Operator } from '../auth/testing.ts';
import { startTestHub, type TestHub } from '../test-support.ts';

let hub: TestHub;
let yxAdmin: Operator;
let tech: Operator;
let stationTech: Operator;
let viewer: Operator;
let routes: { method: string; path: string }[];

const MINE = { terminal: 'GZ-YX-001-01', node: 'GZ-YX' };
const OTHER = { terminal: 'GZ-TH-001-01', node: 'GZ-TH' };
const MISSING = { terminal: 'GZ-YX-009-99', node: 'GZ-ZZ' };

interface ErrorBody {
  error: { code: string; message: string };
}

beforeAll(async () => {
  hub = await startTestHub();
  await hub.terminal(MINE.terminal, { station: 'GZ-YX-001' });
  await hub.terminal('GZ-YX-002-01', { station: 'GZ-YX-002' });
  await hub.terminal('GZ-YX-001-02', { station: 'GZ-YX-001' });
  await hub.terminal(OTHER.terminal, { station: 'GZ-TH-001' });
  yxAdmin = await operator(hub, 'yx-admin', 'district-admin', 'GZ-YX');
  tech = await operator(hub, 'yx-tech', 'technician', 'GZ-YX');
  stationTech = await operator(hub, 'yx001-tech', 'technician', 'GZ-YX-001');
  viewer = await operator(hub, 'yx-viewer', 'viewer', 'GZ-YX');
  const doc = (await (await hub.api('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
  routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path })));
}, 60_000);
afterAll(async () => {
  await hub?.stop();
});

const fill = (path: string, id: string) => `/api/v1${path.replace('{id}', encodeURIComponent(id))}`;

describe('every route has an access rule', { timeout: 60_000 }, () => {
  test('the OpenAPI document lists the routes and each one matches a rule', () => {
    expect(routes.length).toBeGreaterThan(30);
    const missing = routes.filter((r) => !findPolicy(r.method, r.path.replace('{id}', 'X')));
    expect(missing, 'add a row to ROUTE_POLICIES in hub/src/auth/policy.ts for each').toEqual([]);
  });

  test('a route without a rule is refused to everyone but a city admin', async () => {
    // /api/v1/nope has no rule: a district admin learns nothing (403), the admin token reaches the router (404).
    expect((await yxAdmin.api('/api/v1/nope')).status).toBe(403);
    expect((await hub.api('/api/v1/nope')).status).toBe(404);
  });
});

describe('a district admin: the other district does not exist for them', { timeout: 60_000 }, () => {
  const objectRoutes = () => ROUTE_POLICIES.filter((p) => p.target === 'terminal' || p.target === 'node');

  test('404 on every route naming the other district’s terminal or node, like a missing id', async () => {
    expect(objectRoutes().length).toBeGreaterThan(15);
    for (const rule of objectRoutes()) {
      const kind = rule.target as 'terminal' | 'node';
      for (const id of [OTHER[kind], MISSING[kind]]) {
        const res = await yxAdmin.api(fill(rule.path, id), { method: rule.method, ...(rule.method === 'GET' ? {} : { json: {} }) });
        expect(res.status, `${rule.method} ${rule.path} with ${id}`).toBe(404);
        const body = (await res.json()) as ErrorBody;
        expect(body.error.code).toBe('not-found');
        expect(body.error.message).not.toContain('scope');
      }
    }
  });

  test('the same routes work on their own district (no 404 from scope)', async () => {
    for (const rule of objectRoutes().filter((r) => r.method === 'GET')) {
      const res = await yxAdmin.api(fill(rule.path, MINE[rule.target as 'terminal' | 'node']));
      expect(res.status, `${rule.method} ${rule.path}`).toBe(200);
    }
  });

  test('a station technician does not see the next station of the same district', async () => {
    expect((await stationTech.api('/api/v1/terminals/GZ-YX-002-01')).status).toBe(404);
    expect((await stationTech.api('/api/v1/terminals/GZ-YX-001-01')).status).toBe(200);
    expect((await stationTech.api('/api/v1/nodes/GZ-YX')).status).toBe(404);
  });

  test('lists, tree and summaries hold only their district', async () => {
    const terminals = (await (await yxAdmin.api('/api/v1/terminals')).json()) as { items: { id: string }[] };
    expect(terminals.items.map((t) => t.id).sort()).toEqual(['GZ-YX-001-01', 'GZ-YX-001-02', 'GZ-YX-002-01']);
    expect((await yxAdmin.api('/api/v1/terminals?node=GZ-TH')).status).toBe(404);
    expect((await yxAdmin.api('/api/v1/terminals?node=GZ')).status).toBe(404);
    // LIKE wildcards are data: `%` matches no node, it does not widen the scope (F11-2).
    const wild = (await (await hub.api('/api/v1/terminals?node=%25')).json()) as { items: unknown[] };
    expect(wild.items).toEqual([]);
    const nodes = (await (await yxAdmin.api('/api/v1/nodes')).json()) as { items: { id: string }[] };
    expect(nodes.items.map((n) => n.id)).toEqual(['GZ-YX', 'GZ-YX-001', 'GZ-YX-002']);
    expect((await yxAdmin.api('/api/v1/nodes/GZ/summary')).status).toBe(404);
    const summary = (await (await yxAdmin.api('/api/v1/nodes/GZ-YX/summary')).json()) as { totals: { total: number } };
    expect(summary.totals.total).toBe(3);
    expect((await yxAdmin.api('/api/v1/config/drift?node=GZ-TH')).status).toBe(404);
  });

  test('a body naming the other district is 404: register, move, import, new station', async () => {
    const reg = await yxAdmin.api('/api/v1/terminals', { method: 'POST', json: { id: 'GZ-TH-001-77', type: 'id-card', serial: 'X1', station: 'GZ-TH-001' } });
    expect(reg.status).toBe(404);
    const move = await yxAdmin.api(`/api/v1/terminals/${MINE.terminal}/move`, { method: 'POST', json: { station: 'GZ-TH-001' } });
    expect(move.status).toBe(404);
    expect((await hub.registry.terminal(MINE.terminal))?.stationId).toBe('GZ-YX-001');
    const csv = 'id,station,type,serial\nGZ-TH-001-88,GZ-TH-001,id-card,S88\n';
    const imp = await yxAdmin.api('/api/v1/import', { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
    expect(imp.status).toBe(404);
    expect(await hub.registry.terminal('GZ-TH-001-88')).toBeUndefined();
    const node = await yxAdmin.api('/api/v1/nodes', { method: 'POST', json: { id: 'GZ-TH-009', name: { zh: '站', en: 'S' } } });
    expect(node.status).toBe(404);
    const district = await yxAdmin.api('/api/v1/nodes', { method: 'POST', json: { id: 'GZ-NEW', name: { zh: '区', en: 'D' } } });
    expect(district.status).toBe(404);
    // Within their district all of it works.
    expect((await yxAdmin.api('/api/v1/nodes', { method: 'POST', json: { id: 'GZ-YX-003', name: { zh: '站', en: 'S3' } } })).status).toBe(201);
    const own = 'id,station,type,serial\nGZ-YX-003-01,GZ-YX-003,id-card,S31\n';
    expect((await yxAdmin.api('/api/v1/import', { method: 'POST', body: own, headers: { 'content-type': 'text/csv' } })).status).toBe(200);
  });

  test('an id taken in the other district is "not available", said as for any taken id, never where or that it exists', async () => {
    const reg = (id: string) => yxAdmin.api('/api/v1/terminals', { method: 'POST', json: { id, type: 'id-card', serial: 'X2', station: 'GZ-YX-001' } });
    const theirs = await reg(OTHER.terminal);
    const mine = await reg('GZ-YX-002-01');
    expect([theirs.status, mine.status]).toEqual([409, 409]);
    const [a, b] = (await Promise.all([theirs.json(), mine.json()])) as ErrorBody[];
    expect(a!.error).toMatchObject({ code: 'id-unavailable', message: `terminal id ${OTHER.terminal} is not available; choose another` });
    expect(b!.error).toMatchObject({ code: 'id-unavailable', message: 'terminal id GZ-YX-002-01 is not available; choose another' });
    expect(JSON.stringify(a)).not.toMatch(/exist|GZ-TH-001[^-]/);
    expect((await hub.registry.terminal(OTHER.terminal))?.stationId).toBe('GZ-TH-001');
    // An import naming it is refused at its row (all or nothing), not answered with "existing".
    const csv = `id,station,type,serial\nGZ-YX-001-50,GZ-YX-001,id-card,S50\n${OTHER.terminal},GZ-YX-001,id-card,S51\n`;
    const imp = await yxAdmin.api('/api/v1/import', { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
    expect(imp.status).toBe(400);
    const body = (await imp.json()) as ErrorBody;
    expect(body.error.code).toBe('invalid-import');
    expect(body.error.message).toMatch(`${OTHER.terminal} is not available`);
    expect(JSON.stringify(body)).not.toMatch(/exist/);
    expect(await hub.registry.terminal('GZ-YX-001-50')).toBeUndefined();
    // A terminal of their own district in an import is left as it is ("existing"), as before.
    const again = await yxAdmin.api('/api/v1/import', { method: 'POST', body: `id,station,type,serial\n${MINE.terminal},GZ-YX-001,id-card,S1\n`, headers: { 'content-type': 'text/csv' } });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { terminals: { existing: string[] } }).terminals.existing).toEqual([MINE.terminal]);
  });

  test('the event stream carries only their district’s changes; ?node= of the other district is 404', async () => {
    expect((await yxAdmin.api('/api/v1/events?node=GZ-TH')).status).toBe(404);
    const ac = new AbortController();
    const res = await yxAdmin.api('/api/v1/events', { signal: ac.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil('event: hello');
    // A change in GZ-TH, then one in GZ-YX: the stream shows the second only.
    expect((await hub.api(`/api/v1/terminals/${OTHER.terminal}/commands`, { method: 'POST', json: { name: 'self-test' } })).status).toBe(201);
    expect((await hub.api(`/api/v1/terminals/${MINE.terminal}/commands`, { method: 'POST', json: { name: 'self-test' } })).status).toBe(201);
    await readUntil(MINE.terminal);
    ac.abort();
    expect(text).not.toContain(OTHER.terminal);
  });

  test('audit and users lists hold only their district', async () => {
    const audit = (await (await yxAdmin.api('/api/v1/audit?limit=1000')).json()) as { items: { nodeId: string | null; objectId: string | null }[] };
    expect(audit.items.length).toBeGreaterThan(0);
    for (const r of audit.items) expect(r.nodeId?.startsWith('GZ-YX')).toBe(true);
    const users = (await (await yxAdmin.api('/api/v1/users')).json()) as { items: { username: string }[] };
    expect(users.items.map((u) => u.username).sort()).toEqual(['yx-admin', 'yx-tech', 'yx-viewer', 'yx001-tech']);
    const admin = (await hub.auth.store.userByName('admin'))!;
    expect((await yxAdmin.api(`/api/v1/users/${admin.id}`)).status).toBe(404);
    expect((await yxAdmin.api(`/api/v1/users/${admin.id}/disable`, { method: 'POST' })).status).toBe(404);
  });
});

describe('roles: 403 for what a role may not do on what it can see', { timeout: 60_000 }, () => {
  const writes = () => ROUTE_POLICIES.filter((p) => p.method !== 'GET' && p.target !== 'open' && p.target !== 'self');

  test('a viewer gets 403 on every write', async () => {
    expect(writes().length).toBeGreaterThan(10);
    for (const rule of writes()) {
      const id = rule.target === 'terminal' ? MINE.terminal : MINE.node;
      const res = await viewer.api(fill(rule.path, id), { method: rule.method, json: {} });
      expect(res.status, `${rule.method} ${rule.path}`).toBe(403);
      expect(((await res.json()) as ErrorBody).error.code).toBe('forbidden');
    }
    // ... and on user management of the users it can see.
    for (const action of ['disable', 'enable', 'reset-password']) {
      expect((await viewer.api(`/api/v1/users/${tech.id}/${action}`, { method: 'POST' })).status, action).toBe(403);
    }
    expect((await viewer.api(`/api/v1/users/${tech.id}`, { method: 'PATCH', json: { role: 'viewer' } })).status).toBe(403);
  });

  test('a technician: 403 on config writes, commands allowed', async () => {
    const config = ROUTE_POLICIES.filter((p) => p.perm === 'config:write' || p.perm === 'rollout:write');
    expect(config.length).toBeGreaterThanOrEqual(4);
    for (const rule of config) {
      const id = rule.target === 'terminal' ? MINE.terminal : MINE.node;
      expect((await tech.api(fill(rule.path, id), { method: rule.method, json: { config: {}, expectedVersion: 0 } })).status, `${rule.method} ${rule.path}`).toBe(403);
    }
    expect((await tech.api(`/api/v1/terminals/${MINE.terminal}/commands`, { method: 'POST', json: { name: 'self-test' } })).status).toBe(201);
    expect((await tech.api(`/api/v1/terminals/${MINE.terminal}/move`, { method: 'POST', json: { station: 'GZ-YX-002' } })).status).toBe(403);
    expect((await tech.api('/api/v1/users')).status).toBe(403);
  });

  // The matrix, row by row, for the admin token (city), the district admin, the technician and the viewer.
  const matrix: { what: string; req: () => [string, RequestInit & { json?: unknown }]; expect: [number, number, number, number] }[] = [
    { what: 'read a terminal', req: () => [`/api/v1/terminals/${MINE.terminal}`, {}], expect: [200, 200, 200, 200] },
    { what: 'run a self-test', req: () => [`/api/v1/terminals/${MINE.terminal}/commands`, { method: 'POST', json: { name: 'self-test' } }], expect: [201, 201, 201, 403] },
    { what: 'set terminal config', req: () => [`/api/v1/config/terminals/${MINE.terminal}`, { method: 'PUT', json: { config: {}, expectedVersion: 0 } }], expect: [200, 409, 403, 403] },
    { what: 'register', req: () => ['/api/v1/terminals', { method: 'POST', json: { type: 'id-card', serial: 'M1', station: 'GZ-YX-002' } }], expect: [201, 201, 403, 403] },
    { what: 'list users', req: () => ['/api/v1/users', {}], expect: [200, 200, 403, 403] },
    { what: 'read the audit log', req: () => ['/api/v1/audit', {}], expect: [200, 200, 403, 403] },
    { what: 'verify the audit log', req: () => ['/api/v1/audit/verify', {}], expect: [200, 403, 403, 403] },
  ];
  test.each(matrix)('$what', async ({ req, expect: want }) => {
    const callers = [hub.api, yxAdmin.api, tech.api, viewer.api];
    const got: number[] = [];
    for (const call of callers) {
      const [p, init] = req();
      got.push((await call(p, init)).status);
    }
    expect(got).toEqual(want);
  });
});

describe('sub-apps beside the OpenAPI app (rollouts, releases) use requireOperator', { timeout: 60_000 }, () => {
  test('401 without credentials, the read permission for GET, the write permission for the rest', async () => {
    const app = new Hono<ApiEnv>();
    app.use('*', requireOperator(hub, { read: 'fleet:read', write: 'rollout:write' }));
    app.get('/api/v1/x', (c) => c.json({ actor: c.get('actor') }));
    app.post('/api/v1/x', (c) => c.json({ ok: true }));
    const as = (token: string, method = 'GET') => app.request('/api/v1/x', { method, headers: { authorization: `Bearer ${token}` } });
    expect((await app.request('/api/v1/x')).status).toBe(401);
    expect((await as('kft.0000000000000000.' + 'A'.repeat(43))).status).toBe(401);
    expect(await (await as(viewer.token)).json()).toEqual({ actor: expect.stringContaining('yx-viewer') });
    expect((await as(viewer.token, 'POST')).status).toBe(403);
    expect((await as(tech.token, 'POST')).status).toBe(403);
    expect((await as(yxAdmin.token, 'POST')).status).toBe(200);
  });

  test('releases: every operator reads them, only a city admin uploads', async () => {
    expect((await viewer.api('/api/v1/releases')).status).toBe(200);
    expect((await viewer.api('/api/v1/releases', { method: 'POST', body: 'x' })).status).toBe(403);
    expect((await yxAdmin.api('/api/v1/releases', { method: 'POST', body: 'x' })).status).toBe(403);
    expect((await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/releases`)).status).toBe(401);
    // The admin token passes the role check and reaches the upload itself (which refuses a body that is no artifact).
    expect([400, 413, 415, 422]).toContain((await hub.api('/api/v1/releases', { method: 'POST', body: 'x' })).status);
  });
});
