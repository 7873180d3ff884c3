/** RolloutStore on the hub's SQLite file (drizzle + better-sqlite3): one row per rollout, spec and state as JSON. */
import { asc, eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import type { Db } from '../store/db.ts';
import { rollouts } from './schema.ts';
import type { RolloutRecord } from './service.ts';
import type { RolloutStore } from './store.ts';

type Row = typeof rollouts.$inferSelect;

function toRecord(r: Row): RolloutRecord {
  return { v: 1, spec: JSON.parse(r.spec) as RolloutRecord['spec'], state: JSON.parse(r.state) as RolloutRecord['state'], createdBy: r.createdBy };
}

export class SqliteRolloutStore implements RolloutStore {
  readonly #orm;
  readonly #q;

  constructor(db: Db) {
    this.#orm = drizzle(db, { schema: { rollouts } });
    this.#q = {
      load: this.#orm.select().from(rollouts).where(eq(rollouts.id, sql.placeholder('id'))).prepare(),
    };
  }

  async save(r: RolloutRecord): Promise<void> {
    const row: Row = {
      id: r.spec.id,
      releaseId: r.spec.release.id,
      status: r.state.status,
      createdBy: r.createdBy,
      createdAt: r.state.createdAt,
      updatedAt: r.state.updatedAt,
      spec: JSON.stringify(r.spec),
      state: JSON.stringify(r.state),
    };
    this.#orm
      .insert(rollouts)
      .values(row)
      .onConflictDoUpdate({ target: rollouts.id, set: { status: row.status, updatedAt: row.updatedAt, state: row.state } })
      .run();
  }

  async load(id: string): Promise<RolloutRecord | undefined> {
    const row = this.#q.load.get({ id });
    return row ? toRecord(row) : undefined;
  }

  async list(): Promise<RolloutRecord[]> {
    return this.#orm.select().from(rollouts).orderBy(asc(rollouts.createdAt), asc(rollouts.id)).all().map(toRecord);
  }

  exclusive<T>(_id: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }
}
