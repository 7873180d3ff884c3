/**
 * The database of a hub or a CLI command, whichever engine KF_DATABASE_URL names: SQLite in the data dir (opened,
 * migrated and checked, store/db.ts) or PostgreSQL (reached, version-checked, migrated under the migration lock,
 * postgres/open.ts). `close()` ends it either way.
 */
import { openDatabase } from '../store/db.ts';
import type { Engine } from './engine.ts';
import { openPostgres } from './postgres/open.ts';
import type { DatabaseTarget } from './url.ts';

export interface OpenEngine {
  engine: Engine;
  close(): Promise<void>;
}

export async function openEngine(target: DatabaseTarget, dataDir: string, opts: { pgPool?: number } = {}): Promise<OpenEngine> {
  if (target.engine === 'postgres') {
    // the ingest writer keeps up to PG_PARALLEL (3) batches in flight; the rest serve the API and the jobs
    const pg = await openPostgres(target, { max: opts.pgPool ?? 6 });
    return { engine: { kind: 'postgres', pg }, close: () => pg.close() };
  }
  const { db } = openDatabase(dataDir);
  return {
    engine: { kind: 'sqlite', db },
    close: async () => {
      db.close();
    },
  };
}
