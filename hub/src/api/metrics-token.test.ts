/**
 * Issue 20, item 13c: Prometheus scrapes /metrics with a read-only `metrics` API token instead of the admin token;
 * that token reads nothing else, and other roles' tokens do not read the metrics.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ADMIN_PASSWORD, fetcher, login, operator } from '../auth/testing.ts';
import { startTestHub, type TestHub } from '../test-support.ts';

let hub: TestHub;

beforeAll(async () => {
  hub = await startTestHub();
  await hub.terminal('GZ-YX-001-01', { station: 'GZ-YX-001' });
}, 60_000);
afterAll(async () => {
  await hub.stop();
});

test('a metrics token gets /metrics and nothing else; a viewer token does not get /metrics', async () => {
  const admin = await login(hub, 'admin', ADMIN_PASSWORD);
  const created = await admin.api('/api/v1/auth/tokens', { method: 'POST', json: { name: 'prometheus', role: 'metrics', nodeId: null } });
  expect(created.status).toBe(201);
  const { token, role } = (await created.json()) as { token: string; role: string };
  expect(role).toBe('metrics');
  const scraper = fetcher(hub, { authorization: `Bearer ${token}` });

  const m = await scraper('/metrics');
  expect(m.status).toBe(200);
  expect(await m.text()).toContain('kf_connected_terminals');
  for (const p of ['/api/v1/terminals', '/api/v1/nodes', '/api/v1/events', '/api/v1/alerts', '/api/v1/audit', '/api/v1/users', '/api/v1/rollouts', '/api/v1/releases']) {
    expect((await scraper(p)).status, p).toBe(403);
  }
  // Not even what any signed-in caller may do: mint a token, list or revoke its owner's, change the password.
  expect((await scraper('/api/v1/auth/tokens', { method: 'POST', json: { name: 'wider', role: 'viewer', nodeId: null } })).status).toBe(403);
  expect((await scraper('/api/v1/auth/tokens', { method: 'POST', json: { name: 'more', role: 'metrics', nodeId: null } })).status).toBe(403);
  expect((await scraper('/api/v1/auth/tokens')).status).toBe(403);
  expect((await scraper('/api/v1/auth/password', { method: 'POST', json: { currentPassword: ADMIN_PASSWORD, newPassword: 'another-Passw0rd-99' } })).status).toBe(403);

  const viewer = await operator(hub, 'city-viewer', 'viewer', null);
  const v = await viewer.api('/metrics');
  expect(v.status).toBe(403);
  expect(((await v.json()) as { error: { code: string } }).error.code).toBe('forbidden');
  // Nor may a viewer or a district admin hand out a metrics token.
  expect((await viewer.api('/api/v1/auth/tokens', { method: 'POST', json: { name: 'p', role: 'metrics', nodeId: null } })).status).toBe(403);
  const yx = await operator(hub, 'yx-admin', 'district-admin', 'GZ-YX');
  expect([403, 404]).toContain((await yx.api('/api/v1/auth/tokens', { method: 'POST', json: { name: 'p', role: 'metrics', nodeId: null } })).status);

  // The admin token still scrapes; a revoked metrics token does not.
  expect((await hub.api('/metrics')).status).toBe(200);
  const { id } = (await (await admin.api('/api/v1/auth/tokens')).json() as { items: { id: string; name: string }[] }).items.find((t) => t.name === 'prometheus')!;
  expect((await admin.api(`/api/v1/auth/tokens/${id}`, { method: 'DELETE' })).status).toBe(200);
  expect((await scraper('/metrics')).status).toBe(401);
}, 60_000);
