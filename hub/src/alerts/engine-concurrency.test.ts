/**
 * The engine's guarantees when evaluations interleave, on both engines: two engines on one database (two hubs on
 * one PostgreSQL, or a run racing itself) open a fault once, resolve and escalate an alert once, and write its
 * lifecycle in the order it happened. On SQLite the one writer serialises the transactions; on PostgreSQL they run
 * side by side and the unique open key, ON CONFLICT DO NOTHING and the row locks decide (store.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createLogger } from '../log.ts';
import { AlertEngine, type EvaluateResult } from './engine.ts';
import { WebhookDispatcher } from './webhooks.ts';
import { settingsFrom } from './service.ts';
import { createAlertStore, type AlertStore } from './store.ts';
import { addTerminal, exec, T0 } from './test-fixtures.ts';

const MIN = 60_000;
const STATION = 'GZ-T-001';
const TERMINALS = ['GZ-T-001-01', 'GZ-T-001-02', 'GZ-T-001-03', 'GZ-T-001-04', 'GZ-T-001-05'];

describe.each(TEST_ENGINES)('alert engine on %s under concurrent evaluation', (kind) => {
  let t: TestEngine;
  let store: AlertStore;
  let clock: number;

  /** One hub's engine on the shared database. */
  function hubEngine(): AlertEngine {
    const hubStore = createAlertStore(t.engine);
    // queues webhook deliveries in the change's transaction, as the service does (never sent here)
    const webhooks = new WebhookDispatcher(hubStore, createLogger('silent'), null);
    return new AlertEngine({
      engine: t.engine,
      store: hubStore,
      beforeCommit: async (changes, tx) => {
        await webhooks.enqueue(changes.map((ch) => ({ alertId: ch.alert.id, event: ch.event, payload: () => ({ event: `alert.${ch.event}` }) })), tx);
      },
      log: createLogger('silent'),
      now: () => clock,
      settings: () => settingsFrom(undefined),
      drift: () => ({ view: null, graceEndsAt: null }),
      districtAdmins: async () => ['admin-gz-t'],
    });
  }

  const fault = (since: number) => JSON.stringify({ idCardReader: { status: 'fault', since, code: 'E_NO_RESPONSE' } });
  const setPeripherals = (id: string, json: string) => exec(t.engine, 'UPDATE terminal_state SET peripherals = ? WHERE terminal_id = ?', json, id);
  const openFaults = () => store.list({ scopes: [], states: ['open', 'acknowledged', 'assigned'], rule: 'peripheral-fault', sort: 'newest', offset: 0, limit: 100 });
  const actions = async (id: number) => (await store.history(id)).map((h) => h.action);
  const sum = (rs: EvaluateResult[], k: keyof EvaluateResult) => rs.reduce((n, r) => n + r[k], 0);

  beforeEach(async () => {
    t = await openTestEngine(kind);
    store = createAlertStore(t.engine);
    clock = T0;
    for (const id of TERMINALS) await addTerminal(t.engine, id, STATION, { peripherals: fault(clock - 10 * MIN) });
  });
  afterEach(async () => {
    await t.close();
  });

  it('two hubs evaluating the same faults at once open each of them once, with one "opened" and one webhook delivery each', async () => {
    const hook = await store.addWebhook({ url: 'http://127.0.0.1:9/duty', secret: 'whsec-0123456789abcdef', createdBy: 'admin', createdAt: clock });
    const [a, b] = [hubEngine(), hubEngine()];
    const results = await Promise.all([a.evaluate(), b.evaluate(), a.run(), b.run(), a.evaluate(), b.evaluate()]);
    const open = await openFaults();
    expect(open.map((x) => x.subjectId).sort()).toEqual(TERMINALS);
    expect(sum(results, 'opened')).toBe(TERMINALS.length);
    for (const x of open) expect(await actions(x.id)).toEqual(['opened']);
    const deliveries = await store.deliveries(hook.id, 100);
    expect(deliveries.map((d) => [d.alertId, d.event]).sort()).toEqual(open.map((x) => [x.id, 'opened']).sort());
  });

  it('runs of one engine started together take turns: one alert per fault', async () => {
    const e = hubEngine();
    const results = await Promise.all([e.evaluate(), e.run(), e.run(), e.evaluate()]);
    expect(sum(results, 'opened')).toBe(TERMINALS.length);
    expect(await openFaults()).toHaveLength(TERMINALS.length);
    expect((await e.run()).opened).toBe(0);
  });

  it('a hand resolve racing a run that sees the recovery resolves each alert once, and the history stays in order', async () => {
    const [a, b] = [hubEngine(), hubEngine()];
    await a.evaluate();
    const open = await openFaults();
    expect(open).toHaveLength(TERMINALS.length);
    for (const id of TERMINALS) await setPeripherals(id, JSON.stringify({ idCardReader: { status: 'ok' } }));
    clock += MIN;
    const [run, ...manual] = await Promise.allSettled([a.evaluate(), ...open.map((x) => b.resolve(x.id, 'tech-li', 'reseated the reader'))]);
    expect(run.status).toBe('fulfilled');
    const byHand = manual.filter((m) => m.status === 'fulfilled').length;
    for (const m of manual) if (m.status === 'rejected') expect(String(m.reason)).toMatch(/already resolved/);
    expect((run as PromiseFulfilledResult<EvaluateResult>).value.resolved + byHand).toBe(TERMINALS.length);
    for (const x of open) {
      expect(await actions(x.id)).toEqual(['opened', 'resolved']);
      const done = (await store.alert(x.id))!;
      expect(done).toMatchObject({ state: 'resolved', openKey: null });
      expect(done.resolution === 'manual' ? done.resolutionNote : 'recovery').toBe(done.resolution === 'manual' ? 'reseated the reader' : 'recovery');
    }
    expect(await openFaults()).toEqual([]);
  });

  it('a fault that persists after a hand resolve reopens once, as a new alert, even with two hubs evaluating', async () => {
    const [a, b] = [hubEngine(), hubEngine()];
    await a.evaluate();
    const [first] = await store.list({ scopes: [], subject: TERMINALS[0], rule: 'peripheral-fault', sort: 'newest', offset: 0, limit: 10 });
    await b.resolve(first!.id, 'tech-li', 'rebooted');
    clock += MIN;
    const results = await Promise.all([a.evaluate(), b.evaluate()]);
    expect(sum(results, 'opened')).toBe(1);
    const all = await store.list({ scopes: [], subject: TERMINALS[0], rule: 'peripheral-fault', sort: 'newest', offset: 0, limit: 10 });
    expect(all.map((x) => x.state)).toEqual(['open', 'resolved']);
    expect(all[0]!.id).toBeGreaterThan(first!.id);
  });

  it('a run whose transaction fails commits nothing and leaves what it took to the next run', async () => {
    let fail = true;
    const e = new AlertEngine({
      engine: t.engine,
      store,
      log: createLogger('silent'),
      now: () => clock,
      settings: () => settingsFrom(undefined),
      drift: () => ({ view: null, graceEndsAt: null }),
      beforeCommit: () => {
        if (fail) throw new Error('connection lost');
      },
    });
    for (const id of TERMINALS) await setPeripherals(id, JSON.stringify({ idCardReader: { status: 'ok' } }));
    await e.evaluate();
    for (const id of TERMINALS) {
      await setPeripherals(id, fault(clock - 10 * MIN));
      e.markDirty(id);
    }
    await expect(e.run()).rejects.toThrow(/connection lost/);
    expect(await openFaults()).toEqual([]);
    expect(e.pending).toBeGreaterThan(0);
    fail = false;
    expect((await e.run()).opened).toBe(TERMINALS.length);
  });

  it('two acknowledgements at once: one is recorded, the other is told the alert was acknowledged already', async () => {
    const [a, b] = [hubEngine(), hubEngine()];
    await a.evaluate();
    for (const x of await openFaults()) {
      const outcomes = await Promise.allSettled([a.acknowledge(x.id, 'tech-li'), b.acknowledge(x.id, 'tech-wang')]);
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      expect(String(lost.reason)).toMatch(/already acknowledged/);
      expect(await actions(x.id)).toEqual(['opened', 'acknowledged']);
    }
  });

  it('two hubs finding the same alerts overdue escalate each once, one webhook delivery each', async () => {
    const [a, b] = [hubEngine(), hubEngine()];
    await a.evaluate();
    const open = await openFaults();
    clock = open[0]!.dueAt;
    const hook = await store.addWebhook({ url: 'http://127.0.0.1:9/duty', secret: 'whsec-0123456789abcdef', createdBy: 'admin', createdAt: clock });
    const results = await Promise.all([a.evaluate(), b.evaluate()]);
    expect(sum(results, 'escalated')).toBe(TERMINALS.length);
    expect((await store.deliveries(hook.id, 100)).map((d) => d.event)).toEqual(TERMINALS.map(() => 'escalated'));
    for (const x of open) {
      expect(await actions(x.id)).toEqual(['opened', 'escalated']);
      expect(await store.alert(x.id)).toMatchObject({ escalatedAt: clock, escalatedTo: 'GZ-T' });
    }
    const [h] = (await store.history(open[0]!.id)).filter((r) => r.action === 'escalated');
    expect(JSON.parse(h!.data!)).toMatchObject({ to: 'GZ-T', admins: ['admin-gz-t'] });
  });
});
