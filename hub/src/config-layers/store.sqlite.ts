/**
 * ConfigLayerStore on the hub's SQLite file: better-sqlite3 prepared statements, synchronous underneath (each method
 * finishes within its call). A `tx` needs no passing on: the one connection is inside the caller's BEGIN already.
 */
import type { Statement } from 'better-sqlite3';
import { transaction, type Tx } from '../db/engine.ts';
import type { Db } from '../store/db.ts';
import type { ConfigLayerStore, ConfigReport, DesiredRow, DriftRow, HistoryRow, LayerRow, LayerWrite, Scope, SyncRow, TerminalPlace } from './store.ts';

const LAYER_COLUMNS = 'scope, target_id AS targetId, version, config, updated_at AS updatedAt, updated_by AS updatedBy, reason';
const SYNC_COLUMNS = `terminal_id AS terminalId, applied_version AS appliedVersion, applied_at AS appliedAt,
  rejected_version AS rejectedVersion, rejected_reason AS rejectedReason, rejected_at AS rejectedAt`;
const DESIRED_COLUMNS = 'terminal_id AS terminalId, version, config, updated_at AS updatedAt';

function statements(db: Db) {
  return {
    layer: db.prepare(`SELECT ${LAYER_COLUMNS} FROM config_layers WHERE scope = ? AND target_id = ?`),
    allLayers: db.prepare(`SELECT ${LAYER_COLUMNS} FROM config_layers`),
    layersWithPrograms: db.prepare(`SELECT ${LAYER_COLUMNS} FROM config_layers WHERE instr(config, '"command":') > 0`),
    // the compare-and-set of saveLayer: an insert when none is stored, an update only of the version read
    insertLayer: db.prepare(
      `INSERT INTO config_layers (scope, target_id, version, config, updated_at, updated_by, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (scope, target_id) DO NOTHING`,
    ),
    updateLayer: db.prepare(
      'UPDATE config_layers SET version = ?, config = ?, updated_at = ?, updated_by = ?, reason = ? WHERE scope = ? AND target_id = ? AND version = ?',
    ),
    insertHistory: db.prepare(
      'INSERT INTO config_layer_history (scope, target_id, version, config, at, by, reason, pushed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    history: db.prepare(
      'SELECT version, config, at, by, reason, pushed FROM config_layer_history WHERE scope = ? AND target_id = ? AND version < ? ORDER BY version DESC LIMIT ?',
    ),
    historyVersion: db.prepare('SELECT version, config, at, by, reason, pushed FROM config_layer_history WHERE scope = ? AND target_id = ? AND version = ?'),
    activeTerminals: db.prepare("SELECT id, station_id AS stationId FROM terminals WHERE state = 'active' ORDER BY id"),
    activeTerminalsAfter: db.prepare("SELECT id, station_id AS stationId FROM terminals WHERE state = 'active' AND id > ? ORDER BY id LIMIT ?"),
    activeTerminalsUnder: db.prepare(
      "SELECT id, station_id AS stationId FROM terminals WHERE state = 'active' AND (station_id = ? OR station_id LIKE ? || '-%') ORDER BY id",
    ),
    desired: db.prepare(`SELECT ${DESIRED_COLUMNS} FROM desired_config WHERE terminal_id = ?`),
    allDesired: db.prepare(`SELECT ${DESIRED_COLUMNS} FROM desired_config`),
    desiredWithPrograms: db.prepare(`SELECT ${DESIRED_COLUMNS} FROM desired_config WHERE instr(config, '"command":') > 0`),
    putDesired: db.prepare(
      `INSERT INTO desired_config (terminal_id, version, config, updated_at) VALUES (?, 1, ?, ?)
       ON CONFLICT (terminal_id) DO UPDATE SET version = desired_config.version + 1, config = excluded.config, updated_at = excluded.updated_at
       RETURNING version`,
    ),
    sync: db.prepare(`SELECT ${SYNC_COLUMNS} FROM config_sync WHERE terminal_id = ?`),
    allSync: db.prepare(`SELECT ${SYNC_COLUMNS} FROM config_sync`),
    lagging: db.prepare(
      `SELECT t.id AS terminalId, t.station_id AS stationId, d.version, d.config, d.updated_at AS updatedAt,
         s.applied_version AS appliedVersion, s.applied_at AS appliedAt, s.rejected_version AS rejectedVersion,
         s.rejected_reason AS rejectedReason, s.rejected_at AS rejectedAt, ts.presence
       FROM terminals t JOIN desired_config d ON d.terminal_id = t.id
         LEFT JOIN config_sync s ON s.terminal_id = t.id
         LEFT JOIN terminal_state ts ON ts.terminal_id = t.id
       WHERE t.state = 'active' AND (? IS NULL OR t.station_id = ? OR t.station_id LIKE ? || '-%')
         AND coalesce(s.applied_version, 0) < d.version
       ORDER BY t.id`,
    ),
  };
}

