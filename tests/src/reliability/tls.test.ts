/**
 * TLS with a throwaway CA made by openssl at test time (nothing committed): the hub serves MQTT over TLS and HTTPS
 * with the given certificate; a client or agent that trusts that CA (KF_HUB_CA) connects and reports; an agent whose
 * CA file does not trust the hub's certificate refuses it, never sends its secret, stores nothing.
 */
import https from 'node:https';
import mqtt from 'mqtt';
import fs from 'node:fs';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { fleet, makeTlsMaterial, waitFor, hubQuery, type TlsMaterial } from '../helpers/reliability-util.ts';

let tlsm: TlsMaterial;
let hub: HubProcess;
let mqttsPort: number;
let creds: { id: string; secret: string }[];
const agents: AgentProcess[] = [];

function httpsRequest(path: string, opts: { method?: string; body?: string; ca?: Buffer | null } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: hub.httpPort,
        path,
        method: opts.method ?? 'GET',
        ...(opts.ca === null ? {} : { ca: opts.ca ?? fs.readFileSync(tlsm.caCert) }),
        headers: { authorization: `Bearer ${hub.token}`, ...(opts.body ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function rows(id: string): Promise<number> {
  return Number((await (await hubQuery(hub.dataDir))('SELECT count(*) AS n FROM telemetry WHERE terminal_id = ?', id))[0]!.n);
}

beforeAll(async () => {
  tlsm = makeTlsMaterial();
  hub = await spawnHub({ env: { KF_TLS_CERT: tlsm.serverCert, KF_TLS_KEY: tlsm.serverKey, KF_MQTTS_PORT: '0' } });
  const ready = hub.logs.map((l) => { try { return JSON.parse(l) as { msg?: string; mqttsPort?: number }; } catch { return {}; } }).find((l) => l.msg === 'ready');
  mqttsPort = ready?.mqttsPort ?? 0;
  const res = await httpsRequest('/api/v1/import', { method: 'POST', body: JSON.stringify(fleet(4, 'TL').fleet) });
  expect(res.status).toBe(200);
  creds = (JSON.parse(res.body) as { terminals: { created: { id: string; secret: string }[] } }).terminals.created;
});

afterAll(async () => {
  for (const a of agents) await a.stop();
  await hub?.stop();
  tlsm?.cleanup();
});

describe('TLS', () => {
  it('the hub serves HTTPS with the given certificate, which a client without the CA refuses', async () => {
    expect(mqttsPort).toBeGreaterThan(0);
    expect((await httpsRequest('/api/v1/health')).status).toBe(200);
    await expect(httpsRequest('/api/v1/health', { ca: null })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    await expect(httpsRequest('/api/v1/health', { ca: fs.readFileSync(tlsm.otherCaCert) })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  it('MQTT over TLS carries a terminal’s telemetry into the store', async () => {
    const t = creds[0]!;
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${mqttsPort}`, {
      clientId: t.id, username: t.id, password: t.secret, protocolVersion: 4, reconnectPeriod: 0, ca: fs.readFileSync(tlsm.caCert),
    });
    await c.publishAsync(topicFor(t.id, 'telemetry'), JSON.stringify({ ...EXAMPLES.telemetry, epoch: 'tlsepoch01', seq: 1, ts: new Date().toISOString() }), { qos: 1 });
    await c.endAsync();
    expect(await rows(t.id)).toBe(1);
  });

  it('an agent trusting the hub’s CA (KF_HUB_CA) connects over mqtts:// and reports', async () => {
    const t = creds[1]!;
    const a = await spawnAgent({ hubUrl: `mqtts://127.0.0.1:${mqttsPort}`, terminalId: t.id, secret: t.secret, env: { KF_HUB_CA: tlsm.caCert, KF_TELEMETRY_INTERVAL: '1' } });
    agents.push(a);
    await waitFor('telemetry from the TLS agent', async () => (await rows(t.id)) > 0, 30_000);
  });

  it('an agent whose CA file does not trust the hub’s certificate refuses it and stores nothing', async () => {
    const t = creds[2]!;
    const u = creds[3]!;
    const wrongCa = await spawnAgent({ hubUrl: `mqtts://127.0.0.1:${mqttsPort}`, terminalId: t.id, secret: t.secret, waitConnected: false, env: { KF_HUB_CA: tlsm.otherCaCert, KF_TELEMETRY_INTERVAL: '1', KF_LOG_LEVEL: 'debug' } });
    // No KF_HUB_CA at all: the system's CAs do not know a private CA either.
    const noCa = await spawnAgent({ hubUrl: `mqtts://127.0.0.1:${mqttsPort}`, terminalId: u.id, secret: u.secret, waitConnected: false, env: { KF_TELEMETRY_INTERVAL: '1', KF_LOG_LEVEL: 'debug' } });
    agents.push(wrongCa, noCa);
    // Several attempts each (the helper's backoff is 200 ms – 2 s), every one refused at the handshake.
    for (const a of [wrongCa, noCa]) {
      await waitFor('three refused handshakes', () => a.lines.filter((l) => /unable to verify|self[- ]signed|certificate/i.test(JSON.stringify(l))).length >= 3, 45_000);
      expect(a.proc.exitCode).toBeNull();
      expect(a.lines.some((l) => l.msg === 'connected to hub')).toBe(false);
    }
    expect(await rows(t.id)).toBe(0);
    expect(await rows(u.id)).toBe(0);
    // The handshake failed before CONNECT: the hub never saw a login (so never the secret) from them.
    expect(hub.logs.some((l) => l.includes('connection refused') && (l.includes(t.id) || l.includes(u.id)))).toBe(false);
  });

  // F11-7 (fixed in 2c09b06): the agent used to log the reason at debug only, so at the default level a wrong
  // KF_HUB_CA looked like a network outage.
  it('at the default log level, the agent says the hub’s certificate is not trusted (finding F11-7)', async () => {
    const t = creds[2]!;
    const a = await spawnAgent({ hubUrl: `mqtts://127.0.0.1:${mqttsPort}`, terminalId: t.id, secret: t.secret, waitConnected: false, env: { KF_HUB_CA: tlsm.otherCaCert } });
    agents.push(a);
    await waitFor('a retry', () => a.lines.some((l) => l.msg === 'disconnected from hub, will retry'), 45_000);
    expect(a.lines.some((l) => Number(l.level) >= 40 && /certificate|unable to verify/i.test(JSON.stringify(l)))).toBe(true);
  });
});
