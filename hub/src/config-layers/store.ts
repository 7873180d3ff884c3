/**
 * What layered config needs from the database, engine-neutral: layers and their history, the per-terminal desired
 * config and sync state, and the active terminals' places. `store.sqlite.ts` and `store.postgres.ts` implement it;
 * `createConfigLayerStore` picks by engine.
 *
 * Invariants the implementations keep (the service relies on them on both engines):
 * - `saveLayer` is a compare-and-set on the layer's version: it writes only when the stored version is still the one
 *   the caller read (0: none stored), so two saves based on the same version cannot both win.
 * - `putDesired` gives each terminal its stored version + 1 (1 for the first): a desired version only grows, whoever
 *   else wrote in between.
 * - `recordReports` never lowers what is known: the highest applied and the highest rejected version are kept.
 * - Config texts are stored and returned byte for byte as given (the API hands them out parsed, the sweep in
 *   programs.ts searches them as JSON.stringify wrote them).
 * - Lists of terminals come in id order, by code point (PostgreSQL: COLLATE "C"), as SQLite sorts them; only the
 *   sweep's pages (`activeTerminalsAfter`) follow the database's own collation, which keeps the primary key usable.
 */
import type { Engine, Tx } from '../db/engine.ts';
import { PostgresConfigLayerStore } from './store.postgres.ts';
import { SqliteConfigLayerStore } from './store.sqlite.ts';

export type Scope = 'node' | 'terminal';

export interface LayerRow {
  scope: Scope;
  targetId: string;
  version: number;
  config: string;
  updatedAt: number;
  updatedBy: string;
  reason: string | null;
}

export interface HistoryRow {
  version: number;
  config: string;
  at: number;
  by: string;
  reason: string | null;
  pushed: number;
}

export interface DesiredRow {
  terminalId: string;
  version: number;
  config: string;
  updatedAt: number;
}

export interface SyncRow {
  terminalId: string;
  appliedVersion: number;
  appliedAt: number | null;
  rejectedVersion: number;
  rejectedReason: string | null;
  rejectedAt: number | null;
}

export interface TerminalPlace {
  id: string;
  stationId: string;
}

/** A new version of a layer and its history entry (`pushed`: terminals that got a new desired config from it). */
export interface LayerWrite extends LayerRow {
  pushed: number;
}

/** A terminal's report of a config version (config/reported), as ingest stores it. */
export interface ConfigReport {
  terminalId: string;
  version: number;
  status: 'applied' | 'rejected';
  reason: string | null;
  at: number;
}

/** An active terminal whose applied version is below its desired one, with what the drift list shows of it. */
export interface DriftRow {
  terminalId: string;
  stationId: string;
  version: number;
  config: string;
  updatedAt: number;
  appliedVersion: number | null;
  appliedAt: number | null;
  rejectedVersion: number | null;
  rejectedReason: string | null;
  rejectedAt: number | null;
  presence: string | null;
}

export interface ConfigLayerStore {
  /** Runs `fn` in one transaction of this store's database; pass its `tx` to the write methods. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;

  layer(scope: Scope, id: string, tx?: Tx): Promise<LayerRow | undefined>;
  allLayers(tx?: Tx): Promise<LayerRow[]>;
  /**
   * The layer row and its history entry, when the stored version is still `expectedVersion` (0: no row); false when
   * it is not (nothing written: the caller answers 409).
   */
  saveLayer(w: LayerWrite, expectedVersion: number, tx?: Tx): Promise<boolean>;
  /** Saved versions below `before`, newest first. */
  history(scope: Scope, id: string, before: number, limit: number): Promise<HistoryRow[]>;
  historyVersion(scope: Scope, id: string, version: number): Promise<HistoryRow | undefined>;

  desired(terminalId: string, tx?: Tx): Promise<DesiredRow | undefined>;
  allDesired(tx?: Tx): Promise<DesiredRow[]>;
  /** A new desired version per terminal (stored + 1, or 1); the versions written, in the order given. */
  putDesired(rows: readonly { terminalId: string; config: string }[], at: number, tx?: Tx): Promise<{ terminalId: string; version: number }[]>;

  sync(terminalId: string): Promise<SyncRow | undefined>;
  allSync(): Promise<SyncRow[]>;
  /** Inside ingest's batch: the highest applied and the highest rejected version per terminal (replays change nothing). */
  recordReports(reports: readonly ConfigReport[], tx?: Tx): Promise<void>;
  /** Active terminals of `nodeId` (or all) whose applied version is below the desired one, in id order. */
  lagging(nodeId: string | null): Promise<DriftRow[]>;

  /** Active terminals, in id order. */
  activeTerminals(): Promise<TerminalPlace[]>;
  /** The next `n` active terminals after `cursor` ('' = from the first), in id order. */
  activeTerminalsAfter(cursor: string, n: number): Promise<TerminalPlace[]>;
  /** Active terminals under a node (its stations, or the station itself), in id order. */
  terminalsUnder(nodeId: string): Promise<TerminalPlace[]>;

  /**
   * Layers and desired configs whose text may hold a program (`"command":` somewhere), for programs.ts: the few rows
   * worth parsing at start, instead of every stored config.
   */
  layersWithPrograms(tx?: Tx): Promise<LayerRow[]>;
  desiredWithPrograms(tx?: Tx): Promise<DesiredRow[]>;
}

export function createConfigLayerStore(engine: Engine): ConfigLayerStore {
  return engine.kind === 'sqlite' ? new SqliteConfigLayerStore(engine) : new PostgresConfigLayerStore(engine);
}
