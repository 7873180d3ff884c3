/**
 * A half-open link: the real agent reaches the hub through a TCP proxy that, at some point, silently stops
 * forwarding in both directions and closes nothing (a NAT entry dropped, a cable pulled at the far side). The agent
 * must notice on its own (MQTT keepalive), dial again, and replay from its outbox what it produced meanwhile: the hub
 * ends with every seq of the epoch, none twice.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { auditStreams, provisionFleet, hubQuery, sleep, waitFor } from '../helpers/reliability-util.ts';

let hub: HubProcess;
let agent: AgentProcess;
let proxy: net.Server;
const sockets: net.Socket[] = [];
/** Connections opened before this moment are black-holed; later ones are forwarded. */
let blackholeBefore = 0;

function startProxy(target: number): Promise<number> {
  proxy = net.createServer((client) => {
    const opened = Date.now();
    const upstream = net.connect(target, '127.0.0.1');
    sockets.push(client, upstream);
    const live = () => opened >= blackholeBefore;
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('data', (d: Buffer) => {
      if (live()) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (live()) client.write(d);
    });
    // A dead link tells nobody: the far side's close is not passed on either.
    upstream.on('close', () => {
      if (live()) client.destroy();
    });
    client.on('close', () => upstream.destroy());
  });
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve((proxy.address() as net.AddressInfo).port)));
}

async function seqs(id: string): Promise<number[]> {
  return (await (await hubQuery(hub.dataDir))('SELECT seq FROM telemetry WHERE terminal_id = ? ORDER BY seq', id)).map((r) => Number(r.seq));
}

beforeAll(async () => {
  hub = await spawnHub();
  const [t] = await provisionFleet(hub, 1, 'HO');
  const port = await startProxy(hub.mqttPort);
  agent = await spawnAgent({ hubUrl: `mqtt://127.0.0.1:${port}`, terminalId: t!.id, secret: t!.secret, env: { KF_KEEPALIVE: '5', KF_TELEMETRY_INTERVAL: '1' } });
});

afterAll(async () => {
  await agent?.stop();
  proxy?.close();
  for (const s of sockets) s.destroy();
  await hub?.stop();
});

describe('a half-open link', () => {
  it('the agent notices by keepalive, reconnects, and replays what it produced meanwhile; nothing lost or doubled', async () => {
    await waitFor('a few samples stored', async () => (await seqs(agent.terminalId)).length >= 3, 30_000);
    const connects = agent.lines.filter((l) => l.msg === 'connected to hub').length;
    blackholeBefore = Date.now() + 1;
    const atCut = (await seqs(agent.terminalId)).length;
    await sleep(1);
    await waitFor('the agent to reconnect', () => agent.lines.filter((l) => l.msg === 'connected to hub').length > connects, 60_000);
    const down = agent.lines.find((l) => l.msg === 'disconnected from hub, will retry' && typeof l.error === 'string');
    expect(String(down?.error)).toMatch(/keepalive/i);
    // Samples produced while the link was dead (at least one a second for ≥ 1.5 keepalives) arrive afterwards.
    await waitFor('the dead period replayed', async () => (await seqs(agent.terminalId)).length >= atCut + 8, 30_000);
    const a = await auditStreams(hub.dataDir);
    expect(a.gaps).toEqual([]);
    expect(a.duplicates).toEqual([]);
  });
});
