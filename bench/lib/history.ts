/**
 * History written straight into a (stopped) hub's database, for read benchmarks: raw telemetry at 30 s, hourly
 * rollups, and each terminal's latest state. Column lists follow hub/src/store/schema.ts; if the schema changes,
 * the INSERTs fail loudly rather than measure something else. history-postgres.ts writes the same rows (historyPlan)
 * into PostgreSQL.
 */
import Database from 'better-sqlite3';
import { EXAMPLES, type Telemetry } from '@kiosk-fleet/protocol';
import { encodeSample, SAMPLE_COLUMNS } from '../../hub/src/store/telemetry-codec.ts';
import { newEpoch } from './terminals.ts';

const HOUR = 3_600_000;

export interface HistoryOptions {
  dbFile: string;
  terminalIds: string[];
  /** Terminals (a subset) that get raw samples. */
  rawIds: string[];
  rawHours: number;
  intervalS: number;
  rollupDays: number;
  now: number;
}

/** rollups_hourly's columns in the order of `HistoryPlan.rollup`. */
export const ROLLUP_COLUMNS =
  'terminal_id, hour, samples, cpu_min, cpu_avg, cpu_max, mem_pct_min, mem_pct_avg, mem_pct_max, disk_pct_min, disk_pct_avg, disk_pct_max, temp_min, temp_avg, temp_max, peripheral_ok, services';
/** terminal_state's columns in the order of `HistoryPlan.state` (after which comes the terminal id). */
export const STATE_COLUMNS = [
  'presence',
  'presence_reason',
  'presence_since',
  'last_seen_at',
  'last_telemetry_at',
  'last_telemetry_ts',
  'interval_s',
  'host',
  'peripherals',
  'app',
  'services',
  'fault_count',
  'agent_version',
  'app_version',
] as const;

/**
 * The rows of the history, whatever the engine (this file writes them into SQLite, history-postgres.ts into
 * PostgreSQL): raw samples in arrival order (all terminals' sample k, then k + 1, …), `steps` of them per raw
 * terminal from `start`; `hours` hourly rollups per terminal from `hour0`; each terminal's latest state.
 */
export interface HistoryPlan {
  steps: number;
  start: number;
  hours: number;
  hour0: number;
  /** Raw sample k of raw terminal i: its columns after (epoch_id, ts, seq, recv_delay, skewed), SAMPLE_COLUMNS. */
  sample(k: number, i: number): unknown[];
  /** Rollup hour k of a terminal, ROLLUP_COLUMNS. */
  rollup(terminalId: string, k: number): unknown[];
  /** Latest state of terminal i of `terminalIds`, STATE_COLUMNS. */
  state(i: number): unknown[];
}

export function historyPlan(o: Omit<HistoryOptions, 'dbFile'>): HistoryPlan {
  const h = EXAMPLES.telemetry.host;
  const app = JSON.stringify(EXAMPLES.telemetry.app);
  const services = JSON.stringify(['id-card-apply', 'id-card-collect']);
  const sample = EXAMPLES.telemetry as unknown as Telemetry;
  const sampleServices = ['id-card-application', 'progress-inquiry'];
  const steps = Math.floor((o.rawHours * 3600) / o.intervalS);
  const hours = o.rollupDays * 24;
  const hour0 = Math.floor(o.now / HOUR) * HOUR - hours * HOUR;
  const ok = JSON.stringify({ idCardReader: 0.99, receiptPrinter: 0.97, camera: 1 });
  const svc = JSON.stringify({ 'id-card-apply': 0.99, 'id-card-collect': 0.98 });
  return {
    steps,
    start: o.now - steps * o.intervalS * 1000,
    hours,
    hour0,
    // The hub's own encoding (hub/src/store/telemetry-codec.ts), so the rows are the ones the hub would have written.
    sample: (k, i) => encodeSample({ ...sample, host: { ...sample.host, cpu: (k * 7 + i) % 100, uptime: h.uptime + k * o.intervalS } }, sampleServices),
    rollup: (id, k) => {
      const cpu = 10 + (k % 24);
      return [id, hour0 + k * HOUR, 120, cpu - 5, cpu, cpu + 20, 35, 37.5, 40, 33, 33.3, 33.5, 45, 48, 51, ok, svc];
    },
    // 95 % online, a few offline, one in twenty with a card-reader fault.
    state: (i) => {
      const online = i % 20 !== 7;
      const fault = i % 20 === 3;
      const p = { ...EXAMPLES.telemetry.peripherals, idCardReader: { status: fault ? 'fault' : 'ok', since: o.now - 3600_000 } };
      const at = o.now - 20_000;
      return [online ? 'online' : 'offline', online ? null : 'connection-lost', o.now - 7200_000, at, at, at, 30, JSON.stringify(h), JSON.stringify(p), app, fault ? '[]' : services, fault ? 1 : 0, '0.1.0', '3.2.1'];
    },
  };
}

