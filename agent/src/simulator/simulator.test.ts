import { afterEach, describe, expect, it } from 'vitest';
import { isTerminalId, topicFor } from '@kiosk-fleet/protocol';
import { createLogger } from '../log.ts';
import { quiet } from '../test-support/agent.ts';
import { startBroker, waitFor } from '../test-support/broker.ts';
import { isOpen, tick } from './behaviour.ts';
import { SimTerminal } from './terminal.ts';
import { createControlApi } from './control.ts';
import { DEFAULT_FLEET, parseSimulatorArgs } from './cli.ts';
import { importBody, loadFleet, selectTerminals } from './fleet.ts';
import { Simulator } from './simulator.ts';

const fleet = loadFleet(DEFAULT_FLEET);
const teardown: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const t of teardown.splice(0).reverse()) await t();
});

describe('simulated fleet', () => {
  it('takes the first N terminals, and past the fleet adds unique terminals under its stations', () => {
    expect(selectTerminals(fleet, 3).map((t) => t.id)).toEqual(fleet.terminals.slice(0, 3).map((t) => t.id));
    const big = selectTerminals(fleet, fleet.terminals.length + 200);
    expect(big).toHaveLength(fleet.terminals.length + 200);
    expect(new Set(big.map((t) => t.id)).size).toBe(big.length);
    const added = big.filter((t) => t.added);
    expect(added).toHaveLength(200);
    const stations = new Set(fleet.stations.map((s) => s.id));
    for (const t of added) {
      expect(isTerminalId(t.id)).toBe(true);
      expect(stations.has(t.station)).toBe(true);
      expect(t.id.startsWith(`${t.station}-`)).toBe(true);
      expect(t.peripherals).toContain('idCardReader');
    }
    const body = importBody(fleet, big.slice(0, 5)) as { terminals: unknown[]; stations: unknown[] };
    expect(body.terminals).toHaveLength(5);
    expect(body.stations).toHaveLength(fleet.stations.length);
  });

  it('follows opening hours in Asia/Shanghai, including spans across midnight', () => {
    // Wednesday 2026-11-25 10:00 in Shanghai = 02:00 UTC
    expect(isOpen(undefined, Date.parse('2026-11-25T02:00:00Z'))).toBe(true);
    expect(isOpen(undefined, Date.parse('2026-11-25T13:00:00Z'))).toBe(false); // 21:00 local
    const night = { wed: [{ from: '22:00', to: '02:00' }] };
    expect(isOpen(night, Date.parse('2026-11-25T15:00:00Z'))).toBe(true); // 23:00 local Wednesday
    expect(isOpen(night, Date.parse('2026-11-25T02:00:00Z'))).toBe(false);
    expect(isOpen({ sun: [] }, Date.parse('2026-11-25T02:00:00Z'))).toBe(false); // days left out are closed
  });

  it('a citizen comes (always-open): a session begins, the card is read and the transaction recorded', () => {
    const spec = selectTerminals(fleet, 1)[0]!;
    const t = new SimTerminal({ spec, hubUrl: 'mqtt://127.0.0.1:1', interval: 30, logger: createLogger({ level: 'silent', destination: quiet }), random: Math.random, outboxMaxBytes: 1e6 });
    // random() = 0: every chance happens, and every card read fails (the reader "misreads")
    tick(t, { now: Date.now(), dt: 1, chaos: 0, random: () => 0, alwaysOpen: true });
    expect(t.agent.sessionActive).toBe(true);
    expect(t.sessionUntil).toBeGreaterThan(Date.now());
    const events = t.outbox.pending(0, 100).map((e) => JSON.parse(e.payload) as { kind: string; code?: string });
    expect(events.find((e) => e.kind === 'transaction.failed')?.code).toBe('E_CARD_READ');
  });

  it('names the flag that is wrong', () => {
    expect(() => parseSimulatorArgs(['--count', 'many'], {})).toThrow(/--count/);
    expect(() => parseSimulatorArgs(['--hub', 'http://x'], {})).toThrow(/--hub/);
    expect(() => parseSimulatorArgs(['--local-address', '127.0.0.2,nope'], {})).toThrow(/--local-address/);
    expect(() => parseSimulatorArgs(['--provision'], {})).toThrow(/--token/);
    expect(parseSimulatorArgs(['--always-open'], {}).alwaysOpen).toBe(true);
    expect(parseSimulatorArgs(['--local-address', '127.0.0.2,127.0.0.3', '--count', '5'], {})).toMatchObject({ localAddress: ['127.0.0.2', '127.0.0.3'], count: 5 });
  });

  it('runs terminals over their own connections; the control API forces a fault and a power loss', async () => {
    const broker = await startBroker();
    teardown.push(() => broker.close());
    const sim = new Simulator({
      terminals: selectTerminals(fleet, 4),
      hubUrl: broker.url,
      secrets: {},
      interval: 30,
      localAddresses: ['127.0.0.2', '127.0.0.3'],
      ramp: 100,
      chaos: 0,
      summaryEveryMs: 60_000,
      logger: createLogger({ level: 'silent', destination: quiet }),
    });
    teardown.push(() => sim.stop());
    await sim.start();
    await waitFor(() => sim.connectedCount() === 4, 10_000, 'all connected');
    expect(broker.connects.size).toBe(4);
    // spread over the given source addresses
    expect([...broker.remoteAddresses].map((a) => a.replace(/^::ffff:/, '')).sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    const id = fleet.terminals[0]!.id;
    const api = createControlApi(sim);
    const r = await api.request(`/terminals/${id}/fault`, { method: 'POST', body: JSON.stringify({ code: 'E_RF_MODULE' }) });
    expect(r.status).toBe(200);
    const ev = await waitFor(
      () => broker.published.filter((m) => m.topic === topicFor(id, 'events')).map((m) => JSON.parse(m.payload)).find((e) => e.kind === 'peripheral.fault'),
      5000,
      'fault event',
    );
    expect(ev).toMatchObject({ peripheral: 'idCardReader', code: 'E_RF_MODULE', severity: 'critical' });
    const boot1 = sim.terminals.get(id)!.agent.bootId;
    const before = sim.summary();
    await api.request(`/terminals/${id}/power-loss`, { method: 'POST', body: JSON.stringify({ seconds: 0.2 }) });
    const online = await waitFor(
      () =>
        broker.published
          .filter((m) => m.topic === topicFor(id, 'presence'))
          .map((m) => JSON.parse(m.payload))
          .find((p) => p.state === 'online' && p.bootId !== boot1),
      10_000,
      'back with a new boot id',
    );
    expect(online.lastExit.cause).toBe('power-loss');
    // the summary counts across the terminal's agents: a new boot does not reset what was produced
    const after = sim.summary();
    expect(after.telemetry).toBeGreaterThanOrEqual(before.telemetry);
    expect(after.events).toBeGreaterThan(before.events);
    expect(after.reconnects).toBeGreaterThanOrEqual(1);
    // the will was published for the old boot: no clean goodbye
    expect(broker.published.filter((m) => m.topic === topicFor(id, 'presence')).map((m) => JSON.parse(m.payload)).some((p) => p.bootId === boot1 && p.reason === 'clean')).toBe(false);
    // a citizen session holds restart-app until it ends
    const t2 = fleet.terminals[1]!.id;
    await api.request(`/terminals/${t2}/session`, { method: 'POST', body: JSON.stringify({ seconds: 1.5 }) });
    const sentAt = Date.now();
    broker.broker.publish(
      {
        cmd: 'publish',
        topic: topicFor(t2, 'commands'),
        payload: Buffer.from(JSON.stringify({ v: 1, id: 'ra-1', name: 'restart-app', args: {}, issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString() })),
        qos: 1,
        retain: false,
        dup: false,
      },
      () => undefined,
    );
    const result = await waitFor(
      () => broker.published.filter((m) => m.topic === topicFor(t2, 'commands/result')).map((m) => JSON.parse(m.payload)).find((r) => r.id === 'ra-1'),
      10_000,
      'restart-app result',
    );
    expect(result).toMatchObject({ status: 'ok', result: { waitedForSession: true } });
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(900);
    expect((await api.request('/terminals/NOPE-1/fault', { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await api.request(`/terminals/${id}/fault`, { method: 'POST', body: '{"status":"broken"}' })).status).toBe(400);
  });

  it('a simulated terminal takes the probe names of its type and refuses others, as a real one refuses what its catalog lacks', async () => {
    const broker = await startBroker();
    teardown.push(() => broker.close());
    const spec = selectTerminals(fleet, 1)[0]!;
    const t = new SimTerminal({ spec, hubUrl: broker.url, interval: 30, logger: createLogger({ level: 'silent', destination: quiet }), random: Math.random, outboxMaxBytes: 1e6 });
    teardown.push(() => t.agent.stop());
    await t.agent.start();
    await waitFor(() => t.agent.link.connected, 5000, 'connected');
    const desired = (version: number, probe: string) =>
      broker.broker.publish(
        { cmd: 'publish', topic: topicFor(spec.id, 'config/desired'), payload: Buffer.from(JSON.stringify({ v: 1, version, config: { peripherals: { idCardReader: { driver: 'command', probe } } } })), qos: 1, retain: true, dup: false },
        () => undefined,
      );
    const reported = (version: number) =>
      broker.published.filter((m) => m.topic === topicFor(spec.id, 'config/reported')).map((m) => JSON.parse(m.payload) as { version: number; status: string; reason?: string }).find((r) => r.version === version);
    desired(1, 'idcard-reader');
    expect(await waitFor(() => reported(1), 5000, 'v1 reported')).toMatchObject({ status: 'applied' });
    desired(2, 'vendor-x');
    expect(await waitFor(() => reported(2), 5000, 'v2 reported')).toMatchObject({ status: 'rejected', reason: expect.stringContaining('"vendor-x"') });
  });
});
