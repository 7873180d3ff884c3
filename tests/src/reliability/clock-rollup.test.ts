/**
 * A terminal whose clock reset to 1970 (dead RTC battery) reports over real MQTT to a real hub process; the hub's
 * maintenance (hourly rollups) then runs on that database file. Finding F11-5: the first rollup started its hour
 * cursor at the oldest terminal timestamp in the table and walked ~500,000 empty hours synchronously (13.6 s of a
 * blocked event loop on a nearly empty database; minutes to hours on a full one). The hub runs maintenance every
 * 10 minutes, so the job is run here directly on the stopped hub's file, as the finding's reproduction does.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../../hub/src/log.ts';
import { createMetrics } from '../../../hub/src/metrics.ts';
import { Retention } from '../../../hub/src/retention/service.ts';
import { createRetentionStore } from '../../../hub/src/retention/store.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { connectTerminal, hubQuery, provisionFleet, waitFor } from '../helpers/reliability-util.ts';
import { openPostgres } from '../../../hub/src/db/postgres/open.ts';
import { testDatabaseUrl } from '../../../hub/src/db/postgres/test-database.ts';
import { parseDatabaseUrl, type DatabaseTarget } from '../../../hub/src/db/url.ts';

const HOUR = 3_600_000;
let hub: HubProcess;
let client: MqttClient | undefined;

beforeAll(async () => {
  hub = await spawnHub();
});

afterAll(async () => {
  client?.end(true);
  await hub?.stop();
});

describe('a terminal clock at 1970 and the maintenance run', () => {
  it('the first rollup after a 1970 sample rolls up the real hours only and leaves the 1970 one alone (finding F11-5)', async () => {
    const [t] = await provisionFleet(hub, 1, 'RT');
    client = await connectTerminal(hub.mqttUrl, t!.id, t!.secret);
    const sentAt = Date.now();
    await client.publishAsync(topicFor(t!.id, 'telemetry'), JSON.stringify({ ...EXAMPLES.telemetry, epoch: 'rtcreset01', seq: 1, ts: '1970-01-01T00:00:01.000Z' }), { qos: 1 });
    await client.publishAsync(topicFor(t!.id, 'telemetry'), JSON.stringify({ ...EXAMPLES.telemetry, epoch: 'rtcreset01', seq: 2, ts: new Date(sentAt).toISOString() }), { qos: 1 });
    const q = await hubQuery(hub.dataDir);
    await waitFor('both samples stored', async () =>
      Number((await q('SELECT count(*) AS n FROM telemetry WHERE terminal_id = ?', t!.id))[0]!.n) === 2 || null,
    );
    // The 1970 sample is stored with its own ts: it is the oldest sample in the table.
    expect(Number((await q('SELECT min(ts) AS ts FROM telemetry'))[0]!.ts)).toBe(1000);
    client.end(true);
    client = undefined;
    await hub.kill('SIGTERM');

    // The hub's own retention store on the hub's database, whichever engine it ran on.
    const pgUrl = await testDatabaseUrl(hub.dataDir, inject('pgUrl'));
    const db = pgUrl ? undefined : new Database(path.join(hub.dataDir, 'kiosk-fleet.db'));
    const pg = pgUrl ? await openPostgres(parseDatabaseUrl(pgUrl) as Extract<DatabaseTarget, { engine: 'postgres' }>, { max: 1, migrate: false }) : undefined;
    try {
      // An hour later, the hour of the real sample is complete.
      const now = sentAt + HOUR;
      const store = createRetentionStore(pg ? { kind: 'postgres', pg } : { kind: 'sqlite', db: db! });
      const retention = new Retention(store, 7, createMetrics(), createLogger('silent'));
      expect(await retention.rollup(now)).toBe(1);
      const hours = (await q('SELECT hour, samples FROM rollups_hourly WHERE terminal_id = ?', t!.id)).map((r) => ({ hour: Number(r.hour), samples: Number(r.samples) }));
      expect(hours).toEqual([{ hour: Math.floor(sentAt / HOUR) * HOUR, samples: 1 }]);
      expect(Number((await q("SELECT value FROM meta WHERE key = 'rollup_until'"))[0]!.value)).toBe(Math.floor(now / HOUR) * HOUR);
      // Nothing is left over for the next run either.
      expect(await retention.rollup(now)).toBe(0);
    } finally {
      db?.close();
      await pg?.close();
    }
  });
});
