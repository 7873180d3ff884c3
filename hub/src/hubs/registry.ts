/**
 * This hub's row in the hubs table: upserted at start, its lease renewed every fifth of KF_HUB_LEASE_MS (2 s at the
 * default 10 s, so four renewals can fail or lag before the lease runs out), ended at a clean stop.
 */
import pkg from '../../package.json' with { type: 'json' };
import type { Logger } from '../log.ts';
import type { HubStore } from './store.ts';

export const HUB_VERSION: string = pkg.version;

export interface HubRegistryOptions {
  id: string;
  leaseMs: number;
  /** Terminals connected here now. */
  connectedTerminals: () => number;
  /** The jobs this hub leads now (cluster leadership); default none. */
  leaderOf?: () => string[];
  /**
   * The lease had run out when it was renewed (the hub stalled longer than its lease, or could not reach the
   * database): a reaper may have taken this hub's terminals offline meanwhile.
   */
  onLapsed?: () => void;
}

export class HubRegistry {
  readonly startedAt = Date.now();
  #timer: NodeJS.Timeout | null = null;
  #renewing: Promise<void> | null = null;

  constructor(
    private readonly store: HubStore,
    private readonly o: HubRegistryOptions,
    private readonly log: Logger,
  ) {}

  get id(): string {
    return this.o.id;
  }

  /** The first lease (before the hub accepts connections: a row naming this hub is never older than its lease). */
  async start(): Promise<void> {
    await this.#renew(true);
    this.#timer = setInterval(() => {
      this.#renewing ??= this.#renew(false)
        .catch((err: unknown) => this.log.error({ err, hubId: this.o.id }, 'hub lease renewal failed'))
        .finally(() => (this.#renewing = null));
    }, Math.max(200, Math.floor(this.o.leaseMs / 5)));
    this.#timer.unref();
  }

  /** A clean stop: no more renewals, the lease ends now. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#renewing;
    await this.store.expire(this.o.id);
  }

  async #renew(first: boolean): Promise<void> {
    const r = await this.store.renew({
      id: this.o.id,
      version: HUB_VERSION,
      startedAt: this.startedAt,
      leaseMs: this.o.leaseMs,
      connectedTerminals: this.o.connectedTerminals(),
      leaderOf: this.o.leaderOf?.() ?? [],
    });
    if (!first && this.#timer !== null && r.previous !== null && r.previous <= r.now) {
      this.log.warn({ hubId: this.o.id, lapsedMs: r.now - r.previous }, 'hub lease had run out before it was renewed');
      this.o.onLapsed?.();
    }
  }
}
