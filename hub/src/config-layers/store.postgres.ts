/**
 * ConfigLayerStore on PostgreSQL (postgres.js). Config texts are `text` columns, stored and returned as given, so the
 * API answers the same bytes as on SQLite. Lists of terminals sort with COLLATE "C" (code points, as SQLite sorts) so
 * that a database created with another locale lists them in the same order; the sweep's cursor keeps the database's
 * own collation (any total order will do, and it keeps the primary key's index usable).
 */
import type { Sql, TransactionSql } from 'postgres';
import { pgSql, transaction, type Tx } from '../db/engine.ts';
import type { PostgresDb } from '../db/postgres/open.ts';
import type { ConfigLayerStore, ConfigReport, DesiredRow, DriftRow, HistoryRow, LayerRow, LayerWrite, Scope, SyncRow, TerminalPlace } from './store.ts';

export class PostgresConfigLayerStore implements ConfigLayerStore {
  constructor(readonly engine: { kind: 'postgres'; pg: PostgresDb }) {}

  #sql(tx?: Tx) {
    return pgSql(this.engine.pg.sql, tx);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return transaction(this.engine, fn);
  }

  async layer(scope: Scope, id: string, tx?: Tx): Promise<LayerRow | undefined> {
    const [row] = await this.#sql(tx)<LayerRow[]>`
      select scope, target_id as "targetId", version, config, updated_at as "updatedAt", updated_by as "updatedBy", reason
      from config_layers where scope = ${scope} and target_id = ${id}`;
    return row;
  }

  async allLayers(tx?: Tx): Promise<LayerRow[]> {
    return this.#sql(tx)<LayerRow[]>`
      select scope, target_id as "targetId", version, config, updated_at as "updatedAt", updated_by as "updatedBy", reason
      from config_layers`;
  }

  async layersWithPrograms(tx?: Tx): Promise<LayerRow[]> {
    return this.#sql(tx)<LayerRow[]>`
      select scope, target_id as "targetId", version, config, updated_at as "updatedAt", updated_by as "updatedBy", reason
      from config_layers where strpos(config, '"command":') > 0`;
  }

  async saveLayer(w: LayerWrite, expectedVersion: number, tx?: Tx): Promise<boolean> {
    const write = async (sql: Sql | TransactionSql): Promise<boolean> => {
      // A concurrent save of the same layer waits on the row (or on the conflicting insert) and then finds another
      // version: it writes nothing, and the caller answers 409.
      const written =
        expectedVersion === 0
          ? await sql`
              insert into config_layers (scope, target_id, version, config, updated_at, updated_by, reason)
              values (${w.scope}, ${w.targetId}, ${w.version}, ${w.config}, ${w.updatedAt}, ${w.updatedBy}, ${w.reason})
              on conflict (scope, target_id) do nothing`
          : await sql`
              update config_layers set version = ${w.version}, config = ${w.config}, updated_at = ${w.updatedAt},
                updated_by = ${w.updatedBy}, reason = ${w.reason}
              where scope = ${w.scope} and target_id = ${w.targetId} and version = ${expectedVersion}`;
      if (written.count === 0) return false;
      await sql`
        insert into config_layer_history (scope, target_id, version, config, at, by, reason, pushed)
        values (${w.scope}, ${w.targetId}, ${w.version}, ${w.config}, ${w.updatedAt}, ${w.updatedBy}, ${w.reason}, ${w.pushed})`;
      return true;
    };
    if (tx) return write(this.#sql(tx));
    return this.transaction((t) => write(this.#sql(t)));
  }

  async history(scope: Scope, id: string, before: number, limit: number): Promise<HistoryRow[]> {
    return this.#sql()<HistoryRow[]>`
      select version, config, at, by, reason, pushed from config_layer_history
      where scope = ${scope} and target_id = ${id} and version < ${before} order by version desc limit ${limit}`;
  }

  async historyVersion(scope: Scope, id: string, version: number): Promise<HistoryRow | undefined> {
    const [row] = await this.#sql()<HistoryRow[]>`
      select version, config, at, by, reason, pushed from config_layer_history
      where scope = ${scope} and target_id = ${id} and version = ${version}`;
    return row;
  }

  async desired(terminalId: string, tx?: Tx): Promise<DesiredRow | undefined> {
    const [row] = await this.#sql(tx)<DesiredRow[]>`
      select terminal_id as "terminalId", version, config, updated_at as "updatedAt" from desired_config where terminal_id = ${terminalId}`;
    return row;
  }

  async allDesired(tx?: Tx): Promise<DesiredRow[]> {
    return this.#sql(tx)<DesiredRow[]>`select terminal_id as "terminalId", version, config, updated_at as "updatedAt" from desired_config`;
  }

  async desiredWithPrograms(tx?: Tx): Promise<DesiredRow[]> {
    return this.#sql(tx)<DesiredRow[]>`
      select terminal_id as "terminalId", version, config, updated_at as "updatedAt" from desired_config where strpos(config, '"command":') > 0`;
  }

  async putDesired(rows: readonly { terminalId: string; config: string }[], at: number, tx?: Tx): Promise<{ terminalId: string; version: number }[]> {
    if (rows.length === 0) return [];
    // one statement for a city-wide change (thousands of terminals), not one round trip per terminal
    const written = await this.#sql(tx)<{ terminalId: string; version: number }[]>`
      insert into desired_config (terminal_id, version, config, updated_at)
      select id, 1, config, ${at} from unnest(${rows.map((r) => r.terminalId)}::text[], ${rows.map((r) => r.config)}::text[]) as u(id, config)
      on conflict (terminal_id) do update set version = desired_config.version + 1, config = excluded.config, updated_at = excluded.updated_at
      returning terminal_id as "terminalId", version`;
    const version = new Map(written.map((w) => [w.terminalId, w.version]));
    return rows.map((r) => ({ terminalId: r.terminalId, version: version.get(r.terminalId)! }));
  }

  async sync(terminalId: string): Promise<SyncRow | undefined> {
    const [row] = await this.#sql()<SyncRow[]>`
      select terminal_id as "terminalId", applied_version as "appliedVersion", applied_at as "appliedAt",
        rejected_version as "rejectedVersion", rejected_reason as "rejectedReason", rejected_at as "rejectedAt"
      from config_sync where terminal_id = ${terminalId}`;
    return row;
  }

  async allSync(): Promise<SyncRow[]> {
    return this.#sql()<SyncRow[]>`
      select terminal_id as "terminalId", applied_version as "appliedVersion", applied_at as "appliedAt",
        rejected_version as "rejectedVersion", rejected_reason as "rejectedReason", rejected_at as "rejectedAt"
      from config_sync`;
  }

  async recordReports(reports: readonly ConfigReport[], tx?: Tx): Promise<void> {
    if (reports.length === 0) return;
    const sql = this.#sql(tx);
    // A batch may hold several reports of one terminal; ON CONFLICT may touch a row once per statement, so each
    // terminal's highest version goes in (the one a row-by-row replay would have left).
    const highest = (status: 'applied' | 'rejected') => {
      const top = new Map<string, ConfigReport>();
      for (const r of reports) {
        if (r.status !== status) continue;
        const seen = top.get(r.terminalId);
        if (!seen || r.version > seen.version) top.set(r.terminalId, r);
      }
      return [...top.values()];
    };
    const applied = highest('applied');
    if (applied.length > 0) {
      await sql`
        insert into config_sync (terminal_id, applied_version, applied_at)
        select * from unnest(${applied.map((r) => r.terminalId)}::text[], ${applied.map((r) => r.version)}::int8[], ${applied.map((r) => r.at)}::int8[])
        on conflict (terminal_id) do update set applied_version = excluded.applied_version, applied_at = excluded.applied_at
        where excluded.applied_version > config_sync.applied_version`;
    }
    const rejected = highest('rejected');
    if (rejected.length > 0) {
      await sql`
        insert into config_sync (terminal_id, rejected_version, rejected_reason, rejected_at)
        select * from unnest(${rejected.map((r) => r.terminalId)}::text[], ${rejected.map((r) => r.version)}::int8[],
          ${rejected.map((r) => r.reason)}::text[], ${rejected.map((r) => r.at)}::int8[])
        on conflict (terminal_id) do update set rejected_version = excluded.rejected_version, rejected_reason = excluded.rejected_reason,
          rejected_at = excluded.rejected_at
        where excluded.rejected_version > config_sync.rejected_version`;
    }
  }

  async lagging(nodeId: string | null): Promise<DriftRow[]> {
    const sql = this.#sql();
    const under = nodeId === null ? sql`` : sql`and (t.station_id = ${nodeId} or t.station_id like ${nodeId} || '-%')`;
    return sql<DriftRow[]>`
      select t.id as "terminalId", t.station_id as "stationId", d.version, d.config, d.updated_at as "updatedAt",
        s.applied_version as "appliedVersion", s.applied_at as "appliedAt", s.rejected_version as "rejectedVersion",
        s.rejected_reason as "rejectedReason", s.rejected_at as "rejectedAt", ts.presence
      from terminals t join desired_config d on d.terminal_id = t.id
        left join config_sync s on s.terminal_id = t.id
        left join terminal_state ts on ts.terminal_id = t.id
      where t.state = 'active' ${under} and coalesce(s.applied_version, 0) < d.version
      order by t.id collate "C"`;
  }

  async activeTerminals(): Promise<TerminalPlace[]> {
    return this.#sql()<TerminalPlace[]>`select id, station_id as "stationId" from terminals where state = 'active' order by id collate "C"`;
  }

  async activeTerminalsAfter(cursor: string, n: number): Promise<TerminalPlace[]> {
    return this.#sql()<TerminalPlace[]>`
      select id, station_id as "stationId" from terminals where state = 'active' and id > ${cursor} order by id limit ${n}`;
  }

  async terminalsUnder(nodeId: string): Promise<TerminalPlace[]> {
    return this.#sql()<TerminalPlace[]>`
      select id, station_id as "stationId" from terminals
      where state = 'active' and (station_id = ${nodeId} or station_id like ${nodeId} || '-%') order by id collate "C"`;
  }
}