const reportStatements = new WeakMap<Db, { applied: Statement<unknown[]>; rejected: Statement<unknown[]> }>();

/**
 * Synchronous, for ingest's SQLite batch writer (its jobs run inside the batch transaction and cannot await): keeps
 * the highest applied and the highest rejected version of a terminal (reports can be replayed, never lowering what is
 * known). `recordReports` runs the same statements.
 */
export function recordConfigReport(db: Db, terminalId: string, version: number, status: 'applied' | 'rejected', reason: string | null, at: number): void {
  let st = reportStatements.get(db);
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
    reportStatements.set(db, st);
  }
  if (status === 'applied') st.applied.run(terminalId, version, at);
  else st.rejected.run(terminalId, version, reason, at);
}

export class SqliteConfigLayerStore implements ConfigLayerStore {
  readonly #db: Db;
  readonly #s;

  constructor(readonly engine: { kind: 'sqlite'; db: Db }) {
    this.#db = engine.db;
    this.#s = statements(engine.db);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return transaction(this.engine, fn);
  }

  async layer(scope: Scope, id: string): Promise<LayerRow | undefined> {
    return this.#s.layer.get(scope, id) as LayerRow | undefined;
  }

  async allLayers(): Promise<LayerRow[]> {
    return this.#s.allLayers.all() as LayerRow[];
  }

  async saveLayer(w: LayerWrite, expectedVersion: number, tx?: Tx): Promise<boolean> {
    const write = (): boolean => {
      const changed =
        expectedVersion === 0
          ? this.#s.insertLayer.run(w.scope, w.targetId, w.version, w.config, w.updatedAt, w.updatedBy, w.reason).changes
          : this.#s.updateLayer.run(w.version, w.config, w.updatedAt, w.updatedBy, w.reason, w.scope, w.targetId, expectedVersion).changes;
      if (changed === 0) return false;
      this.#s.insertHistory.run(w.scope, w.targetId, w.version, w.config, w.updatedAt, w.updatedBy, w.reason, w.pushed);
      return true;
    };
    // both rows or neither, also when called without the caller's transaction
    return tx ? write() : this.#db.transaction(write)();
  }

  async history(scope: Scope, id: string, before: number, limit: number): Promise<HistoryRow[]> {
    return this.#s.history.all(scope, id, before, limit) as HistoryRow[];
  }

  async historyVersion(scope: Scope, id: string, version: number): Promise<HistoryRow | undefined> {
    return this.#s.historyVersion.get(scope, id, version) as HistoryRow | undefined;
  }

  async desired(terminalId: string): Promise<DesiredRow | undefined> {
    return this.#s.desired.get(terminalId) as DesiredRow | undefined;
  }

  async allDesired(): Promise<DesiredRow[]> {
    return this.#s.allDesired.all() as DesiredRow[];
  }

  async putDesired(rows: readonly { terminalId: string; config: string }[], at: number, tx?: Tx): Promise<{ terminalId: string; version: number }[]> {
    const write = () => rows.map((r) => ({ terminalId: r.terminalId, version: (this.#s.putDesired.get(r.terminalId, r.config, at) as { version: number }).version }));
    return tx || rows.length <= 1 ? write() : this.#db.transaction(write)();
  }

  async sync(terminalId: string): Promise<SyncRow | undefined> {
    return this.#s.sync.get(terminalId) as SyncRow | undefined;
  }

  async allSync(): Promise<SyncRow[]> {
    return this.#s.allSync.all() as SyncRow[];
  }

  async recordReports(reports: readonly ConfigReport[]): Promise<void> {
    for (const r of reports) recordConfigReport(this.#db, r.terminalId, r.version, r.status, r.reason, r.at);
  }

  async lagging(nodeId: string | null): Promise<DriftRow[]> {
    return this.#s.lagging.all(nodeId, nodeId, nodeId) as DriftRow[];
  }

  async activeTerminals(): Promise<TerminalPlace[]> {
    return this.#s.activeTerminals.all() as TerminalPlace[];
  }

  async activeTerminalsAfter(cursor: string, n: number): Promise<TerminalPlace[]> {
    return this.#s.activeTerminalsAfter.all(cursor, n) as TerminalPlace[];
  }

  async terminalsUnder(nodeId: string): Promise<TerminalPlace[]> {
    return this.#s.activeTerminalsUnder.all(nodeId, nodeId) as TerminalPlace[];
  }

  async layersWithPrograms(): Promise<LayerRow[]> {
    return this.#s.layersWithPrograms.all() as LayerRow[];
  }

  async desiredWithPrograms(): Promise<DesiredRow[]> {
    return this.#s.desiredWithPrograms.all() as DesiredRow[];
  }
}
