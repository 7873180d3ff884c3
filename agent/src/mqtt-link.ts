/**
 * The MQTT connection of one terminal: MQTT 3.1.1, clean:false, client id = username = terminal id, a retained
 * last will per connection, and our own reconnect loop.
 *
 * mqtt.js reconnects every second by default; a thousand terminals doing that against a restarting hub is a
 * stampede. So mqtt.js never reconnects here (reconnectPeriod 0): each attempt is a fresh client, scheduled with
 * jittered, capped exponential backoff (backoff.ts: the loss of a stable connection starts over from the first
 * step, and the first two minutes of that outage are retried at most every 4-8 s); a refused CONNACK (bad credentials, not authorised) waits `authRetryMs`.
 * A fresh client per attempt also means mqtt.js' in-memory store never resends anything behind the outbox's back:
 * what was in flight when a link dropped is simply failed, and the outbox replays it.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import type TlsModule from 'node:tls';
import type { IClientOptions, MqttClient } from 'mqtt';
// the client alone: mqtt.js' index also loads its WebSocket and SOCKS transports (ws, socks, ip-address, ...)
import mqttClientModule from 'mqtt/lib/client';
/** The class, whichever CommonJS interop loaded its module (Node and esbuild: the exports object; vitest: the class). */
const MqttClientClass: typeof MqttClient = (mqttClientModule as unknown as { default?: typeof MqttClient }).default ?? (mqttClientModule as unknown as typeof MqttClient);
import type { Logger } from './log.ts';
import { Backoff, CONNECT_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS, jitter } from './backoff.ts';

export interface LinkOptions {
  /** One hub URL, or several separated by commas (hubs of one installation: any serves this terminal). */
  url: string;
  /** For the shuffle of a URL list (tests make it deterministic). */
  random?: () => number;
  clientId: string;
  password?: string | undefined;
  ca?: Buffer | undefined;
  /** Where the CA came from (KF_HUB_CA's path), to name it when the hub's certificate is not trusted. */
  caSource?: string | undefined;
  /** Source address to connect from (the simulator spreads connections over 127.x addresses). */
  localAddress?: string | undefined;
  keepalive: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  authRetryMs: number;
  /** The retained will for connection number `connSeq`. */
  will: (connSeq: number) => { topic: string; payload: string };
  logger: Logger;
}

/** The connection settings an agent takes from its own options and hands to its link unchanged. */
export type LinkSettings = Pick<
  LinkOptions,
  'password' | 'ca' | 'caSource' | 'localAddress' | 'keepalive' | 'reconnectMinMs' | 'reconnectMaxMs' | 'authRetryMs'
>;

export interface LinkEvents {
  /** A CONNACK arrived. */
  up: [{ sessionPresent: boolean; connSeq: number }];
  down: [{ connSeq: number; error?: string }];
  message: [topic: string, payload: Buffer];
}

/** CONNACK return codes of MQTT 3.1.1 [MQTT-3.2.2.3]. */
const CONNACK_REASONS: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

/** Node's certificate-verification error codes: the hub is reachable, but not trusted. */
const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export class LinkClosedError extends Error {
  override name = 'LinkClosedError';
}

export class MqttLink extends EventEmitter<LinkEvents> {
  #client: MqttClient | null = null;
  #connSeq = 0;
  #connected = false;
  #stopped = true;
  #timer: NodeJS.Timeout | null = null;
  #holdUntil = 0;
  #backoff: Backoff;
  #inflight = new Set<(err: Error) => void>();
  #lastTlsError: string | null = null;
  /** Connection attempts and refusals, for the simulator's summary and for tests. */
  readonly stats = { attempts: 0, connects: 0, refused: 0, handshakeTimeouts: 0 };
  /**
   * The hubs, in this terminal's own shuffled order (a fleet given the same list spreads over it instead of crowding
   * the first hub), and where in it the next attempt goes. Invariants: a failed attempt moves on to the next URL at
   * once; the backoff step is taken only when a whole round of the list failed (it spans the list, so a dead hub
   * costs a terminal one short attempt, not a backoff step); a lost connection is retried first where it was (the
   * hub that served the terminal is the likeliest to serve it again: a network blip, not a dead hub).
   */
  readonly #urls: string[];
  #index = 0;
  /** Failed attempts since the last connection or the last full round. */
  #roundFailures = 0;
  #roundRefused = false;

