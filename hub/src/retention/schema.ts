/** Retention's table: hourly rollups of raw telemetry (service.ts writes them, reports and charts read them). */
import { index, integer, primaryKey, real, sqliteTable, text } from 'drizzle-orm/sqlite-core';

export const rollups = sqliteTable(
  'rollups_hourly',
  {
    terminalId: text('terminal_id').notNull(),
    hour: integer('hour').notNull(),
    samples: integer('samples').notNull(),
    cpuMin: real('cpu_min'),
    cpuAvg: real('cpu_avg'),
    cpuMax: real('cpu_max'),
    memPctMin: real('mem_pct_min'),
    memPctAvg: real('mem_pct_avg'),
    memPctMax: real('mem_pct_max'),
    diskPctMin: real('disk_pct_min'),
    diskPctAvg: real('disk_pct_avg'),
    diskPctMax: real('disk_pct_max'),
    tempMin: real('temp_min'),
    tempAvg: real('temp_avg'),
    tempMax: real('temp_max'),
    /** JSON {peripheralId: share of samples with status ok, 0-1}. */
    peripheralOk: text('peripheral_ok').notNull(),
    /** JSON {serviceId: share of samples in which it was available, 0-1}. */
    services: text('services').notNull(),
  },
  (t) => [primaryKey({ columns: [t.terminalId, t.hour] }), index('rollups_hour').on(t.hour)],
);
