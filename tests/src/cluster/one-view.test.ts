/**
 * One view across hubs (issue 19): an operator on hub-1 follows terminals connected to hub-2 live (the SSE stream
 * and the node counters), and operator sessions are the installation's, not a hub's: a session made on hub-1 works
 * on hub-2, and logging out or disabling the user on hub-1 ends it on hub-2.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { describeCluster, startCluster, type Cluster } from '../helpers/cluster.ts';
import type { HubProcess } from '../helpers/hub.ts';

async function until<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface ChangeEvent {
  type: string;
  terminalId: string;
  data: unknown;
}

/** The live stream of `hub` (admin token) under GZ: change events as they arrive. */
function follow(hub: HubProcess): { events: ChangeEvent[]; opened(): boolean; close(): void } {
  const events: ChangeEvent[] = [];
  let hello = false;
  const ctrl = new AbortController();
  void (async () => {
    const res = await fetch(`${hub.url}/api/v1/events?node=GZ`, { headers: { authorization: `Bearer ${hub.token}` }, signal: ctrl.signal });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let i: number;
      while ((i = buf.indexOf('\n\n')) !== -1) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.includes('event: hello')) hello = true;
        if (!block.includes('event: change')) continue;
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data) events.push(JSON.parse(data.slice(6)) as ChangeEvent);
      }
    }
  })().catch(() => {});
  return { events, opened: () => hello, close: () => ctrl.abort() };
}

const ID = 'GZ-YX-001-01';

describeCluster('one view across hubs', () => {
  let c: Cluster;
  let hub1: HubProcess;
  let hub2: HubProcess;
  let sim: SimulatorProcess | null = null;

  beforeAll(async () => {
    c = await startCluster({ hubs: 2 });
    [hub1, hub2] = c.hubs as [HubProcess, HubProcess];
  }, 180_000);

  afterAll(async () => {
    await sim?.stop();
    await c?.stop();
  }, 60_000);

  it('a fault of a terminal on hub-2 shows live on hub-1’s stream and in its counters', async () => {
    sim = await spawnSimulator({ hubUrl: hub2.mqttUrl, apiUrl: hub2.url, token: hub2.token, provision: true, count: 2, interval: 1 });
    await until(async () => ((await (await hub1.api('/api/v1/nodes/GZ/summary')).json()) as { totals: { online: number } }).totals.online === 2, 30_000, 'online in hub-1’s counters');
    const stream = follow(hub1);
    try {
      await until(() => stream.opened(), 10_000, 'hub-1’s stream open');
      await sim.control(`/terminals/${ID}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE', message: 'reader did not answer' });
      await until(
        () => stream.events.some((e) => e.type === 'telemetry' && e.terminalId === ID && (e.data as { faults?: number } | null)?.faults === 1),
        20_000,
        'the fault on hub-1’s stream',
      );
      await until(async () => ((await (await hub1.api('/api/v1/nodes/GZ/summary')).json()) as { totals: { withFault: number } }).totals.withFault === 1, 20_000, 'the fault in hub-1’s counters');
      // not a change per sample: only the transition crossed (the terminal reports every second)
      await new Promise((r) => setTimeout(r, 3000));
      expect(stream.events.filter((e) => e.type === 'telemetry' && e.terminalId === ID).length).toBeLessThanOrEqual(2);
    } finally {
      stream.close();
    }
  }, 120_000);

  it('a session made on hub-1 works on hub-2; logout on hub-1 ends it on hub-2, and so does disabling the user', async () => {
    const created = await hub1.api('/api/v1/users', { method: 'POST', json: { username: 'desk', role: 'city-admin', nodeId: 'GZ' } });
    expect(created.status).toBe(201);
    const { user, password } = (await created.json()) as { user: { id: string }; password: string };
    const signIn = async () => {
      const res = await fetch(`${hub1.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'desk', password }) });
      expect(res.status).toBe(200);
      const cookie = res.headers.getSetCookie().map((x) => x.split(';')[0]!).join('; ');
      const { csrfToken } = (await res.json()) as { csrfToken: string };
      return (hub: HubProcess, path: string, method = 'GET') => fetch(`${hub.url}${path}`, { method, headers: { cookie, 'x-csrf-token': csrfToken } });
    };

    const s1 = await signIn();
    expect((await s1(hub2, '/api/v1/auth/me')).status).toBe(200);
    expect((await s1(hub1, '/api/v1/auth/logout', 'POST')).status).toBeLessThan(300);
    await until(async () => (await s1(hub2, '/api/v1/auth/me')).status === 401, 10_000, 'the session ended on hub-2');

    const s2 = await signIn();
    expect((await s2(hub2, '/api/v1/auth/me')).status).toBe(200);
    expect((await hub1.api(`/api/v1/users/${user.id}/disable`, { method: 'POST' })).status).toBe(200);
    await until(async () => (await s2(hub2, '/api/v1/auth/me')).status === 401, 10_000, 'the disabled user’s session ended on hub-2');
  }, 60_000);
});
