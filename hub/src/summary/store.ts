/**
 * What the node counters (node-counters.ts) read from the database, engine-neutral: the active terminals' rows at
 * start, and afterwards what changed that the hub's change events do not carry (presence transitions stored without
 * an event, writes by another process). `store.sqlite.ts` and `store.postgres.ts` implement it; `index.ts` picks one.
 */

/** One terminal as the counters keep it. */
export interface CounterRow {
  id: string;
  stationId: string;
  type: string;
  state: string;
  presence: string | null;
  faultCount: number | null;
  services: string | null;
}

export interface CounterChanges {
  /** The store cannot say what changed (another connection wrote, or too much did): load everything again. */
  reload: boolean;
  /** Presence transitions stored since the last call, in order: the terminal's presence is now `toState`. */
  transitions: { terminalId: string; toState: string }[];
  /** Terminals whose row changed in a way the counters must read again. */
  refresh: string[];
}

export interface SummaryStore {
  /** Every active terminal, read in one snapshot; `changes` follows from that snapshot on. */
  load(): Promise<CounterRow[]>;
  /** What changed since `load` or the previous call. */
  changes(): Promise<CounterChanges>;
  /** These terminals' rows (any state; absent ids are left out). */
  rows(ids: readonly string[]): Promise<CounterRow[]>;
}
