/**
 * Per-terminal ingest quotas: a token bucket per (terminal, stream), checked in the broker's authorizePublish before
 * the payload is even parsed, and a cap on the events stored per terminal and day, checked in the ingest job.
 *
 * Why these limits exist: with one terminal's credentials a hostile client stored 33,700 events in 2 s (~17 MB; events
 * are kept 400 days), so one stolen terminal could fill the disk and stop ingest for the fleet (issue 20, item 3).
 *
 * What a legitimate terminal sends (agent/README.md): a telemetry sample every 30 s (KF_TELEMETRY_INTERVAL); events,
 * command results, config reports and update status a few times an hour at most (update progress every 10 % of a
 * download); and, after an outage, its whole outbox (bounded at 7 days or 100 MB) as fast as the hub acknowledges
 * (256 in flight, 3,700-17,800 messages/s measured with `pnpm bench agent`).
 *
 * Why a replay is not dropped: a bucket fills up while its terminal is silent, so a terminal back after an outage of T
 * finds min(burst, rate·T) tokens while its outbox holds what it produced in T. With `rate` at or above what the
 * terminal produces and `burst` at or above what its outbox can hold of a stream, every replay passes whole, at any
 * speed, and nothing has to trust a message's own timestamp (a flooder can backdate its samples as easily as a
 * replaying terminal has old ones). Telemetry: 7 days at the default 30 s interval is 20,160 samples, so a burst of
 * 30,000; 1 sample/s covers intervals down to 1 s (a terminal configured faster needs KF_QUOTA_TELEMETRY_RATE raised).
 * The discrete streams are rare and their replays small: 1 message/s with bursts of 2,000 (events 5,000).
 * Above the limits, at most rate·86,400 + burst messages a day get through per stream, and stored events are capped
 * per day (KF_QUOTA_EVENTS_PER_DAY, counted by the hub's receive time in KF_TIMEZONE: a flooder chooses its
 * timestamps), which bounds what a stolen terminal can add to the 400-day event history.
 *
 * Invariants:
 * - The hot path (`admit`) allocates nothing: one Map lookup of the terminal's slot (created once per terminal, never
 *   deleted: terminals are few and registered) and arithmetic on one shared Float64Array.
 * - A dropped message is still acknowledged by the caller (the outbox moves on); it is counted per stream and reason.
 * - A terminal is "flooding" from its first drop until `floodQuietMs` pass without one; the start, a changed count
 *   (at most every FLOOD_REPORT_MS) and the end are reported to `onFlooding` (stored, then judged by the alert rule).
 */
import type { StreamKind, TopicKind } from '@kiosk-fleet/protocol';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

export const QUOTA_STREAMS = ['telemetry', 'events', 'commands/result', 'config/reported', 'update/status'] as const satisfies readonly StreamKind[];
export type QuotaStream = (typeof QUOTA_STREAMS)[number];

export interface StreamQuota {
  /** Messages a second refilled into the bucket; 0: no limit on this stream. */
  rate: number;
  /** Bucket size: what a terminal may send at once after being quiet (a full outbox replay). */
  burst: number;
}

export interface QuotaOptions {
  streams: Record<QuotaStream, StreamQuota>;
  /** Events stored per terminal and day (hub receive time, in `timezone`); 0: no cap. */
  eventsPerDay: number;
  /** A flood ends this long after its last dropped message. */
  floodQuietMs: number;
  /** The day of the daily cap (KF_TIMEZONE); default UTC. */
  timezone?: string;
}

export const DEFAULT_QUOTAS: Record<QuotaStream, StreamQuota> = {
  telemetry: { rate: 1, burst: 30_000 },
  events: { rate: 1, burst: 5_000 },
  'commands/result': { rate: 1, burst: 2_000 },
  'config/reported': { rate: 1, burst: 2_000 },
  'update/status': { rate: 1, burst: 2_000 },
};

/** What is stored while a terminal floods (terminal_state.flooding). */
export interface FloodState {
  since: number;
  /** Last drop. */
  last: number;
  /** Dropped messages by stream (`events-daily-cap` for the events refused by the daily cap). */
  dropped: Record<string, number>;
}

