/**
 * Store tests on both engines: `describe.each(TEST_ENGINES)('%s', (kind) => …)` with `openTestEngine(kind)` in a
 * `beforeEach`/`beforeAll`. SQLite is a fresh file in a temp dir; PostgreSQL a fresh database on the run's throwaway
 * server (global-setup.ts), migrated. Without PostgreSQL installed (outside CI) the postgres half is skipped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { openDatabase } from '../store/db.ts';
import type { Engine, EngineKind } from './engine.ts';
import { parseDatabaseUrl } from './url.ts';
import { openPostgres } from './postgres/open.ts';
import { createTestDatabase } from './postgres/test-server.ts';

export interface TestEngine {
  engine: Engine;
  /** SQLite: the data dir; PostgreSQL: a scratch dir (for what stays on disk). */
  dir: string;
  close(): Promise<void>;
}

/** The engines a store test runs on here: both, or only SQLite where PostgreSQL is not installed. */
export const TEST_ENGINES: EngineKind[] = inject('pgUrl') ? ['sqlite', 'postgres'] : ['sqlite'];

export async function openTestEngine(kind: EngineKind): Promise<TestEngine> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-engine-'));
  if (kind === 'sqlite') {
    const { db } = openDatabase(dir);
    return {
      engine: { kind, db },
      dir,
      async close() {
        db.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const server = inject('pgUrl');
  if (!server) throw new Error('PostgreSQL is not installed here (scripts/setup.sh --test installs it)');
  const database = await createTestDatabase(server);
  const target = parseDatabaseUrl(database.url);
  if (target.engine !== 'postgres') throw new Error('createTestDatabase returned a non-postgres URL');
  const pg = await openPostgres(target);
  return {
    engine: { kind, pg },
    dir,
    async close() {
      await pg.close();
      await database.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
