/**
 * The fleet store's contract on both engines: every method, the refusals word for word, and the answers compared
 * between the engines at the end (the API serves them as they come, so they must be equal).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transaction, type EngineKind } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { HubError } from '../errors.ts';
import { until } from '../test-support.ts';
import { applyImport, importFleet, parseFleetJson, type ImportResult } from './import.ts';
import { createFleetStore } from './index.ts';
import type { FleetStore, TerminalRow } from './store.ts';

const FIXTURE = path.resolve(import.meta.dirname, '..', '..', '..', 'fixtures', 'guangzhou-fleet.json');
const T1 = { id: 'GZ-TH-001-01', type: 'id-card', serial: 'S1', station: 'GZ-TH-001' };
const T2 = { id: 'GZ-TH-001-02', type: 'police-multi', serial: 'S2', station: 'GZ-TH-001' };

/** What each engine answered, createdAt and secrets aside, for the comparison at the end. */
const answers: Partial<Record<EngineKind, Record<string, unknown>>> = {};

async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof HubError)) throw new Error(`expected a HubError, got ${String(err)}`);
  return { status: err.status, code: err.code, message: err.message };
}

const timeless = (t: TerminalRow | undefined) => t && { ...t, createdAt: 0, decommissionedAt: t.decommissionedAt === null ? null : 0 };

