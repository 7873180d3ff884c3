/**
 * Latency histograms that merge across processes, and the tables every scenario prints and records.
 */

/**
 * Log-bucketed histogram of latencies in milliseconds, 1 % wide buckets from 1 µs: small enough to send
 * between processes, precise enough for p50/p99 (error under 1 %).
 */
export class Histogram {
  buckets = new Map<number, number>();
  count = 0;
  max = 0;
  sum = 0;

  static readonly BASE = Math.log(1.01);

  record(ms: number): void {
    const v = Math.max(ms, 0.001);
    const b = Math.floor(Math.log(v * 1000) / Histogram.BASE);
    this.buckets.set(b, (this.buckets.get(b) ?? 0) + 1);
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other: HistogramJson | Histogram): void {
    const entries = other instanceof Histogram ? [...other.buckets] : other.buckets;
    for (const [b, n] of entries) this.buckets.set(b, (this.buckets.get(b) ?? 0) + n);
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** The latency below which `q` (0-1) of the samples lie, in ms; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const target = Math.ceil(q * this.count);
    let seen = 0;
    for (const b of [...this.buckets.keys()].sort((a, z) => a - z)) {
      seen += this.buckets.get(b)!;
      if (seen >= target) return Math.min(Math.exp((b + 0.5) * Histogram.BASE) / 1000, this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count ? this.sum / this.count : NaN;
  }

  toJSON(): HistogramJson {
    return { buckets: [...this.buckets], count: this.count, max: this.max, sum: this.sum };
  }

  static from(json: HistogramJson): Histogram {
    const h = new Histogram();
    h.merge(json);
    return h;
  }
}

export interface HistogramJson {
  buckets: Array<[number, number]>;
  count: number;
  max: number;
  sum: number;
}

export type Cell = string | number | null;

export interface Table {
  title: string;
  columns: string[];
  rows: Cell[][];
  notes?: string[];
}

export interface Goal {
  what: string;
  target: string;
  value: string;
  met: boolean | null; // null: not measured this run, or a figure reported without a goal ("(no goal; …)" target)
}

/** The verdict column of a goal row: met / missed, or why there is none. */
export function goalVerdict(g: Goal, met = 'met', missed = 'missed'): string {
  if (g.met !== null) return g.met ? met : missed;
  return g.target.startsWith('(no goal') ? 'reported' : 'not measured';
}

export interface ScenarioResult {
  scenario: string;
  title: string;
  date: string;
  command: string;
  durationSeconds: number;
  machine: Machine;
  /** The whole machine during the run: other engineers' tests share these 2 cores. */
  busy?: { machineCpuPercent: number; loadAverageAtEnd: number[]; busiestAtEnd: string };
  tables: Table[];
  goals: Goal[];
  notes: string[];
}

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  loadAverage: number[];
  otherProcessesCpu: string;
}

/** Formats a number for a table: thousands separated, `digits` decimals; `—` for nothing. */
export function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `value / base` as `0.83×`; `—` when either is missing. */
export function ratio(value: number | null | undefined, base: number | null | undefined): string {
  if (value === null || value === undefined || base === null || base === undefined || !base || Number.isNaN(value) || Number.isNaN(base)) return '—';
  return `${(value / base).toFixed(2)}×`;
}

/** A plain-text table for the terminal. */
export function renderText(t: Table): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map((c) => (c === null ? '—' : String(c))))];
  const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [`\n${t.title}`, line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)];
  for (const n of t.notes ?? []) out.push(`  ${n}`);
  return out.join('\n');
}

/** A markdown table for BENCHMARKS.md. */
export function renderMarkdown(t: Table): string {
  const esc = (c: Cell) => (c === null ? '—' : String(c).replaceAll('|', '\\|'));
  const out = [
    `**${t.title}**`,
    '',
    `| ${t.columns.map(esc).join(' | ')} |`,
    `| ${t.columns.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ];
  if (t.notes?.length) out.push('', ...t.notes.map((n) => `- ${n}`));
  return out.join('\n');
}
