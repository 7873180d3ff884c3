/**
 * The embedded Aedes broker: authentication, the per-terminal ACL, validate-and-commit before PUBACK, presence
 * from connection events, and the hub's own down messages.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { Aedes, type AedesOptions, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { parsePayload, parseTopic, TOPICS, topicFor, type TopicKind } from '@kiosk-fleet/protocol';
import type { Ingest, UpKind } from '../ingest/index.ts';
import type { IngestQuota } from '../ingest/quota.ts';
import { RateLimitedLog, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { PresenceService } from '../presence/service.ts';
import type { FleetStore } from '../fleet/store.ts';
import { createPersistence } from './persistence.ts';
import { gracefulStream, guardParser, packetLengthCheck, type MqttParser } from './size-guard.ts';
import type { TakeoverWatch } from './takeover.ts';

export interface BrokerDeps {
  registry: Pick<FleetStore, 'verify'>;
  ingest: Ingest;
  presence: PresenceService;
  metrics: Metrics;
  log: Logger;
  maxPayload: number;
  /** Per-terminal, per-stream rate limits (checked before a payload is parsed); none: unlimited. */
  quota?: IngestQuota;
  /** Credential reuse: takeovers between addresses, the newer address held off. */
  takeovers?: TakeoverWatch;
  /** Called when a terminal subscribed to one of its down topics (the hub then sends what the database holds). */
  onSubscribed: (terminalId: string, kind: TopicKind) => void;
}

/** Failed logins from one address in this window slow its next attempts down. */
const FAIL_WINDOW_MS = 10 * 60_000;
const FAIL_FREE = 3;
const MAX_DELAY_MS = 5000;

/**
 * Logins handed to Aedes at once (a connection accepted, its CONNACK not yet sent); later connections wait their turn
 * in `Broker.handle`. libuv accepts one connection per event-loop turn, but Aedes runs a login's steps in later turns
 * (setImmediate), so turns stay short while connections are accepted and the logins pile up behind them: a hub
 * restarted under 19,000 terminals accepted its queue of 4,096 handshakes in about a second, then ran their logins in
 * a few turns of up to 1.4 s, answering no API request meanwhile (`pnpm bench reconnect`, a preload counting
 * accepts per turn and the CPU profile). With this many at once a turn carries at most that many logins' steps.
 */
export const MAX_LOGINS_IN_FLIGHT = 64;
/**
 * A login holds its slot at most this long: a connection that sends no CONNECT (a port scan, a stuck peer) then
 * stops counting, and Aedes' own connect timeout ends it later. So idle connections delay other logins by this at
 * most, never block them.
 */
export const LOGIN_SLOT_MS = 2_000;

function ignoreError(): void {}

/** Hub-side publishes handed to Aedes at once; see `Broker.publish`. */
const MAX_PUBLISHES_IN_FLIGHT = 100;

export class Broker {
  aedes!: Aedes;
  /** The live, authenticated connection of each terminal. */
  readonly live = new Map<string, Client>();
  private readonly takenOver = new WeakSet<Client>();
  private readonly takingOver = new WeakSet<Client>();
  private readonly revoked = new WeakSet<Client>();
  /** Each connection's generation (presence/service.ts): its end writes offline only while the row names it. */
  private readonly generations = new WeakMap<Client, number>();
  private readonly addresses = new WeakMap<Duplex, string>();
  /** The transport behind a TLS or WebSocket connection's graceful wrapper (size-guard.ts). */
  private readonly transports = new WeakMap<Duplex, Duplex>();
  private readonly lengthCheck: ReturnType<typeof packetLengthCheck>;
  private readonly failures = new Map<string, { n: number; last: number }>();
  private readonly badLog = new RateLimitedLog();
  private stopping = false;
  private publishesInFlight = 0;
  private readonly publishQueue: (() => void)[] = [];
  /** Logins in progress (see MAX_LOGINS_IN_FLIGHT), the connections waiting for a slot, and each login's release. */
  private loginsInFlight = 0;
  private readonly loginQueue: { stream: Duplex; address: string }[] = [];
  private readonly loginSlots = new WeakMap<Duplex, () => void>();
  private admitScheduled = false;

