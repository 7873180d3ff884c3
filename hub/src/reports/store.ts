/**
 * What the availability report reads, engine-neutral: the terminals under a node, their presence history and hourly
 * rollups, and maintenance windows. `store.sqlite.ts` and `store.postgres.ts` give the same answers; `index.ts`
 * picks one.
 */

export interface ReportTerminal {
  id: string;
  type: string;
  stationId: string;
  createdAt: number;
  decommissionedAt: number | null;
}

export interface ReportRollup {
  hour: number;
  samples: number;
  peripheralOk: string;
  services: string;
}

export interface ReportMaintenance {
  targetKind: 'terminal' | 'node';
  targetId: string;
  startsAt: number;
  endsAt: number;
}

/** One terminal's span of the report: presence over [from, to), rollups of the hours [rollupsFrom, to). */
export interface HistorySpan {
  id: string;
  from: number;
  to: number;
  rollupsFrom: number;
}

export interface TerminalHistory {
  /** The presence at `from` (the last transition at or before it), null when none was stored. */
  stateBefore: string | null;
  /** Transitions strictly inside (from, to), by time then id. */
  transitions: { at: number; state: string }[];
  /** By hour. */
  rollups: ReportRollup[];
}

export interface ReportStore {
  /** Terminals under the node (`isUnderNode`; null: all) that existed at some point of [from, to), by id. */
  terminals(nodeId: string | null, from: number, to: number): Promise<ReportTerminal[]>;
  terminal(id: string): Promise<ReportTerminal | undefined>;
  /** Maintenance windows overlapping [from, to). */
  maintenance(from: number, to: number): Promise<ReportMaintenance[]>;
  /** The history of each span's terminal, in the order given (a few hundred spans a call: the caller pages). */
  histories(spans: readonly HistorySpan[]): Promise<TerminalHistory[]>;
}