  constructor(private readonly opts: LinkOptions) {
    super();
    this.#backoff = new Backoff({ minMs: opts.reconnectMinMs, maxMs: opts.reconnectMaxMs });
    this.#urls = shuffle(splitHubUrls(opts.url), opts.random ?? Math.random);
  }

  /** The URL of the current or next attempt. */
  get url(): string {
    return this.#urls[this.#index]!;
  }

  get connected(): boolean {
    return this.#connected;
  }
  get connSeq(): number {
    return this.#connSeq;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#attempt();
  }

  /** Publish and resolve on PUBACK (QoS 1); rejects when the link drops first. */
  publish(topic: string, payload: string, retain = false): Promise<void> {
    const client = this.#client;
    if (!client || !this.#connected) return Promise.reject(new LinkClosedError('not connected'));
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => reject(err);
      this.#inflight.add(fail);
      client.publish(topic, payload, { qos: 1, retain }, (err) => {
        if (!this.#inflight.delete(fail)) return; // already failed by a drop
        if (err) reject(err);
        else resolve();
      });
    });
  }

  subscribe(topics: string[]): Promise<void> {
    const client = this.#client;
    if (!client || !this.#connected) return Promise.reject(new LinkClosedError('not connected'));
    return new Promise((resolve, reject) => {
      client.subscribe(topics, { qos: 1 }, (err, granted) => {
        if (err) return reject(err);
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
        if (refused.length) return reject(new Error(`subscription refused: ${refused.join(', ')}`));
        resolve();
      });
    });
  }

  /**
   * Graceful stop: publish `goodbye` (the retained offline presence) and DISCONNECT, so the broker drops the will.
   * Waits at most `timeoutMs` for the broker.
   */
  async stop(goodbye?: { topic: string; payload: string }, timeoutMs = 3000): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    const client = this.#client;
    if (!client) return;
    if (goodbye && this.#connected) {
      await Promise.race([this.publish(goodbye.topic, goodbye.payload, true).catch(() => undefined), delay(timeoutMs)]);
    }
    await Promise.race([new Promise<void>((resolve) => client.end(false, {}, () => resolve())), delay(timeoutMs)]);
    client.end(true);
    this.#dropped(client);
  }

