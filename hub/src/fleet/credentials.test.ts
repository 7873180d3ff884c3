import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { applyImport } from '../services/import.ts';
import { dbPath, openDatabase, type Db } from './db.ts';
import { RegistryStore } from './registry.ts';

let dir: string;
let db: Db;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-registry-'));
  db = openDatabase(dir).db;
  const r = new RegistryStore(db);
  r.createNode({ id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } });
  r.createNode({ id: 'GZ-TH', name: { zh: '天河', en: 'Tianhe' } });
  r.createNode({ id: 'GZ-TH-001', name: { zh: '一', en: 'One' } });
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const T = { id: 'GZ-TH-001-01', type: 'id-card', serial: 'S1', station: 'GZ-TH-001' };

describe('credential cache', () => {
  test('loaded at start: credentials registered before it verify; wrong secrets and unknown ids do not', () => {
    const { secret } = new RegistryStore(db).register(T, 'test');
    const r = new RegistryStore(db);
    expect(r.verify(T.id, secret)).toBe(true);
    expect(r.verify(T.id, `${secret}x`)).toBe(false);
    expect(r.verify(T.id, '')).toBe(false);
    expect(r.verify('GZ-TH-001-99', secret)).toBe(false);
  });

  test('rotate takes effect at once: the old secret is refused, the new one verifies', () => {
    const r = new RegistryStore(db);
    const { secret } = r.register(T, 'test');
    expect(r.verify(T.id, secret)).toBe(true);
    const next = r.rotateSecret(T.id);
    expect(r.verify(T.id, secret)).toBe(false);
    expect(r.verify(T.id, next)).toBe(true);
    // ...and a fresh start agrees.
    expect(new RegistryStore(db).verify(T.id, next)).toBe(true);
  });

  test('decommission takes effect at once, also across a start', () => {
    const r = new RegistryStore(db);
    const { secret } = r.register(T, 'test');
    expect(r.verify(T.id, secret)).toBe(true);
    r.decommission(T.id, 'test', null);
    expect(r.verify(T.id, secret)).toBe(false);
    expect(new RegistryStore(db).verify(T.id, secret)).toBe(false);
  });

  test('a rolled-back transaction leaves nothing cached: the secret of an import that failed does not verify', () => {
    const r = new RegistryStore(db);
    let secret = '';
    expect(() =>
      db.transaction(() => {
        const out = applyImport(db, r, { nodes: [], terminals: [{ row: 1, value: T }] }, 'test');
        secret = out.terminals.created[0]!.secret;
        expect(r.verify(T.id, secret)).toBe(true);
        throw new Error('roll back');
      })(),
    ).toThrow('roll back');
    expect(secret).not.toBe('');
    expect(r.verify(T.id, secret)).toBe(false);
  });

  test('a terminal added by another connection (kiosk-fleet import while the hub runs) verifies', () => {
    const r = new RegistryStore(db);
    expect(r.verify(T.id, 'x')).toBe(false);
    const other = new Database(dbPath(dir));
    const secret = new RegistryStore(other).register(T, 'cli').secret;
    other.close();
    expect(r.verify(T.id, secret)).toBe(true);
  });
});
