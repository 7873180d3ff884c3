/**
 * A small protocol-speaking terminal for the dashboard's E2E tests: a real MQTT 3.1.1 client with the terminal's id
 * and secret, publishing presence (with its last will), telemetry and events built from the protocol's schemas, and
 * answering commands. It exists so the browser tests can make a card reader fail at a chosen moment; the fleet
 * simulator (agent package) covers realistic behaviour at scale.
 */
import crypto from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import {
  parsePayload,
  TERMINAL_TYPES,
  topicFor,
  type PeripheralStatus,
  type TerminalType,
} from '@kiosk-fleet/protocol';

export interface TestTerminal {
  id: string;
  /** Sets a peripheral's status: publishes an event (fault / recovered) and a telemetry sample at once. */
  setPeripheral(peripheral: string, status: PeripheralStatus, code?: string): Promise<void>;
  sample(): Promise<void>;
  /** Graceful stop (presence offline, reason clean). */
  stop(): Promise<void>;
  /** Drops the connection without a goodbye: the hub sees the last will. */
  crash(): Promise<void>;
}

export async function startTerminal(opts: { mqttUrl: string; id: string; secret: string; type: TerminalType; intervalS?: number }): Promise<TestTerminal> {
  const bootId = crypto.randomBytes(8).toString('hex');
  const epoch = crypto.randomBytes(8).toString('hex');
  const intervalS = opts.intervalS ?? 5;
  const seq = { telemetry: 0, events: 0, 'commands/result': 0 };
  const peripherals: Record<string, { status: PeripheralStatus; code?: string }> = {};
  for (const p of TERMINAL_TYPES[opts.type].peripherals) peripherals[p] = { status: 'ok' };
  const now = () => new Date().toISOString();
  const presence = (state: 'online' | 'offline', reason?: 'clean' | 'connection-lost') => ({
    v: 1,
    state,
    bootId,
    connSeq: 1,
    ts: now(),
    ...(reason ? { reason } : {}),
    agentVersion: '0.1.0',
    appVersion: '3.2.1',
    uptime: 3600,
    interval: intervalS,
    ...(state === 'online' ? { lastExit: { cause: 'clean' as const } } : {}),
  });

  const client: MqttClient = await mqtt.connectAsync(opts.mqttUrl, {
    clientId: opts.id,
    username: opts.id,
    password: opts.secret,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    will: { topic: topicFor(opts.id, 'presence'), payload: Buffer.from(JSON.stringify(presence('offline', 'connection-lost'))), qos: 1, retain: true },
  });

  const publish = async (kind: 'presence' | 'telemetry' | 'events' | 'commands/result', payload: object, retain = false) => {
    // Checked against the contract before sending: a test terminal that sent invalid payloads would test nothing.
    const check = parsePayload(kind, Buffer.from(JSON.stringify(payload)));
    if (!check.ok) throw new Error(`test terminal built an invalid ${kind}: ${JSON.stringify(check)}`);
    await client.publishAsync(topicFor(opts.id, kind), JSON.stringify(payload), { qos: 1, retain });
  };

  const sample = () =>
    publish('telemetry', {
      v: 1,
      epoch,
      seq: ++seq.telemetry,
      ts: now(),
      host: {
        cpu: 10 + Math.random() * 30,
        memUsed: 1.5e9 + Math.random() * 5e8,
        memTotal: 4e9,
        diskUsed: 2.1e10,
        diskTotal: 6.4e10,
        tempC: 45 + Math.random() * 5,
        uptime: 3600,
      },
      peripherals: Object.fromEntries(Object.entries(peripherals).map(([k, v]) => [k, { ...v }])),
      app: { up: true, version: '3.2.1', sessionActive: false, transactionsOk: 3, transactionsFailed: 0 },
    });

  await client.subscribeAsync(topicFor(opts.id, 'commands'), { qos: 1 });
  client.on('message', (_topic, buf) => {
    const cmd = parsePayload('commands', buf);
    if (!cmd.ok) return;
    const c = cmd.value as { id: string; name: string };
    const result =
      c.name === 'self-test'
        ? { peripherals: Object.fromEntries(Object.entries(peripherals).map(([k, v]) => [k, v.status])) }
        : { pong: true };
    void publish('commands/result', { v: 1, epoch, seq: ++seq['commands/result'], ts: now(), id: c.id, status: 'ok', result });
  });

  await publish('presence', presence('online'), true);
  await sample();
  const timer = setInterval(() => void sample().catch(() => {}), intervalS * 1000);

  return {
    id: opts.id,
    sample,
    async setPeripheral(peripheral, status, code) {
      const before = peripherals[peripheral]?.status;
      peripherals[peripheral] = { status, ...(code ? { code } : {}) };
      if (status === 'fault' || (before === 'fault' && status === 'ok')) {
        await publish('events', {
          v: 1,
          epoch,
          seq: ++seq.events,
          ts: now(),
          kind: status === 'fault' ? 'peripheral.fault' : 'peripheral.recovered',
          severity: status === 'fault' ? 'critical' : 'info',
          peripheral,
          ...(code ? { code } : {}),
          message: status === 'fault' ? 'reader did not answer' : 'reader answers again',
        });
      }
      await sample();
    },
    async stop() {
      clearInterval(timer);
      await publish('presence', presence('offline', 'clean'), true);
      await client.endAsync();
    },
    async crash() {
      clearInterval(timer);
      client.stream.destroy();
      await client.endAsync(true).catch(() => {});
    },
  };
}
