import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePayload, topicFor } from '@kiosk-fleet/protocol';
import type { Agent } from './agent.ts';
import { MemoryOutbox } from './outbox/memory.ts';
import { MapProbeCatalog } from './peripherals/probe-catalog.ts';
import { SimulatedDriver } from './peripherals/simulated.ts';
import { startBroker, subscriber, waitFor, type TestBroker } from './test-support/broker.ts';
import { tempDir, testAgent } from './test-support/agent.ts';

const ID = 'GZ-YX-001-01';
const teardown: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const t of teardown.splice(0).reverse()) await t();
});

async function setup(opts: { passwords?: Record<string, string> } = {}): Promise<{ broker: TestBroker; sub: Awaited<ReturnType<typeof subscriber>> }> {
  const broker = await startBroker(opts);
  teardown.push(() => broker.close());
  const subUrl = broker.url;
  const sub = opts.passwords ? null : await subscriber(subUrl, 'kf/v1/t/#');
  if (sub) teardown.push(() => sub.close());
  return { broker, sub: sub as Awaited<ReturnType<typeof subscriber>> };
}

function track(agent: Agent): Agent {
  teardown.push(() => agent.stop());
  return agent;
}

function of(messages: { topic: string; payload: string }[], kind: Parameters<typeof topicFor>[1]) {
  return messages.filter((m) => m.topic === topicFor(ID, kind)).map((m) => JSON.parse(m.payload) as Record<string, unknown>);
}

