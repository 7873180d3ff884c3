/**
 * The change feed between the hubs of one installation (issue 19): a hub that changed something other hubs hold in
 * memory or must act on (a downlink for a terminal connected elsewhere, a cache) publishes the ids after the commit;
 * every hub's subscribers re-read what they need from the tables. PostgreSQL: NOTIFY on one channel, heard on one
 * dedicated LISTEN connection per hub. SQLite: a cluster of one, delivered in process.
 *
 * Invariants:
 * - Payloads carry ids (and for `changes` the few fields a listener needs), never samples; publishes of one short
 *   window are coalesced into one statement, split below PostgreSQL's 8000-byte payload limit. A committing NOTIFY
 *   takes a database-wide lock, so nothing here is sent per message a terminal sends.
 * - Sent after the commit that made the change (the caller publishes once its transaction returned), so a hub that
 *   hears it reads the change.
 * - Every hub hears its own messages too (`own`); subscribers skip them unless asked (`{ own: true }`): the hub that
 *   made the change already acted on it.
 * - At least once, not exactly once, and nothing is heard while the LISTEN connection is down: after it comes back,
 *   every subscriber's `resync` re-reads from the tables what it keeps.
 *
 * Why not postgres.js' `sql.listen`: after its connection closes it LISTENs again once, and when that fails (the
 * server still restarting) it drops the listener silently (`.catch(() => {})` in src/index.js) — the hub would go
 * deaf for good. Here the LISTEN connection is a client of its own (max 1, no idle or lifetime recycling), re-opened
 * with a backoff until it listens again, and pinged so that a half-open connection is noticed within seconds.
 */
import { EventEmitter } from 'node:events';
import postgres, { type Sql } from 'postgres';
import type { Engine } from '../db/engine.ts';
import type { Logger } from '../log.ts';

/** The one PostgreSQL channel; the feed's channel travels in the payload. */
export const PG_CHANNEL = 'kf_feed';
/** Publishes within this window go out as one statement (a writer batch's changes, an import's terminals). */
export const FLUSH_MS = 20;
/** NOTIFY refuses payloads of 8000 bytes or more; room left for the envelope. */
const MAX_PAYLOAD_BYTES = 7000;

export interface FeedMessage<T = string> {
  channel: string;
  /** The hub that published it. */
  origin: string;
  /** This hub published it. */
  own: boolean;
  /** When its first item was published (the publisher's clock). */
  at: number;
  items: T[];
}

export interface SubscribeOptions {
  /** Also this hub's own messages (default: only other hubs'). */
  own?: boolean;
  /** After the LISTEN connection came back: re-read what the subscriber keeps (messages may have been missed). */
  resync?: () => unknown;
}

export interface ChangeFeed {
  readonly hubId: string;
  /** Queues items for the channel; they go out within FLUSH_MS, after the caller's commit. Resolves once sent. */
  publish<T = string>(channel: string, items: readonly T[]): Promise<void>;
  on<T = string>(channel: string, fn: (m: FeedMessage<T>) => unknown, opts?: SubscribeOptions): () => void;
  /** Sends what is queued now. */
  flush(): Promise<void>;
  /** PostgreSQL: the LISTEN connection's backend pid (tests end it to check the resync); null on SQLite or while down. */
  listenerPid(): number | null;
  close(): Promise<void>;
}

interface Subscriber {
  channel: string;
  fn: (m: FeedMessage<unknown>) => unknown;
  opts: SubscribeOptions;
}

interface Envelope {
  o: string;
  c: string;
  t: number;
  i: unknown[];
}

/** What both engines share: the queue, the split into payloads, the subscribers and their dispatch. */
abstract class FeedBase implements ChangeFeed {
  private readonly subscribers = new Set<Subscriber>();
  private queue = new Map<string, { at: number; items: unknown[] }>();
  private timer: NodeJS.Timeout | null = null;
  private waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  protected closed = false;

  constructor(
    readonly hubId: string,
    protected readonly log: Logger,
  ) {}

  protected abstract send(payloads: string[]): Promise<void>;

  abstract listenerPid(): number | null;

