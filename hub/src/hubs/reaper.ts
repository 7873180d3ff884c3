/**
 * The dead-hub reaper: a hub whose lease ran out (SIGKILL, a lost host) left its terminals online in the database;
 * they go offline with reason `hub-lost` (the same transition, change event and alert path as any offline), except
 * those that connected to another hub meanwhile (their rows name that hub). Idempotent: every hub may run it, and
 * a dead hub is reaped once per lease end it left. With the default lease (10 s) and a run every second, a killed
 * hub's terminals are offline 10-12 s after its last renewal.
 */
import type { Logger } from '../log.ts';
import type { PresenceService } from '../presence/service.ts';
import type { HubStore } from './store.ts';

/**
 * A dead hub already reaped for its lease end is looked at again after this long: a hub that stalled past its lease
 * (so was reaped) and then wrote a connection before it died for good leaves a row the first pass could not see.
 */
const REAP_AGAIN_MS = 60_000;

/** Rows of hubs gone this long are forgotten (a renamed or retired hub); their terminals were reaped long before. */
const FORGET_AFTER_MS = 24 * 3600_000;

export interface ReaperOptions {
  /** This hub (never reaped by itself: a hub that lapsed says so at its next renewal, registry.ts). */
  hubId: string;
  everyMs?: number;
  /** Whether this hub runs the reaper now (cluster leadership: `() => leadership.isLeader('reaper')`); default always. */
  shouldRun?: () => boolean;
}

export class HubReaper {
  /** Dead hubs reaped: the lease end they were reaped for (a hub that comes back and dies again is reaped again), and when. */
  readonly #reaped = new Map<string, { expiry: number; at: number }>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;
  #runs = 0;

  constructor(
    private readonly store: HubStore,
    private readonly presence: Pick<PresenceService, 'hubLost'>,
    private readonly log: Logger,
    private readonly o: ReaperOptions,
  ) {}

  /** One pass: the terminals of dead hubs offline (`hub-lost`). Returns how many went offline. */
  async runReaper(): Promise<number> {
    if (this.o.shouldRun && !this.o.shouldRun()) return 0;
    const now = Date.now();
    const dead = (await this.store.dead()).filter((h) => {
      const r = this.#reaped.get(h.id);
      return h.id !== this.o.hubId && (r === undefined || r.expiry !== h.leaseExpiresAt || now - r.at > REAP_AGAIN_MS);
    });
    let n = 0;
    if (dead.length > 0) {
      n = await this.presence.hubLost(dead.map((h) => h.id));
      for (const h of dead) this.#reaped.set(h.id, { expiry: h.leaseExpiresAt, at: now });
      if (n > 0) this.log.warn({ hubs: dead.map((h) => h.id), terminals: n }, 'terminals of dead hubs marked offline (hub-lost)');
    }
    if (++this.#runs % 3600 === 1) {
      const forgotten = await this.store.prune(FORGET_AFTER_MS);
      if (forgotten > 0) this.log.info({ hubs: forgotten }, 'forgot hubs gone for a day');
    }
    return n;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.#running ??= this.runReaper()
        .catch((err: unknown) => {
          this.log.error({ err }, 'dead-hub reaper failed');
          return 0;
        })
        .finally(() => (this.#running = null));
    }, this.o.everyMs ?? 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
