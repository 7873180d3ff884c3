import { isUnderNode } from '@kiosk-fleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { insertRows } from '../queries/test-fleet.ts';
import { scopedWhere } from './where.ts';

const IDS = ['GZ', 'GZ-YX', 'GZ-YX-001', 'GZ-YXA', 'GZX', 'gz', 'gz-YX', 'GZ_', 'GZ%', 'GZ.', 'G', 'SZ-GZ'];

/** The scoped lists (users, maintenance, silences) on both engines: exactly the rows isUnderNode puts in the scope. */
describe.each(TEST_ENGINES)('scopedWhere on %s', (kind) => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await openTestEngine(kind);
    await insertRows(t.engine, 'nodes', IDS.map((id) => ({ id, level: 'station', parent_id: null, name_zh: id, name_en: id, kind: null, created_at: 0 })));
  });
  afterAll(async () => {
    await t.close();
  });

  async function ids(scope: string | null, after?: string): Promise<string[]> {
    const w = scopedWhere('id', scope, after === undefined ? undefined : { sql: 'created_at >= ?', arg: 0 }, kind);
    const e = t.engine;
    const rows =
      e.kind === 'sqlite'
        ? (e.db.prepare(`SELECT id FROM nodes ${w.sql}`).all(...w.args) as { id: string }[])
        : await e.pg.sql.unsafe<{ id: string }[]>(`SELECT id FROM nodes ${w.sql}`, w.args as never[]);
    return rows.map((r) => r.id).sort();
  }

  it.each(['GZ', 'GZ-YX', 'gz', 'GZ_', 'GZ%', 'G'])('scope %s: the node and those under it, case-sensitive, wildcards literal', async (scope) => {
    const want = IDS.filter((id) => isUnderNode(id, scope)).sort();
    expect(await ids(scope)).toEqual(want);
    expect(await ids(scope, 'x')).toEqual(want);
  });

  it('no scope: every row, with or without the extra condition', async () => {
    expect(await ids(null)).toEqual([...IDS].sort());
    expect(await ids(null, 'x')).toEqual([...IDS].sort());
  });
});
