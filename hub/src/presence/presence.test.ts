import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { closed, presence, startTestHub, telemetry, topicFor, until, type TestHub } from '../test-support.ts';

let hub: TestHub;

beforeAll(async () => {
  hub = await startTestHub({ presence: { staleCheckMs: 100, flapTransitions: 6, flapWindowMs: 600_000 } });
});
afterAll(() => hub.stop());

interface Detail {
  presence: { state: string; reason: string | null; flapping: boolean };
}
interface History {
  items: { from: string; to: string; reason: string }[];
}
const detail = async (id: string) => (await (await hub.api(`/api/v1/terminals/${id}`)).json()) as Detail;
const history = async (id: string) => ((await (await hub.api(`/api/v1/terminals/${id}/presence`)).json()) as History).items;

function will(id: string, bootId: string, connSeq: number) {
  return { topic: topicFor(id, 'presence'), payload: Buffer.from(presence(bootId, connSeq, { state: 'offline', reason: 'connection-lost' })), qos: 1 as const, retain: true };
}

async function online(id: string, secret: string, bootId: string, connSeq: number, over: Record<string, unknown> = {}) {
  const c = await hub.connect(id, secret, { will: will(id, bootId, connSeq) });
  await c.publishAsync(topicFor(id, 'presence'), presence(bootId, connSeq, over), { qos: 1, retain: true });
  return c;
}

describe('presence', () => {
  test('birth then clean shutdown: online, then offline with reason clean', async () => {
    const t = await hub.terminal('GZ-T-001-01');
    const c = await online(t.id, t.secret, 'bootAAAA01', 1);
    expect((await detail(t.id)).presence.state).toBe('online');
    await c.publishAsync(topicFor(t.id, 'presence'), presence('bootAAAA01', 1, { state: 'offline', reason: 'clean' }), { qos: 1, retain: true });
    await c.endAsync();
    await until(async () => (await detail(t.id)).presence.state === 'offline');
    expect((await detail(t.id)).presence.reason).toBe('clean');
    expect((await history(t.id))[0]).toMatchObject({ from: 'online', to: 'offline', reason: 'clean' });
  });

  test('a destroyed socket (last will) is offline with reason connection-lost', async () => {
    const t = await hub.terminal('GZ-T-001-02');
    const c = await online(t.id, t.secret, 'bootBBBB01', 1);
    c.stream.destroy();
    await until(async () => (await detail(t.id)).presence.state === 'offline');
    expect((await detail(t.id)).presence.reason).toBe('connection-lost');
    c.end(true);
  });

  test('takeover and quick reconnect: the old connection is closed, its stale will is ignored, no false offline', async () => {
    const t = await hub.terminal('GZ-T-001-03');
    const staleBefore = await hub.metric('kf_messages_rejected_total', { reason: 'stale-will' });
    const first = await online(t.id, t.secret, 'bootCCCC01', 1);
    const gone = closed(first);
    // Same boot, next connection: the agent reconnected before the hub saw the old connection die.
    const second = await online(t.id, t.secret, 'bootCCCC01', 2);
    await gone;
    await until(async () => (await history(t.id)).some((h) => h.reason === 'takeover'));
    const h = await history(t.id);
    expect(h.filter((x) => x.to === 'offline')).toEqual([]);
    expect((await detail(t.id)).presence.state).toBe('online');
    expect(await hub.metric('kf_messages_rejected_total', { reason: 'stale-will' })).toBe(staleBefore + 1);
    await second.endAsync();
  });

  test('a new boot id with a short uptime turns the last offline into reboot; a reported crash into agent-crash', async () => {
    const t = await hub.terminal('GZ-T-001-04');
    let c = await online(t.id, t.secret, 'bootDDDD01', 1, { uptime: 90_000 });
    c.stream.destroy();
    await until(async () => (await detail(t.id)).presence.state === 'offline');
    c = await online(t.id, t.secret, 'bootDDDD02', 1, { uptime: 40, lastExit: { cause: 'unknown' } });
    await until(async () => (await history(t.id)).some((x) => x.to === 'offline' && x.reason === 'reboot'));
    c.stream.destroy();
    await until(async () => (await detail(t.id)).presence.state === 'offline');
    c = await online(t.id, t.secret, 'bootDDDD03', 1, { uptime: 90_100, lastExit: { cause: 'crash' } });
    await until(async () => (await history(t.id)).some((x) => x.to === 'offline' && x.reason === 'agent-crash'));
    await c.endAsync();
  });

  test('no telemetry for 3 declared intervals: stale; telemetry again: online', async () => {
    const t = await hub.terminal('GZ-T-001-05');
    const c = await online(t.id, t.secret, 'bootEEEE01', 1, { interval: 1 });
    await until(async () => (await detail(t.id)).presence.state === 'stale', 8000);
    expect((await detail(t.id)).presence.reason).toBe('heartbeat-missed');
    await c.publishAsync(topicFor(t.id, 'telemetry'), telemetry(1), { qos: 1 });
    expect((await detail(t.id)).presence).toMatchObject({ state: 'online', reason: 'heartbeat-resumed' });
    await c.endAsync();
  }, 15_000);

  test('a flapping terminal is flagged, and its transitions are still stored', async () => {
    const t = await hub.terminal('GZ-T-001-06');
    for (let i = 1; i <= 5; i++) {
      const c = await online(t.id, t.secret, 'bootFFFF01', i);
      c.stream.destroy();
      await until(async () => (await detail(t.id)).presence.state === 'offline');
    }
    expect((await detail(t.id)).presence.flapping).toBe(true);
    expect((await history(t.id)).length).toBe(10);
  });

  test('a hub that stops marks its connected terminals offline with reason hub-restart', async () => {
    const h = await startTestHub();
    const t = await h.terminal('GZ-T-001-07');
    const c = await h.connect(t.id, t.secret);
    await c.publishAsync(topicFor(t.id, 'presence'), presence('bootGGGG01', 1), { qos: 1 });
    const dir = h.dir;
    await h.close();
    c.end(true);
    const again = await startTestHub({}, dir);
    try {
      const hist = ((await (await again.api(`/api/v1/terminals/${t.id}/presence`)).json()) as History).items;
      expect(hist[0]).toMatchObject({ from: 'online', to: 'offline', reason: 'hub-restart' });
      // written once, at the stop (in bulk): the start finds nobody left online
      expect(hist.filter((x) => x.reason === 'hub-restart')).toHaveLength(1);
      expect((await (await again.api(`/api/v1/terminals/${t.id}`)).json()) as Detail).toMatchObject({ presence: { state: 'offline', reason: 'hub-restart', flapping: false } });
    } finally {
      await again.stop();
      (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
    }
  });
});
