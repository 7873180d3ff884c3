import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { openDatabase } from '../store/db.ts';
import { EpochKeys } from './telemetry-keys.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-epoch-keys-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a key made in a rolled-back transaction is not handed out again for another terminal', () => {
  const { db } = openDatabase(tmp);
  try {
    const keys = new EpochKeys(db);
    const row = db.prepare('SELECT terminal_id AS t, epoch AS e FROM telemetry_epochs WHERE id = ?');
    const txA = {};
    let lost = 0;
    expect(() =>
      db.transaction(() => {
        lost = keys.key('T-1', 'epochA', txA);
        expect(keys.key('T-1', 'epochA', txA)).toBe(lost); // the same transaction may use it
        throw new Error('disk full');
      })(),
    ).toThrow('disk full');
    // Its number is free again: another terminal's epoch takes it.
    const txB = {};
    const other = db.transaction(() => keys.key('T-2', 'epochB', txB))();
    expect(other).toBe(lost);
    // The first terminal gets a key of its own, not the rolled-back one.
    const txC = {};
    const again = db.transaction(() => keys.key('T-1', 'epochA', txC))();
    expect(again).not.toBe(lost);
    expect(row.get(again)).toEqual({ t: 'T-1', e: 'epochA' });
    expect(row.get(other)).toEqual({ t: 'T-2', e: 'epochB' });
    // Committed keys are trusted from then on.
    expect(db.transaction(() => keys.key('T-1', 'epochA', {}))()).toBe(again);
  } finally {
    db.close();
  }
});