  /**
   * Cut the connection without a DISCONNECT (the broker publishes the will), as a network loss or power cut would.
   * With `holdMs`, no reconnect is tried before then; `stop` prevents any reconnect (a simulated power-off).
   */
  cut(opts: { holdMs?: number; stop?: boolean } = {}): void {
    if (opts.stop) {
      this.#stopped = true;
      this.#clearTimer();
    }
    if (opts.holdMs) this.#holdUntil = Date.now() + opts.holdMs;
    const client = this.#client;
    if (client) {
      client.stream?.destroy();
      client.end(true);
      this.#dropped(client);
    }
    // the client's own 'close' no longer counts (it is not current): schedule the next attempt here
    if (!this.#stopped && !this.#timer) this.#schedule(Math.max(opts.holdMs ?? 0, this.#backoff.next()));
  }

  #attempt(): void {
    this.#timer = null;
    if (this.#stopped) return;
    const hold = this.#holdUntil - Date.now();
    if (hold > 0) {
      this.#schedule(hold);
      return;
    }
    if (!/^mqtts?:/.test(this.url) && !mqttConnect) {
      // ws:// and wss:// go through mqtt.js' own connect(), loaded on first use; try again once it is
      loadMqttConnect(this.opts.logger);
      this.#schedule(20);
      return;
    }
    this.#connSeq += 1;
    this.stats.attempts += 1;
    const connSeq = this.#connSeq;
    const url = this.url;
    const will = this.opts.will(connSeq);
    const options: IClientOptions = {
      protocolVersion: 4,
      clean: false,
      clientId: this.opts.clientId,
      username: this.opts.clientId,
      ...(this.opts.password !== undefined ? { password: this.opts.password } : {}),
      keepalive: this.opts.keepalive,
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      resubscribe: false,
      // mqtt-packet otherwise pre-builds a Buffer for each of the 65,536 message ids on the first write: 6 MB of
      // heap (a heap snapshot of an idle agent), for a client with at most a few hundred ids in use
      writeCache: false,
      will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: true },
    };
    let client: MqttClient;
    try {
      client = this.#createClient(options);
    } catch (err) {
      this.opts.logger.error({ err }, 'cannot create MQTT client');
      this.#schedule(this.#backoff.next());
      return;
    }
    this.#client = client;
    let refused = false;
    let lastError: string | undefined;
    client.on('connect', (connack) => {
      if (this.#client !== client) return;
      this.#connected = true;
      this.stats.connects += 1;
      this.#backoff.connected();
      this.#roundFailures = 0;
      this.#roundRefused = false;
      this.#lastTlsError = null;
      this.opts.logger.info({ connSeq, sessionPresent: connack.sessionPresent, ...(this.#urls.length > 1 ? { hub: url } : {}) }, 'connected to hub');
      this.emit('up', { sessionPresent: connack.sessionPresent, connSeq });
    });
    client.on('message', (topic, payload) => {
      if (this.#client === client) this.emit('message', topic, payload);
    });
    client.on('error', (err: Error & { code?: unknown }) => {
      lastError = err.message;
      if (typeof err.code === 'number' && err.code !== 0) {
        const code = err.code;
        if (code === 4 || code === 5) {
          refused = true;
          this.stats.refused += 1;
          this.opts.logger.error(
            { connackCode: code, retryInMs: this.opts.authRetryMs },
            `hub refused the terminal's credentials (${CONNACK_REASONS[code]}): check the secret file, or issue a new secret with POST /api/v1/terminals/{id}/secret`,
          );
        } else {
          this.opts.logger.warn({ connackCode: code }, `hub refused the connection: ${CONNACK_REASONS[code] ?? 'unknown code'}`);
        }
      } else if (typeof err.code === 'string' && TLS_TRUST_CODES.has(err.code)) {
        // a wrong KF_HUB_CA looks like an outage unless it is said plainly; once per distinct reason, not per retry
        if (this.#lastTlsError !== err.code) {
          this.#lastTlsError = err.code;
          this.opts.logger.error(
            { code: err.code, ca: this.opts.caSource ?? 'system CAs' },
            `the hub's certificate is not trusted by ${this.opts.caSource ? `KF_HUB_CA (${this.opts.caSource})` : 'the system CAs (set KF_HUB_CA)'}: ${err.message}`,
          );
        }
      } else {
        this.opts.logger.debug({ err: err.message }, 'connection error');
      }
    });
    client.on('close', () => {
      if (this.#client !== client) return;
      const hadConnected = this.#connected;
      client.end(true);
      this.#dropped(client, lastError);
      if (this.#stopped) return;
      const wait = this.#nextWait(hadConnected, refused);
      this.opts.logger.info(
        { retryInMs: wait, attempt: this.#backoff.attempt, ...(lastError ? { error: lastError } : {}), ...(this.#urls.length > 1 ? { next: this.url } : {}) },
        'disconnected from hub, will retry',
      );
      this.#schedule(wait);
    });
  }

  /**
   * After an attempt or a connection ended: where the next attempt goes and when. A connection that was up is retried
   * at the same hub after a backoff step; a failed attempt moves on to the next hub at once, until the round is
   * through, and then waits a backoff step (or the credentials wait, when every hub of the round refused them).
   */
  #nextWait(hadConnected: boolean, refused: boolean): number {
    if (this.#urls.length === 1 || hadConnected) return refused ? jitter(this.opts.authRetryMs, 0.2) : this.#backoff.next();
    this.#roundFailures += 1;
    this.#roundRefused ||= refused;
    this.#index = (this.#index + 1) % this.#urls.length;
    if (this.#roundFailures < this.#urls.length) return jitter(NEXT_HUB_MS, 0.5);
    const allRefused = this.#roundRefused && refused;
    this.#roundFailures = 0;
    this.#roundRefused = false;
    return allRefused ? jitter(this.opts.authRetryMs, 0.2) : this.#backoff.next();
  }

  #createClient(options: IClientOptions): MqttClient {
    const u = new URL(this.url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const localAddress = this.opts.localAddress;
    if (u.protocol === 'mqtt:') {
      const port = Number(u.port || 1883);
      return new MqttClientClass(() => this.#handshakeGuard(net.createConnection({ host, port, ...(localAddress ? { localAddress } : {}) })), options);
    }
    if (u.protocol === 'mqtts:') {
      const port = Number(u.port || 8883);
      return new MqttClientClass(
        () =>
          this.#handshakeGuard(
            tls().connect({
              host,
              port,
              ...(net.isIP(host) ? {} : { servername: host }),
              ...(this.opts.ca ? { ca: this.opts.ca } : {}),
              ...(localAddress ? { localAddress } : {}),
            }),
          ),
        options,
      );
    }
    return mqttConnect!(this.url, {
      ...options,
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
      ...(localAddress ? { wsOptions: { localAddress } } : {}),
    });
  }

  /**
   * Gives the attempt up when its TCP handshake is not answered within HANDSHAKE_TIMEOUT_MS (backoff.ts: a SYN
   * dropped by a hub whose accept queue is full is retried on the backoff's schedule, not the kernel's).
   */
  #handshakeGuard<S extends net.Socket>(socket: S): S {
    const timer = setTimeout(() => {
      this.stats.handshakeTimeouts += 1;
      // ETIMEDOUT: mqtt.js passes a stream error on to the client's 'error' only for the socket codes it knows
      socket.destroy(Object.assign(new Error(`no TCP handshake within ${HANDSHAKE_TIMEOUT_MS} ms (hub unreachable, or its accept queue full)`), { code: 'ETIMEDOUT' }));
    }, HANDSHAKE_TIMEOUT_MS);
    socket.once('connect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return socket;
  }

  #dropped(client: MqttClient, error?: string): void {
    if (this.#client !== client) return;
    this.#client = null;
    // a stable connection's loss starts a new outage: short, capped steps (backoff.ts)
    this.#backoff.lost();
    const wasConnected = this.#connected;
    this.#connected = false;
    const failed = [...this.#inflight];
    this.#inflight.clear();
    for (const fail of failed) fail(new LinkClosedError('connection lost before PUBACK'));
    if (wasConnected) this.emit('down', { connSeq: this.#connSeq, ...(error ? { error } : {}) });
  }

  #schedule(ms: number): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => this.#attempt(), ms);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/** The pause before trying the next hub of the list after one failed: enough to not spin on a list of dead ones. */
const NEXT_HUB_MS = 100;

/** `KF_HUB_URL` as a list: comma-separated, blanks ignored. */
export function splitHubUrls(value: string): string[] {
  const urls = value.split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (urls.length === 0) throw new Error('no hub URL');
  return urls;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/**
 * Modules only some links need, loaded when one does: node:tls (~2 MB of RSS once loaded; an mqtt:// link never
 * needs it) and mqtt.js' connect() with its WebSocket transport (ws:// and wss:// only). agent/README.md, "Measured".
 */
const requireBuiltin = createRequire(import.meta.url);
let tlsModule: typeof TlsModule | null = null;
function tls(): typeof TlsModule {
  return (tlsModule ??= requireBuiltin('node:tls') as typeof TlsModule);
}
let mqttConnect: typeof import('mqtt').connect | null = null;
let mqttLoading: Promise<void> | null = null;
function loadMqttConnect(logger: Logger): void {
  mqttLoading ??= import('mqtt').then(
    (m) => {
      mqttConnect = m.default.connect;
    },
    (err: unknown) => {
      mqttLoading = null;
      logger.error({ err }, 'cannot load the MQTT WebSocket transport');
    },
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