  constructor(private readonly d: BrokerDeps) {
    this.lengthCheck = packetLengthCheck(d.maxPayload, (declared, parser) => this.oversize(declared, parser));
  }

  async start(): Promise<void> {
    this.aedes = await Aedes.createBroker({
      // Retained messages by exact topic: a terminal's SUBSCRIBE no longer scans every terminal's retained config.
      persistence: createPersistence() as AedesOptions['persistence'],
      // One frozen subscriber must not stall delivery to the others for long.
      drainTimeout: 30_000,
      maxClientsIdLength: 64,
      authenticate: (client, username, password, cb) => this.authenticate(client, username, password, cb),
      authorizePublish: (client, packet, cb) => this.authorizePublish(client, packet, cb),
      authorizeSubscribe: (client, sub, cb) => this.authorizeSubscribe(client, sub, cb),
    });
    this.aedes.on('client', (client) => this.onClient(client));
    this.aedes.on('clientDisconnect', (client) => this.onDisconnect(client));
    this.aedes.on('subscribe', (subs, client) => {
      if (!client) return;
      for (const s of subs) {
        const t = parseTopic(s.topic);
        if (t && t.terminalId === client.id) this.d.onSubscribed(t.terminalId, t.kind);
      }
    });
    this.aedes.on('clientError', (client, err) => this.d.log.debug({ terminalId: client.id, err: err.message }, 'client error'));
    this.aedes.on('connectionError', (client, err) => this.d.log.debug({ terminalId: client?.id, err: err.message }, 'connection error'));
  }

  /**
   * Hands a transport stream (TCP, TLS, WebSocket) to the broker, its parser behind the packet-length check; when
   * MAX_LOGINS_IN_FLIGHT logins are in progress, it waits for a slot (what it sends meanwhile stays buffered).
   */
  handle(stream: Duplex, address: string): void {
    if (this.loginsInFlight >= MAX_LOGINS_IN_FLIGHT || this.loginQueue.length > 0) {
      // nobody else listens yet: a reset while waiting must not become an uncaught 'error'
      stream.on('error', ignoreError);
      this.loginQueue.push({ stream, address });
      this.d.metrics.loginsWaiting.set(this.loginQueue.length);
      return;
    }
    this.admit(stream, address);
  }

