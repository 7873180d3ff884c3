import type { Engine } from '../db/engine.ts';
import type { QueryStore } from './store.ts';
import { SqliteQueryStore } from './store.sqlite.ts';
import { PostgresQueryStore } from './store.postgres.ts';

export function createQueryStore(engine: Engine): QueryStore {
  return engine.kind === 'sqlite' ? new SqliteQueryStore(engine.db) : new PostgresQueryStore(engine.pg);
}