  publish<T = string>(channel: string, items: readonly T[]): Promise<void> {
    if (items.length === 0 || this.closed) return Promise.resolve();
    const q = this.queue.get(channel);
    if (q) q.items.push(...items);
    else this.queue.set(channel, { at: Date.now(), items: [...items] });
    this.timer ??= setTimeout(() => void this.flush().catch(() => {}), FLUSH_MS);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const queue = this.queue;
    const waiting = this.waiting;
    this.queue = new Map();
    this.waiting = [];
    if (queue.size === 0) return;
    const payloads: string[] = [];
    for (const [channel, { at, items }] of queue) payloads.push(...split(this.hubId, channel, at, items));
    try {
      await this.send(payloads);
      for (const w of waiting) w.resolve();
    } catch (err) {
      // Other hubs catch up by their sweeps and on their next resync; the caller's change is committed either way.
      this.log.error({ err, channels: [...queue.keys()] }, 'change feed: publish failed');
      for (const w of waiting) w.reject(err);
    }
  }

  on<T = string>(channel: string, fn: (m: FeedMessage<T>) => unknown, opts: SubscribeOptions = {}): () => void {
    const s: Subscriber = { channel, fn: fn as (m: FeedMessage<unknown>) => unknown, opts };
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }

  /** A payload heard (PostgreSQL) or published (SQLite): to every subscriber of its channel. */
  protected deliver(payload: string): void {
    let e: Envelope;
    try {
      e = JSON.parse(payload) as Envelope;
      if (typeof e.o !== 'string' || typeof e.c !== 'string' || !Array.isArray(e.i)) throw new Error('not a feed envelope');
    } catch (err) {
      this.log.warn({ err, payload: payload.slice(0, 200) }, 'change feed: unreadable notification ignored');
      return;
    }
    const m: FeedMessage<unknown> = { channel: e.c, origin: e.o, own: e.o === this.hubId, at: e.t, items: e.i };
    for (const s of this.subscribers) {
      if (s.channel !== m.channel || (m.own && !s.opts.own)) continue;
      try {
        Promise.resolve(s.fn(m)).catch((err: unknown) => this.log.error({ err, channel: m.channel }, 'change feed: subscriber failed'));
      } catch (err) {
        this.log.error({ err, channel: m.channel }, 'change feed: subscriber failed');
      }
    }
  }

  /** Every subscriber's resync, after messages may have been missed. */
  protected async resyncAll(): Promise<void> {
    await Promise.all(
      [...this.subscribers].map(async (s) => {
        try {
          await s.opts.resync?.();
        } catch (err) {
          this.log.error({ err, channel: s.channel }, 'change feed: resync failed');
        }
      }),
    );
  }

  async close(): Promise<void> {
    await this.flush().catch(() => {});
    this.closed = true;
    this.subscribers.clear();
  }
}

/** The items as envelopes of at most MAX_PAYLOAD_BYTES each (an item larger than that goes alone). */
export function split(origin: string, channel: string, at: number, items: readonly unknown[]): string[] {
  const head = `{"o":${JSON.stringify(origin)},"c":${JSON.stringify(channel)},"t":${at},"i":[`;
  const out: string[] = [];
  let parts: string[] = [];
  let size = head.length + 2;
  for (const item of items) {
    const s = JSON.stringify(item);
    const len = Buffer.byteLength(s) + 1;
    if (parts.length > 0 && size + len > MAX_PAYLOAD_BYTES) {
      out.push(`${head}${parts.join(',')}]}`);
      parts = [];
      size = head.length + 2;
    }
    parts.push(s);
    size += len;
  }
  if (parts.length > 0) out.push(`${head}${parts.join(',')}]}`);
  return out;
}

/** SQLite: one hub is the whole installation; what it publishes it hears, on a later tick. */
export class LocalFeed extends FeedBase {
  private readonly emitter = new EventEmitter();

  constructor(hubId: string, log: Logger) {
    super(hubId, log);
    this.emitter.on('payload', (p: string) => this.deliver(p));
  }

  protected async send(payloads: string[]): Promise<void> {
    for (const p of payloads) setImmediate(() => this.emitter.emit('payload', p));
  }

  listenerPid(): number | null {
    return null;
  }
}

export interface PostgresFeedOptions {
  /** How often the LISTEN connection is checked (a `select 1` that must answer within as long). */
  pingMs?: number;
  /** First and longest wait between attempts to listen again. */
  backoffMs?: [number, number];
}

