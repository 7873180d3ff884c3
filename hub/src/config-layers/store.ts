/** SQL of layered config: layers, their history, the per-terminal desired config and sync state. */
import type { Statement } from 'better-sqlite3';
import type { Db } from '../store/db.ts';

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

const LAYER_COLUMNS = 'scope, target_id AS targetId, version, config, updated_at AS updatedAt, updated_by AS updatedBy, reason';
const SYNC_COLUMNS = `terminal_id AS terminalId, applied_version AS appliedVersion, applied_at AS appliedAt,
  rejected_version AS rejectedVersion, rejected_reason AS rejectedReason, rejected_at AS rejectedAt`;

export class ConfigLayerStore {
  readonly s;

  constructor(readonly db: Db) {
    this.s = {
      layer: db.prepare(`SELECT ${LAYER_COLUMNS} FROM config_layers WHERE scope = ? AND target_id = ?`),
      allLayers: db.prepare(`SELECT ${LAYER_COLUMNS} FROM config_layers`),
      upsertLayer: db.prepare(
        `INSERT INTO config_layers (scope, target_id, version, config, updated_at, updated_by, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (scope, target_id) DO UPDATE SET version = excluded.version, config = excluded.config,
           updated_at = excluded.updated_at, updated_by = excluded.updated_by, reason = excluded.reason`,
      ),
      insertHistory: db.prepare(
        'INSERT INTO config_layer_history (scope, target_id, version, config, at, by, reason, pushed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      history: db.prepare(
        'SELECT version, config, at, by, reason, pushed FROM config_layer_history WHERE scope = ? AND target_id = ? AND version < ? ORDER BY version DESC LIMIT ?',
      ),
      historyVersion: db.prepare('SELECT version, config, at, by, reason, pushed FROM config_layer_history WHERE scope = ? AND target_id = ? AND version = ?'),
      activeTerminals: db.prepare("SELECT id, station_id AS stationId FROM terminals WHERE state = 'active'"),
      activeTerminalsAfter: db.prepare("SELECT id, station_id AS stationId FROM terminals WHERE state = 'active' AND id > ? ORDER BY id LIMIT ?"),
      activeTerminalsUnder: db.prepare(
        "SELECT id, station_id AS stationId FROM terminals WHERE state = 'active' AND (station_id = ? OR station_id LIKE ? || '-%') ORDER BY id",
      ),
      desired: db.prepare('SELECT terminal_id AS terminalId, version, config, updated_at AS updatedAt FROM desired_config WHERE terminal_id = ?'),
      allDesired: db.prepare('SELECT terminal_id AS terminalId, version, config, updated_at AS updatedAt FROM desired_config'),
      upsertDesired: db.prepare(
        `INSERT INTO desired_config (terminal_id, version, config, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (terminal_id) DO UPDATE SET version = excluded.version, config = excluded.config, updated_at = excluded.updated_at`,
      ),
      sync: db.prepare(`SELECT ${SYNC_COLUMNS} FROM config_sync WHERE terminal_id = ?`),
      allSync: db.prepare(`SELECT ${SYNC_COLUMNS} FROM config_sync`),
      presence: db.prepare('SELECT presence FROM terminal_state WHERE terminal_id = ?'),
      allPresence: db.prepare('SELECT terminal_id AS terminalId, presence FROM terminal_state'),
    };
  }

  layer(scope: Scope, id: string): LayerRow | undefined {
    return this.s.layer.get(scope, id) as LayerRow | undefined;
  }

  allLayers(): LayerRow[] {
    return this.s.allLayers.all() as LayerRow[];
  }

  desired(terminalId: string): DesiredRow | undefined {
    return this.s.desired.get(terminalId) as DesiredRow | undefined;
  }

  terminalsUnder(nodeId: string): TerminalPlace[] {
    return this.s.activeTerminalsUnder.all(nodeId, nodeId) as TerminalPlace[];
  }

  /** Synchronous: better-sqlite3 transactions must not await (drizzle #1472). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}

const recordStatements = new WeakMap<Db, { applied: Statement<unknown[]>; rejected: Statement<unknown[]> }>();

/**
 * Called by ingest inside its batch transaction for each new config report: keeps the highest applied and the highest
 * rejected version of each terminal (reports can be replayed, never lowering what is known).
 */
export function recordConfigReport(db: Db, terminalId: string, version: number, status: 'applied' | 'rejected', reason: string | null, at: number): void {
  let st = recordStatements.get(db);
  if (!st) {
    st = {
      applied: db.prepare(
        `INSERT INTO config_sync (terminal_id, applied_version, applied_at) VALUES (?, ?, ?)
         ON CONFLICT (terminal_id) DO UPDATE SET applied_version = excluded.applied_version, applied_at = excluded.applied_at
         WHERE excluded.applied_version > config_sync.applied_version`,
      ),
      rejected: db.prepare(
        `INSERT INTO config_sync (terminal_id, rejected_version, rejected_reason, rejected_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (terminal_id) DO UPDATE SET rejected_version = excluded.rejected_version, rejected_reason = excluded.rejected_reason,
           rejected_at = excluded.rejected_at WHERE excluded.rejected_version > config_sync.rejected_version`,
      ),
    };
    recordStatements.set(db, st);
  }
  if (status === 'applied') st.applied.run(terminalId, version, at);
  else st.rejected.run(terminalId, version, reason, at);
}
