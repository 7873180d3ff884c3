/**
 * The agent as an operator runs it: a wrong config stops it with a message naming the key; the kiosk app's local
 * API on a real port holds restart-app during a citizen session; restart-agent delivers its result, then exits
 * cleanly for systemd to restart it. Broker: mosquitto (any standard broker).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicFor } from '@kiosk-fleet/protocol';
import { AGENT_BIN, REPO_ROOT, spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { freePort } from '../helpers/reliability-util.ts';

const ID = 'GZ-TH-010-03';
let port: number;
let broker: ChildProcess;
let sub: MqttClient;
const seen: { topic: string; payload: string }[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-agent-cli-'));
const agents: AgentProcess[] = [];

async function until<T>(fn: () => T | undefined | null | false, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function run(env: Record<string, string>): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [AGENT_BIN, 'run'], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

const results = () => seen.filter((m) => m.topic === topicFor(ID, 'commands/result')).map((m) => JSON.parse(m.payload) as Record<string, unknown>);
const command = (id: string, name: string, args: Record<string, unknown> = {}) =>
  sub.publishAsync(
    topicFor(ID, 'commands'),
    JSON.stringify({ v: 1, id, name, args, issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString() }),
    { qos: 1 },
  );

beforeAll(async () => {
  port = await freePort();
  broker = spawn('/usr/sbin/mosquitto', ['-p', String(port)], { stdio: 'ignore' });
  // mosquitto needs a moment to listen
  for (let i = 0; ; i++) {
    try {
      sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'cli-observer' });
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  sub.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString() }));
  await sub.subscribeAsync('kf/v1/t/#', { qos: 1 });
}, 30_000);

afterAll(async () => {
  for (const a of agents) await a.stop().catch(() => undefined);
  await sub?.endAsync(true);
  broker?.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('kiosk-fleet-agent run', () => {
  it('a wrong config stops it with exit code 2 and a message naming the key', () => {
    const secret = path.join(tmp, 'secret');
    fs.writeFileSync(secret, 's\n');
    const base = { KF_TERMINAL_ID: ID, KF_SECRET_FILE: secret, KF_AGENT_DATA_DIR: path.join(tmp, 'd') };
    const badPort = run({ ...base, KF_LOCAL_API_PORT: 'seventy' });
    expect(badPort.status).toBe(2);
    expect(badPort.stderr).toContain('KF_LOCAL_API_PORT');
    const badUrl = run({ ...base, KF_HUB_URL: 'http://hub:8080' });
    expect(badUrl.status).toBe(2);
    expect(badUrl.stderr).toContain('KF_HUB_URL');
    const noSecret = run({ ...base, KF_SECRET_FILE: path.join(tmp, 'missing') });
    expect(noSecret.status).toBe(2);
    expect(noSecret.stderr).toContain('KF_SECRET_FILE');
    const notAKey = path.join(tmp, 'not-a-key.pem');
    fs.writeFileSync(notAKey, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
    const badKey = run({ ...base, KF_UPDATE_PUBKEY: notAKey });
    expect(badKey.status).toBe(2);
    expect(badKey.stderr).toContain('KF_UPDATE_PUBKEY');
    const noId = run({ KF_SECRET_FILE: secret });
    expect(noId.status).toBe(2);
    expect(noId.stderr).toContain('terminalId');
  }, 60_000);

  it('local API: restart-app waits for the citizen session; restart-agent answers, then exits cleanly', async () => {
    const apiPort = await freePort();
    const marker = path.join(tmp, 'app-restarted');
    const agent = await spawnAgent({
      hubUrl: `mqtt://127.0.0.1:${port}`,
      terminalId: ID,
      secret: 'x',
      env: {
        KF_LOCAL_API_PORT: String(apiPort),
        KF_RESTART_APP_COMMAND: JSON.stringify(['/bin/sh', '-c', `touch ${marker}`]),
        KF_TELEMETRY_INTERVAL: '60',
        // as under systemd: restart-agent exits and lets the service manager start it again
        INVOCATION_ID: 'test',
      },
    });
    agents.push(agent);
    const api = (p: string, body: unknown = {}) => fetch(`http://127.0.0.1:${apiPort}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await api('/v1/heartbeat', { version: '3.2.1' })).status).toBe(200);
    expect((await api('/v1/session/begin')).status).toBe(200);
    await command('r-app', 'restart-app');
    await new Promise((r) => setTimeout(r, 1000));
    expect(results().find((r) => r.id === 'r-app')).toBeUndefined();
    expect(fs.existsSync(marker)).toBe(false);
    expect((await api('/v1/session/end')).status).toBe(200);
    const done = await until(() => results().find((r) => r.id === 'r-app'), 10_000, 'restart-app result');
    expect(done).toMatchObject({ status: 'ok', result: { restarted: true, waitedForSession: true } });
    expect(fs.existsSync(marker)).toBe(true);

    const exited = new Promise<number | null>((resolve) => agent.proc.once('exit', (code) => resolve(code)));
    await command('r-agent', 'restart-agent');
    expect(await exited).toBe(0);
    expect(results().find((r) => r.id === 'r-agent')).toMatchObject({ status: 'ok', result: { restarting: true } });
    const presence = seen.filter((m) => m.topic === topicFor(ID, 'presence')).map((m) => JSON.parse(m.payload) as Record<string, unknown>);
    expect(presence.at(-1)).toMatchObject({ state: 'offline', reason: 'clean' });
  }, 60_000);
});