/** PostgreSQL: NOTIFY through the pool, LISTEN on a dedicated connection that comes back by itself. */
export class PostgresFeed extends FeedBase {
  private listener: Sql | null = null;
  private pid: number | null = null;
  private reconnecting: Promise<void> | null = null;
  private ping: NodeJS.Timeout | null = null;
  private readonly pingMs: number;
  private readonly backoff: [number, number];

  constructor(
    hubId: string,
    log: Logger,
    private readonly pool: Sql,
    private readonly url: string,
    opts: PostgresFeedOptions = {},
  ) {
    super(hubId, log);
    this.pingMs = opts.pingMs ?? 5000;
    this.backoff = opts.backoffMs ?? [100, 5000];
  }

  /** Listens (throws when the server cannot be reached: the hub's start fails as for its pool). */
  async start(): Promise<void> {
    await this.listen();
    this.ping = setInterval(() => void this.check(), this.pingMs);
    this.ping.unref();
  }

  listenerPid(): number | null {
    return this.pid;
  }

  protected async send(payloads: string[]): Promise<void> {
    // One statement for the window's payloads: one round trip, one commit (and its notify lock) for all of them.
    await this.pool`select pg_notify(${PG_CHANNEL}, p) from unnest(${payloads}::text[]) as p`;
  }

  private async listen(): Promise<void> {
    // `onnotify` is an option of postgres.js' connections that its types do not list (sql.listen uses it).
    const client: Sql = postgres(this.url, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      fetch_types: false,
      connect_timeout: 10,
      // how an operator (and the cluster tests) find it in pg_stat_activity
      connection: { application_name: `kf-feed ${this.hubId}` },
      onnotice: () => {},
      onnotify: (channel: string, payload: string) => {
        if (channel === PG_CHANNEL && client === this.listener) this.deliver(payload);
      },
      onclose: () => {
        if (client === this.listener) this.lost('connection closed');
      },
    } as postgres.Options<Record<string, postgres.PostgresType>>);
    try {
      await client.unsafe(`listen ${PG_CHANNEL}`);
      const [row] = await client<{ pid: number }[]>`select pg_backend_pid() as pid`;
      if (this.closed) throw new Error('change feed closed');
      this.listener = client;
      this.pid = row?.pid ?? null;
    } catch (err) {
      await client.end({ timeout: 0 }).catch(() => {});
      throw err;
    }
  }

  /** The LISTEN connection failed or went quiet: a new one, until it listens, then every subscriber resyncs. */
  private lost(why: string): void {
    if (this.closed || this.reconnecting) return;
    const old = this.listener;
    this.listener = null;
    this.pid = null;
    this.log.warn({ why }, 'change feed: LISTEN connection lost; listening again');
    this.reconnecting = (async () => {
      await old?.end({ timeout: 0 }).catch(() => {});
      let wait = this.backoff[0];
      while (!this.closed) {
        try {
          await this.listen();
          break;
        } catch (err) {
          this.log.warn({ err, retryMs: wait }, 'change feed: listening again failed');
          await new Promise((r) => setTimeout(r, wait).unref());
          wait = Math.min(wait * 2, this.backoff[1]);
        }
      }
      if (this.closed) return;
      this.log.info('change feed: listening again; resync');
      await this.resyncAll();
    })().finally(() => {
      this.reconnecting = null;
    });
  }

  private async check(): Promise<void> {
    const client = this.listener;
    if (!client || this.reconnecting) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client`select 1`,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('ping unanswered')), this.pingMs);
        }),
      ]);
    } catch (err) {
      if (client === this.listener) this.lost((err as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }

  override async close(): Promise<void> {
    await super.close();
    if (this.ping) clearInterval(this.ping);
    const l = this.listener;
    this.listener = null;
    this.pid = null;
    await l?.end({ timeout: 1 }).catch(() => {});
    await this.reconnecting?.catch(() => {});
  }
}

/** The feed for the hub's engine: PostgreSQL's is listening when this resolves. */
export async function openFeed(engine: Engine, hubId: string, log: Logger, opts: PostgresFeedOptions = {}): Promise<ChangeFeed> {
  if (engine.kind === 'sqlite') return new LocalFeed(hubId, log);
  const feed = new PostgresFeed(hubId, log, engine.pg.sql, engine.pg.target.url, opts);
  await feed.start();
  return feed;
}
