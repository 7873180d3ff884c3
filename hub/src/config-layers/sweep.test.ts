/**
 * The config reconcile's backstop against an in-process hub (real broker on an ephemeral port, real database): a
 * terminal moved by another process writing the database, which no event announces, gets its new station's config
 * from the periodic sweep, a slice of terminals at a time.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { testDatabaseUrl } from '../db/postgres/test-database.ts';
import { DB_FILE } from '../store/db.ts';
import { startTestHub, topicFor, until, type TestHub } from '../test-support.ts';

let hub: TestHub;
let client: MqttClient;
const got: { version: number; config: Record<string, unknown> }[] = [];
const MOVED = 'GZ-YX-001-04';

beforeAll(async () => {
  // Two terminals a tick, seven active terminals: the moved one (the fourth in id order) is found only by a sweep
  // that goes on where the previous tick stopped.
  hub = await startTestHub({ configSweep: { everyMs: 100, terminals: 2 } });
  let moved = { id: '', secret: '' };
  for (let i = 1; i <= 6; i++) {
    const t = await hub.terminal(`GZ-YX-001-0${i}`, { station: 'GZ-YX-001' });
    if (t.id === MOVED) moved = t;
  }
  await hub.terminal('GZ-TH-001-01', { station: 'GZ-TH-001' });
  const res = await hub.api('/api/v1/config/nodes/GZ-TH', { method: 'PUT', json: { config: { telemetryInterval: 90 }, expectedVersion: 0 } });
  expect(res.status).toBe(200);
  client = await hub.connect(MOVED, moved.secret);
  client.on('message', (_t, p) => got.push(JSON.parse(p.toString()) as (typeof got)[number]));
  await client.subscribeAsync(topicFor(MOVED, 'config/desired'), { qos: 1 });
});
afterAll(async () => {
  await hub?.stop();
});

test('a move written straight into the database reaches the terminal through the sweep', async () => {
  await new Promise((r) => setTimeout(r, 300));
  expect(got.some((m) => m.config.telemetryInterval === 90)).toBe(false);
  // another process (the sqlite3 shell, psql, a script) moves the terminal on its own connection: the hub hears
  // nothing of it
  if (hub.engine.kind === 'sqlite') {
    const other = new Database(path.join(hub.dir, DB_FILE));
    try {
      other.pragma('busy_timeout = 5000');
      expect(other.prepare("UPDATE terminals SET station_id = 'GZ-TH-001' WHERE id = ?").run(MOVED).changes).toBe(1);
    } finally {
      other.close();
    }
  } else {
    const other = postgres((await testDatabaseUrl(hub.dir, inject('pgUrl')))!, { max: 1, onnotice: () => {} });
    try {
      expect((await other`update terminals set station_id = 'GZ-TH-001' where id = ${MOVED}`).count).toBe(1);
    } finally {
      await other.end();
    }
  }
  const pushed = await until(() => got.find((m) => m.config.telemetryInterval === 90));
  expect(pushed?.version).toBeGreaterThan(0);
  const res = await hub.api(`/api/v1/config/terminals/${MOVED}`);
  expect(((await res.json()) as { desired: { config: Record<string, unknown> } }).desired.config).toMatchObject({ telemetryInterval: 90 });
});
