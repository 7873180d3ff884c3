/**
 * startCluster: several real hub processes on ONE PostgreSQL database, as an installation that scales out runs them
 * (issue 19). Each hub has its own data dir, ports and `KF_HUB_ID` (`hub-1`, `hub-2`, …); they share
 * `KF_DATABASE_URL` and the admin token of the first. Only under `KF_TEST_ENGINE=postgres` (`pnpm test:postgres`),
 * whose global setup provides the run's throwaway server: wrap cluster suites in `describeCluster`.
 *
 *   describeCluster('downlinks from any hub', () => {
 *     let c: Cluster;
 *     beforeAll(async () => { c = await startCluster({ hubs: 2 }); }, 120_000);
 *     afterAll(() => c?.stop());
 *     it('…', async () => { await c.hubs[0]!.importFleet(…); await c.hubs[1]!.api('/api/v1/terminals'); });
 *   });
 */
import { describe, inject } from 'vitest';
import { createTestDatabase } from '../../../hub/src/db/postgres/test-server.ts';
import { testEngineKind } from '../../../hub/src/db/postgres/test-database.ts';
import { spawnHub, type HubProcess, type SpawnHubOptions } from './hub.ts';

/** `describe` that runs only in the PostgreSQL run: a cluster needs a shared server database. */
export const describeCluster = describe.skipIf(testEngineKind() !== 'postgres');

export interface Cluster {
  /** The KF_DATABASE_URL every hub of the cluster uses. */
  databaseUrl: string;
  hubs: HubProcess[];
  /** Starts one more hub on the same database (`KF_HUB_ID` hub-<n>), appended to `hubs`. */
  addHub(env?: Record<string, string>): Promise<HubProcess>;
  /** Stops every hub still running and drops the database. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  hubs: number;
  /** Env for every hub (KF_LOG_LEVEL, lease timings, …). */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const server = inject('pgUrl');
  if (!server) throw new Error('startCluster needs the PostgreSQL test server (run under KF_TEST_ENGINE=postgres)');
  const db = await createTestDatabase(server, 'kf_cluster');
  const hubs: HubProcess[] = [];
  let token: string | undefined;
  const addHub = async (env: Record<string, string> = {}): Promise<HubProcess> => {
    const opts: SpawnHubOptions = {
      env: {
        KF_DATABASE_URL: db.url,
        KF_HUB_ID: `hub-${hubs.length + 1}`,
        ...(token ? { KF_ADMIN_TOKEN: token } : {}),
        ...o.env,
        ...env,
      },
      ...(o.readyTimeoutMs ? { readyTimeoutMs: o.readyTimeoutMs } : {}),
    };
    const hub = await spawnHub(opts);
    token ??= hub.token;
    hubs.push(hub);
    return hub;
  };
  try {
    // One after the other: the first applies the migrations, the others find them applied.
    for (let i = 0; i < o.hubs; i++) await addHub();
  } catch (err) {
    await Promise.allSettled(hubs.map((h) => h.stop()));
    await db.drop();
    throw err;
  }
  return {
    databaseUrl: db.url,
    hubs,
    addHub,
    async stop() {
      await Promise.allSettled(hubs.map((h) => h.stop()));
      await db.drop();
    },
  };
}
