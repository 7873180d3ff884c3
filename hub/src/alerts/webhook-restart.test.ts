/**
 * Webhook deliveries are rows: a receiver that is down while the hub stops still gets the change after the restart.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestHub, until, type TestHub } from '../test-support.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-webhook-restart-'));
let hub: TestHub | null = null;
let server: http.Server | null = null;

afterAll(async () => {
  await hub?.stop();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('webhook across a restart', () => {
  it('a delivery that failed before the hub stopped is sent after it starts again', async () => {
    // a port nobody listens on yet: the first attempt is refused
    server = http.createServer();
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server!.close(() => r()));
    server = null;

    const opts = { alerts: { evaluateMs: 600_000, startGraceMs: 3_600_000, webhookBackoffMs: 100 } };
    hub = await startTestHub(opts, dir);
    const created = await hub.api('/api/v1/webhooks', { method: 'POST', json: { url: `http://127.0.0.1:${port}/duty`, secret: 'restart-secret-0123456789' } });
    expect(created.status).toBe(201);
    const { id: hookId } = (await created.json()) as { id: number };
    await hub.registry.createNode({ id: 'GZ', name: { zh: 'GZ', en: 'GZ' } });
    await hub.registry.createNode({ id: 'GZ-W', name: { zh: 'W', en: 'W' } });
    await hub.registry.createNode({ id: 'GZ-W-001', name: { zh: 'W1', en: 'W1' } });
    const now = Date.now();
    const alertId = (await hub.alerts.store.insertAlert({ openKey: 'node:GZ-W-001|station-service-lost', subjectKind: 'node', subjectId: 'GZ-W-001', nodeId: 'GZ-W-001', rule: 'station-service-lost', severity: 'critical', title: 'GZ-W-001 cannot offer: ID card application', details: '{}', at: now, dueAt: now + 900_000 }))!;
    await hub.alerts.engine.note(alertId, 'tech-li', 'checking');
    const failedOnce = await until(async () => {
      const d = (await (await hub!.api(`/api/v1/webhooks/${hookId}/deliveries`)).json()) as { items: { status: string; attempts: number; lastError: string | null }[] };
      return d.items[0] && d.items[0].attempts >= 1 ? d.items[0] : null;
    });
    expect(failedOnce).toMatchObject({ status: 'pending' });
    expect(failedOnce!.lastError).toMatch(/ECONNREFUSED|fetch failed/);
    await hub.stop();
    hub = null;

    const got: { event: string; body: string }[] = [];
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        got.push({ event: String(req.headers['x-kf-event']), body });
        res.end();
      });
    });
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', () => r()));
    hub = await startTestHub(opts, dir);
    await until(() => got.length >= 1, 10_000);
    expect(got[0]!.event).toBe('note');
    expect(JSON.parse(got[0]!.body)).toMatchObject({ event: 'alert.note', alert: { id: alertId, subject: { kind: 'node', id: 'GZ-W-001' } } });
    const d = (await (await hub.api(`/api/v1/webhooks/${hookId}/deliveries`)).json()) as { items: { status: string }[] };
    expect(d.items[0]?.status).toBe('delivered');
  }, 30_000);
});
