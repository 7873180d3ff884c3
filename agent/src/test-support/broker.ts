/**
 * A real Aedes broker on an ephemeral 127.0.0.1 port, for the agent's tests. `restart()` brings up a brand-new
 * broker on the same port (sessions, retained messages and subscriptions gone), as a restarted hub would be.
 */
import net from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';

export interface TestBroker {
  port: number;
  url: string;
  broker: Aedes;
  /** Connections the broker accepted (CONNACK 0) and refused, per client id. */
  connects: Map<string, number>;
  /** Every message a client published, seen by the broker itself (no subscriber race across restarts). */
  published: { topic: string; payload: string }[];
  /** Source addresses of accepted connections. */
  remoteAddresses: Set<string>;
  refusals: Map<string, number>;
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startBroker(opts: { passwords?: Record<string, string> } = {}): Promise<TestBroker> {
  const connects = new Map<string, number>();
  const refusals = new Map<string, number>();
  const published: { topic: string; payload: string }[] = [];
  const remoteAddresses = new Set<string>();
  let broker!: Aedes;
  let server: net.Server | null = null;
  let port = 0;

  const make = async (): Promise<void> => {
    const options: AedesOptions = {};
    if (opts.passwords) {
      const passwords = opts.passwords;
      options.authenticate = (client, username, password, cb) => {
        const ok = username !== undefined && passwords[username] !== undefined && password?.toString() === passwords[username];
        if (!ok) {
          refusals.set(client.id, (refusals.get(client.id) ?? 0) + 1);
          const err = Object.assign(new Error('bad credentials'), { returnCode: 4 as const });
          cb(err, false);
          return;
        }
        cb(null, true);
      };
    }
    broker = await Aedes.createBroker(options);
    broker.on('client', (c) => {
      connects.set(c.id, (connects.get(c.id) ?? 0) + 1);
      const addr = (c.conn as net.Socket).remoteAddress;
      if (addr) remoteAddresses.add(addr);
    });
    broker.on('publish', (packet, client) => {
      if (client) published.push({ topic: packet.topic, payload: packet.payload.toString() });
    });
    const srv = net.createServer(broker.handle);
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve());
    });
    port = (srv.address() as net.AddressInfo).port;
    server = srv;
  };

  const stop = async (): Promise<void> => {
    const srv = server;
    server = null;
    if (!srv) return;
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  };

  await make();
  const tb: TestBroker = {
    get port() {
      return port;
    },
    get url() {
      return `mqtt://127.0.0.1:${port}`;
    },
    get broker() {
      return broker;
    },
    connects,
    published,
    remoteAddresses,
    refusals,
    stop,
    start: make,
    restart: async () => {
      await stop();
      await make();
    },
    close: stop,
  };
  return tb;
}

/** A plain subscriber (the test's view of what the hub would receive). */
export async function subscriber(url: string, filter: string): Promise<{ client: MqttClient; messages: { topic: string; payload: string }[]; close: () => Promise<void> }> {
  const messages: { topic: string; payload: string }[] = [];
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 200, clientId: `sub-${Math.random().toString(36).slice(2)}` });
  client.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString() }));
  // resubscribe by hand after a broker restart (a new broker has no session for us)
  client.on('connect', (connack) => {
    if (!connack.sessionPresent) client.subscribe(filter, { qos: 1 });
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, messages, close: () => client.endAsync(true) };
}

export async function waitFor<T>(fn: () => T | undefined | null | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
