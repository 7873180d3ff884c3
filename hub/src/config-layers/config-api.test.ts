/**
 * The layered config API against an in-process hub (real broker on an ephemeral port, real SQLite file): versions
 * and 409, 400 with paths (never saved, never pushed), history/diff, dry run, effective config with sources,
 * pushes to exactly the affected terminals, drift from reports, reconcile after a move.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../alerts/rules/types.ts';
import { startTestHub, topicFor, until, type TestHub } from '../test-support.ts';

let hub: TestHub;
const T: Record<string, { id: string; secret: string }> = {};
const got: Record<string, { version: number; config: Record<string, unknown> }[]> = {};
const clients: MqttClient[] = [];

const get = async <R>(p: string) => {
  const res = await hub.api(p);
  if (res.status !== 200) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return (await res.json()) as R;
};
const put = (p: string, json: unknown) => hub.api(p, { method: 'PUT', json });
const latest = (id: string) => got[id]?.at(-1);

interface ErrorBody {
  error: { code: string; message: string; details: { issues: { path: string[]; message: string; terminalId?: string }[]; terminals?: number } };
}

beforeAll(async () => {
  hub = await startTestHub();
  T.yx1 = await hub.terminal('GZ-YX-001-01', { station: 'GZ-YX-001' });
  T.yx2 = await hub.terminal('GZ-YX-002-01', { station: 'GZ-YX-002' });
  T.th1 = await hub.terminal('GZ-TH-001-01', { station: 'GZ-TH-001' });
  for (const t of Object.values(T)) {
    const c = await hub.connect(t.id, t.secret);
    clients.push(c);
    got[t.id] = [];
    c.on('message', (_topic, p) => got[t.id]!.push(JSON.parse(p.toString()) as { version: number; config: Record<string, unknown> }));
    await c.subscribeAsync(topicFor(t.id, 'config/desired'), { qos: 1 });
  }
});
afterAll(async () => {
  await hub?.stop();
});

describe('writes', () => {
  test('a district change reaches exactly that district, with a new per-terminal version', async () => {
    const res = await put('/api/v1/config/nodes/GZ-YX', { config: { telemetryInterval: 45 }, expectedVersion: 0, reason: 'fewer samples' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { version: number; updatedBy: string; reason: string; pushed: { count: number; terminals: { terminalId: string }[] } };
    expect(body).toMatchObject({ version: 1, reason: 'fewer samples', pushed: { count: 2 } });
    expect(body.pushed.terminals.map((t) => t.terminalId).sort()).toEqual([T.yx1!.id, T.yx2!.id]);
    await until(() => latest(T.yx1!.id) && latest(T.yx2!.id));
    expect(latest(T.yx1!.id)).toMatchObject({ v: 1, version: 1, config: { telemetryInterval: 45 } });
    expect(latest(T.yx2!.id)).toMatchObject({ version: 1, config: { telemetryInterval: 45 } });
    await new Promise((r) => setTimeout(r, 200));
    expect(got[T.th1!.id]).toEqual([]);
  });

  test('a stale expectedVersion is 409 and changes nothing', async () => {
    const res = await put('/api/v1/config/nodes/GZ-YX', { config: { telemetryInterval: 90 }, expectedVersion: 0 });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string; details: { version: number } } }).error).toMatchObject({ code: 'conflict', details: { version: 1 } });
    expect((await get<{ version: number; config: unknown }>('/api/v1/config/nodes/GZ-YX'))).toMatchObject({ version: 1, config: { telemetryInterval: 45 } });
  });

  test('of two writes based on the same version, exactly one wins; the other is 409', async () => {
    const [a, b] = await Promise.all([
      put('/api/v1/config/nodes/GZ-YX-002', { config: { logLevel: 'info' }, expectedVersion: 0 }),
      put('/api/v1/config/nodes/GZ-YX-002', { config: { logLevel: 'error' }, expectedVersion: 0 }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const winner = a.status === 200 ? 'info' : 'error';
    expect(await get<{ version: number; config: unknown }>('/api/v1/config/nodes/GZ-YX-002')).toMatchObject({ version: 1, config: { logLevel: winner } });
    // back to an empty layer (version 2), so the tests below see only the district
    expect((await put('/api/v1/config/nodes/GZ-YX-002', { config: {}, expectedVersion: 1 })).status).toBe(200);
  });

  test('invalid config is 400 with the path of each bad field, and is neither saved nor pushed', async () => {
    const before = got[T.th1!.id]!.length;
    const res = await put('/api/v1/config/nodes/GZ-TH', {
      config: { telemetryInterval: 1, openingHours: { mon: [{ from: '8:00', to: '18:00' }] }, bogus: true },
      expectedVersion: 0,
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe('invalid-config');
    expect(body.error.details.issues.map((i) => i.path.join('.')).sort()).toEqual(['config.bogus', 'config.openingHours.mon.0.from', 'config.telemetryInterval']);
    expect((await get<{ version: number }>('/api/v1/config/nodes/GZ-TH')).version).toBe(0);
    expect(await hub.metric('kf_config_invalid_total', { where: 'layer' })).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(got[T.th1!.id]!.length).toBe(before);
  });

  test('a layer valid on its own but giving a terminal an invalid effective config is 400 naming the terminal', async () => {
    // timeoutMs alone: no layer above says which driver
    const res = await put('/api/v1/config/nodes/GZ-TH-001', { config: { peripherals: { idCardReader: { timeoutMs: 5000 } } }, expectedVersion: 0 });
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.details.terminals).toBe(1);
    expect(body.error.details.issues[0]).toMatchObject({ terminalId: T.th1!.id, path: ['config', 'peripherals', 'idCardReader', 'driver'] });
  });

  test('a body that is not a config object is 400; an unknown node is 404', async () => {
    expect((await put('/api/v1/config/nodes/GZ-YX', { config: [1], expectedVersion: 1 })).status).toBe(400);
    expect((await put('/api/v1/config/nodes/GZ-YX', { config: {} })).status).toBe(400); // expectedVersion is required
    expect((await put('/api/v1/config/nodes/GZ-XX', { config: {}, expectedVersion: 0 })).status).toBe(404);
    expect((await hub.api('/api/v1/config/nodes/GZ-XX')).status).toBe(404);
  });
});

describe('inheritance, provenance, history', () => {
  test('city, district, station and terminal layers merge; null removes; each value names its layer', async () => {
    expect((await put('/api/v1/config/nodes/GZ', { config: { logLevel: 'warn', announcement: { zh: '通知', en: 'Notice' }, telemetryInterval: 120 }, expectedVersion: 0 })).status).toBe(200);
    expect((await put('/api/v1/config/nodes/GZ-YX-001', { config: { announcement: null }, expectedVersion: 0 })).status).toBe(200);
    expect((await put(`/api/v1/config/terminals/${T.yx1!.id}`, { config: { logLevel: 'debug' }, expectedVersion: 0 })).status).toBe(200);
    const e = await get<{ config: Record<string, unknown>; sources: Record<string, { level: string; id: string; version: number }>; layers: unknown[] }>(
      `/api/v1/config/terminals/${T.yx1!.id}/effective`,
    );
    expect(e.config).toEqual({ logLevel: 'debug', telemetryInterval: 45 });
    expect(e.sources).toEqual({
      logLevel: { level: 'terminal', id: T.yx1!.id, version: 1 },
      telemetryInterval: { level: 'district', id: 'GZ-YX', version: 1 },
    });
    expect(e.layers).toHaveLength(4);
    // the same config the terminal received
    await until(() => latest(T.yx1!.id)?.config['logLevel'] === 'debug');
    expect(latest(T.yx1!.id)!.config).toEqual(e.config);
    // the other district inherits from the city only
    const th = await get<{ config: Record<string, unknown> }>(`/api/v1/config/terminals/${T.th1!.id}/effective`);
    expect(th.config).toEqual({ logLevel: 'warn', announcement: { zh: '通知', en: 'Notice' }, telemetryInterval: 120 });
  });

  test('a layer’s inherited config is the merge of the layers above it, each value with its layer', async () => {
    type Inherited = { config: Record<string, unknown>; sources: Record<string, { level: string; id: string }> };
    // the station's own `announcement: null` is not part of what it inherits; the district's interval is
    const st = await get<Inherited>('/api/v1/config/nodes/GZ-YX-001/inherited');
    expect(st.config).toEqual({ logLevel: 'warn', announcement: { zh: '通知', en: 'Notice' }, telemetryInterval: 45 });
    expect(st.sources['telemetryInterval']).toMatchObject({ level: 'district', id: 'GZ-YX' });
    expect(st.sources['announcement.zh']).toMatchObject({ level: 'city', id: 'GZ' });
    const d = await get<Inherited>('/api/v1/config/nodes/GZ-YX/inherited');
    expect(d.config).toMatchObject({ telemetryInterval: 120 });
    expect(d.sources['telemetryInterval']).toMatchObject({ level: 'city', id: 'GZ' });
    expect((await get<Inherited>('/api/v1/config/nodes/GZ/inherited')).config).toEqual({});
    // a terminal inherits its station's merge, not its own logLevel
    const t = await get<Inherited>(`/api/v1/config/terminals/${T.yx1!.id}/inherited`);
    expect(t.config).toEqual({ logLevel: 'warn', telemetryInterval: 45 });
    expect((await hub.api('/api/v1/config/nodes/GZ-NOPE/inherited')).status).toBe(404);
  });

  test('every version is kept with who, when and why, and is diffable', async () => {
    expect((await put('/api/v1/config/nodes/GZ-YX', { config: { telemetryInterval: 60, servicesEnabled: ['id-card-collection'] }, expectedVersion: 1, reason: 'collection only' })).status).toBe(200);
    const h = await get<{ items: { version: number; by: string; reason: string | null; at: string; changes: unknown[] }[] }>('/api/v1/config/nodes/GZ-YX/history');
    expect(h.items.map((i) => i.version)).toEqual([2, 1]);
    expect(h.items[0]).toMatchObject({ reason: 'collection only' });
    expect(h.items[0]!.by).toMatch(/admin/);
    expect(h.items[0]!.changes).toEqual([
      { path: ['servicesEnabled'], op: 'add', to: ['id-card-collection'] },
      { path: ['telemetryInterval'], op: 'change', from: 45, to: 60 },
    ]);
    expect(Date.parse(h.items[0]!.at)).not.toBeNaN();
    const d = await get<{ from: number; to: number; changes: unknown[] }>('/api/v1/config/nodes/GZ-YX/diff?from=0&to=2');
    expect(d).toMatchObject({ from: 0, to: 2 });
    expect(d.changes).toHaveLength(2);
    expect((await hub.api('/api/v1/config/nodes/GZ-YX/diff?from=1&to=9')).status).toBe(404);
    const page = await get<{ items: { version: number }[]; nextCursor: string | null }>('/api/v1/config/nodes/GZ-YX/history?limit=1');
    expect(page.items.map((i) => i.version)).toEqual([2]);
    const next = await get<{ items: { version: number }[]; nextCursor: string | null }>(`/api/v1/config/nodes/GZ-YX/history?limit=1&cursor=${page.nextCursor}`);
    expect(next.items.map((i) => i.version)).toEqual([1]);
  });

  test('each save is in the audit log with before, after, reason and the number of terminals changed', async () => {
    const a = await get<{ items: { action: string; objectType: string; objectId: string; nodeId: string; before: { version: number }; after: { version: number; reason: string; pushed: number; changes: unknown[] } }[] }>(
      '/api/v1/audit?action=config.update&objectId=GZ-YX',
    );
    expect(a.items.map((i) => i.after.version)).toEqual([2, 1]);
    expect(a.items[0]).toMatchObject({ objectType: 'node', nodeId: 'GZ-YX', before: { version: 1, config: { telemetryInterval: 45 } }, after: { reason: 'collection only', pushed: 2 } });
    expect(a.items[0]!.after.changes).toHaveLength(2);
    const t = await get<{ items: { nodeId: string; after: { version: number } }[] }>(`/api/v1/audit?action=config.update&objectId=${T.yx1!.id}`);
    expect(t.items).toEqual([expect.objectContaining({ nodeId: 'GZ-YX-001', after: expect.objectContaining({ version: 1 }) })]);
    // a refused write leaves no config.update record
    expect((await get<{ items: unknown[] }>('/api/v1/audit?action=config.update&objectId=GZ-TH-001')).items).toEqual([]);
  });

  test('a dry run lists which terminals change and how, and saves nothing', async () => {
    const res = await hub.api('/api/v1/config/nodes/GZ/dry-run', { method: 'POST', json: { config: { logLevel: 'error', telemetryInterval: 120 } } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { terminals: { terminalId: string; stationId: string; changes: unknown[] }[]; changed: number; unchanged: number };
    expect(body.terminals.find((t) => t.terminalId === T.th1!.id)!.stationId).toBe('GZ-TH-001');
    // yx1 keeps its own logLevel and its district's interval: unchanged; the others get logLevel error
    expect(body.terminals.map((t) => t.terminalId).sort()).toEqual([T.th1!.id, T.yx2!.id].sort());
    expect(body.unchanged).toBe(1);
    expect(body.terminals.find((t) => t.terminalId === T.th1!.id)!.changes).toEqual([
      { path: ['announcement'], op: 'remove', from: { zh: '通知', en: 'Notice' } },
      { path: ['logLevel'], op: 'change', from: 'warn', to: 'error' },
    ]);
    expect((await get<{ version: number }>('/api/v1/config/nodes/GZ')).version).toBe(1);
    const bad = await hub.api('/api/v1/config/nodes/GZ/dry-run', { method: 'POST', json: { config: { logLevel: 'loud' } } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ErrorBody).error.details.issues[0]!.path).toEqual(['config', 'logLevel']);
  });

  test('re-saving the same effective config does not bump terminals', async () => {
    const before = (await get<{ desired: { version: number } }>(`/api/v1/config/terminals/${T.yx2!.id}`)).desired.version;
    const res = await put('/api/v1/config/nodes/GZ-YX-002', { config: { telemetryInterval: 60 }, expectedVersion: 2 }); // same as its district
    expect(((await res.json()) as { pushed: { count: number } }).pushed.count).toBe(0);
    expect((await get<{ desired: { version: number } }>(`/api/v1/config/terminals/${T.yx2!.id}`)).desired.version).toBe(before);
  });
});

describe('sync and drift', () => {
  const report = async (c: MqttClient, id: string, seq: number, version: number, status: 'applied' | 'rejected', reason?: string) => {
    await c.publishAsync(
      topicFor(id, 'config/reported'),
      JSON.stringify({ v: 1, epoch: 'epochCFG01', seq, ts: new Date().toISOString(), version, status, ...(reason ? { reason } : {}) }),
      { qos: 1 },
    );
  };

  test('drift appears after the grace period, shows a rejection, and clears once applied', async () => {
    const id = T.th1!.id;
    const c = clients[2]!;
    // a grace of 0.6 s for this district (driftMinutes is itself part of the config)
    const r = await put('/api/v1/config/nodes/GZ-TH', { config: { alerts: { thresholds: { driftMinutes: 0.01 } } }, expectedVersion: 0 });
    expect(r.status).toBe(200);
    const desired = (await get<{ desired: { version: number } }>(`/api/v1/config/terminals/${id}`)).desired.version;
    await until(async () => (await get<{ items: { terminalId: string }[] }>('/api/v1/config/drift?node=GZ-TH')).items.length === 1, 5000);
    let drift = await get<{ items: { terminalId: string; status: string; drift: { since: string } | null; desiredVersion: number }[]; count: number; byNode: Record<string, number> }>(
      '/api/v1/config/drift?node=GZ-TH',
    );
    expect(drift.items[0]).toMatchObject({ terminalId: id, status: 'pending', desiredVersion: desired });
    expect(drift.byNode).toEqual({ 'GZ-TH': 1, 'GZ-TH-001': 1 });
    // the city view lists it, the other district does not
    expect((await get<{ items: { terminalId: string }[] }>('/api/v1/config/drift?node=GZ')).items.map((i) => i.terminalId)).toContain(id);
    expect((await get<{ items: unknown[] }>('/api/v1/config/drift?node=GZ-YX-001')).items).toEqual([]);

    await report(c, id, 1, desired, 'rejected', 'peripherals.idCardReader: usb-presence needs usbId');
    await until(async () => (await get<{ sync: { status: string } }>(`/api/v1/config/terminals/${id}`)).sync.status === 'rejected');
    const view = await get<{ sync: { status: string; rejected: { reason: string }; drift: unknown } }>(`/api/v1/config/terminals/${id}`);
    expect(view.sync.rejected.reason).toContain('usbId');
    expect(view.sync.drift).not.toBeNull();
    // what the drift alert reads (from memory, for every terminal it evaluates) says the same
    await until(() => hub.configLayers.driftCheck(id).drift?.status === 'rejected');

    await report(c, id, 2, desired, 'applied');
    await until(async () => (await get<{ items: unknown[] }>('/api/v1/config/drift?node=GZ-TH')).items.length === 0);
    expect((await get<{ sync: { status: string; appliedVersion: number; drift: unknown } }>(`/api/v1/config/terminals/${id}`)).sync).toMatchObject({
      status: 'in-sync',
      appliedVersion: desired,
      drift: null,
    });
    drift = await get('/api/v1/config/drift?node=GZ-TH');
    expect(drift.count).toBe(0);
    await until(() => hub.configLayers.driftCheck(id).drift === null);
    expect(hub.configLayers.driftCheck(id)).toEqual({ drift: null, graceEndsAt: null });
    // a replayed older report does not undo it
    await report(c, id, 2, desired - 1, 'applied');
    expect((await get<{ sync: { appliedVersion: number } }>(`/api/v1/config/terminals/${id}`)).sync.appliedVersion).toBe(desired);
    expect(hub.configLayers.driftCheck(id)).toEqual({ drift: null, graceEndsAt: null });
  });

  test('a moved terminal gets its new station’s config at once', async () => {
    const id = T.th1!.id;
    const before = latest(id)!.version;
    expect((await hub.api(`/api/v1/terminals/${id}/move`, { method: 'POST', json: { station: 'GZ-YX-002', reason: 'test' } })).status).toBe(200);
    await until(() => latest(id)!.version > before);
    expect(latest(id)!.config).toEqual({ logLevel: 'warn', telemetryInterval: 60, servicesEnabled: ['id-card-collection'], announcement: { zh: '通知', en: 'Notice' } });
  });

  test('a move that would make a terminal’s config invalid is counted and logged; it keeps its last desired config', async () => {
    const id = T.yx2!.id;
    // the station gives the reader a driver; the terminal only tunes its timeout
    expect((await put('/api/v1/config/nodes/GZ-YX-002', { config: { telemetryInterval: 60, peripherals: { idCardReader: { driver: 'simulated' } } }, expectedVersion: 3 })).status).toBe(200);
    expect((await put(`/api/v1/config/terminals/${id}`, { config: { peripherals: { idCardReader: { timeoutMs: 3000 } } }, expectedVersion: 0 })).status).toBe(200);
    const before = (await get<{ desired: { version: number; config: unknown } }>(`/api/v1/config/terminals/${id}`)).desired;
    expect(before.config).toMatchObject({ peripherals: { idCardReader: { driver: 'simulated', timeoutMs: 3000 } } });
    const invalidBefore = await hub.metric('kf_config_invalid_total', { where: 'reconcile' });
    // moved to a station where nothing sets the driver: {timeoutMs} alone is no valid driver setting
    expect((await hub.api(`/api/v1/terminals/${id}/move`, { method: 'POST', json: { station: 'GZ-YX-001', reason: 'test' } })).status).toBe(200);
    expect(await hub.configLayers.reconcile([id])).toEqual([]);
    expect(await hub.metric('kf_config_invalid_total', { where: 'reconcile' })).toBe(invalidBefore + 1);
    expect((await get<{ desired: unknown }>(`/api/v1/config/terminals/${id}`)).desired).toEqual(before);
    // once only, not on every reconcile
    await hub.configLayers.reconcile([id]);
    expect(await hub.metric('kf_config_invalid_total', { where: 'reconcile' })).toBe(invalidBefore + 1);
  });

  test('without driftMinutes in the tree, the drift grace is the one default the drift alert uses (the API says so too)', async () => {
    const { id } = await hub.terminal('GZ-YX-009-01', { station: 'GZ-YX-009' });
    expect((await put('/api/v1/config/nodes/GZ-YX-009', { config: { telemetryInterval: 60 }, expectedVersion: 0 })).status).toBe(200);
    const desiredAt = Date.parse((await get<{ sync: { desiredAt: string } }>(`/api/v1/config/terminals/${id}`)).sync.desiredAt);
    const grace = DEFAULT_THRESHOLDS.driftMinutes * 60_000;
    // out of sync but within the grace: not drifting (ten minutes used to be past a 5-minute grace)
    expect((await hub.configLayers.sync(id, desiredAt + 10 * 60_000)).drift).toBeNull();
    expect(hub.configLayers.driftCheck(id, desiredAt + 10 * 60_000).graceEndsAt).toBe(desiredAt + grace);
    expect((await hub.configLayers.sync(id, desiredAt + grace)).drift).toEqual({ since: desiredAt, graceMs: grace });
    expect(await hub.configLayers.drift('GZ-YX-009', desiredAt + grace - 1)).toEqual([]);
  });
});

describe('registration', () => {
  test('a newly registered terminal gets its station’s effective config without anyone saving', async () => {
    const t = await hub.terminal('GZ-YX-001-09', { station: 'GZ-YX-001' });
    const d = await until(async () => (await get<{ desired: { version: number; config: Record<string, unknown> } | null }>(`/api/v1/config/terminals/${t.id}`)).desired);
    expect(d).toMatchObject({ version: 1, config: { telemetryInterval: 60, logLevel: 'warn', servicesEnabled: ['id-card-collection'] } });
    expect(d?.config).not.toHaveProperty('announcement');
  });
});
