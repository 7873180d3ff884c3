/** SQL of the availability report: terminals under a node, their presence transitions, rollups and maintenance. */
import { scopeClause } from '../auth/scope.ts';
import type { Db } from '../store/db.ts';

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

export class ReportStore {
  readonly s;

  constructor(private readonly db: Db) {
    this.s = {
      stateBefore: db.prepare(
        'SELECT to_state AS state FROM presence_transitions WHERE terminal_id = ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1',
      ),
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
    };
  }

  /** Terminals under the node that existed at some point of [from, to). */
  terminals(nodeId: string | null, from: number, to: number): ReportTerminal[] {
    const where = ['created_at < ?', '(decommissioned_at IS NULL OR decommissioned_at > ?)'];
    const args: unknown[] = [to, from];
    if (nodeId !== null) {
      const sc = scopeClause('station_id', nodeId);
      where.push(sc.sql);
      args.push(...sc.args);
    }
    return this.db
      .prepare(
        `SELECT id, type, station_id AS stationId, created_at AS createdAt, decommissioned_at AS decommissionedAt FROM terminals
         WHERE ${where.join(' AND ')} ORDER BY id`,
      )
      .all(...args) as ReportTerminal[];
  }

  terminal(id: string): ReportTerminal | undefined {
    return this.db
      .prepare('SELECT id, type, station_id AS stationId, created_at AS createdAt, decommissioned_at AS decommissionedAt FROM terminals WHERE id = ?')
      .get(id) as ReportTerminal | undefined;
  }
}
