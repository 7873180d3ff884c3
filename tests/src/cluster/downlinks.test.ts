/**
 * Downlinks from any hub (issue 19): a real agent connected to hub-2, every change made through hub-1's API. What the
 * operator relies on: the config save, the command reach the terminal wherever it is connected; decommissioning and
 * rotating its secret close its connection there; a terminal that connects to another hub is no longer served by the
 * old one; and all of that still holds after a hub's LISTEN connection was cut (it listens again and resyncs).
 */
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
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

const IDS = ['GZ-YX-001-01', 'GZ-YX-001-02', 'GZ-YX-001-03', 'GZ-YX-001-04', 'GZ-YX-001-05'] as const;
const [CONFIG_T, COMMAND_T, DECOM_T, SECRET_T, TAKEOVER_T] = IDS;

describeCluster('downlinks from any hub', () => {
  let c: Cluster;
  let hub1: HubProcess;
  let hub2: HubProcess;
  const secrets = new Map<string, string>();
  const agents: AgentProcess[] = [];

  const applied = (a: AgentProcess, version: number) => a.lines.some((l) => l.msg === 'config applied' && l['version'] === version);
  const disconnects = (a: AgentProcess) => a.lines.filter((l) => l.msg === 'disconnected from hub, will retry').length;
  const agent = async (id: string, hub: HubProcess): Promise<AgentProcess> => {
    const a = await spawnAgent({ hubUrl: hub.mqttUrl, terminalId: id, secret: secrets.get(id)!, env: { KF_TELEMETRY_INTERVAL: '600' } });
    agents.push(a);
    return a;
  };
  /** A ping sent through `hub`, completed by the terminal. */
  const ping = async (hub: HubProcess, id: string): Promise<void> => {
    const res = await hub.api(`/api/v1/terminals/${id}/commands`, { method: 'POST', json: { name: 'ping' } });
    expect(res.status).toBe(201);
    const { id: commandId } = (await res.json()) as { id: string };
    await until(async () => {
      const list = (await (await hub.api(`/api/v1/terminals/${id}/commands`)).json()) as { items: { id: string; status: string }[] };
      return list.items.find((x) => x.id === commandId)?.status === 'ok';
    }, 20_000, `the ping through ${hub === hub1 ? 'hub-1' : 'hub-2'} completed`);
  };
  /** Saves the terminal's layer through hub-1; the desired version it pushed. */
  const saveConfig = async (id: string, telemetryInterval: number, expectedVersion: number): Promise<number> => {
    const res = await hub1.api(`/api/v1/config/terminals/${id}`, { method: 'PUT', json: { config: { telemetryInterval }, expectedVersion } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { pushed: { terminals: { terminalId: string; version: number }[] } };
    return body.pushed.terminals.find((t) => t.terminalId === id)!.version;
  };
  const connectedOn = async (hub: HubProcess, id: string) => {
    const r = await hub.api('/metrics');
    return /^kf_connected_terminals (\d+)/m.exec(await r.text())?.[1] !== '0' && id !== '';
  };

  beforeAll(async () => {
    c = await startCluster({ hubs: 2 });
    [hub1, hub2] = c.hubs as [HubProcess, HubProcess];
    const res = await hub1.importFleet({
      city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
      districts: [{ id: 'GZ-YX', name: { zh: '越秀', en: 'Yuexiu' } }],
      stations: [{ id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥', en: 'Hongqiao' } }],
      terminals: IDS.map((id) => ({ id, station: 'GZ-YX-001', type: 'id-card', serial: `SN-${id}` })),
    });
    for (const t of res.terminals.created) secrets.set(t.id, t.secret);
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await c?.stop();
  }, 60_000);

  it('a config saved on hub-1 reaches the terminal on hub-2', async () => {
    const a = await agent(CONFIG_T, hub2);
    // subscribed by now (its down topics are one SUBSCRIBE): the config below cannot come with the subscription
    await ping(hub2, CONFIG_T);
    const v = await saveConfig(CONFIG_T, 300, 0);
    await until(() => applied(a, v), 20_000, `config v${v} applied on the agent behind hub-2`);
    // and the hub that holds the connection answers with what the terminal reported
    await until(async () => ((await (await hub1.api(`/api/v1/config/terminals/${CONFIG_T}`)).json()) as { sync: { appliedVersion: number } }).sync.appliedVersion === v, 20_000, 'reported');
  }, 60_000);

  it('a command sent through hub-1 reaches the terminal on hub-2 and completes', async () => {
    await agent(COMMAND_T, hub2);
    await ping(hub2, COMMAND_T);
    await ping(hub1, COMMAND_T);
  }, 60_000);

  it('decommissioning on hub-1 closes the connection on hub-2, and hub-2 refuses it from then on', async () => {
    const a = await agent(DECOM_T, hub2);
    expect(await connectedOn(hub2, DECOM_T)).toBe(true);
    expect((await hub1.api(`/api/v1/terminals/${DECOM_T}/decommission`, { method: 'POST', json: {} })).status).toBe(200);
    await until(() => disconnects(a) > 0, 20_000, 'the agent disconnected');
    await until(() => a.lines.some((l) => String(l.msg).startsWith('hub refused')), 20_000, 'hub-2 refuses it');
  }, 60_000);

  it('a secret rotated on hub-1 closes the connection on hub-2, and the old secret no longer gets in there', async () => {
    const a = await agent(SECRET_T, hub2);
    const res = await hub1.api(`/api/v1/terminals/${SECRET_T}/secret`, { method: 'POST' });
    expect(res.status).toBe(200);
    await until(() => disconnects(a) > 0, 20_000, 'the agent disconnected');
    // hub-2 had the old credentials cached from the first login
    await until(() => a.lines.some((l) => String(l.msg).startsWith('hub refused')), 20_000, 'hub-2 refuses the old secret').catch((e: unknown) => {
      throw new Error(`${String(e)}\n${a.lines.map((l) => JSON.stringify(l)).join('\n')}\n${hub2.logs.filter((l) => l.includes(SECRET_T)).join('\n')}`);
    });
  }, 60_000);

  it('the terminal connecting to hub-1 ends its connection on hub-2', async () => {
    const old = await agent(TAKEOVER_T, hub2);
    const before = disconnects(old);
    // the same terminal (same secret) on hub-1: a replacement device, or the agent moving on along its URL list
    const fresh = await agent(TAKEOVER_T, hub1);
    await until(() => disconnects(old) > before, 20_000, 'the connection on hub-2 closed');
    await old.stop();
    // the one on hub-1 is (again, had the old one come back in between) connected, and the terminal shows online
    const linkState = (a: AgentProcess) => a.lines.filter((l) => l.msg === 'connected to hub' || l.msg === 'disconnected from hub, will retry').at(-1)?.msg;
    await until(() => linkState(fresh) === 'connected to hub', 20_000, 'the agent on hub-1 connected');
    await until(async () => ((await (await hub1.api(`/api/v1/terminals/${TAKEOVER_T}`)).json()) as { presence: { state: string } }).presence.state === 'online', 20_000, 'online');
  }, 60_000);

  it('after hub-2’s LISTEN connection is cut, it listens again and a config saved on hub-1 still arrives', async () => {
    const a = agents.find((x) => x.terminalId === CONFIG_T)!;
    const sql = postgres(c.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      const killed = await sql<{ pid: number }[]>`
        with feed as materialized (select pid from pg_stat_activity where application_name = 'kf-feed hub-2' and datname = current_database())
        select pid from feed where pg_terminate_backend(pid)`;
      expect(killed).toHaveLength(1);
      await until(async () => (await sql`select 1 from pg_stat_activity where application_name = 'kf-feed hub-2' and datname = current_database()`).length === 1, 20_000, 'hub-2 listening again');
    } finally {
      await sql.end({ timeout: 1 });
    }
    const v = await saveConfig(CONFIG_T, 200, 1);
    await until(() => applied(a, v), 20_000, `config v${v} applied on the agent behind hub-2`);
  }, 60_000);
});