export function writeHistory(o: HistoryOptions): { rawRows: number; rollupRows: number; seconds: number } {
  const t0 = performance.now();
  const db = new Database(o.dbFile);
  // A fixture, not a measurement: no journal, no fsync, a big cache, and the secondary indexes built once at the
  // end (a sorted build) instead of updated row by row. The hub reopens it in WAL mode.
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -400000');
  db.pragma('temp_store = MEMORY');
  const indexes = db
    .prepare(`SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('telemetry_samples', 'rollups_hourly')`)
    .all() as Array<{ name: string; sql: string }>;
  for (const ix of indexes) db.exec(`DROP INDEX "${ix.name}"`);
  const plan = historyPlan(o);
  const insEpoch = db.prepare('INSERT INTO telemetry_epochs (terminal_id, epoch) VALUES (?, ?)');
  const insTelemetry = db.prepare(
    `INSERT INTO telemetry_samples (epoch_id, ts, seq, recv_delay, skewed, ${SAMPLE_COLUMNS}) VALUES (?, ?, ?, 40, 0, ${SAMPLE_COLUMNS.replace(/\w+/g, '?')})`,
  );
  const insRollup = db.prepare(`INSERT OR REPLACE INTO rollups_hourly (${ROLLUP_COLUMNS}) VALUES (${ROLLUP_COLUMNS.replace(/\w+/g, '?')})`);
  const setState = db.prepare(`UPDATE terminal_state SET ${STATE_COLUMNS.map((c) => `${c} = ?`).join(', ')} WHERE terminal_id = ?`);

  const epochs = db.transaction(() => o.rawIds.map((id) => Number(insEpoch.run(id, newEpoch()).lastInsertRowid)))();
  let rawRows = 0;
  const rawBatch = db.transaction((from: number, to: number) => {
    for (let k = from; k < to; k++) {
      const ts = plan.start + k * o.intervalS * 1000;
      for (let i = 0; i < o.rawIds.length; i++) {
        insTelemetry.run(epochs[i], ts, k + 1, ...plan.sample(k, i));
        rawRows++;
      }
    }
  });
  const perTx = Math.max(1, Math.floor(200000 / Math.max(1, o.rawIds.length)));
  for (let k = 0; k < plan.steps; k += perTx) rawBatch(k, Math.min(plan.steps, k + perTx));

  let rollupRows = 0;
  const rollupBatch = db.transaction((ids: string[]) => {
    for (const id of ids) {
      for (let k = 0; k < plan.hours; k++) {
        insRollup.run(...plan.rollup(id, k));
        rollupRows++;
      }
    }
  });
  for (let i = 0; i < o.terminalIds.length; i += 500) rollupBatch(o.terminalIds.slice(i, i + 500));

  const stateTx = db.transaction(() => {
    o.terminalIds.forEach((id, i) => setState.run(...plan.state(i), id));
  });
  stateTx();
  for (const ix of indexes) db.exec(ix.sql);
  db.pragma('journal_mode = WAL');
  db.close();
  return { rawRows, rollupRows, seconds: (performance.now() - t0) / 1000 };
}
