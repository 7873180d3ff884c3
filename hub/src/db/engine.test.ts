import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transaction, type Tx } from './engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from './test-engines.ts';

/** What a cross-domain write relies on: all of it commits, or none of it. */
describe.each(TEST_ENGINES)('transaction on %s', (kind) => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await openTestEngine(kind);
  });
  afterEach(async () => {
    await t.close();
  });

  async function put(tx: Tx, key: string): Promise<void> {
    if (tx.kind === 'sqlite') tx.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(key, 'v');
    else await tx.sql`insert into meta (key, value) values (${key}, 'v')`;
  }
  async function keys(): Promise<string[]> {
    const e = t.engine;
    const rows = e.kind === 'sqlite'
      ? (e.db.prepare("SELECT key FROM meta WHERE key LIKE 'uow-%' ORDER BY key").all() as { key: string }[])
      : await e.pg.sql<{ key: string }[]>`select key from meta where key like 'uow-%' order by key`;
    return rows.map((r) => r.key);
  }

  it('commits every write of the function', async () => {
    await transaction(t.engine, async (tx) => {
      await put(tx, 'uow-a');
      await put(tx, 'uow-b');
    });
    expect(await keys()).toEqual(['uow-a', 'uow-b']);
  });

  it('keeps none of them when the function throws, and says why', async () => {
    const err = await transaction(t.engine, async (tx) => {
      await put(tx, 'uow-a');
      throw new Error('refused halfway');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('refused halfway');
    expect(await keys()).toEqual([]);
  });

  it('runs concurrent transactions one after the other on SQLite, side by side on PostgreSQL, losing none', async () => {
    await Promise.all(['uow-1', 'uow-2', 'uow-3'].map((k) => transaction(t.engine, async (tx) => put(tx, k))));
    expect(await keys()).toEqual(['uow-1', 'uow-2', 'uow-3']);
  });
});
