/** Under TLS (KF_TLS_CERT/KEY) the session and CSRF cookies are marked Secure. Real HTTPS, self-signed certificate. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ADMIN_PASSWORD, startTestHub, type TestHub } from '../test-support.ts';

let hub: TestHub;
let certDir: string;

beforeAll(async () => {
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-tls-cookie-'));
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem')],
    { stdio: 'ignore' },
  );
  hub = await startTestHub({ tlsCert: path.join(certDir, 'cert.pem'), tlsKey: path.join(certDir, 'key.pem'), mqttsPort: 0 });
}, 30_000);
afterAll(async () => {
  await hub?.stop();
  fs.rmSync(certDir, { recursive: true, force: true });
});

test('login over HTTPS sets Secure, HttpOnly, SameSite=Strict cookies', async () => {
  const body = JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD });
  const res = await new Promise<{ status: number; cookies: string[] }>((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: hub.httpPort, path: '/api/v1/auth/login', method: 'POST', ca: fs.readFileSync(path.join(certDir, 'cert.pem')), headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (r) => {
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode ?? 0, cookies: r.headers['set-cookie'] ?? [] }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  expect(res.status).toBe(200);
  const session = res.cookies.find((c) => c.startsWith('kf_session='))!;
  expect(session).toMatch(/;\s*Secure/i);
  expect(session).toMatch(/HttpOnly/i);
  expect(session).toMatch(/SameSite=Strict/i);
  expect(res.cookies.find((c) => c.startsWith('kf_csrf='))).toMatch(/;\s*Secure/i);
});
