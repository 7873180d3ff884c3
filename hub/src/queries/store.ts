/**
 * The read side of the API, engine-neutral: the terminal list (filters, keyset pages), a terminal's detail and stream
 * counters, its raw samples, chart buckets and hourly rollups, events and presence history. `store.sqlite.ts` and
 * `store.postgres.ts` give the same answers on the same rows (`store.test.ts` checks it); `index.ts` picks one.
 */
import type { StoredApp, StoredPeripheral, hostOf } from '../store/telemetry-codec.ts';

/** Where a page of raw samples ended (the API turns it into an opaque cursor). */
export interface RawCursor {
  ts: number;
  epochId: number;
  seq: number;
}

export interface RawSample {
  cursor: RawCursor;
  seq: number;
  epoch: string;
  ts: number;
  receivedAt: number;
  skewed: number;
  host: ReturnType<typeof hostOf>;
  peripherals: Record<string, StoredPeripheral>;
  app: StoredApp | null;
  services: string[] | null;
}

export const BUCKET_FIELDS = ['samples', 'cpuMin', 'cpuAvg', 'cpuMax', 'memPctAvg', 'memPctMax', 'diskPctAvg', 'diskPctMax', 'tempMin', 'tempAvg', 'tempMax'] as const;
export type BucketField = (typeof BUCKET_FIELDS)[number];

export const ROLLUP_COLUMN: Record<BucketField, string> = {
  samples: 'samples',
  cpuMin: 'cpu_min',
  cpuAvg: 'cpu_avg',
  cpuMax: 'cpu_max',
  memPctAvg: 'mem_pct_avg',
  memPctMax: 'mem_pct_max',
  diskPctAvg: 'disk_pct_avg',
  diskPctMax: 'disk_pct_max',
  tempMin: 'temp_min',
  tempAvg: 'temp_avg',
  tempMax: 'temp_max',
};

export interface TerminalListRow {
  id: string;
  type: string;
  serial: string;
  stationId: string;
  state: string;
  createdAt: number;
  presence: string | null;
  presenceReason: string | null;
  presenceSince: number | null;
  flapping: number | null;
  lastSeenAt: number | null;
  faultCount: number | null;
  peripherals: string | null;
  services: string | null;
}

export interface TerminalDetailRow extends TerminalListRow {
  decommissionedAt: number | null;
  bootId: string | null;
  connSeq: number | null;
  intervalS: number | null;
  agentVersion: string | null;
  appVersion: string | null;
  uptime: number | null;
  lastExit: string | null;
  lastTelemetryAt: number | null;
  lastTelemetryTs: number | null;
  clockSkewMs: number | null;
  lastAddress: string | null;
  host: string | null;
  app: string | null;
}

export interface TerminalFilter {
  node?: string | undefined;
  /** The caller's node (auth): only terminals under it; null or absent: all. */
  scope?: string | null | undefined;
  type?: string | undefined;
  presence?: string | undefined;
  /** A peripheral id, or `any`: terminals with that peripheral (any peripheral) in fault. */
  fault?: string | undefined;
  q?: string | undefined;
  state?: 'active' | 'decommissioned' | 'all' | undefined;
  after?: string | undefined;
  limit: number;
}

export interface StreamRow {
  stream: string;
  epoch: string;
  firstSeq: number;
  maxSeq: number;
  count: number;
  lastAt: number;
}

export interface ChildNodeRow {
  id: string;
  level: string;
  nameZh: string;
  nameEn: string;
}

export interface UnderNodeRow {
  id: string;
  type: string;
  stationId: string;
  presence: string | null;
  faultCount: number | null;
  services: string | null;
}

export type BucketObject = Record<BucketField, number | null> & { start: number; samples: number };
export type RollupRow = Record<BucketField, number | null> & { hour: number; samples: number; peripheralOk: string; services: string };

export interface EventRow {
  id: number;
  seq: number;
  epoch: string;
  ts: number;
  receivedAt: number;
  skewed: number;
  kind: string;
  severity: string;
  peripheral: string | null;
  code: string | null;
  message: string | null;
  data: string | null;
}

export interface PresenceHistoryRow {
  id: number;
  at: number;
  fromState: string;
  toState: string;
  reason: string;
  bootId: string | null;
  connSeq: number | null;
  address: string | null;
}

export interface QueryStore {
  /** A page of the list in id order (byte order of the ids on both engines). */
  terminals(f: TerminalFilter): Promise<TerminalListRow[]>;
  /** The list rows of these terminals, in id order (a page chosen by NodeCounters.page). */
  terminalsByIds(ids: readonly string[]): Promise<TerminalListRow[]>;
  terminal(id: string): Promise<TerminalDetailRow | undefined>;
  /** Per (stream, epoch): the counters, newest first, at most 20. */
  streams(id: string): Promise<StreamRow[]>;
  children(id: string): Promise<ChildNodeRow[]>;
  /** The active terminals under a node (`isUnderNode`), in no particular order. */
  underNode(id: string): Promise<UnderNodeRow[]>;
  /**
   * Raw samples of one terminal, in (ts, epoch key, seq) order after `after` (a keyset cursor), decoded from the
   * compact row.
   */
  telemetryRaw(id: string, from: number, to: number, after: RawCursor | null, limit: number): Promise<RawSample[]>;
  /** Buckets as objects `{start, samples, cpuMin, …}` (BUCKET_FIELDS order). */
  telemetryBuckets(id: string, from: number, to: number, bucketMs: number, limit: number): Promise<BucketObject[]>;
  rollups(id: string, from: number, to: number, limit: number): Promise<RollupRow[]>;
  /**
   * A chart's points as arrays `[start, ...fields]`: `bucketMs` null: the hourly rollups; else buckets of raw
   * samples. The rows returned may be shared: not to be changed.
   */
  chartRows(id: string, from: number, to: number, bucketMs: number | null, fields: readonly BucketField[], limit: number): Promise<readonly (number | null)[][]>;
  /** Newest first (by id), ids below `beforeId`. */
  events(id: string, from: number, to: number, beforeId: number, limit: number, kind?: string): Promise<EventRow[]>;
  presenceHistory(id: string, from: number, to: number, beforeId: number, limit: number): Promise<PresenceHistoryRow[]>;
}
