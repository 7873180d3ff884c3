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
  /**
   * Runs `fn` (which loads, changes and saves rollout `id`) while no other hub of the installation runs it for the
   * same rollout: PostgreSQL takes a transaction advisory lock on the rollout's id until `fn` settled (issue 19: a
   * status applied on one hub and the leader's tick on another would otherwise overwrite each other). SQLite has one
   * hub, whose service already serialises operations per rollout: `fn` runs as it is.
   */
  exclusive<T>(id: string, fn: () => Promise<T>): Promise<T>;
}

export function createRolloutStore(engine: Engine): RolloutStore {
  return engine.kind === 'sqlite' ? new SqliteRolloutStore(engine.db) : new PostgresRolloutStore(engine.pg);
}
