/**
 * Chart buckets from raw samples, with the finished buckets of each terminal's last chart kept (issue 10: the 24-hour
 * chart grouped 2,880 samples into 288 buckets in SQL on every request, 3.09 ms of hub CPU; SQLite sorts the rows
 * because it cannot know that the bucket expression follows the clustered order).
 *
 * Why a cache and not grouping in JavaScript: reading the samples out of SQLite costs more than grouping them there
 * (2,880 rows × 7 columns as `.raw()` arrays: 3.2 ms of CPU, against 1.5 ms for the grouped SQL of four fields and
 * 0.09 ms for a `count(*)` over the same range; measured on the api bench's data).
 *
 * Invariant: every row returned is the row the grouped SQL (`bucketsSql`) gives for the same arguments. A kept
 * bucket is used only after the range it lies in was checked against the table in the same request: the count of
 * samples and two sums over their keys (`count(*)`, `sum(seq)`, `sum(ts % 2^20)`, one read of the clustered range,
 * no sort) must equal those of the samples it was computed from. A sample landing late in an old bucket (an outbox
 * replay), one pruned by retention, a rolled-back write, another process's write: each changes the count or the sums,
 * and the chart is computed afresh. This needs no hook into the writers, at the price of that one range read.
 *
 * Kept, per (terminal, bucket size, field list): the buckets lying wholly inside the range last asked for and ending at
 * least SETTLE_MS ago (those still filling are read fresh on every request, so samples arriving in order never
 * invalidate the kept ones), at most MAX_BUCKETS per chart and MAX_CHARTS charts (the least recently used go first).
 * A request reads fresh the partial first bucket and whatever lies outside the kept range, and keeps its own range.
 *
 * Engine-neutral: the SQL is the store's (`ChartSource`). On PostgreSQL the kept buckets save the grouping of the
 * range (and the transfer of its rows) at the price of the check's index range read, as on SQLite; the check and the
 * fresh reads of one request are separate statements there, so a sample committed between them shows from the next
 * request on (each part is what the table held when it was read; the kept sums are those of the rows they came from).
 */

/** `[start, ...fields]` as the grouped SQL returns it. */
export type ChartRow = (number | null)[];

/**
 * Buckets ending later than this before now are read fresh every time: samples arriving in order land there, and so
 * do those of a terminal whose clock is behind by up to the skew limit (60 s), without invalidating the kept ones.
 */
const SETTLE_MS = 5 * 60_000;
/** The API's largest limit. */
const MAX_BUCKETS = 1000;
/** A 24-hour chart of four fields is about 30 KB. */
const MAX_CHARTS = 128;
/** ts is reduced so that the sum stays an exact integer in a double (2^20 × a million samples < 2^53). */

export const TS_MOD = 1_048_576;

/** The chart's SQL, per engine. */
export interface ChartSource {
  /**
   * The grouped rows of `fieldsKey` (bucketsSql's, `width` aggregates) followed by the three check columns: the count
   * of samples, the sum of their seq and the sum of their ts % TS_MOD.
   */
  grouped(id: string, from: number, to: number, bucketMs: number, fieldsKey: string, limit: number): (number | null)[][] | Promise<(number | null)[][]>;
  /** The three check columns over [from, to). */
  check(id: string, from: number, to: number): [number, number, number] | Promise<[number, number, number]>;
}

interface Kept {
  /** The range held: every bucket of [lo, hi) with samples is in `rows`. */
  lo: number;
  hi: number;
  rows: ChartRow[];
  /** Per row: samples, sum of seq, sum of ts % TS_MOD. */
  check: number[];
}

export class ChartCache {
  private readonly kept = new Map<string, Kept>();

  constructor(
    private readonly source: ChartSource,
    private readonly now: () => number = Date.now,
  ) {}

