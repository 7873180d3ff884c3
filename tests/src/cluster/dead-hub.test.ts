/**
 * A hub dies (SIGKILL) under real agents (issue 19, "Dead hub"): three hub processes on one PostgreSQL database, agents
 * with a URL list connected to hub-2. What an operator sees on hub-1: every hub in /api/v1/hubs, alive; after the kill
 * hub-2 shown not alive, its agents' terminals online on another hub, and a terminal whose agent died with hub-2
 * offline with reason `hub-lost`, all within 15 s; nothing the agents were told was stored is lost or stored twice. And
 * the late close: a terminal that moved from hub A to hub B stays online when A's old connection ends afterwards.
 * Only in the PostgreSQL run (`KF_TEST_ENGINE=postgres`).
 */
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { describeCluster, startCluster, type Cluster } from '../helpers/cluster.ts';
import type { HubProcess } from '../helpers/hub.ts';
import { auditStreams, connectTerminal, hubQuery, metric, provisionFleet, waitFor } from '../helpers/reliability-util.ts';

/** The bound with the default lease (10 s): a dead hub's terminals are dealt with within 15 s of the kill. */
const DEAD_HUB_BOUND_MS = 15_000;

interface HubInfo {
  id: string;
  alive: boolean;
  connectedTerminals: number;
  leaderOf: string[];
}
interface Detail {
  presence: { state: string; reason: string | null };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

describeCluster('a dead hub', () => {
  let c: Cluster;
  let hub1: HubProcess;
  let hub2: HubProcess;
  let hub3: HubProcess;
  let terminals: { id: string; secret: string }[] = [];
  const agents: AgentProcess[] = [];

  const hubs = async (via: HubProcess) => ((await (await via.api('/api/v1/hubs')).json()) as { items: HubInfo[] }).items;
  const detail = async (id: string) => (await (await hub1.api(`/api/v1/terminals/${id}`)).json()) as Detail;
  const connHub = async (id: string) => {
    const q = await hubQuery(hub1.dataDir, c.databaseUrl);
    return (await q('SELECT conn_hub FROM terminal_state WHERE terminal_id = ?', id))[0]?.conn_hub as string | null | undefined;
  };

  beforeAll(async () => {
    c = await startCluster({ hubs: 2, readyTimeoutMs: 90_000 });
    [hub1, hub2] = c.hubs as [HubProcess, HubProcess];
    terminals = await provisionFleet(hub1, 6, 'DH');
    // hub-3's port is in the agents' list but nothing listens there yet: each agent tries it, is refused, and lands
    // on hub-2 whatever its shuffled order, then stays there once hub-3 is up
    const port3 = await freePort();
    const list = `${hub2.mqttUrl},mqtt://127.0.0.1:${port3}`;
    for (const t of terminals.slice(0, 3)) {
      agents.push(await spawnAgent({ hubUrl: list, terminalId: t.id, secret: t.secret, env: { KF_TELEMETRY_INTERVAL: '0.5', KF_KEEPALIVE: '5' } }));
    }
    hub3 = await c.addHub({ KF_MQTT_PORT: String(port3) });
  }, 240_000);

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await c?.stop();
  }, 60_000);

  it('every hub of the installation is listed alive, with the terminals connected to it', async () => {
    await waitFor('hub-2 to count its three agents', async () => (await hubs(hub1)).find((h) => h.id === 'hub-2')?.connectedTerminals === 3, 30_000);
    const list = await hubs(hub1);
    expect(list.map((h) => [h.id, h.alive])).toEqual([
      ['hub-1', true],
      ['hub-2', true],
      ['hub-3', true],
    ]);
    expect(await hubs(hub3)).toEqual(list.map((h) => ({ ...h, leaseExpiresAt: expect.any(String) as unknown, startedAt: expect.any(String) as unknown })));
    for (const t of terminals.slice(0, 3)) expect(await connHub(t.id)).toBe('hub-2');
    const health = (await (await hub2.api('/api/v1/health')).json()) as { hubId: string };
    expect(health.hubId).toBe('hub-2');
    expect(await metric(hub3, 'kf_hub_info', { hub_id: 'hub-3' })).toBe(1);
  }, 60_000);