describe('agent against a real broker', () => {
  it('publishes online presence, then telemetry that matches the protocol schema', async () => {
    const { broker, sub } = await setup();
    const agent = track(testAgent({ hubUrl: broker.url }));
    await agent.start();
    await waitFor(() => of(sub.messages, 'telemetry').length >= 2, 10_000, 'telemetry');
    const presence = of(sub.messages, 'presence')[0];
    expect(presence).toMatchObject({ state: 'online', bootId: agent.bootId, connSeq: 1, lastExit: { cause: 'first-start' } });
    for (const m of sub.messages.filter((x) => x.topic.endsWith('/telemetry'))) {
      const parsed = parsePayload('telemetry', m.payload);
      expect(parsed.ok, parsed.ok ? '' : parsed.message).toBe(true);
    }
    expect(of(sub.messages, 'telemetry').map((t) => t.seq).slice(0, 2)).toEqual([1, 2]);
  });

  it('a graceful stop publishes offline/clean; a cut connection leaves the will with the same boot id and connSeq', async () => {
    const { broker, sub } = await setup();
    const agent = testAgent({ hubUrl: broker.url });
    await agent.start();
    await waitFor(() => agent.link.connected, 5000, 'connect');
    agent.link.cut({ holdMs: 300 });
    const will = await waitFor(() => of(sub.messages, 'presence').find((p) => p.state === 'offline'), 5000, 'will');
    expect(will).toMatchObject({ reason: 'connection-lost', bootId: agent.bootId, connSeq: 1 });
    await waitFor(() => of(sub.messages, 'presence').find((p) => p.state === 'online' && p.connSeq === 2), 5000, 'reconnect');
    await agent.stop();
    const last = of(sub.messages, 'presence').at(-1);
    expect(last).toMatchObject({ state: 'offline', reason: 'clean', connSeq: 2 });
  });

  it('hub stopped for a while and restarted: every seq arrives, none lost, and commands still reach the agent', async () => {
    const { broker, sub } = await setup();
    const agent = track(testAgent({ hubUrl: broker.url }));
    await agent.start();
    await waitFor(() => of(sub.messages, 'telemetry').length >= 3, 10_000, 'telemetry before');
    await broker.stop();
    // the agent keeps sampling into its outbox while the hub is down
    const before = agent.counters.telemetry;
    await waitFor(() => agent.counters.telemetry >= before + 5, 10_000, 'samples while down');
    await broker.start();
    await sub.client.reconnect();
    await waitFor(() => sub.client.connected, 5000, 'subscriber back');
    await sub.client.subscribeAsync('kf/v1/t/#', { qos: 1 });
    const target = agent.counters.telemetry + 2;
    await waitFor(() => of(sub.messages, 'telemetry').some((t) => (t.seq as number) >= target), 15_000, 'replay');
    const seqs = of(sub.messages, 'telemetry').map((t) => t.seq as number);
    const distinct = [...new Set(seqs)].sort((a, b) => a - b);
    const max = distinct.at(-1) ?? 0;
    // nothing lost: every seq from 1 to the newest is there
    expect(distinct).toEqual(Array.from({ length: max }, (_, i) => i + 1));
    // the samples taken while the hub was down were published only after it came back
    expect(agent.link.stats.connects).toBeGreaterThanOrEqual(2);

    // the new broker has no session for the agent: it must have subscribed again
    const pub = sub.client;
    const now = Date.now();
    await pub.publishAsync(
      topicFor(ID, 'commands'),
      JSON.stringify({ v: 1, id: 'after-restart', name: 'ping', args: {}, issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 60_000).toISOString() }),
      { qos: 1 },
    );
    const result = await waitFor(() => of(sub.messages, 'commands/result').find((r) => r.id === 'after-restart'), 10_000, 'ping result');
    expect(result.status).toBe('ok');
  }, 30_000);

  it('outbox full while the hub is away: the oldest telemetry goes, and every drop is reported, those the report itself caused too', async () => {
    const { broker } = await setup();
    const port = broker.port;
    await broker.stop();
    // about 330 bytes per telemetry sample: room for five or so
    const limits = { maxBytes: 2000, maxAgeMs: 86400_000 };
    const outbox = new MemoryOutbox(limits);
    const agent = track(testAgent({ hubUrl: `mqtt://127.0.0.1:${port}`, outbox, reconnectMinMs: 100, reconnectMaxMs: 200 }));
    await agent.start();
    await waitFor(() => agent.counters.telemetry >= 15, 15_000, 'samples while away');
    // Full to within a few bytes, as a terminal's outbox is after a long outage: the report of the drops, appended
    // when the link returns, pushes out one more sample itself.
    limits.maxBytes = outbox.stats().bytes + 16;
    await broker.start();
    const seen = broker.published;
    const dropEvent = await waitFor(() => of(seen, 'events').find((e) => e.kind === 'outbox.dropped'), 15_000, 'dropped event');
    expect((dropEvent.data as { telemetry: number }).telemetry).toBeGreaterThan(0);
    // events were kept: agent.start is still delivered, seq 1
    expect(of(seen, 'events').some((e) => e.kind === 'agent.start' && e.seq === 1)).toBe(true);
    // Every telemetry sample that never arrived is counted in some sample's `dropped`, and the events say the same:
    // appending the report to the full outbox pushed out more samples, and those are reported too (by the next
    // sample), not left for the next reconnect.
    const telemetrySum = () => of(seen, 'telemetry').reduce((n, t) => n + ((t.dropped as { telemetry: number } | undefined)?.telemetry ?? 0), 0);
    const missing = () => {
      const seqs = new Set(of(seen, 'telemetry').map((t) => t.seq as number));
      return Math.max(0, ...seqs) - seqs.size;
    };
    await waitFor(() => of(seen, 'telemetry').length >= 12 && missing() > 0 && telemetrySum() === missing(), 20_000, 'every drop reported');
    const eventSum = of(seen, 'events')
      .filter((e) => e.kind === 'outbox.dropped')
      .reduce((n, e) => n + (e.data as { telemetry: number }).telemetry, 0);
    expect(eventSum).toBe(telemetrySum());
    // the oldest went: the first telemetry delivered is not seq 1
    expect(Math.min(...of(seen, 'telemetry').map((t) => t.seq as number))).toBeGreaterThan(1);
  }, 40_000);

  it('refused credentials: a clear refusal, then a slow retry rather than a hot loop', async () => {
    const { broker } = await setup({ passwords: { [ID]: 'right' } });
    const agent = track(testAgent({ hubUrl: broker.url, password: 'wrong', reconnectMinMs: 10, reconnectMaxMs: 20, authRetryMs: 1500 }));
    await agent.start();
    await waitFor(() => (broker.refusals.get(ID) ?? 0) >= 1, 5000, 'first refusal');
    await new Promise((r) => setTimeout(r, 2000));
    // with a 10-20 ms reconnect backoff a hot loop would make ~100 attempts in 2 s; the auth retry allows 1-3
    expect(broker.refusals.get(ID) ?? 0).toBeLessThanOrEqual(3);
    expect(agent.link.stats.refused).toBeGreaterThanOrEqual(1);
    expect(agent.link.connected).toBe(false);
  });

  it('reconnects with growing, capped delays while the hub is unreachable', async () => {
    const { broker } = await setup();
    const port = broker.port;
    await broker.stop();
    const agent = track(testAgent({ hubUrl: `mqtt://127.0.0.1:${port}`, reconnectMinMs: 100, reconnectMaxMs: 400 }));
    await agent.start();
    await new Promise((r) => setTimeout(r, 1500));
    // 100, 200, 400, 400... halved at worst by jitter: at most ~9 attempts in 1.5 s, at least 3
    expect(agent.link.stats.attempts).toBeGreaterThanOrEqual(3);
    expect(agent.link.stats.attempts).toBeLessThanOrEqual(10);
  });

  describe('commands', () => {
    async function send(sub: Awaited<ReturnType<typeof subscriber>>, cmd: Record<string, unknown> | string): Promise<void> {
      await sub.client.publishAsync(topicFor(ID, 'commands'), typeof cmd === 'string' ? cmd : JSON.stringify(cmd), { qos: 1 });
    }
    const fresh = (id: string, name: string, args: Record<string, unknown> = {}, ttlMs = 60_000) => ({
      v: 1,
      id,
      name,
      args,
      issuedAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + ttlMs).toISOString(),
    });

    it('round trip: ping, self-test, collect-logs; expired not run; unknown and malformed get errors; each answered once', async () => {
      const { broker, sub } = await setup();
      const reader = new SimulatedDriver();
      reader.set({ status: 'fault', code: 'E_NO_RESPONSE' });
      const agent = track(
        testAgent({
          hubUrl: broker.url,
          defaults: { telemetryInterval: 30, logLevel: 'info', peripherals: { idCardReader: { driver: 'simulated' } } },
          driverFactory: () => reader,
        }),
      );
      await agent.start();
      await waitFor(() => of(sub.messages, 'presence').length, 5000, 'online');
      await send(sub, fresh('c-ping', 'ping'));
      await send(sub, fresh('c-ping', 'ping')); // a redelivery
      await send(sub, fresh('c-self', 'self-test'));
      await send(sub, fresh('c-logs', 'collect-logs', { lines: 5 }));
      await send(sub, { ...fresh('c-old', 'ping'), expiresAt: new Date(Date.now() - 1000).toISOString() });
      await send(sub, fresh('c-what', 'make-coffee'));
      await send(sub, fresh('c-args', 'ping', { loud: true }));
      await send(sub, '{"v":1,"id":"c-bad","name":');
      await send(sub, { v: 1, id: 'c-half', name: 'ping' });
      await send(sub, fresh('c-reboot', 'reboot'));
      const ids = ['c-ping', 'c-self', 'c-logs', 'c-old', 'c-what', 'c-args', 'c-half', 'c-reboot'];
      await waitFor(() => ids.every((id) => of(sub.messages, 'commands/result').some((r) => r.id === id)), 10_000, 'results');
      await new Promise((r) => setTimeout(r, 200));
      const results = of(sub.messages, 'commands/result');
      for (const m of sub.messages.filter((x) => x.topic.endsWith('/commands/result'))) expect(parsePayload('commands/result', m.payload).ok).toBe(true);
      const by = (id: string) => results.filter((r) => r.id === id);
      expect(by('c-ping')).toHaveLength(1);
      expect(by('c-ping')[0]).toMatchObject({ status: 'ok', result: { pong: true, bootId: agent.bootId } });
      expect(by('c-self')[0]).toMatchObject({ status: 'ok', result: { passed: false, failing: ['idCardReader'], peripherals: { idCardReader: { status: 'fault' } } } });
      const logs = by('c-logs')[0] as { status: string; result: { lines: string[] } };
      expect(logs.status).toBe('ok');
      expect(logs.result.lines.length).toBeGreaterThan(0);
      expect(logs.result.lines.length).toBeLessThanOrEqual(5);
      expect(by('c-old')[0]).toMatchObject({ status: 'expired' });
      expect(by('c-what')[0]).toMatchObject({ status: 'error', error: { code: 'E_UNKNOWN_COMMAND' } });
      expect(by('c-args')[0]).toMatchObject({ status: 'error', error: { code: 'E_BAD_ARGS' } });
      expect(by('c-half')[0]).toMatchObject({ status: 'error', error: { code: 'E_MALFORMED' } });
      expect(by('c-reboot')[0]).toMatchObject({ status: 'error', error: { code: 'E_NOT_CONFIGURED' } });
      expect(agent.counters.malformed).toBe(2);
      // result seqs are contiguous
      expect(results.map((r) => r.seq)).toEqual(results.map((_, i) => i + 1));
    });

    it('restart-app waits for the citizen session to end unless forced', async () => {
      const { broker, sub } = await setup();
      const agent = track(testAgent({ hubUrl: broker.url, restartAppCommand: ['true'], monitorApp: true }));
      await agent.start();
      await waitFor(() => of(sub.messages, 'presence').length, 5000, 'online');
      agent.appHeartbeat('3.2.1');
      agent.beginSession();
      await send(sub, fresh('c-restart', 'restart-app'));
      await new Promise((r) => setTimeout(r, 700));
      expect(of(sub.messages, 'commands/result').find((r) => r.id === 'c-restart')).toBeUndefined();
      await send(sub, fresh('c-force', 'restart-app', { force: true }));
      const forced = await waitFor(() => of(sub.messages, 'commands/result').find((r) => r.id === 'c-force'), 5000, 'forced');
      expect(forced).toMatchObject({ status: 'ok', result: { restarted: true, forced: true } });
      agent.endSession();
      const waited = await waitFor(() => of(sub.messages, 'commands/result').find((r) => r.id === 'c-restart'), 5000, 'after session');
      expect(waited).toMatchObject({ status: 'ok', result: { restarted: true, waitedForSession: true } });
    });

    it('reboot, when configured: the result is delivered first, then the agent hands over and runs the command', async () => {
      const { broker, sub } = await setup();
      const t = tempDir('kf-reboot-');
      teardown.push(t.cleanup);
      const marker = path.join(t.dir, 'rebooted');
      const requested: string[] = [];
      const outbox = new MemoryOutbox({ maxBytes: 1e7, maxAgeMs: 1e9 });
      const agent = track(
        testAgent({
          hubUrl: broker.url,
          outbox,
          rebootCommand: ['/bin/sh', '-c', `touch ${marker}`],
          onRestartRequested: (what) => {
            // by now the broker acknowledged the result (the hub acknowledges only what it committed)
            const unacked = outbox.pending(0, 100).some((e) => e.kind === 'commands/result');
            requested.push(`${what}:${unacked ? 'unacknowledged' : 'acknowledged'}`);
          },
        }),
      );
      await agent.start();
      await waitFor(() => of(sub.messages, 'presence').length, 5000, 'online');
      await send(sub, fresh('c-boot', 'reboot'));
      await waitFor(() => existsSync(marker), 10_000, 'reboot command ran');
      expect(requested).toEqual(['reboot:acknowledged']);
      const result = await waitFor(() => of(sub.messages, 'commands/result').find((r) => r.id === 'c-boot'), 5000, 'result');
      expect(result).toMatchObject({ status: 'ok', result: { rebooting: true } });
    });

    it('restart-app not run when the session outlasts the command', async () => {
      const { broker, sub } = await setup();
      const agent = track(testAgent({ hubUrl: broker.url, restartAppCommand: ['true'], monitorApp: true }));
      await agent.start();
      await waitFor(() => of(sub.messages, 'presence').length, 5000, 'online');
      agent.appHeartbeat();
      agent.beginSession();
      await send(sub, fresh('c-short', 'restart-app', {}, 500));
      const r = await waitFor(() => of(sub.messages, 'commands/result').find((x) => x.id === 'c-short'), 5000, 'result');
      expect(r).toMatchObject({ status: 'error', error: { code: 'E_SESSION_ACTIVE' } });
    });
  });

  describe('config/desired', () => {
    it('applies a higher version (interval, log level), ignores a stale one, rejects an unusable one', async () => {
      const { broker, sub } = await setup();
      const agent = track(testAgent({ hubUrl: broker.url, defaults: { telemetryInterval: 30, logLevel: 'info', peripherals: {} } }));
      await agent.start();
      await waitFor(() => of(sub.messages, 'presence').length, 5000, 'online');
      const desired = (version: number, config: Record<string, unknown>) =>
        sub.client.publishAsync(topicFor(ID, 'config/desired'), JSON.stringify({ v: 1, version, config }), { qos: 1, retain: true });
      await desired(3, { telemetryInterval: 5, logLevel: 'debug' });
      await waitFor(() => of(sub.messages, 'config/reported').find((r) => r.version === 3), 5000, 'applied');
      expect(of(sub.messages, 'config/reported')[0]).toMatchObject({ version: 3, status: 'applied' });
      expect(agent.telemetryInterval).toBe(5);
      expect(agent.logger.level).toBe('debug');
      await desired(2, { telemetryInterval: 60 });
      await desired(4, { peripherals: { idCardReader: { driver: 'usb-presence' } } });
      await waitFor(() => of(sub.messages, 'config/reported').find((r) => r.version === 4), 5000, 'rejected');
      expect(of(sub.messages, 'config/reported').find((r) => r.version === 4)).toMatchObject({ status: 'rejected', reason: expect.stringContaining('idCardReader') });
      expect(of(sub.messages, 'config/reported').some((r) => r.version === 2)).toBe(false);
      expect(agent.telemetryInterval).toBe(5);
      await desired(5, { telemetryInterval: 'fast' });
      await waitFor(() => of(sub.messages, 'config/reported').find((r) => r.version === 5), 5000, 'schema-rejected');
      expect(of(sub.messages, 'config/reported').find((r) => r.version === 5)).toMatchObject({ status: 'rejected' });
      expect(agent.appliedConfig?.version).toBe(3);
    });
  });

  it('a pushed peripheral driver setting replaces the local one: the vendor diagnostic now decides the status', async () => {
    const { broker, sub } = await setup();
    const t = tempDir('kf-drv-');
    teardown.push(t.cleanup);
    const diag = path.join(t.dir, 'prtdiag.sh');
    writeFileSync(diag, `#!/bin/sh\necho '{"status":"fault","code":"PAPER_OUT","message":"receipt paper out"}'\nexit 1\n`);
    chmodSync(diag, 0o755);
    const agent = track(
      testAgent({
        hubUrl: broker.url,
        defaults: { telemetryInterval: 0.3, logLevel: 'info', peripherals: { receiptPrinter: { driver: 'simulated' } } },
        probes: () => new MapProbeCatalog([{ name: 'receipt-printer', command: [diag], file: 'test' }]),
      }),
    );
    await agent.start();
    await waitFor(() => of(sub.messages, 'telemetry').some((x) => (x.peripherals as Record<string, { status: string }>).receiptPrinter?.status === 'ok'), 10_000, 'simulated ok');
    await sub.client.publishAsync(
      topicFor(ID, 'config/desired'),
      JSON.stringify({ v: 1, version: 1, config: { peripherals: { receiptPrinter: { driver: 'command', probe: 'receipt-printer', timeoutMs: 5000 } } } }),
      { qos: 1 },
    );
    await waitFor(() => of(sub.messages, 'config/reported').find((r) => r.version === 1 && r.status === 'applied'), 10_000, 'applied');
    const paperOut = await waitFor(() => of(sub.messages, 'events').find((e) => e.kind === 'paper.out'), 10_000, 'paper.out event');
    expect(paperOut).toMatchObject({ peripheral: 'receiptPrinter', code: 'PAPER_OUT', severity: 'critical' });
    await waitFor(() => of(sub.messages, 'telemetry').some((x) => (x.peripherals as Record<string, { status: string }>).receiptPrinter?.status === 'fault'), 10_000, 'fault in telemetry');
  }, 30_000);
});
