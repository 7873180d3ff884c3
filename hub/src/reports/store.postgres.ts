/**
 * The availability report's SQL on PostgreSQL. The per-terminal reads of store.sqlite.ts (three indexed lookups per
 * terminal, microseconds each in-process) would be three round trips per terminal here: `histories` reads a page of
 * terminals' presence history and rollups in three statements over `unnest` of the spans instead.
 */
import type { Sql } from 'postgres';
import type { PostgresDb } from '../db/postgres/open.ts';
import type { HistorySpan, ReportMaintenance, ReportRollup, ReportStore, ReportTerminal, TerminalHistory } from './store.ts';

const TERMINAL_COLUMNS = 'id, type, station_id AS "stationId", created_at AS "createdAt", decommissioned_at AS "decommissionedAt"';

export class PostgresReportStore implements ReportStore {
  private readonly sql: Sql;

  constructor(pg: PostgresDb) {
    this.sql = pg.sql;
  }

  async terminals(nodeId: string | null, from: number, to: number): Promise<ReportTerminal[]> {
    const args: unknown[] = [to, from];
    let under = '';
    if (nodeId !== null) {
      // isUnderNode as a byte-order range, as on SQLite.
      args.push(nodeId, `${nodeId}.`, `${nodeId}-`);
      under = 'AND station_id COLLATE "C" >= $3 AND station_id COLLATE "C" < $4 AND (station_id = $3 OR station_id COLLATE "C" >= $5)';
    }
    return this.sql.unsafe<ReportTerminal[]>(
      `SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE created_at < $1 AND (decommissioned_at IS NULL OR decommissioned_at > $2) ${under}
       ORDER BY id COLLATE "C"`,
      args as never[],
      { prepare: true },
    );
  }

  async terminal(id: string): Promise<ReportTerminal | undefined> {
    const [r] = await this.sql.unsafe<ReportTerminal[]>(`SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id = $1`, [id], { prepare: true });
    return r;
  }

  async maintenance(from: number, to: number): Promise<ReportMaintenance[]> {
    return this.sql<ReportMaintenance[]>`
      select target_kind as "targetKind", target_id as "targetId", starts_at as "startsAt", ends_at as "endsAt"
      from maintenance where starts_at < ${to} and ends_at > ${from}`;
  }

  async histories(spans: readonly HistorySpan[]): Promise<TerminalHistory[]> {
    if (spans.length === 0) return [];
    const ids = spans.map((s) => s.id);
    const from = spans.map((s) => s.from);
    const to = spans.map((s) => s.to);
    const rollupsFrom = spans.map((s) => s.rollupsFrom);
    const [before, transitions, rollups] = await Promise.all([
      this.sql<{ n: number; state: string | null }[]>`
        select x.n, (select p.to_state from presence_transitions p where p.terminal_id = x.id and p.at <= x.a
          order by p.at desc, p.id desc limit 1) as state
        from unnest(${ids}::text[], ${from}::int8[]) with ordinality as x(id, a, n)`,
      this.sql<{ n: number; at: number; state: string }[]>`
        select x.n, p.at, p.to_state as state
        from unnest(${ids}::text[], ${from}::int8[], ${to}::int8[]) with ordinality as x(id, a, b, n)
        join presence_transitions p on p.terminal_id = x.id and p.at > x.a and p.at < x.b
        order by x.n, p.at, p.id`,
      this.sql<(ReportRollup & { n: number })[]>`
        select x.n, r.hour, r.samples, r.peripheral_ok as "peripheralOk", r.services
        from unnest(${ids}::text[], ${rollupsFrom}::int8[], ${to}::int8[]) with ordinality as x(id, a, b, n)
        join rollups_hourly r on r.terminal_id = x.id and r.hour >= x.a and r.hour < x.b
        order by x.n, r.hour`,
    ]);
    const out: TerminalHistory[] = spans.map(() => ({ stateBefore: null, transitions: [], rollups: [] }));
    for (const b of before) out[b.n - 1]!.stateBefore = b.state;
    for (const t of transitions) out[t.n - 1]!.transitions.push({ at: t.at, state: t.state });
    for (const r of rollups) out[r.n - 1]!.rollups.push({ hour: r.hour, samples: r.samples, peripheralOk: r.peripheralOk, services: r.services });
    return out;
  }
}
