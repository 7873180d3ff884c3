/**
 * Upgrading a hub that kept per-terminal desired configs before layers existed: the migration makes each one that
 * terminal's own layer, and its reports the sync state, so the first start pushes nothing and shows no drift.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { openDatabase } from '../store/db.ts';
import { createFleetStore } from '../fleet/index.ts';
import { migrationsBefore, startTestHub } from '../test-support.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-cfg-migrate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));


test('desired configs saved before layers become terminal layers; the first start pushes nothing and shows no drift', async () => {
  const dataDir = path.join(tmp, 'data');
  const old = openDatabase(dataDir, migrationsBefore(tmp, '0004_config_layers')).db;
  const registry = createFleetStore({ kind: 'sqlite', db: old });
  for (const id of ['GZ', 'GZ-A', 'GZ-A-001']) await registry.createNode({ id, name: { zh: id, en: id } });
  await registry.insertTerminal({ id: 'GZ-A-001-01', type: 'id-card', serial: 'SN1', station: 'GZ-A-001' }, 'test');
  const t0 = Date.now() - 86_400_000;
  old.prepare('INSERT INTO desired_config (terminal_id, version, config, updated_at) VALUES (?, ?, ?, ?)').run('GZ-A-001-01', 3, '{"telemetryInterval":45}', t0);
  const report = old.prepare('INSERT INTO config_reports (terminal_id, epoch, seq, ts, received_at, version, status, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  report.run('GZ-A-001-01', 'epochAAAA1', 1, t0, t0, 2, 'applied', null);
  report.run('GZ-A-001-01', 'epochAAAA1', 2, t0, t0 + 1000, 3, 'applied', null);
  old.close();

  // A migration of the SQLite schema: the hub must open that same SQLite file, on either run's engine.
  const hub = await startTestHub({}, dataDir, { engine: 'sqlite' });
  try {
    const view = (await (await hub.api('/api/v1/config/terminals/GZ-A-001-01')).json()) as {
      version: number;
      config: unknown;
      updatedBy: string;
      desired: { version: number };
      sync: { status: string; appliedVersion: number; drift: unknown };
    };
    expect(view).toMatchObject({ version: 1, config: { telemetryInterval: 45 }, updatedBy: 'migration', desired: { version: 3 } });
    expect(view.sync).toMatchObject({ status: 'in-sync', appliedVersion: 3, drift: null });
    expect(await hub.configLayers.reconcile()).toEqual([]);
    const history = (await (await hub.api('/api/v1/config/terminals/GZ-A-001-01/history')).json()) as { items: { version: number }[] };
    expect(history.items.map((i) => i.version)).toEqual([1]);
  } finally {
    await hub.stop();
  }
});
