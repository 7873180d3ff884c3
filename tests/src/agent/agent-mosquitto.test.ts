/**
 * The agent against Debian's mosquitto: it works against any standard MQTT 3.1.1 broker, not only ours. The
 * broker is restarted without persistence, so the agent's session is gone: commands must still reach it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePayload, topicFor } from '@kiosk-fleet/protocol';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { freePort } from '../helpers/reliability-util.ts';

const MOSQUITTO = '/usr/sbin/mosquitto';
const ID = 'GZ-HZ-002-01';
let port: number;
let broker: ChildProcess | null = null;
let agent: AgentProcess | null = null;
let sub: MqttClient | null = null;
const seen: { topic: string; payload: string }[] = [];

async function startMosquitto(): Promise<void> {
  broker = spawn(MOSQUITTO, ['-p', String(port)], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('mosquitto did not start');
}

async function stopMosquitto(): Promise<void> {
  const b = broker;
  broker = null;
  if (!b || b.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    b.once('exit', () => resolve());
    b.kill('SIGKILL');
  });
}

async function until<T>(fn: () => T | undefined | null | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const of = (kind: Parameters<typeof topicFor>[1]) => seen.filter((m) => m.topic === topicFor(ID, kind)).map((m) => JSON.parse(m.payload) as Record<string, unknown>);

beforeAll(async () => {
  if (!fs.existsSync(MOSQUITTO)) throw new Error(`${MOSQUITTO} is required for this test (apt-get install mosquitto)`);
  port = await freePort();
  await startMosquitto();
  sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 100, clientId: 'test-observer' });
  sub.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString() }));
  sub.on('connect', () => void sub!.subscribeAsync('kf/v1/t/#', { qos: 1 }));
  await sub.subscribeAsync('kf/v1/t/#', { qos: 1 });
}, 30_000);

afterAll(async () => {
  await agent?.stop();
  await sub?.endAsync(true);
  await stopMosquitto();
});

describe('agent against mosquitto', () => {
  it('presence, schema-valid telemetry, a command round trip; after a broker restart it subscribes again', async () => {
    agent = await spawnAgent({ hubUrl: `mqtt://127.0.0.1:${port}`, terminalId: ID, secret: 'any', env: { KF_TELEMETRY_INTERVAL: '0.3' } });
    await until(() => of('telemetry').length >= 3, 15_000, 'telemetry');
    expect(of('presence')[0]).toMatchObject({ state: 'online', connSeq: 1 });
    for (const m of seen.filter((x) => x.topic.endsWith('/telemetry'))) expect(parsePayload('telemetry', m.payload).ok).toBe(true);

    const ping = (id: string) =>
      sub!.publishAsync(
        topicFor(ID, 'commands'),
        JSON.stringify({ v: 1, id, name: 'ping', args: {}, issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString() }),
        { qos: 1 },
      );
    await ping('before');
    await until(() => of('commands/result').find((r) => r.id === 'before'), 10_000, 'ping before');

    await stopMosquitto();
    await new Promise((r) => setTimeout(r, 1500));
    await startMosquitto();
    await until(() => sub!.connected, 10_000, 'observer back');
    await agent.waitForLog((l) => l.msg === 'connected to hub' && l.connSeq !== 1, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    await ping('after');
    const after = await until(() => of('commands/result').find((r) => r.id === 'after'), 10_000, 'ping after restart');
    expect(after.status).toBe('ok');
    // one result per command, one stream, contiguous. (A broker killed between forwarding a message and the agent
    // reading its PUBACK makes the agent send it again: at-least-once, same seq, which the hub stores once.)
    const bySeq = new Map(of('commands/result').map((r) => [r.seq, r.id]));
    expect([...bySeq.keys()].sort()).toEqual([1, 2]);
    expect([...bySeq.values()].sort()).toEqual(['after', 'before']);
  }, 60_000);
});
