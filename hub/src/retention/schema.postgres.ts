/** The twin of schema.ts on PostgreSQL: same names and value conventions as SQLite (store/schema.postgres.ts says why). */
import { bigint, doublePrecision, index, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';

export const rollups = pgTable(
  'rollups_hourly',
  {
    terminalId: text('terminal_id').notNull(),
    hour: bigint('hour', { mode: 'number' }).notNull(),
    samples: bigint('samples', { mode: 'number' }).notNull(),
    cpuMin: doublePrecision('cpu_min'),
    cpuAvg: doublePrecision('cpu_avg'),
    cpuMax: doublePrecision('cpu_max'),
    memPctMin: doublePrecision('mem_pct_min'),
    memPctAvg: doublePrecision('mem_pct_avg'),
    memPctMax: doublePrecision('mem_pct_max'),
    diskPctMin: doublePrecision('disk_pct_min'),
    diskPctAvg: doublePrecision('disk_pct_avg'),
    diskPctMax: doublePrecision('disk_pct_max'),
    tempMin: doublePrecision('temp_min'),
    tempAvg: doublePrecision('temp_avg'),
    tempMax: doublePrecision('temp_max'),
    /** JSON {peripheralId: share of samples with status ok, 0-1}. */
    peripheralOk: text('peripheral_ok').notNull(),
    /** JSON {serviceId: share of samples in which it was available, 0-1}. */
    services: text('services').notNull(),
  },
  (t) => [primaryKey({ columns: [t.terminalId, t.hour] }), index('rollups_hour').on(t.hour)],
);
