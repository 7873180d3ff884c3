import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MIGRATIONS_DIR, MigrationError, openDatabase } from './db.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-db-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('database', () => {
  test('opens in WAL mode with every migration applied', () => {
    const { db } = openDatabase(tmp());
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('auto_vacuum', { simple: true })).toBe(2);
    const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
    expect(db.prepare('SELECT count(*) AS n FROM __drizzle_migrations').get()).toEqual({ n: journal.entries.length });
    db.close();
  });

  test('a migration that drizzle skips (stamped older than the last applied) fails the start', () => {
    const data = tmp();
    const migrations = tmp();
    fs.cpSync(MIGRATIONS_DIR, migrations, { recursive: true });
    openDatabase(data, migrations).db.close();
    // A second migration whose timestamp is older than the first: drizzle's migrator would silently skip it.
    const journalFile = path.join(migrations, 'meta', '_journal.json');
    const journal = JSON.parse(fs.readFileSync(journalFile, 'utf8')) as { entries: { idx: number; when: number; tag: string; version: string; breakpoints: boolean }[] };
    const first = journal.entries[0]!;
    journal.entries.push({ idx: journal.entries.length, version: first.version, when: first.when - 1000, tag: '0001_late', breakpoints: true });
    fs.writeFileSync(journalFile, JSON.stringify(journal));
    fs.writeFileSync(path.join(migrations, '0001_late.sql'), 'CREATE TABLE late (id integer);');
    expect(() => openDatabase(data, migrations)).toThrow(MigrationError);
  });
});
