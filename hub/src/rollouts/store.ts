/**
 * What the rollout service needs from the database, engine-neutral. `store.sqlite.ts` implements it on the hub's
 * SQLite file, `store.postgres.ts` on PostgreSQL; `createRolloutStore(engine)` picks one. A saved record is durable
 * when `save` resolves: the service saves each change before carrying out its actions.
 */
import type { Engine } from '../db/engine.ts';
import type { RolloutRecord } from './service.ts';
import { PostgresRolloutStore } from './store.postgres.ts';
import { SqliteRolloutStore } from './store.sqlite.ts';

export interface RolloutStore {
  /** Insert or replace the rollout `record.spec.id`. */
  save(record: RolloutRecord): Promise<void>;
  load(id: string): Promise<RolloutRecord | undefined>;
  /** Every rollout, oldest first. */
  list(): Promise<RolloutRecord[]>;
}

export function createRolloutStore(engine: Engine): RolloutStore {
  return engine.kind === 'sqlite' ? new SqliteRolloutStore(engine.db) : new PostgresRolloutStore(engine.pg);
}
