/**
 * `kiosk-fleet demo-seed` as `pnpm start` runs it: a separate process on the hub's data dir. It must refuse while a
 * hub serves that dir (the hub.lock), and once the hub is stopped, seed it so that the hub, started again as the
 * demo starts it (KF_DEMO=1), shows the month.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, inject, test } from 'vitest';
import { testDatabaseUrl } from '../../../hub/src/db/postgres/test-database.ts';
import { HUB_BIN, REPO_ROOT, spawnHub, type HubProcess } from '../helpers/hub.ts';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-demo-seed-'));
let hub: HubProcess | undefined;
afterAll(async () => {
  await hub?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function demoSeed() {
  // On PostgreSQL the seed goes where the test hub of this data dir keeps its data (helpers/hub.ts).
  const databaseUrl = await testDatabaseUrl(dataDir, inject('pgUrl'));
  const env = { ...process.env, KF_DATA_DIR: dataDir, ...(databaseUrl ? { KF_DATABASE_URL: databaseUrl } : {}) };
  return spawnSync(process.execPath, [HUB_BIN, 'demo-seed'], { env, encoding: 'utf8', timeout: 180_000 });
}

test('demo-seed refuses while a hub serves the data dir, then seeds it once the hub is stopped', async () => {
  const full = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'fixtures/guangzhou-fleet.json'), 'utf8')) as {
    stations: { id: string }[];
    terminals: { station: string }[];
  };
  const keep = new Set(full.stations.slice(0, 2).map((s) => s.id));
  hub = await spawnHub({ dataDir });
  await hub.importFleet({ ...full, stations: full.stations.filter((s) => keep.has(s.id)), terminals: full.terminals.filter((t) => keep.has(t.station)) });

  const refused = await demoSeed();
  expect(refused.status).toBe(1);
  expect(refused.stderr).toMatch(/a hub \(pid \d+\) is serving .*: stop it first/);

  await hub.kill('SIGTERM');
  const seeded = await demoSeed();
  expect(seeded.status, seeded.stderr).toBe(0);
  expect(JSON.parse(seeded.stdout)).toMatchObject({ releases: ['app-3.2.1', 'app-3.3.0'] });

  // as scripts/demo.mjs starts it: the demo flag, the demo's release key trusted
  hub = await spawnHub({ dataDir, env: { KF_DEMO: '1', KF_RELEASE_KEYS: path.join(dataDir, 'release-keys', 'release-public.pem') } });
  expect(await (await hub.api('/api/v1/health')).json()).toMatchObject({ demo: true });
  const rollouts = (await (await hub.api('/api/v1/rollouts')).json()) as { items: { status: string }[] };
  expect(rollouts.items.map((r) => r.status).sort()).toEqual(['completed', 'running']);

  // a second seed over the month it wrote is refused
  await hub.kill('SIGTERM');
  const again = await demoSeed();
  expect(again.status).toBe(1);
  expect(again.stderr).toMatch(/already has history/);
}, 300_000);
