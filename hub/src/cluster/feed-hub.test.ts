/**
 * Two hubs in this process on one PostgreSQL database: what one hub writes reaches a terminal connected to the other
 * through the change feed (update targets here; config, commands, decommission, secrets and takeover run against
 * real hub processes in tests/src/cluster/downlinks.test.ts). On SQLite a hub is its own installation (nothing to
 * cross), so this runs in the PostgreSQL run only.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXAMPLES, type UpdateTarget } from '@kiosk-fleet/protocol';
import { testEngineKind } from '../db/postgres/test-database.ts';
import { startTestHub, topicFor, until, type TestHub } from '../test-support.ts';

describe.skipIf(testEngineKind() !== 'postgres')('feed between two hubs on one database', () => {
  let h1: TestHub;
  let h2: TestHub;
  beforeAll(async () => {
    h1 = await startTestHub({ hubId: 'hub-1' });
    h2 = await startTestHub({ hubId: 'hub-2', database: h1.config.database });
  }, 60_000);
  afterAll(async () => {
    await h2?.stop();
    await h1?.stop();
  });

  test('an update target set on hub-1 reaches the terminal subscribed on hub-2, and a later subscriber there gets it retained', async () => {
    const t = await h1.terminal('GZ-T-001-01');
    const c = await h2.connect(t.id, t.secret);
    const got: unknown[] = [];
    c.on('message', (_t, p) => got.push(JSON.parse(p.toString())));
    await c.subscribeAsync(topicFor(t.id, 'update/target'), { qos: 1 });
    // hub-2's look at the table after the SUBSCRIBE (it finds no target) is over: only the feed can bring it now.
    // A wait that can only make the test stricter, never flaky.
    await new Promise((r) => setTimeout(r, 1000));
    await h1.downlink.setUpdateTarget(t.id, EXAMPLES['update/target'] as unknown as UpdateTarget);
    await until(() => got.length > 0, 15_000);
    expect(got[0]).toMatchObject({ release: { id: 'app-3.3.0' } });
    await c.endAsync();

    const again = await h2.connect(t.id, t.secret);
    const retained = new Promise<unknown>((resolve) => again.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
    await again.subscribeAsync(topicFor(t.id, 'update/target'), { qos: 1 });
    expect(await retained).toMatchObject({ release: { id: 'app-3.3.0' } });
    await again.endAsync();
  }, 30_000);
});
