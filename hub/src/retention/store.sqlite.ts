/** Retention SQL: hourly rollups of raw telemetry and pruning in small chunks (short write transactions). */
import type { Db } from './db.ts';

export const HOUR_MS = 3_600_000;

export class RetentionStore {
  readonly s;

  constructor(readonly db: Db) {
    this.s = {
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      // The first sample at or after a time: one range seek per outbox epoch (telemetry is clustered on
      // (epoch_id, ts, seq)), where `min(ts)` over the table would read all of it.
      nextSample: db.prepare(
        'SELECT min((SELECT min(ts) FROM telemetry_samples t WHERE t.epoch_id = e.id AND t.ts >= ?)) AS ts FROM telemetry_epochs e',
      ),
      // One hour's samples grouped by terminal. CROSS JOIN keeps epochs the outer loop, so each is one range of the
      // clustered table.
      hourSamples: db.prepare(
        `SELECT e.terminal_id AS terminalId, t.cpu, t.mem_used AS memUsed, t.mem_total AS memTotal, t.disk_used AS diskUsed,
           t.disk_total AS diskTotal, t.temp, t.pstat, t.pnote, t.services, r.type
         FROM telemetry_epochs e CROSS JOIN telemetry_samples t ON t.epoch_id = e.id JOIN terminals r ON r.id = e.terminal_id
         WHERE t.ts >= ? AND t.ts < ? ORDER BY e.terminal_id`,
      ),
      upsertRollup: db.prepare(
        `INSERT OR REPLACE INTO rollups_hourly (terminal_id, hour, samples, cpu_min, cpu_avg, cpu_max, mem_pct_min, mem_pct_avg,
           mem_pct_max, disk_pct_min, disk_pct_avg, disk_pct_max, temp_min, temp_avg, temp_max, peripheral_ok, services)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      epochs: db.prepare('SELECT id FROM telemetry_epochs').pluck(),
      // Raw samples go by receive time (ts + recv_delay), at most 5000 rows a statement (short write transactions).
      // A right clock's ts is at most CLOCK_SKEW_MS after its receive time, so the samples past the cutoff lie in the
      // range ts < cutoff + CLOCK_SKEW_MS of each epoch: one range of the clustered table. A skewed clock's samples may lie
      // anywhere in ts order: the partial index telemetry_skewed holds just those.
      pruneTelemetry: db.prepare(
        `DELETE FROM telemetry_samples WHERE epoch_id = @epoch AND (ts, seq) IN (
           SELECT ts, seq FROM telemetry_samples WHERE epoch_id = @epoch AND ts < @cutoff + @skew AND ts + recv_delay < @cutoff LIMIT 5000)`,
      ),
      pruneSkewed: db.prepare(
        `DELETE FROM telemetry_samples WHERE epoch_id = @epoch AND (ts, seq) IN (
           SELECT ts, seq FROM telemetry_samples WHERE epoch_id = @epoch AND skewed = 1 AND ts + recv_delay < @cutoff LIMIT 5000)`,
      ),
      pruneRollups: db.prepare('DELETE FROM rollups_hourly WHERE hour < ?'),
      pruneEvents: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < ? LIMIT 5000)'),
      pruneTransitions: db.prepare('DELETE FROM presence_transitions WHERE at < ?'),
      pruneStreamTables: [
        db.prepare('DELETE FROM config_reports WHERE received_at < ?'),
        db.prepare('DELETE FROM command_results WHERE received_at < ?'),
        db.prepare('DELETE FROM update_status WHERE received_at < ?'),
        db.prepare("DELETE FROM commands WHERE status NOT IN ('pending', 'sent') AND issued_at < ?"),
      ],
    };
  }

  meta(key: string): string | undefined {
    return (this.s.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.s.setMeta.run(key, value);
  }
}
