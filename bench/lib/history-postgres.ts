/**
 * The PostgreSQL twin of history.ts's writeHistory: the same rows (historyPlan), written straight into a (stopped)
 * hub's PostgreSQL database with COPY, for read benchmarks. Column lists follow the hub's PostgreSQL migrations
 * (hub/drizzle-postgres); if the schema changes, the COPYs fail loudly rather than measure something else.
 */
import { SAMPLE_COLUMNS } from '../../hub/src/store/telemetry-codec.ts';
import { ensureDailyPartitions } from '../../hub/src/db/postgres/partitions.ts';
import { historyPlan, ROLLUP_COLUMNS, STATE_COLUMNS, type HistoryOptions } from './history.ts';
import { benchClient, copyInto, copyLine } from './postgres.ts';
import { newEpoch } from './terminals.ts';

/** Rows per COPY: a few MB of text at a time. */
const CHUNK = 100_000;

export async function writeHistoryPostgres(o: Omit<HistoryOptions, 'dbFile'> & { url: string }): Promise<{ rawRows: number; rollupRows: number; seconds: number }> {
  const t0 = performance.now();
  const plan = historyPlan(o);
  const sql = benchClient(o.url);
  try {
    // A fixture, not a measurement: its commits need not wait for the disk.
    await sql`set synchronous_commit = off`;
    // Every day of the raw samples in its own partition, as the hub makes them ahead of time.
    await ensureDailyPartitions(sql, 'telemetry_samples', plan.start, o.now + 86_400_000);
    const keys = await sql<Array<{ id: number; terminal_id: string }>>`
      insert into telemetry_epochs (id, terminal_id, epoch)
      select (select coalesce(max(id), 0) from telemetry_epochs) + row_number() over (), v.t, v.e
      from unnest(${o.rawIds}::text[], ${o.rawIds.map(() => newEpoch())}::text[]) as v(t, e)
      returning id, terminal_id`;
    const keyOf = new Map(keys.map((r) => [r.terminal_id, r.id]));
    const epochs = o.rawIds.map((id) => keyOf.get(id)!);

    let rawRows = 0;
    let text = '';
    let inText = 0;
    const flush = async (table: string, cols: string) => {
      if (inText) await copyInto(sql, table, cols, text);
      text = '';
      inText = 0;
    };
    const sampleCols = `epoch_id, ts, seq, recv_delay, skewed, ${SAMPLE_COLUMNS}`;
    for (let k = 0; k < plan.steps; k++) {
      const ts = plan.start + k * o.intervalS * 1000;
      for (let i = 0; i < o.rawIds.length; i++) {
        text += copyLine([epochs[i], ts, k + 1, 40, 0, ...plan.sample(k, i)]);
        rawRows++;
        if (++inText >= CHUNK) await flush('telemetry_samples', sampleCols);
      }
    }
    await flush('telemetry_samples', sampleCols);

    let rollupRows = 0;
    for (const id of o.terminalIds) {
      for (let k = 0; k < plan.hours; k++) {
        text += copyLine(plan.rollup(id, k));
        rollupRows++;
        if (++inText >= CHUNK) await flush('rollups_hourly', ROLLUP_COLUMNS);
      }
    }
    await flush('rollups_hourly', ROLLUP_COLUMNS);

    // The latest state through a temp table in one upsert (the hub's import may or may not have made the rows).
    await sql.unsafe(`CREATE TEMP TABLE kf_state_in AS SELECT terminal_id, ${STATE_COLUMNS.join(', ')} FROM terminal_state WITH NO DATA`);
    await copyInto(sql, 'kf_state_in', `${STATE_COLUMNS.join(', ')}, terminal_id`, o.terminalIds.map((id, i) => copyLine([...plan.state(i), id])).join(''));
    await sql.unsafe(
      `INSERT INTO terminal_state (terminal_id, ${STATE_COLUMNS.join(', ')}) SELECT terminal_id, ${STATE_COLUMNS.join(', ')} FROM kf_state_in
       ON CONFLICT (terminal_id) DO UPDATE SET ${STATE_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}`,
    );
    // Statistics and visibility maps, as autovacuum would have made them on a server that had been running a month:
    // without them the planner guesses, and a read benchmark measures the guess.
    for (const t of ['telemetry_samples', 'telemetry_epochs', 'rollups_hourly', 'terminal_state']) await sql.unsafe(`VACUUM ANALYZE ${t}`);
    return { rawRows, rollupRows, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await sql.end({ timeout: 5 });
  }
}
