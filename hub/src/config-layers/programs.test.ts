/**
 * Config may name a probe, never carry a program (issue 20, item 1): the hub refuses such a layer at save and in a
 * dry run (400 with the path), for a district admin as for anyone; what earlier hubs saved is cleaned at start.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { operator, type Operator } from '../auth/testing.ts';
import { openEngine } from '../db/open-engine.ts';
import { testDatabaseUrl } from '../db/postgres/test-database.ts';
import { execute, queryRows } from '../db/test-query.ts';
import { parseDatabaseUrl } from '../db/url.ts';
import { startTestHub, topicFor, until, type TestHub } from '../test-support.ts';
import { PROGRAMS_DROPPED_REASON } from './programs.ts';

interface ErrorBody {
  error: { code: string; message: string; details: { issues: { path: string[]; message: string }[] } };
}

const ID = 'GZ-YX-001-12';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-cfg-programs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('saving config with a program in it', () => {
  let hub: TestHub;
  let yxAdmin: Operator;
  let terminal: MqttClient;
  const got: { version: number; config: Record<string, unknown> }[] = [];

  beforeAll(async () => {
    hub = await startTestHub();
    const t = await hub.terminal(ID, { station: 'GZ-YX-001' });
    yxAdmin = await operator(hub, 'yx-admin', 'district-admin', 'GZ-YX');
    terminal = await hub.connect(t.id, t.secret);
    terminal.on('message', (_topic, p) => got.push(JSON.parse(p.toString()) as (typeof got)[number]));
    await terminal.subscribeAsync(topicFor(ID, 'config/desired'), { qos: 1 });
  });
  afterAll(async () => {
    await hub?.stop();
  });

  test('the PUT of the finding is 400 with the path of the argv; nothing is saved or pushed', async () => {
    const res = await yxAdmin.api(`/api/v1/config/terminals/${ID}`, {
      method: 'PUT',
      json: { config: { peripherals: { a4Printer: { driver: 'command', command: ['/bin/sh', '-c', 'id > /tmp/x'] } } }, expectedVersion: 0 },
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe('invalid-config');
    expect(body.error.details.issues).toEqual([{ path: ['config', 'peripherals', 'a4Printer', 'command'], message: expect.stringContaining('never carry a program') }]);
    expect(((await (await yxAdmin.api(`/api/v1/config/terminals/${ID}`)).json()) as { version: number }).version).toBe(0);

    const dry = await yxAdmin.api('/api/v1/config/nodes/GZ-YX/dry-run', {
      method: 'POST',
      json: { config: { peripherals: { a4Printer: { driver: 'command', command: ['/bin/sh', '-c', 'id > /tmp/x'] } } } },
    });
    expect(dry.status).toBe(400);
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual([]);
  });

  test('argv under any other key, or a path as a probe name, is refused the same way', async () => {
    const refused = async (peripheral: Record<string, unknown>): Promise<string[][]> => {
      const res = await yxAdmin.api('/api/v1/config/nodes/GZ-YX', { method: 'PUT', json: { config: { peripherals: { a4Printer: peripheral } }, expectedVersion: 0 } });
      expect(res.status).toBe(400);
      return ((await res.json()) as ErrorBody).error.details.issues.map((i) => i.path);
    };
    expect(await refused({ driver: 'command', probe: 'a4-printer', args: ['/bin/sh', '-c', 'id'] })).toEqual([['config', 'peripherals', 'a4Printer', 'args']]);
    expect(await refused({ driver: 'command', probe: '/bin/sh' })).toEqual([['config', 'peripherals', 'a4Printer', 'probe']]);
    expect(await refused({ driver: 'shell', probe: 'a4-printer' })).toEqual([['config', 'peripherals', 'a4Printer', 'driver']]);
  });

  test('naming a probe is saved and pushed as it is', async () => {
    const res = await yxAdmin.api(`/api/v1/config/terminals/${ID}`, {
      method: 'PUT',
      json: { config: { peripherals: { a4Printer: { driver: 'command', probe: 'a4-printer', timeoutMs: 5000 } } }, expectedVersion: 0 },
    });
    expect(res.status).toBe(200);
    await until(() => got.length > 0);
    expect(got.at(-1)).toMatchObject({ version: 1, config: { peripherals: { a4Printer: { driver: 'command', probe: 'a4-printer', timeoutMs: 5000 } } } });
  });
});

test('layers and desired configs saved with programs by an earlier hub lose them at the next start, with a new version each', async () => {
  const dataDir = path.join(tmp, 'upgrade');
  let hub = await startTestHub({}, dataDir);
  const t = await hub.terminal(ID, { station: 'GZ-YX-001' });
  const put = (p: string, config: unknown) => hub.api(p, { method: 'PUT', json: { config, expectedVersion: 0 } });
  expect((await put('/api/v1/config/nodes/GZ-YX', { telemetryInterval: 45, peripherals: { a4Printer: { driver: 'command', timeoutMs: 4000 } } })).status).toBe(200);
  expect((await put(`/api/v1/config/terminals/${ID}`, { logLevel: 'debug' })).status).toBe(200);
  await hub.stop();

  // what a hub before the fix let a district admin save: argv in the district layer and in the pushed config
  const marker = path.join(tmp, 'pwned');
  const argv = ['/bin/sh', '-c', `touch ${marker}`];
  const { engine, close } = await openEngine(parseDatabaseUrl(await testDatabaseUrl(dataDir, inject('pgUrl'))), dataDir);
  const layerWithArgv = JSON.stringify({ telemetryInterval: 45, peripherals: { a4Printer: { driver: 'command', command: argv, timeoutMs: 4000 } } });
  await execute(engine, "UPDATE config_layers SET config = ? WHERE scope = 'node' AND target_id = 'GZ-YX'", layerWithArgv);
  await execute(engine, "UPDATE config_layer_history SET config = ? WHERE scope = 'node' AND target_id = 'GZ-YX' AND version = 1", layerWithArgv);
  const [desired] = (await queryRows(engine, 'SELECT version, config FROM desired_config WHERE terminal_id = ?', ID)) as { version: number; config: string }[];
  const withArgv = JSON.parse(desired!.config) as { peripherals: { a4Printer: Record<string, unknown> } };
  withArgv.peripherals.a4Printer.command = argv;
  await execute(engine, 'UPDATE desired_config SET config = ? WHERE terminal_id = ?', JSON.stringify(withArgv), ID);
  await close();

  hub = await startTestHub({}, dataDir);
  try {
    const layer = (await (await hub.api('/api/v1/config/nodes/GZ-YX')).json()) as { version: number; config: unknown; updatedBy: string; reason: string };
    expect(layer).toMatchObject({
      version: 2,
      config: { telemetryInterval: 45, peripherals: { a4Printer: { driver: 'command', timeoutMs: 4000 } } },
      updatedBy: 'migration',
      reason: PROGRAMS_DROPPED_REASON,
    });
    expect(JSON.stringify(layer.config)).not.toContain('/bin/sh');
    const history = (await (await hub.api('/api/v1/config/nodes/GZ-YX/history')).json()) as { items: { version: number; by: string; changes: { path: string[]; op: string }[] }[] };
    expect(history.items[0]).toMatchObject({ version: 2, by: 'migration', changes: [{ path: ['peripherals', 'a4Printer', 'command'], op: 'remove' }] });
    // the terminal layer was clean: left alone
    expect(((await (await hub.api(`/api/v1/config/terminals/${ID}`)).json()) as { version: number }).version).toBe(1);

    // the terminal gets a newer desired version without the argv, retained, the moment it subscribes
    const c = await hub.connect(t.id, t.secret);
    const got: { version: number; config: unknown }[] = [];
    c.on('message', (_topic, p) => got.push(JSON.parse(p.toString()) as (typeof got)[number]));
    await c.subscribeAsync(topicFor(ID, 'config/desired'), { qos: 1 });
    await until(() => got.length > 0);
    expect(got.at(-1)).toMatchObject({ version: desired!.version + 1, config: { logLevel: 'debug', telemetryInterval: 45, peripherals: { a4Printer: { driver: 'command', timeoutMs: 4000 } } } });
    expect(JSON.stringify(got)).not.toContain('/bin/sh');

    // and a second start finds nothing left to do
    await hub.stop();
    hub = await startTestHub({}, dataDir);
    expect(((await (await hub.api('/api/v1/config/nodes/GZ-YX')).json()) as { version: number }).version).toBe(2);
  } finally {
    await hub.stop();
  }
});