  private admit(stream: Duplex, address: string): void {
    let conn = stream;
    if (stream instanceof tls.TLSSocket || !(stream instanceof net.Socket)) {
      conn = gracefulStream(stream);
      this.transports.set(conn, stream);
    }
    this.loginsInFlight++;
    let held = true;
    // nothing of the slot stays with the connection once released (19,000 of them live for days)
    const release = (): void => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      stream.off('close', release);
      this.loginSlots.delete(conn);
      this.loginsInFlight--;
      this.scheduleAdmit();
    };
    const timer = setTimeout(release, LOGIN_SLOT_MS);
    stream.once('close', release);
    // PUBACKs are small and already written once per connection and batch: Nagle's algorithm would only hold one back
    // until the terminal acknowledges the previous segment (up to its delayed-ACK timer). WebSocket sockets come with
    // it off (ws sets it).
    if (stream instanceof net.Socket) stream.setNoDelay(true);
    this.addresses.set(conn, address);
    this.loginSlots.set(conn, release);
    const client = this.aedes.handle(conn) as unknown as { _parser: MqttParser };
    guardParser(client._parser, this.lengthCheck);
  }

  /** Admits waiting connections into free slots, from a later turn (not from inside Aedes' event that freed them). */
  private scheduleAdmit(): void {
    if (this.admitScheduled || this.loginQueue.length === 0) return;
    this.admitScheduled = true;
    setImmediate(() => {
      this.admitScheduled = false;
      while (this.loginsInFlight < MAX_LOGINS_IN_FLIGHT && this.loginQueue.length > 0) {
        const next = this.loginQueue.shift()!;
        next.stream.off('error', ignoreError);
        if (next.stream.destroyed || this.stopping) {
          next.stream.destroy();
          continue;
        }
        this.admit(next.stream, next.address);
      }
      this.d.metrics.loginsWaiting.set(this.loginQueue.length);
    });
  }

  private oversize(declared: number | null, parser: MqttParser): void {
    const conn = (parser as unknown as { client?: Client }).client?.conn as Duplex | undefined;
    const address = conn ? (this.addresses.get(conn) ?? 'unknown') : 'unknown';
    this.d.metrics.rejected.inc({ reason: 'oversize' });
    if (this.badLog.admit(`oversize:${address}`) !== null) {
      this.d.log.warn({ address, declared, limit: this.d.maxPayload }, 'packet over KF_MAX_PAYLOAD; connection closed');
    }
    // At once, not gracefully: the peer is sending what we refuse to read. (Aedes destroys `conn` as the parser fails.)
    if (conn) this.transports.get(conn)?.destroy();
  }

  private addressOf(client: Client): string {
    return this.addresses.get(client.conn as Duplex) ?? 'unknown';
  }

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Readonly<Buffer | undefined>,
    cb: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    // The registry answers from its credential cache (bulk-loaded at start); only a miss reads the database.
    const verified = username === client.id && password ? this.d.registry.verify(client.id, password.toString('utf8')) : Promise.resolve(false);
    verified.then(
      (ok) => this.answerConnect(client, username, password, ok, cb),
      (err: unknown) => {
        // The database is unreachable: refused as "server unavailable" (return code 3, MQTT 3.1.1 §3.2.2.3), not as
        // bad credentials, so the address is not slowed down and the terminal retries as it would after a hub restart.
        if (this.badLog.admit('auth:store') !== null) this.d.log.error({ err, terminalId: client.id }, 'credentials unreadable; connection refused');
        this.d.metrics.rejected.inc({ reason: 'auth' });
        const e = new Error('server unavailable') as AuthenticateError;
        e.returnCode = 3;
        cb(e, false);
      },
    );
  }

  private answerConnect(
    client: Client,
    username: string | undefined,
    password: Readonly<Buffer | undefined>,
    verified: boolean,
    cb: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    const address = this.addressOf(client);
    const id = client.id;
    const will = (client as unknown as { _will?: PublishPacket | null })._will;
    let reason: string | null = null;
    if (username !== id) reason = 'username-not-client-id';
    else if (!password || !verified) reason = 'bad-credentials';
    else if (will && will.topic !== topicFor(id, 'presence')) reason = 'will-topic';
    const fail = this.failures.get(address);
    const now = Date.now();
    const delay =
      fail && now - fail.last < FAIL_WINDOW_MS && fail.n > FAIL_FREE ? Math.min(100 * 2 ** (fail.n - FAIL_FREE), MAX_DELAY_MS) : 0;
    const answer = () => {
      if (reason === null && this.d.takeovers) {
        const live = this.live.get(id);
        if (this.d.takeovers.refuse(id, address, live && live !== client ? this.addressOf(live) : null, Date.now())) reason = 'held-off';
      }
      if (reason !== null) {
        this.d.metrics.authFailures.inc({ reason });
        this.d.metrics.rejected.inc({ reason: 'auth' });
        const f = this.failures.get(address);
        if (f && now - f.last < FAIL_WINDOW_MS) f.n++;
        else {
          if (this.failures.size > 100_000) this.failures.clear();
          this.failures.set(address, { n: 1, last: now });
        }
        this.failures.get(address)!.last = now;
        // The terminal id is logged, never the password.
        if (this.badLog.admit(`auth:${address}`) !== null) this.d.log.warn({ terminalId: id, address, reason }, 'connection refused');
        const err = new Error('not authorized') as AuthenticateError;
        err.returnCode = 5;
        return cb(err, false);
      }
      this.failures.delete(address);
      // The parser keeps the CONNECT packet for the connection's life (its protocol settings), and the password and the
      // will's payload are slices of the socket's first read: with the password dropped and the payload copied, that
      // read (about 0.5 KB a terminal) is freed, and the secret is not kept in memory.
      const parsed = (client as unknown as { _parser?: { settings?: { password?: unknown } } })._parser?.settings;
      if (parsed) parsed.password = undefined;
      if (will) will.payload = Buffer.from(will.payload as Buffer);
      const old = this.live.get(id);
      if (old && old !== client) {
        this.takenOver.add(old);
        this.takingOver.add(client);
        this.d.takeovers?.takeover(id, this.addressOf(old), address, Date.now());
      }
      cb(null, true);
    };
    if (delay > 0) {
      this.d.metrics.authDelayed.inc();
      setTimeout(answer, delay).unref();
    } else answer();
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, cb: (err?: Error | null) => void): void {
    // Hub-side publishes come with no client. A terminal's topic must parse as its own up topic ($SYS never does).
    if (!client) return cb(null);
    const id = client.id;
    const t = parseTopic(packet.topic);
    if (!t || t.terminalId !== id || TOPICS[t.kind].direction !== 'up') {
      this.d.metrics.rejected.inc({ reason: 'acl-publish' });
      if (this.badLog.admit(`acl:${id}`) !== null) this.d.log.warn({ terminalId: id, topic: packet.topic }, 'publish outside own topics; connection closed');
      return cb(new Error('publish not authorized'));
    }
    const isWill = packet === (client as unknown as { will?: PublishPacket | null }).will;
    // Over the terminal's quota: dropped before it costs a parse, and acknowledged so that its outbox moves on (the
    // quota counts it and flags the terminal as flooding).
    if (!isWill && this.d.quota && !this.d.quota.admit(id, t.kind, Date.now())) {
      packet.retain = false;
      return cb(null);
    }
    const parsed = parsePayload(t.kind, packet.payload as Buffer);
    // Terminal → hub messages are for the hub only: nothing retains them in the broker's memory.
    packet.retain = false;
    if (!parsed.ok) {
      this.d.metrics.rejected.inc({ reason: parsed.reason });
      const suppressed = this.badLog.admit(`bad:${id}:${parsed.reason}`);
      if (suppressed !== null) {
        this.d.log.warn({ terminalId: id, kind: t.kind, reason: parsed.reason, detail: parsed.message.slice(0, 300), suppressed }, 'payload rejected, not stored');
      }
      // Acknowledged on purpose: a poison message must not block the terminal's outbox forever.
      return cb(null);
    }
    if (isWill) {
      if (this.takenOver.has(client) || this.d.presence.isStaleWill(id, parsed.value as never)) {
        this.d.metrics.rejected.inc({ reason: 'stale-will' });
      }
      // Presence from a will comes from the connection's end (onDisconnect), which knows about takeovers.
      return cb(null);
    }
    this.d.ingest.handle(id, t.kind as UpKind, parsed.value as never).then(
      () => cb(null),
      (err: unknown) => {
        this.d.log.error({ terminalId: id, err }, 'ingest failed; not acknowledged');
        cb(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private authorizeSubscribe(client: Client, sub: Subscription, cb: (err: Error | null, sub?: Subscription | null) => void): void {
    const t = parseTopic(sub.topic);
    if (!t || t.terminalId !== client.id || TOPICS[t.kind].direction !== 'down') {
      this.d.metrics.rejected.inc({ reason: 'acl-subscribe' });
      if (this.badLog.admit(`aclsub:${client.id}`) !== null) this.d.log.warn({ terminalId: client.id, topic: sub.topic }, 'subscribe outside own topics refused');
      return cb(null, null);
    }
    cb(null, sub);
  }

  private onClient(client: Client): void {
    this.loginSlots.get(client.conn as Duplex)?.();
    const takeover = this.takingOver.has(client);
    this.live.set(client.id, client);
    this.d.metrics.connectedTerminals.set(this.live.size);
    const gen = this.d.presence.nextGeneration();
    this.generations.set(client, gen);
    this.d.presence.connected(client.id, takeover, Date.now(), this.addressOf(client), gen).catch((err: unknown) => this.d.log.error({ err }, 'presence write failed'));
  }

  private onDisconnect(client: Client): void {
    const current = this.live.get(client.id);
    if (current === client) this.live.delete(client.id);
    this.d.metrics.connectedTerminals.set(this.live.size);
    if (this.takenOver.has(client)) return;
    // A newer connection of the terminal is live already (one that authenticated before this one was registered: a
    // terminal that gave up waiting for its CONNACK under load and retried): this end must not mark it offline.
    if (current !== undefined && current !== client) return;
    // Stopping: close() writes every terminal's offline at once.
    if (this.stopping) return;
    const clean = (client as unknown as { _disconnected?: boolean })._disconnected === true;
    const reason = this.revoked.has(client) ? 'credentials-revoked' : clean ? 'clean' : this.stopping ? 'hub-restart' : 'connection-lost';
    this.d.presence.disconnected(client.id, reason, Date.now(), this.generations.get(client)).catch((err: unknown) => this.d.log.error({ err }, 'presence write failed'));
  }

  /** Closes a terminal's live connection (new secret, decommission). */
  kick(terminalId: string): void {
    const c = this.live.get(terminalId);
    if (!c) return;
    this.revoked.add(c);
    c.close();
  }

  /**
   * Publishes from the hub to one terminal, at most MAX_PUBLISHES_IN_FLIGHT at a time, the rest queued in order.
   * Aedes' emitter releases queued deliveries recursively: a city-wide config push to 19,000 online terminals issued
   * as 19,000 publishes in one go overflowed the stack in Client.nextBatch and killed the hub (`pnpm bench
   * config-push`). A bounded window, refilled from a fresh tick, keeps every release shallow.
   */
  publish(terminalId: string, kind: TopicKind, payload: unknown): Promise<void> {
    const packet = {
      cmd: 'publish',
      topic: topicFor(terminalId, kind),
      payload: Buffer.from(JSON.stringify(payload)),
      qos: 1,
      retain: TOPICS[kind].retain,
      dup: false,
    } as PublishPacket;
    return new Promise((resolve, reject) => {
      const send = (): void => {
        this.publishesInFlight++;
        this.aedes.publish(packet, (err) => {
          this.publishesInFlight--;
          const next = this.publishQueue.shift();
          if (next) setImmediate(next);
          if (err) reject(err);
          else resolve();
        });
      };
      if (this.publishesInFlight < MAX_PUBLISHES_IN_FLIGHT) send();
      else this.publishQueue.push(send);
    });
  }

  /**
   * The hub is stopping: from now on a connection's end writes no presence (the hub writes `hub-restart` for every
   * terminal it served, in one job). Returns those terminals.
   */
  stop(): string[] {
    this.stopping = true;
    return [...this.live.keys()];
  }

  /** The live connections with their generations and addresses (a hub whose lease lapsed says they are its own). */
  connections(): { terminalId: string; gen: number; address: string }[] {
    const out: { terminalId: string; gen: number; address: string }[] = [];
    for (const [terminalId, c] of this.live) {
      const gen = this.generations.get(c);
      if (gen !== undefined) out.push({ terminalId, gen, address: this.addressOf(c) });
    }
    return out;
  }

  /**
   * Closes every connection at once and the broker. Called at a stop after the final flush: every terminal's state is
   * written by then, so Aedes' own per-client close (each client's subscriptions removed one by one, a $SYS message,
   * its will, then its socket) is skipped: each socket is destroyed, and the client marked closed first so that Aedes
   * does nothing more when it notices. Under 19,000 terminals the per-client close took 3-7 s of the stop.
   */
  async close(): Promise<void> {
    this.stopping = true;
    for (const w of this.loginQueue.splice(0)) w.stream.destroy();
    this.d.metrics.loginsWaiting.set(0);
    const clients = (this.aedes as unknown as { clients: Record<string, Client> }).clients;
    for (const c of Object.values(clients)) {
      const client = c as unknown as { closed: boolean; will: unknown; _keepaliveTimer: NodeJS.Timeout | null; _eos: () => void };
      if (client.closed) continue;
      // The hub ignores wills (presence comes from the connection's end, and at a stop from stop()).
      client.will = null;
      client.closed = true;
      // Aedes' end-of-stream watch would make a premature-close error (with its stack) for each destroyed socket.
      client._eos();
      if (client._keepaliveTimer) clearTimeout(client._keepaliveTimer);
      client._keepaliveTimer = null;
      const conn = c.conn as Duplex;
      (this.transports.get(conn) ?? conn).destroy();
      conn.destroy();
    }
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
  }
}
