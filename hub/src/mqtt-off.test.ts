/**
 * Issue 20, item 13a: with TLS configured, KF_MQTT_PORT=off leaves no plain MQTT listener; terminals still connect
 * over TLS and over WebSocket.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parseConfig } from './config.ts';
import { startHub, type Hub } from './hub.ts';
import { createLogger } from './log.ts';

let dir: string;
let hub: Hub | null = null;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-mqtt-off-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
});
afterAll(async () => {
  await hub?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const tcpServers = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;

test('KF_MQTT_PORT=off beside TLS: no plain MQTT listener; MQTT over TLS and WSS still work', async () => {
  const config = parseConfig({
    KF_BIND: '127.0.0.1', KF_MQTT_PORT: 'off', KF_MQTTS_PORT: '0', KF_HTTP_PORT: '0', KF_DATA_DIR: path.join(dir, 'data'),
    KF_ADMIN_TOKEN: 'test-admin-token-0123456789', KF_ADMIN_PASSWORD: 'test-admin-password-0123', KF_LOG_LEVEL: 'silent',
    KF_TLS_CERT: path.join(dir, 'cert.pem'), KF_TLS_KEY: path.join(dir, 'key.pem'),
  });
  const before = tcpServers();
  hub = await startHub(config, { log: createLogger('silent') });
  expect(hub.mqttPort).toBeNull();
  // Two listeners: MQTT over TLS and HTTPS (with wss:// at /mqtt); a plain one would make three.
  expect(tcpServers() - before).toBe(2);
  for (const id of ['GZ', 'GZ-T', 'GZ-T-001']) await hub.registry.createNode({ id, name: { zh: id, en: id } });
  const t = await hub.registry.register({ id: 'GZ-T-001-01', type: 'id-card', serial: 'SN1', station: 'GZ-T-001' }, 'test');
  const ca = fs.readFileSync(path.join(dir, 'cert.pem'));
  for (const url of [`mqtts://127.0.0.1:${hub.mqttsPort}`, `wss://127.0.0.1:${hub.httpPort}/mqtt`]) {
    const c = await mqtt.connectAsync(url, { clientId: t.id, username: t.id, password: t.secret, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ca });
    expect(c.connected).toBe(true);
    await c.endAsync();
  }
}, 60_000);
