/**
 * RetentionStore on the hub's SQLite file: hourly rollups of raw telemetry and pruning in small chunks (short write
 * transactions), then the free pages returned to the OS (auto_vacuum = INCREMENTAL), so the file's size stays bounded.
 * Synchronous underneath, like the hub's other SQLite statements.
 */
import { sqliteWriteLock, type Tx } from '../db/engine.ts';
import type { Db } from '../store/db.ts';
import { PRUNE_CHUNK, type PartitionsMade, type PruneCutoffs, type PruneResult, type RetentionStore, type RollupRow, type SampleRow } from './store.ts';

export class SqliteRetentionStore implements RetentionStore {
  readonly #s;

  constructor(private readonly db: Db) {
    this.#s = {
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

  async meta(key: string): Promise<string | undefined> {
    return (this.#s.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  async setMeta(key: string, value: string, tx?: Tx): Promise<void> {
    if (tx && tx.kind !== 'sqlite') throw new Error('a PostgreSQL transaction handed to a SQLite store');
    this.#s.setMeta.run(key, value);
  }

  async nextSampleTs(from: number): Promise<number | null> {
    return (this.#s.nextSample.get(from) as { ts: number | null }).ts;
  }

  async hourSamples(from: number, to: number): Promise<SampleRow[]> {
    return this.#s.hourSamples.all(from, to) as SampleRow[];
  }

  async writeRollups(rows: RollupRow[], rollupUntil: number | null, tx?: Tx): Promise<void> {
    if (tx && tx.kind !== 'sqlite') throw new Error('a PostgreSQL transaction handed to a SQLite store');
    const write = () => {
      for (const r of rows) {
        this.#s.upsertRollup.run(
          r.terminalId, r.hour, r.samples, r.cpuMin, r.cpuAvg, r.cpuMax, r.memPctMin, r.memPctAvg, r.memPctMax,
          r.diskPctMin, r.diskPctAvg, r.diskPctMax, r.tempMin, r.tempAvg, r.tempMax, r.peripheralOk, r.services,
        );
      }
      if (rollupUntil !== null) this.#s.setMeta.run('rollup_until', String(rollupUntil));
    };
    if (tx) return write();
    // Under the write lock: a transaction() of another flow, open across its awaits, must not take this one in as a
    // savepoint (and roll it back with its own).
    await sqliteWriteLock(this.db).runExclusive(() => this.db.transaction(write)());
  }

  async prune(c: PruneCutoffs): Promise<PruneResult> {
    // The chunks run back to back as before; under the write lock so none lands inside another flow's transaction.
    return sqliteWriteLock(this.db).runExclusive(() => this.#prune(c));
  }

  #prune(c: PruneCutoffs): PruneResult {
    let telemetry = 0;
    for (const epoch of this.#s.epochs.all() as number[]) {
      for (const [st, args] of [
        [this.#s.pruneTelemetry, { epoch, cutoff: c.raw, skew: c.skewMs }],
        [this.#s.pruneSkewed, { epoch, cutoff: c.raw }],
      ] as const) {
        for (;;) {
          const n = st.run(args).changes;
          telemetry += n;
          if (n < PRUNE_CHUNK) break;
        }
      }
    }
    let other = this.#s.pruneRollups.run(c.long).changes;
    for (;;) {
      const n = this.#s.pruneEvents.run(c.long).changes;
      other += n;
      if (n === 0) break;
    }
    other += this.#s.pruneTransitions.run(c.long).changes;
    for (const st of this.#s.pruneStreamTables) other += st.run(c.long).changes;
    if (telemetry + other > 0) {
      this.db.pragma('incremental_vacuum');
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
    return { telemetry, other, partitionsDropped: [] };
  }

  async preparePartitions(): Promise<PartitionsMade> {
    return { created: [], skipped: [] };
  }
}
