import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isUnderNode } from '@kiosk-fleet/protocol';
import { openDatabase, type Db } from '../store/db.ts';
import { createFleetStore } from '../fleet/index.ts';
import { SqliteQueryStore } from './store.sqlite.ts';

describe('terminal list: the node filter', () => {
  let dir: string;
  let db: Db;
  let q: SqliteQueryStore;
  // Siblings that share a prefix (GZ-YX / GZ-YXA), and a city whose id differs from GZ only in case.
  const stations = ['GZ-YX-001', 'GZ-YX-002', 'GZ-YXA-001', 'GZ-TH-001', 'gz-YX-001'];
  const all: { id: string; station: string }[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-queries-'));
    db = openDatabase(dir).db;
    const reg = createFleetStore({ kind: 'sqlite', db });
    for (const st of stations) {
      const parts = st.split('-');
      for (let i = 1; i <= parts.length; i++) {
        const id = parts.slice(0, i).join('-');
        if (!(await reg.node(id))) await reg.createNode({ id, name: { zh: id, en: id } });
      }
      for (let n = 1; n <= 3; n++) {
        const id = `${st}-${n}`;
        await reg.insertTerminal({ id, station: st, type: 'id-card', serial: `SN-${id}` }, 'test');
        all.push({ id, station: st });
      }
    }
    db.prepare("UPDATE terminal_state SET presence = 'online' WHERE terminal_id LIKE '%-1'").run();
    q = new SqliteQueryStore(db);
  });

  afterAll(() => {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const expected = (node: string, scope?: string) =>
    all
      .filter((t) => isUnderNode(t.station, node) && (scope === undefined || isUnderNode(t.station, scope)))
      .map((t) => t.id)
      .sort();

  test.each([
    ['GZ', undefined],
    ['GZ-YX', undefined],
    ['GZ-YXA', undefined],
    ['GZ-YX-001', undefined],
    ['gz', undefined],
    ['GZ-YX-001', 'GZ-YX'],
    ['GZ', 'GZ-YX'],
    ['GZ-TH', 'GZ-YX'],
  ])('node %s, scope %s: exactly the terminals isUnderNode puts there (case-sensitive, prefix siblings apart)', async (node, scope) => {
    expect((await q.terminals({ node, scope, limit: 100 })).map((t) => t.id)).toEqual(expected(node, scope));
  });

  test('pages of a district in id order with the presence filter', async () => {
    const online = expected('GZ-YX').filter((id) => id.endsWith('-1'));
    const first = await q.terminals({ node: 'GZ-YX', presence: 'online', limit: 1 });
    const rest = await q.terminals({ node: 'GZ-YX', presence: 'online', after: first[0]!.id, limit: 10 });
    expect([...first, ...rest].map((t) => t.id)).toEqual(online);
  });
});