describe.each(TEST_ENGINES)('fleet store on %s', (kind) => {
  let t: TestEngine;
  let store: FleetStore;
  const seen: Record<string, unknown> = (answers[kind] = {});

  beforeEach(async () => {
    t = await openTestEngine(kind);
    store = createFleetStore(t.engine);
    await store.load();
  });
  afterEach(async () => {
    await t.close();
  });

  async function tree(): Promise<void> {
    await store.createNode({ id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } }, 1000);
    await store.createNode({ id: 'GZ-TH', name: { zh: '天河', en: 'Tianhe' } }, 1000);
    await store.createNode({ id: 'GZ-TH-001', name: { zh: '一', en: 'One' }, kind: 'police-station' }, 1000);
    await store.createNode({ id: 'GZ-T', name: { zh: 'T', en: 'T' } }, 1000);
    await store.createNode({ id: 'GZ-T-001', name: { zh: 'T1', en: 'T1' } }, 1000);
  }

  it('creates and lists the node tree in byte order, and refuses bad nodes with the same words', async () => {
    await tree();
    expect(await store.node('GZ-TH-001')).toEqual({
      id: 'GZ-TH-001',
      level: 'station',
      parentId: 'GZ-TH',
      nameZh: '一',
      nameEn: 'One',
      kind: 'police-station',
      createdAt: 1000,
    });
    expect(await store.node('GZ-XX')).toBeUndefined();
    const nodes = await store.nodes();
    expect(nodes.map((n) => n.id)).toEqual(['GZ', 'GZ-T', 'GZ-T-001', 'GZ-TH', 'GZ-TH-001']);
    expect(nodes[0]).toEqual({ id: 'GZ', level: 'city', parentId: null, nameZh: '广州', nameEn: 'Guangzhou', kind: null, createdAt: 1000 });
    const refused = {
      badId: await refusal(store.createNode({ id: 'gz th', name: { zh: 'x', en: 'x' } })),
      noParent: await refusal(store.createNode({ id: 'GZ-YX-001', name: { zh: 'x', en: 'x' } })),
      exists: await refusal(store.createNode({ id: 'GZ-TH', name: { zh: 'x', en: 'x' } })),
    };
    expect(refused).toEqual({
      badId: { status: 400, code: 'invalid-node', message: 'node id "gz th" is not a city, district or station id' },
      noParent: { status: 400, code: 'invalid-node', message: 'parent GZ-YX of GZ-YX-001 does not exist' },
      exists: { status: 409, code: 'conflict', message: 'node GZ-TH exists' },
    });
    seen.nodes = nodes;
    seen.nodeRefusals = refused;
  });

  it('registers terminals (secret once, id taken anywhere is one answer), finds them, checks new ones, picks the next id', async () => {
    await tree();
    const r = await store.register(T1, 'alice');
    expect(r.id).toBe(T1.id);
    expect(r.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await store.insertTerminal(T2, 'alice', 2000);
    expect(timeless(await store.terminal(T1.id))).toEqual({ id: T1.id, type: 'id-card', serial: 'S1', stationId: 'GZ-TH-001', state: 'active', createdAt: 0, decommissionedAt: null });
    expect((await store.terminal(T2.id))?.createdAt).toBe(2000);
    expect(await store.terminal('GZ-TH-001-99')).toBeUndefined();
    expect((await store.terminals(['GZ-TH-001-99', T2.id, T1.id])).map((x) => x.id)).toEqual([T1.id, T2.id]);
    expect(await store.terminals([])).toEqual([]);
    expect((await store.requireTerminal(T1.id)).stationId).toBe('GZ-TH-001');
    const refused = {
      unknown: await refusal(store.requireTerminal('GZ-TH-001-99')),
      taken: await refusal(store.register({ ...T1, station: 'GZ-T-001' }, 'alice')),
      noStation: await refusal(store.register({ ...T1, id: 'GZ-TH-001-03', station: 'GZ-TH-009' }, 'alice')),
      district: await refusal(store.register({ ...T1, id: 'GZ-TH-001-03', station: 'GZ-TH' }, 'alice')),
      type: await refusal(store.register({ ...T1, id: 'GZ-TH-001-03', type: 'toaster' }, 'alice')),
    };
    expect(refused).toEqual({
      unknown: { status: 404, code: 'not-found', message: expect.stringContaining('GZ-TH-001-99') as string },
      taken: { status: 409, code: 'id-unavailable', message: 'terminal id GZ-TH-001-01 is not available; choose another' },
      noStation: { status: 400, code: 'invalid-terminal', message: 'station "GZ-TH-009" does not exist' },
      district: { status: 400, code: 'invalid-terminal', message: 'GZ-TH is a district, not a station' },
      type: { status: 400, code: 'invalid-terminal', message: 'unknown terminal type "toaster"' },
    });
    expect(await store.terminalProblem({ ...T1, id: 'bad id' })).toBe('terminal id "bad id": 1-64 of A-Z a-z 0-9 . _ -');
    expect(await store.terminalProblem({ ...T1, station: 'GZ-TH-002' }, new Set(['GZ-TH-002']))).toBeNull();
    expect(await store.terminalProblem({ ...T1, serial: '' })).toBe('serial: 1-64 characters');
    // The highest number under the station by (length, id), ids in any case (SQLite's LIKE ignores it).
    expect(await store.nextTerminalId('GZ-TH-001')).toBe('GZ-TH-001-03');
    await store.insertTerminal({ ...T1, id: 'gz-th-001-07' }, 'alice');
    await store.insertTerminal({ ...T1, id: 'GZ-TH-001-9' }, 'alice');
    expect(await store.nextTerminalId('GZ-TH-001')).toBe('GZ-TH-001-08');
    expect(await store.nextTerminalId('GZ-T-001')).toBe('GZ-T-001-01');
    seen.terminalRefusals = refused;
    seen.terminals = (await store.terminals([T1.id, T2.id, 'gz-th-001-07', 'GZ-TH-001-9'])).map(timeless);
  });

  it('moves and decommissions with placement history; refuses what may not move; rotates secrets', async () => {
    await tree();
    const secret = await store.insertTerminal(T1, 'alice', 2000);
    const moved = await store.move(T1.id, 'GZ-T-001', 'bob', 'new hall', 3000);
    expect(moved.stationId).toBe('GZ-T-001');
    await store.move(T1.id, 'GZ-T-001', 'bob', 'again', 3500); // same station: no placement
    const refusedMove = {
      district: await refusal(store.move(T1.id, 'GZ-T', 'bob', null)),
      missing: await refusal(store.move('GZ-T-001-99', 'GZ-T-001', 'bob', null)),
    };
    const next = await store.rotateSecret(T1.id);
    expect(next).not.toBe(secret);
    const gone = await store.decommission(T1.id, 'carol', null, 4000);
    expect(gone.state).toBe('decommissioned');
    expect(gone.decommissionedAt).toBe(4000);
    expect(await store.decommission(T1.id, 'carol', 'twice', 5000)).toEqual(gone); // idempotent
    const refusedAfter = {
      move: await refusal(store.move(T1.id, 'GZ-TH-001', 'bob', null)),
      rotate: await refusal(store.rotateSecret(T1.id)),
    };
    expect(refusedMove).toEqual({
      district: { status: 400, code: 'invalid-station', message: 'GZ-T is not a station' },
      missing: { status: 404, code: 'not-found', message: expect.stringContaining('GZ-T-001-99') as string },
    });
    expect(refusedAfter).toEqual({
      move: { status: 409, code: 'conflict', message: `terminal ${T1.id} is decommissioned` },
      rotate: { status: 409, code: 'conflict', message: `terminal ${T1.id} is decommissioned` },
    });
    const placements = await store.placements(T1.id);
    expect(placements.map((p) => [p.fromStation, p.toStation, p.by, p.reason])).toEqual([
      [null, 'GZ-TH-001', 'alice', 'registered'],
      ['GZ-TH-001', 'GZ-T-001', 'bob', 'new hall'],
      ['GZ-T-001', null, 'carol', 'decommissioned'],
    ]);
    expect(placements.map((p) => p.at)).toEqual([2000, 3000, 4000]);
    expect(await store.placements('GZ-T-001-99')).toEqual([]);
    seen.placements = placements;
    seen.moveRefusals = { ...refusedMove, ...refusedAfter };
  });

  it('verifies credentials: the current secret of an active terminal only, at once after a rotate or decommission, and after a start', async () => {
    await tree();
    const { secret } = await store.register(T1, 'alice');
    expect(await store.verify(T1.id, secret)).toBe(true);
    expect(await store.verify(T1.id, `${secret}x`)).toBe(false);
    expect(await store.verify(T1.id, '')).toBe(false);
    expect(await store.verify('GZ-TH-001-99', secret)).toBe(false);
    const next = await store.rotateSecret(T1.id);
    expect(await store.verify(T1.id, secret)).toBe(false);
    expect(await store.verify(T1.id, next)).toBe(true);
    // A start reads the same key and credentials back.
    const restarted = createFleetStore(t.engine);
    await restarted.load();
    expect(await restarted.verify(T1.id, next)).toBe(true);
    expect(await restarted.verify(T1.id, secret)).toBe(false);
    await store.decommission(T1.id, 'carol', null);
    expect(await store.verify(T1.id, next)).toBe(false);
    expect(await createFleetStore(t.engine).verify(T1.id, next)).toBe(false);
  });

  it('loads every credential at the start and answers from memory (no read per connect); a miss is read', async () => {
    await tree();
    const secrets = await store.insertTerminals([T1, T2], 'alice', 2000);
    const started = createFleetStore(t.engine);
    await started.load();
    // Another writer (a second hub on the database) rotates T1: this hub answers from what it loaded.
    const rotated = await createFleetStore(t.engine).rotateSecret(T1.id);
    expect(await started.verify(T1.id, secrets[0]!)).toBe(true);
    expect(await started.verify(T1.id, rotated)).toBe(false);
    expect(await started.verify(T2.id, secrets[1]!)).toBe(true);
    // A store that had not cached T1 reads it.
    expect(await createFleetStore(t.engine).verify(T1.id, rotated)).toBe(true);
  });

  it('verifies a terminal another writer added after the start (kiosk-fleet import, another hub)', async () => {
    await tree();
    const other = createFleetStore(t.engine);
    expect(await store.verify(T1.id, 'x')).toBe(false);
    const { secret } = await other.register(T1, 'cli');
    expect(await store.verify(T1.id, secret)).toBe(true);
  });

  it('caches nothing a rolled-back transaction wrote', async () => {
    await tree();
    const { secret } = await store.register(T2, 'alice');
    let created = '';
    let rotated = '';
    const err = await transaction(t.engine, async (tx) => {
      created = (await store.register(T1, 'alice', tx)).secret;
      rotated = await store.rotateSecret(T2.id, tx);
      throw new Error('roll back');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('roll back');
    expect(await store.terminal(T1.id)).toBeUndefined();
    expect(await store.verify(T1.id, created)).toBe(false);
    expect(await store.verify(T2.id, rotated)).toBe(false);
    expect(await store.verify(T2.id, secret)).toBe(true);
  });

  it('a connect racing a rotate does not cache the secret the commit replaces', async () => {
    await tree();
    const { secret } = await store.register(T1, 'alice');
    expect(await store.verify(T1.id, secret)).toBe(true); // cached now
    let racing: Promise<boolean> | undefined;
    const next = await transaction(t.engine, async (tx) => {
      const s = await store.rotateSecret(T1.id, tx);
      // Not awaited: on PostgreSQL it waits for this transaction's commit (the row is locked by it). The commit waits
      // until the read has reached the server (it waits for the lock) or has answered (it did not wait).
      let settled = false;
      racing = store.verify(T1.id, secret).finally(() => (settled = true));
      const e = t.engine;
      await until(async () => settled || (e.kind === 'postgres' && (await e.pg.sql`select 1 from pg_locks where not granted`).length > 0), 10_000);
      return s;
    });
    expect(await racing).toBe(false);
    expect(await store.verify(T1.id, secret)).toBe(false);
    expect(await store.verify(T1.id, next)).toBe(true);
  });

  it('imports the reference fleet in one transaction; again, it creates nothing; a bad row creates nothing at all', async () => {
    const fleet = parseFleetJson(JSON.parse(fs.readFileSync(FIXTURE, 'utf8')));
    const first = await importFleet(t.engine, store, fleet, 'cli');
    expect(first.nodes.created).toHaveLength(1 + 11 + 175);
    expect(first.terminals.created).toHaveLength(923);
    expect(first.nodes.existing).toEqual([]);
    const one = first.terminals.created[500]!;
    expect(await store.verify(one.id, one.secret)).toBe(true);
    expect(await createFleetStore(t.engine).verify(one.id, one.secret)).toBe(true);
    const placements = await store.placements(one.id);
    expect(placements.map((p) => [p.fromStation, p.toStation, p.by, p.reason])).toEqual([[null, placements[0]!.toStation, 'cli', 'registered']]);

    const again = await transaction(t.engine, (tx) => applyImport(store, fleet, 'cli', tx));
    expect(again.terminals.created).toEqual([]);
    expect(again.terminals.existing).toHaveLength(923);
    expect(again.nodes.existing).toHaveLength(187);

    const bad = parseFleetJson({
      stations: [{ id: 'GZ-YX-500', district: 'GZ-YX', name: { zh: 'x', en: 'x' } }],
      terminals: [
        { id: 'GZ-YX-500-01', station: 'GZ-YX-500', type: 'id-card', serial: 'S1' },
        { id: 'GZ-YX-500-02', station: 'GZ-YX-999', type: 'id-card', serial: 'S2' },
      ],
    });
    const refused = await refusal(importFleet(t.engine, store, bad, 'cli'));
    expect(refused).toEqual({ status: 400, code: 'invalid-import', message: 'import rejected at row 3: station "GZ-YX-999" does not exist' });
    expect(await store.node('GZ-YX-500')).toBeUndefined();
    expect(await store.terminal('GZ-YX-500-01')).toBeUndefined();
    const empty = await refusal(importFleet(t.engine, store, { nodes: [], terminals: [] }, 'cli'));
    expect(empty.code).toBe('invalid-import');

    const strip = (r: ImportResult) => ({ ...r, terminals: { ...r.terminals, created: r.terminals.created.map((x) => x.id) } });
    seen.import = strip(first);
    seen.importAgain = strip(again);
    seen.importRefused = refused;
    seen.importedNodes = (await store.nodes()).map((n) => ({ ...n, createdAt: 0 }));
    seen.importedTerminals = (await store.terminals(first.terminals.created.map((x) => x.id))).map(timeless);
  }, 60_000);
});

describe('both engines', () => {
  // Where PostgreSQL is installed (CI has it): what the API serves from the store is the same on either engine.
  it.runIf(TEST_ENGINES.length === 2)('answered the same', () => {
    expect(Object.keys(answers.postgres ?? {})).toHaveLength(11);
    expect(answers.postgres).toEqual(answers.sqlite);
  });
});