/** A flood's growing drop counts are stored at most this often (each store refreshes the alert's details). */
const FLOOD_REPORT_MS = 10_000;

const STREAM_INDEX: Readonly<Partial<Record<TopicKind, number>>> = Object.freeze(
  Object.fromEntries(QUOTA_STREAMS.map((k, i) => [k, i])) as Partial<Record<TopicKind, number>>,
);
const N = QUOTA_STREAMS.length;
/** Per slot: (tokens, refilled at) per stream, then the day the event count is for and the count. */
const WIDTH = 2 * N + 2;
const DAY = 2 * N;
const COUNT = 2 * N + 1;

export class IngestQuota {
  readonly #slots = new Map<string, number>();
  #b = new Float64Array(WIDTH * 1024);
  readonly #ratePerMs = new Float64Array(N);
  readonly #burst = new Float64Array(N);
  readonly #dropped: { inc(): void }[];
  readonly #dailyDropped: { inc(): void };
  readonly #flooding = new Map<string, FloodState & { reported: number; changed: boolean }>();
  #dayStart = 0;
  #dayEnd = 0;
  readonly #dayOf: Intl.DateTimeFormat;

  constructor(
    private readonly opts: QuotaOptions,
    metrics: Metrics,
    private readonly log: Logger,
    /** Told when a flood starts (state), its counts grew, or it ended (null). */
    private readonly onFlooding: (terminalId: string, state: FloodState | null) => void = () => undefined,
  ) {
    QUOTA_STREAMS.forEach((k, i) => {
      this.#ratePerMs[i] = opts.streams[k].rate / 1000;
      this.#burst[i] = opts.streams[k].burst;
    });
    // bound once: a labelled inc() per dropped message would build a label object and its key each time
    this.#dropped = QUOTA_STREAMS.map((k) => metrics.quotaDropped.labels(k, 'rate'));
    this.#dailyDropped = metrics.quotaDropped.labels('events', 'daily-cap');
    this.#dayOf = new Intl.DateTimeFormat('en-CA', {
      timeZone: opts.timezone ?? 'UTC',
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  }

