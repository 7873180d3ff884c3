/** The availability report's SQL on SQLite. */
import type { Db } from '../store/db.ts';
import type { HistorySpan, ReportMaintenance, ReportRollup, ReportStore, ReportTerminal, TerminalHistory } from './store.ts';

const TERMINAL_COLUMNS = 'id, type, station_id AS stationId, created_at AS createdAt, decommissioned_at AS decommissionedAt';

export class SqliteReportStore implements ReportStore {
  private readonly s;

  constructor(private readonly db: Db) {
    this.s = {
      stateBefore: db
        .prepare('SELECT to_state FROM presence_transitions WHERE terminal_id = ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1')
        .pluck(),
      transitions: db.prepare(
        'SELECT at, to_state AS state FROM presence_transitions WHERE terminal_id = ? AND at > ? AND at < ? ORDER BY at, id',
      ),
      rollups: db.prepare(
        `SELECT hour, samples, peripheral_ok AS peripheralOk, services FROM rollups_hourly WHERE terminal_id = ? AND hour >= ? AND hour < ?
           ORDER BY hour`,
      ),
      maintenance: db.prepare(
        'SELECT target_kind AS targetKind, target_id AS targetId, starts_at AS startsAt, ends_at AS endsAt FROM maintenance WHERE starts_at < ? AND ends_at > ?',
      ),
      terminal: db.prepare(`SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id = ?`),
    };
  }

  async terminals(nodeId: string | null, from: number, to: number): Promise<ReportTerminal[]> {
    const where = ['created_at < ?', '(decommissioned_at IS NULL OR decommissioned_at > ?)'];
    const args: unknown[] = [to, from];
    if (nodeId !== null) {
      // isUnderNode as a byte-order range (queries/store.sqlite.ts underNodeClause): case-sensitive, unlike LIKE.
      where.push('station_id >= ? AND station_id < ? AND (station_id = ? OR station_id >= ?)');
      args.push(nodeId, `${nodeId}.`, nodeId, `${nodeId}-`);
    }
    return this.db.prepare(`SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE ${where.join(' AND ')} ORDER BY id`).all(...args) as ReportTerminal[];
  }

  async terminal(id: string): Promise<ReportTerminal | undefined> {
    return this.s.terminal.get(id) as ReportTerminal | undefined;
  }

  async maintenance(from: number, to: number): Promise<ReportMaintenance[]> {
    return this.s.maintenance.all(to, from) as ReportMaintenance[];
  }

  async histories(spans: readonly HistorySpan[]): Promise<TerminalHistory[]> {
    return spans.map((sp) => ({
      stateBefore: (this.s.stateBefore.get(sp.id, sp.from) as string | undefined) ?? null,
      transitions: this.s.transitions.all(sp.id, sp.from, sp.to) as { at: number; state: string }[],
      rollups: this.s.rollups.all(sp.id, sp.rollupsFrom, sp.to) as ReportRollup[],
    }));
  }
}
