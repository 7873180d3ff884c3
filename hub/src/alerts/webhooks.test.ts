/**
 * The webhook dispatcher on both engines: deliveries queued in the alert change's transaction (none when it rolls
 * back), POSTed signed with the sealed secret, retried after a 500 with the same delivery id and body, and recorded
 * as a receiver sees them. What a duty system receives must not depend on the engine.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transaction } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createLogger } from '../log.ts';
import { until } from '../test-support.ts';
import { createAlertStore, type AlertStore } from './store.ts';
import { sign, WebhookDispatcher } from './webhooks.ts';

const SECRET = 'whsec-0123456789abcdef';

describe.each(TEST_ENGINES)('alert webhooks on %s', (kind) => {
  let t: TestEngine;
  let store: AlertStore;
  let server: http.Server;
  let base: string;
  let dispatcher: WebhookDispatcher | null = null;
  const got: { url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let failNext = 0;

  beforeEach(async () => {
    t = await openTestEngine(kind);
    store = createAlertStore(t.engine);
    got.length = 0;
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        got.push({ url: req.url ?? '', headers: req.headers, body });
        res.statusCode = failNext-- > 0 ? 500 : 200;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await dispatcher?.close();
    dispatcher = null;
    await new Promise<void>((r) => server.close(() => r()));
    await t.close();
  });

  it('queues in the transaction, signs, retries a 500 with the same delivery and body, and records it delivered', async () => {
    const hook = await store.addWebhook({ url: `${base}/duty`, secret: SECRET, createdBy: 'admin', createdAt: Date.now() });
    dispatcher = new WebhookDispatcher(store, createLogger('silent'), null, { backoffMs: 20, maxAttempts: 3 });
    const d = dispatcher;

    // a change that rolls back queues nothing
    await transaction(t.engine, async (tx) => {
      expect(await d.enqueue([{ alertId: 1, event: 'opened', payload: () => ({ event: 'alert.opened', id: 1 }) }], tx)).toBe(1);
      throw new Error('rolled back');
    }).catch(() => undefined);
    expect(await store.nextDeliveryAt()).toBeNull();

    failNext = 1;
    await transaction(t.engine, (tx) =>
      d.enqueue(
        [
          { alertId: 2, event: 'opened', payload: () => ({ event: 'alert.opened', title: '读卡器故障 reader fault' }) },
          { alertId: 2, event: 'acknowledged', payload: () => ({ event: 'alert.acknowledged' }) },
        ],
        tx,
      ),
    );
    d.kick();
    await until(() => got.length >= 3 || null, 10_000);
    // the acknowledgement may go out between the first attempt and the retry: they are told apart by delivery
    const [first, retry] = got.filter((g) => g.headers['x-kf-event'] === 'opened');
    expect(first!.headers['x-kf-delivery']).toBe(retry!.headers['x-kf-delivery']);
    // a receiver drops repeats by the idempotency key: the same on every attempt of a delivery (issue 19)
    expect(first!.headers['idempotency-key']).toBe(first!.headers['x-kf-delivery']);
    expect(retry!.headers['idempotency-key']).toBe(first!.headers['idempotency-key']);
    expect(retry!.body).toBe(first!.body);
    expect(JSON.parse(first!.body)).toEqual({ event: 'alert.opened', title: '读卡器故障 reader fault' });
    expect(got.filter((g) => g.headers['x-kf-event'] === 'acknowledged')).toHaveLength(1);
    for (const g of got) {
      expect(g.url).toBe('/duty');
      expect(g.headers['x-kf-signature']).toBe(sign(SECRET, String(g.headers['x-kf-timestamp']), g.body));
    }
    const rows = await until(async () => {
      const r = await store.deliveries(hook.id, 10);
      return r.every((x) => x.status === 'delivered') ? r : null;
    }, 10_000);
    expect(rows!.map((r) => [r.event, r.attempts, r.lastStatus, r.lastError])).toEqual([['acknowledged', 1, 200, null], ['opened', 2, 200, null]]);
    expect(await store.deliveryCounts(hook.id)).toEqual([{ status: 'delivered', n: 2 }]);
  });

  it('two hubs dispatching the same queue POST each delivery once', async () => {
    await store.addWebhook({ url: `${base}/duty`, secret: SECRET, createdBy: 'admin', createdAt: Date.now() });
    const [a, b] = [0, 1].map(() => new WebhookDispatcher(createAlertStore(t.engine), createLogger('silent'), null, { backoffMs: 20 }));
    try {
      await a!.enqueue(Array.from({ length: 8 }, (_, i) => ({ alertId: i + 1, event: 'opened', payload: () => ({ n: i }) })));
      const [x, y] = await Promise.all([a!.runDue(), b!.runDue()]);
      expect(x + y).toBe(8);
      const ids = got.map((g) => g.headers['x-kf-delivery']);
      expect(ids).toHaveLength(8);
      expect(new Set(ids).size).toBe(8);
    } finally {
      await a!.close();
      await b!.close();
    }
  });

  it('a hub that does not lead the webhooks job sends nothing; once it leads, the queue goes out', async () => {
    await store.addWebhook({ url: `${base}/duty`, secret: SECRET, createdBy: 'admin', createdAt: Date.now() });
    let leads = false;
    dispatcher = new WebhookDispatcher(store, createLogger('silent'), null, { backoffMs: 20 }, Date.now, () => leads);
    await dispatcher.enqueue([{ alertId: 7, event: 'opened', payload: () => ({ n: 7 }) }]);
    dispatcher.kick();
    dispatcher.poll();
    expect(await dispatcher.runDue()).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([]);
    leads = true;
    dispatcher.poll();
    await until(() => got.length === 1 || null, 10_000);
    expect(got[0]!.headers['idempotency-key']).toBe(got[0]!.headers['x-kf-delivery']);
  });

  it('a receiver that stays down is given up after the last attempt; a deleted webhook’s deliveries go with it', async () => {
    const hook = await store.addWebhook({ url: `${base}/down`, secret: SECRET, createdBy: 'admin', createdAt: Date.now() });
    const other = await store.addWebhook({ url: `${base}/other`, secret: SECRET, createdBy: 'admin', createdAt: Date.now() });
    dispatcher = new WebhookDispatcher(store, createLogger('silent'), null, { backoffMs: 20, maxAttempts: 2 });
    failNext = 1000;
    await dispatcher.enqueue([{ alertId: 3, event: 'escalated', payload: () => ({ event: 'alert.escalated' }) }]);
    await store.deleteWebhook(other.id);
    dispatcher.kick();
    const [failed] = (await until(async () => {
      const r = await store.deliveries(hook.id, 10);
      return r[0]?.status === 'failed' ? r : null;
    }, 10_000))!;
    expect(failed).toMatchObject({ attempts: 2, lastStatus: 500, lastError: 'HTTP 500' });
    expect(got.filter((g) => g.url === '/other')).toEqual([]);
    expect(await store.nextDeliveryAt()).toBeNull();
  });
});
