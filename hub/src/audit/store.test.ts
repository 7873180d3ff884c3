/**
 * The audit log's contract on both engines: appends form one hash chain that verifies, with the same ids and hashes
 * on SQLite and PostgreSQL (a chain copied by migrate-store must verify there); concurrent appends, also from a
 * second connection pool standing in for a second hub, stay one valid chain; an append inside a rolled-back
 * transaction leaves nothing; listing filters and scopes alike; the database refuses UPDATE and DELETE.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transaction, type Engine } from '../db/engine.ts';
import { openPostgres } from '../db/postgres/open.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createAuditLog, GENESIS, rowHash, type AuditEntry, type AuditLog } from './log.ts';

const T0 = 1_760_000_000_000;

const entry = (i: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  actor: `user${i}`,
  actorKind: 'session',
  userId: `u_${i}`,
  action: 'terminal.move',
  objectType: 'terminal',
  objectId: `GZ-YX-001-0${i}`,
  nodeId: 'GZ-YX-001',
  before: { station: 'GZ-YX-002' },
  after: { station: 'GZ-YX-001', note: '搬到一楼' },
  ip: '10.0.0.1',
  at: T0 + i,
  ...over,
});

/** Record 1 of `entry(1)` as every engine must store it: its hash depends on nothing but these values. */
const FIRST = {
  id: 1,
  at: T0 + 1,
  actor: 'user1',
  actorKind: 'session',
  userId: 'u_1',
  action: 'terminal.move',
  objectType: 'terminal',
  objectId: 'GZ-YX-001-01',
  nodeId: 'GZ-YX-001',
  before: '{"station":"GZ-YX-002"}',
  after: '{"station":"GZ-YX-001","note":"搬到一楼"}',
  ip: '10.0.0.1',
  outcome: 'ok',
  prevHash: GENESIS,
};

describe.each(TEST_ENGINES)('audit log on %s', (kind) => {
  let t: TestEngine;
  let log: AuditLog;
  beforeEach(async () => {
    t = await openTestEngine(kind);
    log = createAuditLog(t.engine);
  });
  afterEach(async () => {
    await t.close();
  });

  async function expectOneChain(n: number): Promise<void> {
    const rows = (await log.list({ scope: null, limit: n + 10 })).reverse();
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(rows[0]!.prevHash).toBe(GENESIS);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
    expect(await log.verify()).toEqual({ ok: true, checked: n, head: rows[n - 1]!.hash });
  }

  it('appends a chain that verifies, with the ids and hashes of every engine', async () => {
    const first = await log.append(entry(1));
    expect(first).toEqual({ ...FIRST, hash: rowHash(FIRST) });
    for (let i = 2; i <= 5; i++) await log.append(entry(i));
    await expectOneChain(5);
    // Rows read back exactly as append returned them (numbers as numbers, JSON text as text).
    const [row1] = await log.list({ scope: null, before: 2, limit: 1 });
    expect(row1).toEqual(first);
  });

  it('keeps one chain when 24 appends come at once, in transactions and without', async () => {
    await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        i % 2 ? log.append(entry(i)) : transaction(t.engine, async (tx) => log.append(entry(i), tx)),
      ),
    );
    await expectOneChain(24);
  });

  it('keeps one chain when two hubs (two connection pools) append at once', async () => {
    if (t.engine.kind !== 'postgres') return; // SQLite: one file, one process holds it (db/lock.ts)
    const other = await openPostgres(t.engine.pg.target, { migrate: false });
    try {
      const second = createAuditLog({ kind: 'postgres', pg: other } satisfies Engine);
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? log : second).append(entry(i))));
      await expectOneChain(20);
    } finally {
      await other.close();
    }
  });

  it('an append in a transaction that rolls back leaves no record, and the next one takes its id', async () => {
    await log.append(entry(1));
    const err = await transaction(t.engine, async (tx) => {
      await log.append(entry(2), tx);
      throw new Error('the change failed');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('the change failed');
    expect(await log.list({ scope: null, limit: 10 })).toHaveLength(1);
    expect((await log.append(entry(3))).id).toBe(2);
    await expectOneChain(2);
  });

  it('lists newest first, filtered, scoped by node with LIKE wildcards escaped, paged by id', async () => {
    await log.append(entry(1, { nodeId: 'GZ-YX-001' }));
    await log.append(entry(2, { nodeId: 'GZ-TH-001', action: 'user.create', objectType: 'user', objectId: 'u_2' }));
    await log.append(entry(3, { nodeId: null, actor: 'admin-token' }));
    await log.append(entry(4, { nodeId: 'GZ-YX' }));
    const ids = async (f: Parameters<AuditLog['list']>[0]) => (await log.list(f)).map((r) => r.id);
    expect(await ids({ scope: 'GZ-YX', limit: 10 })).toEqual([4, 1]);
    expect(await ids({ scope: 'GZ-%', limit: 10 })).toEqual([]);
    expect(await ids({ scope: null, limit: 10 })).toEqual([4, 3, 2, 1]);
    expect(await ids({ scope: null, action: 'user.create', limit: 10 })).toEqual([2]);
    expect(await ids({ scope: null, objectType: 'user', objectId: 'u_2', limit: 10 })).toEqual([2]);
    expect(await ids({ scope: null, actor: 'admin-token', limit: 10 })).toEqual([3]);
    expect(await ids({ scope: null, before: 4, limit: 2 })).toEqual([3, 2]);
  });

  // 1,005 appends are 3,015 round trips on PostgreSQL: seconds on a loaded machine.
  it('walks a chain longer than one page of the verifier', { timeout: 60_000 }, async () => {
    await transaction(t.engine, async (tx) => {
      for (let i = 1; i <= 1005; i++) await log.append(entry(i), tx);
    });
    expect(await log.verify()).toMatchObject({ ok: true, checked: 1005 });
  });

  it('the database refuses UPDATE and DELETE of a record', async () => {
    await log.append(entry(1));
    const e = t.engine;
    const attempt = async (statement: string) => {
      if (e.kind === 'sqlite') e.db.prepare(statement).run();
      else await e.pg.sql.unsafe(statement);
    };
    await expect(attempt("UPDATE audit_log SET actor = 'x' WHERE id = 1")).rejects.toThrow(/append-only/);
    await expect(attempt('DELETE FROM audit_log WHERE id = 1')).rejects.toThrow(/append-only/);
  });
});
