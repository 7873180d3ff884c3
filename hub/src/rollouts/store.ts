/**
 * What the rollout service needs from the database, engine-neutral. `store.sqlite.ts` implements it on the hub's
 * SQLite file; a PostgreSQL one implements the same. A saved record is durable when `save` resolves: the service
 * saves each change before carrying out its actions.
 */
import type { RolloutRecord } from './service.ts';

export interface RolloutStore {
  /** Insert or replace the rollout `record.spec.id`. */
  save(record: RolloutRecord): Promise<void>;
  load(id: string): Promise<RolloutRecord | undefined>;
  /** Every rollout, oldest first. */
  list(): Promise<RolloutRecord[]>;
}
