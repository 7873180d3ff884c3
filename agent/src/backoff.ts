/**
 * Reconnect delays: capped exponential with "equal jitter" (half fixed, half random), so a thousand terminals that
 * lost a restarting hub at the same second spread their reconnects over the window instead of arriving together,
 * and none retries sooner than half its step.
 */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  random?: () => number;
}

export class Backoff {
  #attempt = 0;
  constructor(private readonly opts: BackoffOptions) {}

  /** The delay before the next attempt; each call doubles the step up to the cap. */
  next(): number {
    const step = Math.min(this.opts.maxMs, this.opts.minMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt += 1;
    const r = (this.opts.random ?? Math.random)();
    return Math.round(step / 2 + r * (step / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempt(): number {
    return this.#attempt;
  }
}

/** `ms` ± `fraction`, for periodic timers that must not line up across the fleet. */
export function jitter(ms: number, fraction = 0.1, random = Math.random): number {
  return Math.max(1, Math.round(ms * (1 - fraction + 2 * fraction * random())));
}