  /** The chart rows of `fieldsKey` (a comma-separated field list: `width` aggregates), as bucketsSql gives them. */
  async rows(id: string, from: number, to: number, bucketMs: number, fieldsKey: string, width: number, limit: number): Promise<ChartRow[]> {
    const b = bucketMs;
    // Bucket starts are ts truncated towards zero: below 0 a bucket is not [start, start + b), so nothing is kept there.
    const lo = Math.ceil(from / b) * b;
    const hi = Math.min(Math.floor(to / b) * b, Math.floor((this.now() - SETTLE_MS) / b) * b);
    if (from < 0 || !Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi <= lo || (hi - lo) / b > MAX_BUCKETS) {
      return (await this.query(id, from, to, b, fieldsKey, width, limit)).rows;
    }
    const key = `${id}\u0000${b}\u0000${fieldsKey}`;
    const old = this.kept.get(key);
    this.kept.delete(key);
    // The part of the kept range this chart covers, if its samples are still the ones it was computed from.
    let middle: Kept | null = null;
    if (old !== undefined) {
      const c0 = Math.max(lo, old.lo);
      const c1 = Math.min(hi, old.hi);
      if (c0 < c1) {
        const part = within(old, c0, c1);
        const [n, seq, ts] = await this.source.check(id, c0, c1);
        let pn = 0;
        let pseq = 0;
        let pts = 0;
        for (let i = 0; i < part.check.length; i += 3) {
          pn += part.check[i]!;
          pseq += part.check[i + 1]!;
          pts += part.check[i + 2]!;
        }
        if (n === pn && seq === pseq && ts === pts) middle = part;
      }
    }
    let rows: ChartRow[];
    let next: Kept;
    if (middle === null) {
      const all = await this.query(id, from, to, b, fieldsKey, width, limit);
      if (all.truncated) return all.rows;
      rows = all.rows;
      next = within({ lo: from, hi: to, ...all }, lo, hi);
    } else {
      // Fresh: the partial first bucket and whatever lies before the kept part; the kept part; fresh again after it.
      const [head, tail] = await Promise.all([
        this.query(id, from, middle.lo, b, fieldsKey, width, limit),
        this.query(id, middle.hi, to, b, fieldsKey, width, limit),
      ]);
      rows = head.rows.concat(middle.rows, tail.rows);
      if (head.truncated || tail.truncated) return rows.slice(0, limit);
      const h = within({ lo: from, hi: middle.lo, ...head }, lo, middle.lo);
      const t = within({ lo: middle.hi, hi: to, ...tail }, middle.hi, hi);
      next = { lo, hi, rows: h.rows.concat(middle.rows, t.rows), check: h.check.concat(middle.check, t.check) };
    }
    if (this.kept.size >= MAX_CHARTS) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(key, next);
    return rows.length > limit ? rows.slice(0, limit) : rows;
  }

  private async query(id: string, from: number, to: number, b: number, fieldsKey: string, width: number, limit: number) {
    const raw = (await this.source.grouped(id, from, to, b, fieldsKey, limit)) as number[][];
    const rows: ChartRow[] = new Array(raw.length);
    const check: number[] = new Array(raw.length * 3);
    for (let i = 0; i < raw.length; i++) {
      const r = raw[i]!;
      check[i * 3] = r[width + 1]!;
      check[i * 3 + 1] = r[width + 2]!;
      check[i * 3 + 2] = r[width + 3]!;
      r.length = width + 1;
      rows[i] = r;
    }
    return { rows, check, truncated: raw.length >= limit };
  }
}

/** The rows (and their check columns) of `k` with start in [lo, hi), a sub-range of k's own. */
function within(k: Kept, lo: number, hi: number): Kept {
  let i = 0;
  while (i < k.rows.length && (k.rows[i]![0] as number) < lo) i++;
  let j = i;
  while (j < k.rows.length && (k.rows[j]![0] as number) < hi) j++;
  return { lo, hi, rows: k.rows.slice(i, j), check: k.check.slice(i * 3, j * 3) };
}
