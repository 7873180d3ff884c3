/**
 * POST /users/{id}/tokens: an operator creates an API token for a user they manage (the dashboard's user page), and
 * revokes it. The token never exceeds its owner's role or node, nor what the operator may grant.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fetcher, operator, type Operator } from '../auth/testing.ts';
import { startTestHub, type TestHub } from '../test-support.ts';

let hub: TestHub;
let yxAdmin: Operator;
let stationTech: Operator;
let thTech: Operator;

interface Created {
  id: string;
  token: string;
  role: string;
  nodeId: string | null;
}

beforeAll(async () => {
  hub = await startTestHub();
  await hub.terminal('GZ-YX-001-01', { station: 'GZ-YX-001' });
  await hub.terminal('GZ-TH-001-01', { station: 'GZ-TH-001' });
  yxAdmin = await operator(hub, 'yx-admin', 'district-admin', 'GZ-YX');
  stationTech = await operator(hub, 'yx001-tech', 'technician', 'GZ-YX-001');
  thTech = await operator(hub, 'th-tech', 'technician', 'GZ-TH');
}, 60_000);

afterAll(async () => {
  await hub?.stop();
});

const create = (who: Operator | TestHub, userId: string, json: unknown) => who.api(`/api/v1/users/${userId}/tokens`, { method: 'POST', json });
const me = async (token: string) => {
  const res = await fetcher(hub, { authorization: `Bearer ${token}` })('/api/v1/auth/me');
  return { status: res.status, body: res.status === 200 ? ((await res.json()) as { role: string; nodeId: string | null; user: { username: string } }) : null };
};

describe("a user's API tokens, made by the operator who manages them", () => {
  test("a district admin gives their station technician a token (by default the technician's role and node) and revokes it", async () => {
    const res = await create(yxAdmin, stationTech.id, { name: 'duty board' });
    expect(res.status, await res.clone().text()).toBe(201);
    const t = (await res.json()) as Created;
    expect(t).toMatchObject({ role: 'technician', nodeId: 'GZ-YX-001' });
    expect(await me(t.token)).toMatchObject({ status: 200, body: { role: 'technician', nodeId: 'GZ-YX-001', user: { username: 'yx001-tech' } } });
    // listed among the technician's tokens, for the admin and for the technician
    for (const who of [yxAdmin.api(`/api/v1/auth/tokens?user=${stationTech.id}`), stationTech.api('/api/v1/auth/tokens')]) {
      const list = (await (await who).json()) as { items: { id: string }[] };
      expect(list.items.map((i) => i.id)).toContain(t.id);
    }
    // the secret is shown once: never in a listing
    expect(await (await yxAdmin.api(`/api/v1/auth/tokens?user=${stationTech.id}`)).text()).not.toContain(t.token.split('.')[2]);
    const audit = (await (await hub.api('/api/v1/audit?limit=20')).json()) as { items: { action: string; actor: string; after: unknown }[] };
    expect(audit.items).toContainEqual(expect.objectContaining({ action: 'token.create', actor: expect.stringMatching(/^yx-admin/) }));

    expect((await yxAdmin.api(`/api/v1/auth/tokens/${t.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await me(t.token)).status).toBe(401);
  });

  test('narrowed to a viewer: allowed; above the owner or outside their node: refused', async () => {
    const viewer = (await (await create(yxAdmin, stationTech.id, { name: 'wall screen', role: 'viewer' })).json()) as Created;
    expect(await me(viewer.token)).toMatchObject({ body: { role: 'viewer', nodeId: 'GZ-YX-001' } });
    // a district admin may grant district-admin, but not to a technician's token
    expect((await create(yxAdmin, stationTech.id, { name: 'x', role: 'district-admin', nodeId: 'GZ-YX' })).status).toBe(403);
    // the district is the admin's, but not the technician's
    expect((await create(yxAdmin, stationTech.id, { name: 'x', nodeId: 'GZ-YX' })).status).toBe(403);
    // another district is not the admin's either: it does not exist for them
    expect((await create(yxAdmin, stationTech.id, { name: 'x', nodeId: 'GZ-TH-001' })).status).toBe(404);
  });

  test('users outside the operator’s node do not exist for them; a technician manages no one; a disabled user gets none', async () => {
    expect((await create(yxAdmin, thTech.id, { name: 'x' })).status).toBe(404);
    expect((await create(stationTech, stationTech.id, { name: 'x' })).status).toBe(403);
    expect((await create(yxAdmin, 'u_nope', { name: 'x' })).status).toBe(404);
    expect((await create(yxAdmin, stationTech.id, { name: '' })).status).toBe(400);
    expect((await hub.api(`/api/v1/users/${thTech.id}/disable`, { method: 'POST' })).status).toBe(200);
    expect((await create(hub, thTech.id, { name: 'x' })).status).toBe(409);
  });
});