  it("SIGKILL: its terminals come back online on another hub, one whose agent died with it goes offline (hub-lost), within 15 s; nothing acknowledged is lost or stored twice", async () => {
    const [moving1, moving2, lost] = agents as [AgentProcess, AgentProcess, AgentProcess];
    // the agents have been reporting every 0.5 s: the kill lands in the middle of their ingest
    await waitFor('telemetry from all three', async () => (await auditStreams(hub1.dataDir, ['telemetry'], c.databaseUrl)).terminals.telemetry === 3, 30_000);
    const killed = Date.now();
    await Promise.all([lost.kill('SIGKILL'), hub2.kill('SIGKILL')]);

    await waitFor(
      'the moved terminals online on another hub',
      async () => {
        for (const a of [moving1, moving2]) {
          if ((await detail(a.terminalId)).presence.state !== 'online') return false;
          const on = await connHub(a.terminalId);
          if (on !== 'hub-1' && on !== 'hub-3') return false;
        }
        return true;
      },
      DEAD_HUB_BOUND_MS,
    );
    await waitFor('hub-2 not alive', async () => (await hubs(hub1)).find((h) => h.id === 'hub-2')?.alive === false, killed + DEAD_HUB_BOUND_MS - Date.now());
    const gone = await waitFor(
      'the terminal whose agent died with hub-2 offline (hub-lost)',
      async () => {
        const d = await detail(lost.terminalId);
        return d.presence.state === 'offline' ? d : null;
      },
      Math.max(1, killed + DEAD_HUB_BOUND_MS - Date.now()),
    );
    expect(gone.presence.reason).toBe('hub-lost');
    expect(Date.now() - killed).toBeLessThan(DEAD_HUB_BOUND_MS + 1000);
    // the terminals that moved are not touched by the reaper, then or later
    for (const a of [moving1, moving2]) expect((await detail(a.terminalId)).presence.state).toBe('online');
    const hist = (await (await hub1.api(`/api/v1/terminals/${lost.terminalId}/presence`)).json()) as { items: { to: string; reason: string }[] };
    expect(hist.items[0]).toMatchObject({ to: 'offline', reason: 'hub-lost' });

    // the moved agents replay what hub-2 never acknowledged: every stream contiguous, nothing twice
    const q = await hubQuery(hub1.dataDir, c.databaseUrl);
    const maxSeq = async (id: string) => Number((await q('SELECT max(seq) AS m FROM telemetry WHERE terminal_id = ?', id))[0]?.m ?? 0);
    const before = await Promise.all([moving1, moving2].map((a) => maxSeq(a.terminalId)));
    await waitFor('new samples stored through the other hubs', async () => (await Promise.all([moving1, moving2].map((a) => maxSeq(a.terminalId)))).every((m, i) => m > before[i]! + 3), 30_000);
    const audit = await waitFor(
      'contiguous streams',
      async () => {
        const a = await auditStreams(hub1.dataDir, ['telemetry', 'events'], c.databaseUrl);
        return a.gaps.filter((g) => g.terminalId !== lost.terminalId).length === 0 ? a : null;
      },
      30_000,
    );
    expect(audit.duplicates).toEqual([]);
  }, 120_000);

  it("a late close: the terminal moved from hub-1 to hub-3 stays online when hub-1's old connection ends", async () => {
    const t = terminals[3]!;
    const other = terminals[4]!;
    const old = await connectTerminal(`mqtt://127.0.0.1:${hub1.mqttPort}`, t.id, t.secret);
    await waitFor('online through hub-1', async () => (await detail(t.id)).presence.state === 'online' && (await connHub(t.id)) === 'hub-1', 15_000);
    // the terminal comes back through hub-3 while hub-1 still holds the old connection
    const now = await connectTerminal(`mqtt://127.0.0.1:${hub3.mqttPort}`, t.id, t.secret);
    await waitFor('the row names hub-3', async () => (await connHub(t.id)) === 'hub-3', 15_000);
    expect((await detail(t.id)).presence.state).toBe('online');
    // hub-1 notices its old connection's end late...
    const connectedBefore = await metric(hub1, 'kf_connected_terminals');
    old.stream.destroy();
    await waitFor('hub-1 to drop the old connection', async () => (await metric(hub1, 'kf_connected_terminals')) < connectedBefore, 15_000);
    // ...and writes (or skips) its offline in order: once a later connection through hub-1 is stored, it was handled
    const marker = await connectTerminal(`mqtt://127.0.0.1:${hub1.mqttPort}`, other.id, other.secret);
    await waitFor('a later write through hub-1', async () => (await detail(other.id)).presence.state === 'online', 15_000);
    expect(await detail(t.id)).toMatchObject({ presence: { state: 'online' } });
    expect(await connHub(t.id)).toBe('hub-3');
    await Promise.all([now.endAsync(), marker.endAsync()]);
    old.end(true);
  }, 60_000);
});
