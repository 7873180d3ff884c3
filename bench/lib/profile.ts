/**
 * Where the time goes: a V8 CPU profile (`node --cpu-prof`) of the system under test, summarised by where the
 * code lives (hub source file, dependency package, Node internals, GC, idle) and by the heaviest functions, both
 * self time and inclusive time, as shares of the profiled wall time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './proc.ts';
import type { Table } from './stats.ts';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: CpuNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: `hub/src/ingest/writer.ts`, `aedes`, `node:internal`, `(garbage collector)`. */
export function placeOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (u.startsWith('node:')) return 'node internals';
  if (u.startsWith(ROOT)) return path.relative(ROOT, u);
  const pkg = /\/((?:hub|protocol|agent)\/src\/.*)$/.exec(u);
  if (pkg) return pkg[1]!;
  return u;
}

export interface ProfileSummary {
  totalMs: number;
  byPlace: Array<{ place: string; selfMs: number; share: number }>;
  topSelf: Array<{ fn: string; place: string; selfMs: number; share: number }>;
  topInclusive: Array<{ fn: string; place: string; ms: number; share: number }>;
}

/** A profile with its nodes by id and each node's parent. */
function load(file: string): { p: CpuProfile; byId: Map<number, CpuNode>; parentOf: Map<number, number> } {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  return { p, byId, parentOf };
}

/**
 * `window`: only the samples from the first to the last one whose stack has a frame in code matching it (for
 * instance the hub's ingest), so that start-up (module loading and compiling through tsx) does not dilute the figures.
 */
export function summarize(file: string, top = 12, window?: RegExp): ProfileSummary {
  const { p, byId, parentOf } = load(file);
  let first = 0;
  let last = p.samples.length - 1;
  if (window) {
    const memo = new Map<number, boolean>();
    const inWindow = (id: number): boolean => {
      const known = memo.get(id);
      if (known !== undefined) return known;
      const n = byId.get(id)!;
      const parent = parentOf.get(id);
      const v = window.test(n.callFrame.url) || (parent !== undefined && inWindow(parent));
      memo.set(id, v);
      return v;
    };
    const hits = p.samples.map((id, i) => (inWindow(id) ? i : -1)).filter((i) => i >= 0);
    if (hits.length) {
      first = hits[0]!;
      last = hits[hits.length - 1]!;
    }
  }
  // Self time per node from the samples and their time deltas (more exact than hitCount × interval).
  const self = new Map<number, number>();
  for (let i = first; i <= last; i++) {
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0) / 1000);
  }
  const totalMs = [...self.values()].reduce((a, b) => a + b, 0);
  const key = (n: CpuNode) => `${n.callFrame.functionName || '(anonymous)'}\u0000${placeOf(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`;

  const place = new Map<string, number>();
  const selfFn = new Map<string, number>();
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    const pl = placeOf(n.callFrame.url, n.callFrame.functionName);
    place.set(pl, (place.get(pl) ?? 0) + ms);
    selfFn.set(key(n), (selfFn.get(key(n)) ?? 0) + ms);
  }

  // Inclusive time per function, counting a function once per stack even when it recurses.
  const incl = new Map<string, number>();
  const parent = parentOf;
  for (const [id, ms] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + ms);
    }
  }
  const split = (k: string) => {
    const [fn, pl] = k.split('\u0000');
    return { fn: fn!, place: pl! };
  };
  const share = (ms: number) => (totalMs ? ms / totalMs : 0);
  return {
    totalMs,
    byPlace: [...place].sort((a, b) => b[1] - a[1]).slice(0, top).map(([pl, ms]) => ({ place: pl, selfMs: ms, share: share(ms) })),
    topSelf: [...selfFn].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, ms]) => ({ ...split(k), selfMs: ms, share: share(ms) })),
    topInclusive: [...incl]
      .filter(([k]) => !/^\((root|program|idle)\)/.test(k) && !k.startsWith('(anonymous)\u0000node internals'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, ms]) => ({ ...split(k), ms, share: share(ms) })),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

export function profileTables(s: ProfileSummary, what: string): Table[] {
  return [
    {
      title: `Profile of ${what}: self time by where the code lives (${(s.totalMs / 1000).toFixed(1)} s profiled)`,
      columns: ['code', 'self ms', 'share'],
      rows: s.byPlace.map((r) => [r.place, Math.round(r.selfMs), pct(r.share)]),
    },
    {
      title: `Profile of ${what}: heaviest functions, self time`,
      columns: ['function', 'where', 'self ms', 'share'],
      rows: s.topSelf.map((r) => [r.fn, r.place, Math.round(r.selfMs), pct(r.share)]),
    },
    {
      title: `Profile of ${what}: heaviest functions, inclusive time`,
      columns: ['function', 'where', 'inclusive ms', 'share'],
      rows: s.topInclusive.map((r) => [r.fn, r.place, Math.round(r.ms), pct(r.share)]),
    },
  ];
}

/**
 * The main thread's profile in a directory. `--cpu-prof` writes one file per thread, and the hub's tsx loader
 * hooks run on their own thread; the main thread's profile is the largest.
 */
export function mainProfile(dir: string): string | null {
  if (!fs.existsSync(dir)) return null;
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
  return files[0] ?? null;
}

export interface TimelineBucket {
  /** Start of the bucket, ms after the profile began. */
  atMs: number;
  busyMs: number;
  gcMs: number;
  /** The longest run of samples without an idle one that ends in this bucket: how long the event loop was away. */
  longestBusyMs: number;
  /** The heaviest functions of the bucket's busy time (inclusive, place-qualified), to name what kept the loop busy. */
  top: string[];
}

/**
 * The profile as a timeline: per `bucketMs`, how busy the thread was, how much of it was garbage collection, and the
 * longest stretch without an idle sample (a stretch the event loop could not accept connections or answer requests).
 */
export function timeline(file: string, bucketMs: number, topPerBucket = 3): TimelineBucket[] {
  const { p, byId, parentOf } = load(file);
  const buckets: Array<TimelineBucket & { fns: Map<string, number> }> = [];
  let t = 0;
  let run = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const n = byId.get(p.samples[i]!)!;
    const b = Math.floor(t / bucketMs);
    while (buckets.length <= b) buckets.push({ atMs: buckets.length * bucketMs, busyMs: 0, gcMs: 0, longestBusyMs: 0, top: [], fns: new Map() });
    const bucket = buckets[b]!;
    const fn = n.callFrame.functionName;
    if (fn === '(idle)') {
      run = 0;
    } else {
      bucket.busyMs += dt;
      if (fn === '(garbage collector)') bucket.gcMs += dt;
      run += dt;
      if (run > bucket.longestBusyMs) bucket.longestBusyMs = run;
      // Inclusive time of every frame in the project or a package (Node's own frames left out), each once a stack.
      const seen = new Set<string>();
      for (let cur: number | undefined = n.id; cur !== undefined; cur = parentOf.get(cur)) {
        const f = byId.get(cur)!.callFrame;
        if (!f.url || f.url.startsWith('node:')) continue;
        const k = `${f.functionName || '(anonymous)'} ${placeOf(f.url, f.functionName)}:${f.lineNumber + 1}`;
        if (seen.has(k)) continue;
        seen.add(k);
        bucket.fns.set(k, (bucket.fns.get(k) ?? 0) + dt);
      }
    }
    t += dt;
  }
  return buckets.map(({ fns, ...b }) => ({
    ...b,
    top: [...fns].sort((x, y) => y[1] - x[1]).slice(0, topPerBucket).map(([k, ms]) => `${k} ${Math.round(ms)}`),
  }));
}
