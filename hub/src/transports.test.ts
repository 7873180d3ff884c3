import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { queryNumber } from './db/test-query.ts';
import { startTestHub, telemetry, topicFor, type TestHub } from './test-support.ts';

let certDir: string;
let hub: TestHub;
let t: { id: string; secret: string };

beforeAll(async () => {
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem'),
  ], { stdio: 'ignore' });
  hub = await startTestHub({ tlsCert: path.join(certDir, 'cert.pem'), tlsKey: path.join(certDir, 'key.pem'), mqttsPort: 0 });
  // The HTTP port speaks HTTPS here, so register through the registry rather than the test helper's plain fetch.
  for (const id of ['GZ', 'GZ-T', 'GZ-T-001']) await hub.registry.createNode({ id, name: { zh: id, en: id } });
  t = await hub.registry.register({ id: 'GZ-T-001-01', type: 'id-card', serial: 'SN1', station: 'GZ-T-001' }, 'test');
});
afterAll(async () => {
  await hub.stop();
  fs.rmSync(certDir, { recursive: true, force: true });
});

const count = () => queryNumber(hub.engine, 'SELECT count(*) AS n FROM telemetry');

describe('transports', () => {
  test('MQTT over TLS with the hub certificate', async () => {
    expect(hub.mqttsPort).toBeGreaterThan(0);
    const before = await count();
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${hub.mqttsPort}`, {
      clientId: t.id, username: t.id, password: t.secret, protocolVersion: 4, reconnectPeriod: 0,
      ca: fs.readFileSync(path.join(certDir, 'cert.pem')),
    });
    await c.publishAsync(topicFor(t.id, 'telemetry'), telemetry(1), { qos: 1 });
    expect(await count()).toBe(before + 1);
    await c.endAsync();
  });

  test('MQTT over WebSocket at /mqtt on the HTTPS port, with the same auth', async () => {
    const ca = fs.readFileSync(path.join(certDir, 'cert.pem'));
    const before = await count();
    const c = await mqtt.connectAsync(`wss://127.0.0.1:${hub.httpPort}/mqtt`, {
      clientId: t.id, username: t.id, password: t.secret, protocolVersion: 4, reconnectPeriod: 0, ca,
    });
    await c.publishAsync(topicFor(t.id, 'telemetry'), telemetry(2), { qos: 1 });
    expect(await count()).toBe(before + 1);
    await c.endAsync();
    await expect(
      mqtt.connectAsync(`wss://127.0.0.1:${hub.httpPort}/mqtt`, { clientId: t.id, username: t.id, password: 'nope', protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000, ca }),
    ).rejects.toThrow(/Not authorized/i);
    expect(await hub.metric('kf_auth_failures_total', { reason: 'bad-credentials' })).toBe(1);
  });

  test('the API is served over HTTPS with the same certificate', async () => {
    const https = await import('node:https');
    const status = await new Promise<number>((resolve, reject) => {
      https
        .get(`https://127.0.0.1:${hub.httpPort}/api/v1/health`, { ca: fs.readFileSync(path.join(certDir, 'cert.pem')) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject);
    });
    expect(status).toBe(200);
  });
});
