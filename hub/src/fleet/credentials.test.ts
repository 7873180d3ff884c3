import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { transaction } from '../db/engine.ts';
import { dbPath, openDatabase, type Db } from '../store/db.ts';
import { applyImport } from './import.ts';
import { createFleetStore } from './index.ts';

let dir: string;
let db: Db;
const store = (d: Db = db) => createFleetStore({ kind: 'sqlite', db: d });

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-registry-'));
  db = openDatabase(dir).db;
  const r = store();
  await r.createNode({ id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } });
  await r.createNode({ id: 'GZ-TH', name: { zh: '天河', en: 'Tianhe' } });
  await r.createNode({ id: 'GZ-TH-001', name: { zh: '一', en: 'One' } });
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const T = { id: 'GZ-TH-001-01', type: 'id-card', serial: 'S1', station: 'GZ-TH-001' };

describe('credential cache on SQLite', () => {
  test('loaded at start: credentials registered before it verify; wrong secrets and unknown ids do not', async () => {
    const { secret } = await store().register(T, 'test');
    const r = store();
    await r.load();
    expect(await r.verify(T.id, secret)).toBe(true);
    expect(await r.verify(T.id, `${secret}x`)).toBe(false);
    expect(await r.verify(T.id, '')).toBe(false);
    expect(await r.verify('GZ-TH-001-99', secret)).toBe(false);
  });

  test('rotate takes effect at once: the old secret is refused, the new one verifies', async () => {
    const r = store();
    const { secret } = await r.register(T, 'test');
    expect(await r.verify(T.id, secret)).toBe(true);
    const next = await r.rotateSecret(T.id);
    expect(await r.verify(T.id, secret)).toBe(false);
    expect(await r.verify(T.id, next)).toBe(true);
    // ...and a fresh start agrees.
    expect(await store().verify(T.id, next)).toBe(true);
  });

  test('decommission takes effect at once, also across a start', async () => {
    const r = store();
    const { secret } = await r.register(T, 'test');
    expect(await r.verify(T.id, secret)).toBe(true);
    await r.decommission(T.id, 'test', null);
    expect(await r.verify(T.id, secret)).toBe(false);
    expect(await store().verify(T.id, secret)).toBe(false);
  });

  test('a rolled-back transaction leaves nothing cached: the secret of an import that failed does not verify', async () => {
    const r = store();
    await r.load();
    let secret = '';
    const err = await transaction({ kind: 'sqlite', db }, async (tx) => {
      const out = await applyImport(r, { nodes: [], terminals: [{ row: 1, value: T }] }, 'test', tx);
      secret = out.terminals.created[0]!.secret;
      // Inside the transaction the one connection sees the row: it verifies, but is not cached.
      expect(await r.verify(T.id, secret)).toBe(true);
      throw new Error('roll back');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('roll back');
    expect(secret).not.toBe('');
    expect(await r.verify(T.id, secret)).toBe(false);
  });

  test('a terminal added by another connection (kiosk-fleet import while the hub runs) verifies', async () => {
    const r = store();
    expect(await r.verify(T.id, 'x')).toBe(false);
    const other = new Database(dbPath(dir));
    const secret = (await store(other).register(T, 'cli')).secret;
    other.close();
    expect(await r.verify(T.id, secret)).toBe(true);
  });
});
