/**
 * Which engine the hub and scenario suites run their hubs on: `KF_TEST_ENGINE=postgres` (`pnpm test:postgres`, CI's
 * second run) gives every test hub a fresh database on the run's throwaway server (global-setup.ts); unset, hubs use
 * SQLite in their data dir as always. A hub restarted on the same data dir gets the same database back, as a real
 * installation would (same KF_DATABASE_URL).
 */
import { createTestDatabase } from './test-server.ts';

// What global-setup.ts provides, declared here too for the packages that only import this file (tests/).
declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string | null;
  }
}

export type TestEngineKind = 'sqlite' | 'postgres';

export function testEngineKind(): TestEngineKind {
  const e = process.env.KF_TEST_ENGINE ?? 'sqlite';
  if (e !== 'sqlite' && e !== 'postgres') throw new Error(`KF_TEST_ENGINE=${e}: expected sqlite or postgres`);
  return e;
}

const byDataDir = new Map<string, Promise<{ url: string; drop(): Promise<void> }>>();

/**
 * The KF_DATABASE_URL of the test hub whose data dir is `dataDir`: undefined on SQLite; on PostgreSQL a database
 * made for that data dir on first use. `serverUrl` is `inject('pgUrl')`.
 */
export async function testDatabaseUrl(dataDir: string, serverUrl: string | null | undefined): Promise<string | undefined> {
  if (testEngineKind() === 'sqlite') return undefined;
  if (!serverUrl) throw new Error('KF_TEST_ENGINE=postgres but no PostgreSQL test server (is postgresql installed?)');
  let db = byDataDir.get(dataDir);
  if (!db) {
    db = createTestDatabase(serverUrl, 'kf_hub');
    byDataDir.set(dataDir, db);
  }
  return (await db).url;
}

/** Drops the database made for `dataDir` (when its data dir goes away too). */
export async function dropTestDatabase(dataDir: string): Promise<void> {
  const db = byDataDir.get(dataDir);
  if (!db) return;
  byDataDir.delete(dataDir);
  await (await db).drop();
}
