/**
 * The node counters' reads on PostgreSQL. There is no `PRAGMA data_version` here, and several connections (the
 * writer pool, another process such as the `import` CLI) commit side by side, so the counters follow two
 * append-only tables by id instead:
 * - presence_transitions: every change of terminal_state.presence is stored there (presence/service.ts);
 * - placements: every registration, import, move and decommission appends a row (fleet/store.ts).
 * The terminals named by new rows are read again (their committed row, not the transition's to_state: rows of two
 * connections may commit out of id order). An id left missing below the highest seen is waited for GAP_MS (a
 * transaction still open), then taken for a rollback; reading `id > floor` again until then costs the rows of those
 * seconds, and an id below the floor is never read twice.
 *
 * Not followed (as on SQLite, where only another connection's writes are seen): services and faults written by
 * another hub process's ingest; a cluster of hubs needs a change feed (issue 18's follow-up).
 */
import type { Sql } from 'postgres';
import type { PostgresDb } from '../db/postgres/open.ts';
import type { CounterChanges, CounterRow, SummaryStore } from './store.ts';

const COLUMNS = `t.id, t.station_id AS "stationId", t.type, t.state, s.presence, s.fault_count AS "faultCount", s.services
  FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id`;

/** How long an id below the highest seen may stay invisible (its transaction still open) before it counts as rolled back. */
export const GAP_MS = 10_000;
/** More new rows than this since the last look: load everything instead (an import of thousands). */
const RELOAD_AFTER = 1000;

/** Follows an append-only table's ids, tolerating ids that commit out of order. */
export class IdFollower {
  /** Every id at or below it was seen (or given up on). */
  floor = 0;
  private readonly seen = new Set<number>();
  /** [highest id seen, when]: ids below it still missing after GAP_MS are given up on. */
  private marks: [number, number][] = [];

  reset(floor: number): void {
    this.floor = floor;
    this.seen.clear();
    this.marks = [];
  }

  /** Takes the rows with id > floor (in id order); returns the terminals of those not seen before. */
  take(rows: readonly { id: number; terminalId: string }[], now: number): string[] {
    const out: string[] = [];
    let max = this.floor;
    for (const r of rows) {
      if (r.id > max) max = r.id;
      if (this.seen.has(r.id)) continue;
      this.seen.add(r.id);
      out.push(r.terminalId);
    }
    if (max > (this.marks[this.marks.length - 1]?.[0] ?? this.floor)) this.marks.push([max, now]);
    // Settled: everything up to a mark old enough, then every id seen one after the other.
    let floor = this.floor;
    while (this.marks.length > 0 && now - this.marks[0]![1] >= GAP_MS) floor = Math.max(floor, this.marks.shift()![0]);
    while (this.seen.has(floor + 1)) floor++;
    if (floor !== this.floor) {
      for (const id of this.seen) if (id <= floor) this.seen.delete(id);
      this.marks = this.marks.filter(([id]) => id > floor);
      this.floor = floor;
    }
    return out;
  }
}

export class PostgresSummaryStore implements SummaryStore {
  private readonly sql: Sql;
  private readonly transitions = new IdFollower();
  private readonly placements = new IdFollower();

  constructor(
    pg: PostgresDb,
    private readonly now: () => number = Date.now,
  ) {
    this.sql = pg.sql;
  }

  async load(): Promise<CounterRow[]> {
    // One snapshot: the rows and the followers' starting ids are of the same moment.
    const [rows, [last]] = (await this.sql.begin('isolation level repeatable read read only', (sql) => [
      sql.unsafe<CounterRow[]>(`SELECT ${COLUMNS} WHERE t.state = 'active'`),
      sql<{ t: number; p: number }[]>`
        select (select coalesce(max(id), 0) from presence_transitions) as t, (select coalesce(max(id), 0) from placements) as p`,
    ])) as unknown as [CounterRow[], { t: number; p: number }[]];
    this.transitions.reset(last!.t);
    this.placements.reset(last!.p);
    return rows;
  }

  async changes(): Promise<CounterChanges> {
    const rows = await this.sql<{ k: string; id: number; terminalId: string }[]>`
      select 't' as k, id, terminal_id as "terminalId" from presence_transitions where id > ${this.transitions.floor}
      union all
      select 'p', id, terminal_id from placements where id > ${this.placements.floor}
      order by 1, 2 limit ${RELOAD_AFTER * 4}`;
    if (rows.length >= RELOAD_AFTER * 4) return { reload: true, transitions: [], refresh: [] };
    const now = this.now();
    const refresh = new Set([
      ...this.transitions.take(rows.filter((r) => r.k === 't'), now),
      ...this.placements.take(rows.filter((r) => r.k === 'p'), now),
    ]);
    if (refresh.size > RELOAD_AFTER) return { reload: true, transitions: [], refresh: [] };
    return { reload: false, transitions: [], refresh: [...refresh] };
  }

  async rows(ids: readonly string[]): Promise<CounterRow[]> {
    if (ids.length === 0) return [];
    return this.sql.unsafe<CounterRow[]>(`SELECT ${COLUMNS} WHERE t.id = ANY($1::text[])`, [ids as string[]], { prepare: true });
  }
}
