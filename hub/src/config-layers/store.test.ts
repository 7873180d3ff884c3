/**
 * The config layer store on both engines: what the service relies on (compare-and-set of layer versions, desired
 * versions that only grow, reports that never lower what is known, lists in id order, config texts byte for byte),
 * and the service on top of each answering the same, value for value.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Engine, EngineKind } from '../db/engine.ts';
import { notFound } from '../errors.ts';
import { createLogger } from '../log.ts';
import type { NodeRow, TerminalRow } from '../fleet/store.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { dropStoredPrograms, PROGRAMS_DROPPED_REASON } from './programs.ts';
import { ConfigLayers } from './service.ts';
import { createConfigLayerStore, type ConfigLayerStore, type LayerWrite } from './store.ts';

const NODES: Pick<NodeRow, 'id' | 'level' | 'parentId'>[] = [
  { id: 'GZ', level: 'city', parentId: null },
  { id: 'GZ-YX', level: 'district', parentId: 'GZ' },
  { id: 'GZ-YX-001', level: 'station', parentId: 'GZ-YX' },
  { id: 'GZ-YX-002', level: 'station', parentId: 'GZ-YX' },
  { id: 'GZ-TH', level: 'district', parentId: 'GZ' },
  { id: 'GZ-TH-001', level: 'station', parentId: 'GZ-TH' },
];

/** Listed out of id order on purpose: the store sorts. */
const TERMINALS: Pick<TerminalRow, 'id' | 'stationId' | 'state'>[] = [
  { id: 'GZ-YX-002-01', stationId: 'GZ-YX-002', state: 'active' },
  { id: 'GZ-YX-001-10', stationId: 'GZ-YX-001', state: 'active' },
  { id: 'GZ-YX-001-02', stationId: 'GZ-YX-001', state: 'active' },
  { id: 'GZ-YX-001-03', stationId: 'GZ-YX-001', state: 'decommissioned' },
  { id: 'GZ-TH-001-01', stationId: 'GZ-TH-001', state: 'active' },
];
const PRESENCE: Record<string, string> = { 'GZ-YX-001-02': 'online', 'GZ-YX-002-01': 'offline' };

