/**
 * Reconnect delays: capped exponential with "equal jitter" (half fixed, half random), so a thousand terminals that
 * lost a restarting hub at the same second spread their reconnects over the window instead of arriving together,
 * and none retries sooner than half its step.
 *
 * The link reports its connections (`connected()` at CONNACK, `lost()` when it closes); from them:
 * - **A new outage starts short.** A connection that had been up for `stableMs` (5 s) was a real one: its loss is a
 *   new outage, and the step starts again from `minMs` (0.5-1 s first). A connection lost sooner (a broker that
 *   kicks the terminal right after CONNACK, two terminals with the same id) does not reset the step: it keeps
 *   doubling, so a flapping connection never becomes a tight loop.
 * - **A new outage is retried often for a while.** For the first `outageWindowMs` (2 min) of a new outage, the step
 *   stops doubling at `outageCapMs` (8 × `minMs`: waits of 4-8 s by default): a hub restart takes seconds, and a
 *   terminal whose attempt fails just before the hub is back would otherwise wait 16-32 s (the reconnect storm of
 *   19,000 terminals in bench/, issue 10). The jitter stays, so the fleet still arrives spread over the cap. After
 *   the window (a long outage) the step resumes its doubling to `maxMs`.
 * Without `connected()`/`lost()` (the updater's download retries), it is plain capped doubling; `reset()` starts over.
 *
 * This is the one implementation of the policy: the bench's load generators (bench/lib/loadgen.ts) import it.
 */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  random?: () => number;
  /** A connection up this long is stable: its loss is a new outage (default 5 s). */
  stableMs?: number;
  /** The step's cap during the first `outageWindowMs` of a new outage (default 8 × minMs, at most maxMs). */
  outageCapMs?: number;
  /** How long a new outage is retried at most every `outageCapMs` (default 2 min). */
  outageWindowMs?: number;
  now?: () => number;
}

/**
 * How long one connection attempt (TCP connect through CONNACK) may take before the agent gives it up and waits for its
 * next one (mqtt.js' default too). Long enough for the kernel's SYN retransmissions (after 1, 3, 7 and 15 s) and a
 * full accept queue: a hub restarted under 19,000 terminals drops SYNs and queues connections for seconds, and an
 * attempt given up after it was queued still costs the hub a whole login (`pnpm bench reconnect`: with 15 s, 5,660
 * attempts given up, 1.75 ms of hub CPU per reconnected terminal and 35.6 s until all were back; see BENCHMARKS.md
 * for 30 s). The bench's load generators use it too.
 */
export const CONNECT_TIMEOUT_MS = 30_000;

/**
 * How long the TCP handshake of an attempt may go unanswered before the agent gives the attempt up and waits for its
 * next one. A SYN goes unanswered when the hub's host is unreachable or when its kernel drops it because the hub's
 * accept queue is full (a hub restarted under 19,000 terminals: `pnpm bench reconnect`). The kernel would retry
 * after 1, 3, 7, 15 and 31 s; a terminal that missed the queue at 3 s would then come back only at 7 or 15 s, and
 * the last ones at 31 s, while the hub sits idle. A dropped SYN costs the hub nothing, so trying again on the
 * backoff's schedule (4-8 s apart in a new outage) is cheap. Covers the kernel's first retransmission (1 s); a
 * handshake that was answered is never cut short by this (the CONNACK then has `CONNECT_TIMEOUT_MS`).
 */
export const HANDSHAKE_TIMEOUT_MS = 2_000;

export const BACKOFF_DEFAULTS = { stableMs: 5_000, outageCapSteps: 8, outageWindowMs: 120_000 } as const;

export class Backoff {
  #attempt = 0;
  /** When the current connection was made (null: not connected). */
  #upSince: number | null = null;
  /** When the current new outage began (null: none). */
  #outageSince: number | null = null;
  constructor(private readonly opts: BackoffOptions) {}

  /** The delay before the next attempt; each call doubles the step up to the cap. */
  next(): number {
    let step = Math.min(this.opts.maxMs, this.opts.minMs * 2 ** Math.min(this.#attempt, 30));
    if (this.#outageSince !== null && this.#now() - this.#outageSince < (this.opts.outageWindowMs ?? BACKOFF_DEFAULTS.outageWindowMs)) {
      step = Math.min(step, this.#outageCapMs());
    }
    this.#attempt += 1;
    const r = (this.opts.random ?? Math.random)();
    return Math.round(step / 2 + r * (step / 2));
  }

  /** A connection is up (CONNACK). */
  connected(): void {
    this.#upSince = this.#now();
  }

  /** The connection made at `connected()` is gone (a no-op when none was up). */
  lost(): void {
    if (this.#upSince === null) return;
    const now = this.#now();
    if (now - this.#upSince >= (this.opts.stableMs ?? BACKOFF_DEFAULTS.stableMs)) {
      this.#attempt = 0;
      this.#outageSince = now;
    }
    this.#upSince = null;
  }

  reset(): void {
    this.#attempt = 0;
    this.#outageSince = null;
  }

  get attempt(): number {
    return this.#attempt;
  }

  #outageCapMs(): number {
    return Math.min(this.opts.maxMs, this.opts.outageCapMs ?? this.opts.minMs * BACKOFF_DEFAULTS.outageCapSteps);
  }

  #now(): number {
    return (this.opts.now ?? Date.now)();
  }
}

/** `ms` ± `fraction`, for periodic timers that must not line up across the fleet. */
export function jitter(ms: number, fraction = 0.1, random = Math.random): number {
  return Math.max(1, Math.round(ms * (1 - fraction + 2 * fraction * random())));
}