  /** Whether a message of `kind` from this terminal is within its quota (it takes a token); false: drop it. */
  admit(terminalId: string, kind: TopicKind, now: number): boolean {
    const i = STREAM_INDEX[kind];
    if (i === undefined) return true;
    const rate = this.#ratePerMs[i]!;
    if (rate === 0) return true;
    const o = this.#slot(terminalId, now) * WIDTH + 2 * i;
    // (after #slot: a new terminal may have grown the array)
    const b = this.#b;
    let tokens = b[o]!;
    const elapsed = now - b[o + 1]!;
    // (a clock set back refills nothing, and takes nothing back)
    if (elapsed > 0) {
      tokens += elapsed * rate;
      if (tokens > this.#burst[i]!) tokens = this.#burst[i]!;
      b[o + 1] = now;
    }
    if (tokens >= 1) {
      b[o] = tokens - 1;
      return true;
    }
    b[o] = tokens;
    this.#dropped[i]!.inc();
    this.#flood(terminalId, kind, now);
    return false;
  }

  /**
   * Whether another event of this terminal may be stored today; `storedSince(dayStart)` counts the events it stored
   * since the day began (read once per terminal and day, so a hub restart does not reset the cap).
   */
  eventRoom(terminalId: string, now: number, storedSince: (since: number) => number): boolean {
    const cap = this.opts.eventsPerDay;
    if (cap === 0) return true;
    const day = this.#day(now);
    const o = this.#slot(terminalId, now) * WIDTH;
    const b = this.#b;
    if (b[o + DAY] !== day) {
      b[o + DAY] = day;
      b[o + COUNT] = storedSince(day);
    }
    // counted when admitted, not when stored: on PostgreSQL a batch's rows are inserted (and `stored` told) only at
    // its end, so a count taken at insert let a whole batch past the cap; a duplicate gives its place back
    if (b[o + COUNT]! < cap) {
      b[o + COUNT]!++;
      return true;
    }
    this.#dailyDropped.inc();
    this.#flood(terminalId, 'events-daily-cap', now);
    return false;
  }

  /**
   * The start of today when `eventRoom` is going to ask for the events stored today (the terminal's first event of
   * the day here), else null: the caller reads that count before its write job (a read inside the batch would be a
   * round trip per message on PostgreSQL).
   */
  dayToCount(terminalId: string, now: number): number | null {
    if (this.opts.eventsPerDay === 0) return null;
    const day = this.#day(now);
    return this.#b[this.#slot(terminalId, now) * WIDTH + DAY] === day ? null : day;
  }

  /** An event `eventRoom` admitted was a duplicate, not stored: it does not count against today's cap. */
  eventDuplicate(terminalId: string, now: number): void {
    if (this.opts.eventsPerDay === 0) return;
    const o = this.#slot(terminalId, now) * WIDTH;
    if (this.#b[o + DAY] === this.#day(now) && this.#b[o + COUNT]! > 0) this.#b[o + COUNT]!--;
  }

  /** Terminals flooding now. */
  get flooding(): ReadonlyMap<string, FloodState> {
    return this.#flooding;
  }

  /** A flood a previous run stored: it goes on (so does its alert) until `floodQuietMs` pass without a drop. */
  restoreFlood(terminalId: string, state: FloodState, now = Date.now()): void {
    if (typeof state.since !== 'number' || typeof state.dropped !== 'object' || state.dropped === null) return;
    this.#flooding.set(terminalId, { since: state.since, last: now, dropped: { ...state.dropped }, reported: now, changed: false });
  }

  /** Ends floods quiet for `floodQuietMs`, reports grown counts; called every second or so. */
  tick(now: number): void {
    for (const [id, f] of this.#flooding) {
      if (now - f.last >= this.opts.floodQuietMs) {
        this.#flooding.delete(id);
        this.log.info({ terminalId: id, since: new Date(f.since).toISOString(), dropped: f.dropped }, 'terminal back within its ingest quota');
        this.onFlooding(id, null);
      } else if (f.changed && now - f.reported >= FLOOD_REPORT_MS) {
        f.changed = false;
        f.reported = now;
        this.onFlooding(id, { since: f.since, last: f.last, dropped: { ...f.dropped } });
      }
    }
  }

  #flood(terminalId: string, stream: string, now: number): void {
    const f = this.#flooding.get(terminalId);
    if (f !== undefined) {
      f.last = now;
      f.dropped[stream] = (f.dropped[stream] ?? 0) + 1;
      f.changed = true;
      return;
    }
    const state: FloodState = { since: now, last: now, dropped: { [stream]: 1 } };
    this.#flooding.set(terminalId, { ...state, reported: now, changed: false });
    this.log.warn({ terminalId, stream }, 'terminal over its ingest quota; its messages are dropped (and acknowledged) until it slows down');
    this.onFlooding(terminalId, { ...state, dropped: { ...state.dropped } });
  }

  #slot(terminalId: string, now: number): number {
    let slot = this.#slots.get(terminalId);
    if (slot !== undefined) return slot;
    slot = this.#slots.size;
    if ((slot + 1) * WIDTH > this.#b.length) {
      const grown = new Float64Array(this.#b.length * 2);
      grown.set(this.#b);
      this.#b = grown;
    }
    this.#slots.set(terminalId, slot);
    const o = slot * WIDTH;
    // a terminal first seen (or first seen since the hub started) gets full buckets: it may be replaying an outage
    for (let i = 0; i < N; i++) {
      this.#b[o + 2 * i] = this.#burst[i]!;
      this.#b[o + 2 * i + 1] = now;
    }
    this.#b[o + DAY] = -1;
    return slot;
  }

  /** The start of the day holding `now` in the configured time zone; computed again only when the day changes. */
  #day(now: number): number {
    if (now >= this.#dayStart && now < this.#dayEnd) return this.#dayStart;
    const p: Record<string, number> = {};
    for (const part of this.#dayOf.formatToParts(now)) if (part.type !== 'literal') p[part.type] = Number(part.value);
    const sinceMidnight = ((p.hour! * 60 + p.minute!) * 60 + p.second!) * 1000 + (now % 1000);
    // (a day with a DST change is an hour off at its ends; the zones this hub runs in have none)
    this.#dayStart = now - sinceMidnight;
    this.#dayEnd = this.#dayStart + 86_400_000;
    return this.#dayStart;
  }
}