/** The fleet the tests run on, written as the registry writes it (its store is another domain's). */
async function seed(e: Engine): Promise<void> {
  for (const t of TERMINALS) {
    const row = [t.id, 'self-service', `SN-${t.id}`, t.stationId, t.state, 'x', 1];
    if (e.kind === 'sqlite') e.db.prepare('INSERT INTO terminals (id, type, serial, station_id, state, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(...row);
    else await e.pg.sql`insert into terminals (id, type, serial, station_id, state, secret_hash, created_at) values (${t.id}, 'self-service', ${`SN-${t.id}`}, ${t.stationId}, ${t.state}, 'x', 1)`;
  }
  for (const [id, presence] of Object.entries(PRESENCE)) {
    if (e.kind === 'sqlite') e.db.prepare('INSERT INTO terminal_state (terminal_id, presence) VALUES (?, ?)').run(id, presence);
    else await e.pg.sql`insert into terminal_state (terminal_id, presence) values (${id}, ${presence})`;
  }
}

/** The registry's answers about the seeded fleet. */
const placeOf = (id: string) => {
  const t = TERMINALS.find((x) => x.id === id);
  return t && { ...t, type: 'self-service', serial: `SN-${t.id}`, createdAt: 1, decommissionedAt: null };
};
/** The registry as the service reads it (fleet/store.ts), over the lists above. */
const places = {
  node: async (id: string) => {
    const n = NODES.find((x) => x.id === id);
    return n && { ...n, nameZh: n.id, nameEn: n.id, kind: null, createdAt: 1 };
  },
  terminal: async (id: string) => placeOf(id),
  terminals: async (ids: readonly string[]) => [...new Set(ids)].sort().flatMap((id) => placeOf(id) ?? []),
  async requireTerminal(id: string) {
    const t = placeOf(id);
    if (!t) throw notFound('terminal', id);
    return t;
  },
};

const log = createLogger('silent');

const layerWrite = (over: Partial<LayerWrite> = {}): LayerWrite => ({
  scope: 'node',
  targetId: 'GZ-YX',
  version: 1,
  // explicit nulls and non-ASCII kept as written
  config: '{"announcement":{"zh":"通知 «今日»","en":"Notice"},"logLevel":null}',
  updatedAt: 1_700_000_000_000,
  updatedBy: 'alice',
  reason: null,
  pushed: 0,
  ...over,
});

describe.each(TEST_ENGINES)('config layer store on %s', (kind) => {
  let t: TestEngine;
  let store: ConfigLayerStore;
  beforeEach(async () => {
    t = await openTestEngine(kind);
    await seed(t.engine);
    store = createConfigLayerStore(t.engine);
  });
  afterEach(async () => {
    await t.close();
  });

  it('saves a layer only on top of the version read; its history keeps every version, newest first', async () => {
    expect(await store.layer('node', 'GZ-YX')).toBeUndefined();
    expect(await store.saveLayer(layerWrite(), 0)).toBe(true);
    // a second first save (someone else read version 0 too) loses
    expect(await store.saveLayer(layerWrite({ updatedBy: 'bob' }), 0)).toBe(false);
    const v1 = layerWrite();
    expect(await store.layer('node', 'GZ-YX')).toEqual({ scope: v1.scope, targetId: v1.targetId, version: 1, config: v1.config, updatedAt: v1.updatedAt, updatedBy: 'alice', reason: null });

    expect(await store.saveLayer(layerWrite({ version: 2, config: '{"telemetryInterval":60}', updatedAt: 1_700_000_000_500, reason: 'quieter', pushed: 3 }), 1)).toBe(true);
    expect(await store.saveLayer(layerWrite({ version: 2, config: '{}', updatedBy: 'bob' }), 1)).toBe(false);
    expect((await store.layer('node', 'GZ-YX'))?.config).toBe('{"telemetryInterval":60}');

    // the same id as a terminal layer is another layer
    expect(await store.saveLayer(layerWrite({ scope: 'terminal', targetId: 'GZ-YX' }), 0)).toBe(true);
    expect((await store.allLayers()).map((l) => `${l.scope}:${l.targetId}:${l.version}`).sort()).toEqual(['node:GZ-YX:2', 'terminal:GZ-YX:1']);

    expect(await store.history('node', 'GZ-YX', Number.MAX_SAFE_INTEGER, 10)).toEqual([
      { version: 2, config: '{"telemetryInterval":60}', at: 1_700_000_000_500, by: 'alice', reason: 'quieter', pushed: 3 },
      { version: 1, config: v1.config, at: v1.updatedAt, by: 'alice', reason: null, pushed: 0 },
    ]);
    expect((await store.history('node', 'GZ-YX', 2, 10)).map((h) => h.version)).toEqual([1]);
    expect((await store.history('node', 'GZ-YX', Number.MAX_SAFE_INTEGER, 1)).map((h) => h.version)).toEqual([2]);
    expect((await store.historyVersion('node', 'GZ-YX', 1))?.config).toBe(v1.config);
    expect(await store.historyVersion('node', 'GZ-YX', 3)).toBeUndefined();
  });

  it('of two saves based on the same version at the same time, exactly one wins', async () => {
    await store.saveLayer(layerWrite(), 0);
    // both read version 1 (two operators, or two hubs), then both save on top of it
    const read = (await store.layer('node', 'GZ-YX'))!.version;
    const saves = await Promise.all(
      ['alice', 'bob'].map((by) => store.transaction(async (tx) => store.saveLayer(layerWrite({ version: read + 1, updatedBy: by }), read, tx))),
    );
    expect(saves.filter(Boolean)).toHaveLength(1);
    expect((await store.history('node', 'GZ-YX', Number.MAX_SAFE_INTEGER, 10)).map((h) => h.version)).toEqual([2, 1]);
  });

  it('keeps nothing of a transaction that throws: layer, history and desired configs', async () => {
    const err = await store
      .transaction(async (tx) => {
        await store.saveLayer(layerWrite(), 0, tx);
        await store.putDesired([{ terminalId: 'GZ-YX-001-02', config: '{}' }], 5, tx);
        throw new Error('audit refused');
      })
      .catch((e: unknown) => e);
    expect((err as Error).message).toBe('audit refused');
    expect(await store.layer('node', 'GZ-YX')).toBeUndefined();
    expect(await store.history('node', 'GZ-YX', Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
    expect(await store.allDesired()).toEqual([]);
  });

  it('gives each terminal desired versions that only grow, in one batch', async () => {
    expect(
      await store.putDesired(
        [
          { terminalId: 'GZ-YX-001-02', config: '{"logLevel":"warn"}' },
          { terminalId: 'GZ-YX-001-10', config: '{"logLevel":"warn"}' },
        ],
        100,
      ),
    ).toEqual([
      { terminalId: 'GZ-YX-001-02', version: 1 },
      { terminalId: 'GZ-YX-001-10', version: 1 },
    ]);
    expect(await store.putDesired([{ terminalId: 'GZ-YX-001-02', config: '{"logLevel":"info"}' }], 200)).toEqual([{ terminalId: 'GZ-YX-001-02', version: 2 }]);
    expect(await store.putDesired([], 300)).toEqual([]);
    expect(await store.desired('GZ-YX-001-02')).toEqual({ terminalId: 'GZ-YX-001-02', version: 2, config: '{"logLevel":"info"}', updatedAt: 200 });
    expect(await store.desired('GZ-YX-002-01')).toBeUndefined();
    expect((await store.allDesired()).sort((a, b) => a.terminalId.localeCompare(b.terminalId))).toEqual([
      { terminalId: 'GZ-YX-001-02', version: 2, config: '{"logLevel":"info"}', updatedAt: 200 },
      { terminalId: 'GZ-YX-001-10', version: 1, config: '{"logLevel":"warn"}', updatedAt: 100 },
    ]);
  });

  it('keeps the highest applied and the highest rejected version of each terminal, whatever order reports come in', async () => {
    expect(await store.sync('GZ-YX-001-02')).toBeUndefined();
    await store.recordReports([
      { terminalId: 'GZ-YX-001-02', version: 3, status: 'applied', reason: null, at: 10 },
      { terminalId: 'GZ-YX-001-02', version: 2, status: 'applied', reason: null, at: 20 },
      { terminalId: 'GZ-YX-001-10', version: 1, status: 'rejected', reason: 'driver missing', at: 30 },
    ]);
    await store.transaction((tx) =>
      store.recordReports(
        [
          { terminalId: 'GZ-YX-001-02', version: 5, status: 'rejected', reason: 'bad "probe"', at: 40 },
          { terminalId: 'GZ-YX-001-02', version: 4, status: 'rejected', reason: 'older', at: 50 },
          { terminalId: 'GZ-YX-001-10', version: 1, status: 'rejected', reason: 'replayed', at: 60 },
        ],
        tx,
      ),
    );
    expect(await store.sync('GZ-YX-001-02')).toEqual({
      terminalId: 'GZ-YX-001-02',
      appliedVersion: 3,
      appliedAt: 10,
      rejectedVersion: 5,
      rejectedReason: 'bad "probe"',
      rejectedAt: 40,
    });
    expect(await store.sync('GZ-YX-001-10')).toEqual({
      terminalId: 'GZ-YX-001-10',
      appliedVersion: 0,
      appliedAt: null,
      rejectedVersion: 1,
      rejectedReason: 'driver missing',
      rejectedAt: 30,
    });
    expect((await store.allSync()).map((s) => s.terminalId).sort()).toEqual(['GZ-YX-001-02', 'GZ-YX-001-10']);
  });

  it('lists the active terminals whose applied version lags, under a node or all, in id order, with their presence', async () => {
    const all = TERMINALS.map((x) => ({ terminalId: x.id, config: '{"logLevel":"warn"}' }));
    await store.putDesired(all, 100);
    await store.putDesired([{ terminalId: 'GZ-YX-002-01', config: '{"logLevel":"info"}' }], 200);
    await store.recordReports([
      { terminalId: 'GZ-YX-001-10', version: 1, status: 'applied', reason: null, at: 150 },
      { terminalId: 'GZ-YX-002-01', version: 1, status: 'applied', reason: null, at: 150 },
      { terminalId: 'GZ-YX-002-01', version: 2, status: 'rejected', reason: 'no', at: 250 },
    ]);
    const lagging = await store.lagging(null);
    expect(lagging.map((r) => r.terminalId)).toEqual(['GZ-TH-001-01', 'GZ-YX-001-02', 'GZ-YX-002-01']);
    expect(lagging[1]).toEqual({
      terminalId: 'GZ-YX-001-02',
      stationId: 'GZ-YX-001',
      version: 1,
      config: '{"logLevel":"warn"}',
      updatedAt: 100,
      appliedVersion: null,
      appliedAt: null,
      rejectedVersion: null,
      rejectedReason: null,
      rejectedAt: null,
      presence: 'online',
    });
    expect(lagging[2]).toMatchObject({ terminalId: 'GZ-YX-002-01', version: 2, appliedVersion: 1, rejectedVersion: 2, rejectedReason: 'no', presence: 'offline' });
    expect(lagging[0]!.presence).toBeNull();
    expect((await store.lagging('GZ-YX')).map((r) => r.terminalId)).toEqual(['GZ-YX-001-02', 'GZ-YX-002-01']);
    expect((await store.lagging('GZ-YX-002')).map((r) => r.terminalId)).toEqual(['GZ-YX-002-01']);
    expect(await store.lagging('GZ-YX-00')).toEqual([]);
  });

  it('lists active terminals in id order: all, a page after a cursor, under a node', async () => {
    const ids = (rows: { id: string }[]) => rows.map((r) => r.id);
    expect(ids(await store.activeTerminals())).toEqual(['GZ-TH-001-01', 'GZ-YX-001-02', 'GZ-YX-001-10', 'GZ-YX-002-01']);
    expect(await store.activeTerminalsAfter('', 2)).toEqual([
      { id: 'GZ-TH-001-01', stationId: 'GZ-TH-001' },
      { id: 'GZ-YX-001-02', stationId: 'GZ-YX-001' },
    ]);
    expect(ids(await store.activeTerminalsAfter('GZ-YX-001-02', 2))).toEqual(['GZ-YX-001-10', 'GZ-YX-002-01']);
    expect(ids(await store.activeTerminalsAfter('GZ-YX-002-01', 2))).toEqual([]);
    expect(ids(await store.terminalsUnder('GZ-YX'))).toEqual(['GZ-YX-001-02', 'GZ-YX-001-10', 'GZ-YX-002-01']);
    expect(ids(await store.terminalsUnder('GZ-YX-001'))).toEqual(['GZ-YX-001-02', 'GZ-YX-001-10']);
    expect(ids(await store.terminalsUnder('GZ'))).toEqual(['GZ-TH-001-01', 'GZ-YX-001-02', 'GZ-YX-001-10', 'GZ-YX-002-01']);
    expect(await store.terminalsUnder('GZ-YX-0')).toEqual([]);
  });

  it('finds the rows that may hold a program, not those that only use the command driver', async () => {
    const argv = '{"peripherals":{"a4Printer":{"driver":"command","command":["/bin/sh","-c","id"]}}}';
    const probe = '{"peripherals":{"a4Printer":{"driver":"command","probe":"a4-printer"}}}';
    await store.saveLayer(layerWrite({ config: argv }), 0);
    await store.saveLayer(layerWrite({ targetId: 'GZ-TH', config: probe }), 0);
    await store.putDesired(
      [
        { terminalId: 'GZ-YX-001-02', config: argv },
        { terminalId: 'GZ-TH-001-01', config: probe },
      ],
      100,
    );
    expect((await store.layersWithPrograms()).map((l) => l.targetId)).toEqual(['GZ-YX']);
    expect((await store.desiredWithPrograms()).map((d) => d.terminalId)).toEqual(['GZ-YX-001-02']);

    expect(await dropStoredPrograms(store, log, 500)).toEqual({ layers: 1, terminals: 1 });
    expect(await store.layer('node', 'GZ-YX')).toMatchObject({ version: 2, config: probe.replace(',"probe":"a4-printer"', ''), updatedBy: 'migration', reason: PROGRAMS_DROPPED_REASON });
    expect(await store.desired('GZ-YX-001-02')).toMatchObject({ version: 2, config: '{"peripherals":{"a4Printer":{"driver":"command"}}}' });
    expect((await store.layer('node', 'GZ-TH'))?.version).toBe(1);
    // a second start finds nothing to do
    expect(await dropStoredPrograms(store, log, 600)).toEqual({ layers: 0, terminals: 0 });
  });
});

/** One scenario through the service: saves, a stale save, a dry run, reads, reports, drift, reconcile and sweep. */
async function scenario(engine: Engine) {
  await seed(engine);
  const store = createConfigLayerStore(engine);
  const published: { terminalId: string; version: number; config: unknown }[] = [];
  const broker = {
    publish: async (terminalId: string, _kind: string, payload: unknown) => {
      const p = payload as { version: number; config: unknown };
      published.push({ terminalId, version: p.version, config: p.config });
    },
  };
  const cl = new ConfigLayers(store, places, broker, log);
  await cl.load();
  const out: Record<string, unknown> = {};
  const save = async (scope: 'node' | 'terminal', id: string, config: unknown, expectedVersion?: number) => {
    const audits: unknown[] = [];
    const r = await cl.setLayer(scope, id, config, { expectedVersion, by: 'alice', reason: `${id} now`, audit: (a) => void audits.push(a) });
    return { version: r.layer.version, config: r.layer.config, pushed: r.pushed, audits };
  };
  out.city = await save('node', 'GZ', { telemetryInterval: 60, logLevel: 'info', servicesEnabled: ['id-card-collection'] }, 0);
  out.district = await save('node', 'GZ-YX', { logLevel: 'warn', announcement: { zh: '通知', en: 'Notice' } }, 0);
  out.terminal = await save('terminal', 'GZ-YX-001-02', { logLevel: 'debug', announcement: null });
  out.stale = await save('node', 'GZ', { telemetryInterval: 30 }, 0).catch((e: unknown) => ({ status: (e as { status?: number }).status, message: (e as Error).message }));
  out.invalid = await save('node', 'GZ-YX', { telemetryInterval: 'often' }, 1).catch((e: unknown) => ({ status: (e as { status?: number }).status }));
  out.city2 = await save('node', 'GZ', { telemetryInterval: 120, logLevel: 'info', servicesEnabled: ['id-card-collection'] }, 1);
  out.dryRun = await cl.dryRun('node', 'GZ-YX-001', { telemetryInterval: 30 });
  const strip = <T extends { updatedAt: number | null }>(v: T) => ({ ...v, updatedAt: v.updatedAt === null ? null : 'set' });
  out.layers = [strip(await cl.layer('node', 'GZ')), strip(await cl.layer('node', 'GZ-YX-001')), strip(await cl.layer('terminal', 'GZ-YX-001-02'))];
  out.history = (await cl.history('node', 'GZ', null, 10)).map((h) => ({ ...h, at: 'set' }));
  out.diff = await cl.diffVersions('node', 'GZ', 0, 2);
  out.effective = await cl.effective('GZ-YX-001-02');
  out.inheritedStation = await cl.inherited('node', 'GZ-YX-001');
  out.inheritedTerminal = await cl.inherited('terminal', 'GZ-YX-001-02');
  out.desired = TERMINALS.map((x) => {
    const d = cl.desired(x.id);
    return d && { version: d.version, config: d.config };
  });

  await store.recordReports([
    { terminalId: 'GZ-YX-001-02', version: 2, status: 'applied', reason: null, at: Date.now() },
    { terminalId: 'GZ-YX-001-10', version: 2, status: 'rejected', reason: 'no driver', at: Date.now() },
  ]);
  cl.noteReported('GZ-YX-001-02', 2, 'applied');
  cl.noteReported('GZ-YX-001-10', 2, 'rejected');
  const later = Date.now() + 24 * 3_600_000;
  const sync = async (id: string) => {
    const s = await cl.sync(id, later);
    return { ...s, desiredAt: s.desiredAt === null ? null : 'set', appliedAt: s.appliedAt === null ? null : 'set', rejected: s.rejected && { ...s.rejected, at: 'set' }, drift: s.drift && { graceMs: s.drift.graceMs } };
  };
  out.sync = await Promise.all(TERMINALS.map((x) => sync(x.id)));
  out.drift = (await cl.drift(null, later)).map((d) => ({ terminalId: d.terminalId, status: d.status, presence: d.presence, desiredVersion: d.desiredVersion, appliedVersion: d.appliedVersion }));
  out.driftYX = (await cl.drift('GZ-YX', later)).map((d) => d.terminalId);
  out.driftCheck = TERMINALS.map((x) => {
    const c = cl.driftCheck(x.id, later);
    return { drift: c.drift && { ...c.drift, since: 'set' }, graceEndsAt: c.graceEndsAt };
  });
  out.reconcile = await cl.reconcile();
  // a layer written behind the service's back (another process), then one terminal named twice in one reconcile
  const th = (await store.layer('node', 'GZ-TH'))?.version ?? 0;
  await store.saveLayer({ scope: 'node', targetId: 'GZ-TH', version: th + 1, config: '{"logLevel":"error"}', updatedAt: 1, updatedBy: 'shell', reason: null, pushed: 0 }, th);
  out.reconcileTwice = await cl.reconcile(['GZ-TH-001-01', 'GZ-TH-001-01']);
  out.sweep = [await cl.sweep(3), await cl.sweep(3), await cl.sweep(3)];
  out.published = published;
  return out;
}

describe('the service on each engine', () => {
  const answers = new Map<EngineKind, Record<string, unknown>>();
  afterAll(() => answers.clear());

  it.each(TEST_ENGINES)('runs the scenario on %s', async (kind) => {
    const t = await openTestEngine(kind);
    try {
      const out = await scenario(t.engine);
      answers.set(kind, out);
      expect(out.stale).toEqual({ status: 409, message: 'the node config of GZ changed since you read it (now version 1)' });
      expect(out.invalid).toEqual({ status: 400 });
      // the city's first save reaches every active terminal; the second one only changes the interval
      expect((out.city as { pushed: unknown[] }).pushed).toHaveLength(4);
      expect(out.desired).toEqual([
        { version: 3, config: { telemetryInterval: 120, logLevel: 'warn', servicesEnabled: ['id-card-collection'], announcement: { zh: '通知', en: 'Notice' } } },
        { version: 3, config: { telemetryInterval: 120, logLevel: 'warn', servicesEnabled: ['id-card-collection'], announcement: { zh: '通知', en: 'Notice' } } },
        { version: 4, config: { telemetryInterval: 120, logLevel: 'debug', servicesEnabled: ['id-card-collection'] } },
        null,
        { version: 2, config: { telemetryInterval: 120, logLevel: 'info', servicesEnabled: ['id-card-collection'] } },
      ]);
      expect(out.driftYX).toEqual(['GZ-YX-001-02', 'GZ-YX-001-10', 'GZ-YX-002-01']);
      expect(out.reconcile).toEqual([]);
      expect(out.reconcileTwice).toEqual([{ terminalId: 'GZ-TH-001-01', version: 3 }]);
    } finally {
      await t.close();
    }
  });

  it.runIf(TEST_ENGINES.length > 1)('answers the same on PostgreSQL as on SQLite', () => {
    expect([...answers.keys()].sort()).toEqual(['postgres', 'sqlite']);
    expect(answers.get('postgres')).toEqual(answers.get('sqlite'));
  });
});
