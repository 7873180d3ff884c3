/**
 * What retention needs from the database, engine-neutral: the raw samples of an hour (the service computes the
 * rollups from them, the same code on both engines), writing an hour's rollups with the cursor past it, and pruning
 * what is past retention. Pruning is where the engines differ (`prune` says how); `createRetentionStore` picks.
 */
import type { Engine, Tx } from '../db/engine.ts';
import { PostgresRetentionStore } from './store.postgres.ts';
import { SqliteRetentionStore } from './store.sqlite.ts';

export const HOUR_MS = 3_600_000;

/** Chunk of a pruning DELETE: short write transactions, so ingest keeps committing between them. */
export const PRUNE_CHUNK = 5000;

/** One raw sample of an hour, as the rollup needs it (values stored scaled, ingest/telemetry-codec.ts). */
export interface SampleRow {
  terminalId: string;
  cpu: number;
  memUsed: number;
  memTotal: number;
  diskUsed: number;
  diskTotal: number;
  temp: number | null;
  pstat: number;
  pnote: string | null;
  services: number | null;
  type: string;
}

/** A row of rollups_hourly. */
export interface RollupRow {
  terminalId: string;
  hour: number;
  samples: number;
  cpuMin: number | null;
  cpuAvg: number | null;
  cpuMax: number | null;
  memPctMin: number | null;
  memPctAvg: number | null;
  memPctMax: number | null;
  diskPctMin: number | null;
  diskPctAvg: number | null;
  diskPctMax: number | null;
  tempMin: number | null;
  tempAvg: number | null;
  tempMax: number | null;
  /** JSON text {peripheralId: share ok}. */
  peripheralOk: string;
  /** JSON text {serviceId: share available}. */
  services: string;
}

/** The metric columns of a rollup row all null: for rows made by hand (tests) that only carry the shares. */
export const NO_METRICS = {
  cpuMin: null,
  cpuAvg: null,
  cpuMax: null,
  memPctMin: null,
  memPctAvg: null,
  memPctMax: null,
  diskPctMin: null,
  diskPctAvg: null,
  diskPctMax: null,
  tempMin: null,
  tempAvg: null,
  tempMax: null,
} as const satisfies Partial<RollupRow>;

export interface PruneCutoffs {
  /** Raw telemetry received before this goes. */
  raw: number;
  /** Rollups, events, presence transitions, stream tables and finished commands before this go. */
  long: number;
  /** The most a right clock's ts may lie after its receive time (ingest's CLOCK_SKEW_MS). */
  skewMs: number;
  /** The rollups' cursor (meta rollup_until): PostgreSQL never drops a day of raw samples not rolled up yet. */
  rolledUpUntil: number | null;
}

export interface PruneResult {
  /** Raw samples removed (on PostgreSQL a dropped partition counts its rows as the planner's statistics have them). */
  telemetry: number;
  other: number;
  /** PostgreSQL: the daily partitions dropped. */
  partitionsDropped: string[];
}

export interface PartitionsMade {
  created: string[];
  /** Days left in the DEFAULT partition because it holds rows of them already. */
  skipped: string[];
}

export interface RetentionStore {
  meta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string, tx?: Tx): Promise<void>;
  /** The ts of the first raw sample at or after `from`, or null. */
  nextSampleTs(from: number): Promise<number | null>;
  /** Raw samples with from <= ts < to, grouped by terminal (ordered by terminal id). */
  hourSamples(from: number, to: number): Promise<SampleRow[]>;
  /** Writes (replaces) rollup rows and, when given, sets the cursor `rollup_until`: one transaction (or `tx`'s). */
  writeRollups(rows: RollupRow[], rollupUntil: number | null, tx?: Tx): Promise<void>;
  /**
   * Removes what is past retention. SQLite: deletes in chunks (raw samples by receive time), then returns the free
   * pages to the OS. PostgreSQL: drops the daily partitions of telemetry and events wholly before the cutoff, deletes
   * the DEFAULT partitions' old rows by receive time in chunks, and the other tables' by time in chunks.
   */
  prune(c: PruneCutoffs): Promise<PruneResult>;
  /** PostgreSQL: the daily partitions of telemetry and events for [from, to]; SQLite: nothing to do. */
  preparePartitions(from: number, to: number): Promise<PartitionsMade>;
}

export function createRetentionStore(engine: Engine): RetentionStore {
  return engine.kind === 'sqlite' ? new SqliteRetentionStore(engine.db) : new PostgresRetentionStore(engine.pg.sql);
}
