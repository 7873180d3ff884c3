import type { Engine } from '../db/engine.ts';
import type { ReportStore } from './store.ts';
import { SqliteReportStore } from './store.sqlite.ts';
import { PostgresReportStore } from './store.postgres.ts';

export function createReportStore(engine: Engine): ReportStore {
  return engine.kind === 'sqlite' ? new SqliteReportStore(engine.db) : new PostgresReportStore(engine.pg);
}
