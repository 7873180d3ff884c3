/**
 * RolloutStore on PostgreSQL (postgres.js): one row per rollout, spec and state as JSON text (schema.postgres.ts keeps
 * them `text`, as SQLite does), so a record comes back byte-for-byte as it was saved on either engine.
 */
import type { PostgresDb } from '../db/postgres/open.ts';
import type { RolloutRecord } from './service.ts';
import type { RolloutStore } from './store.ts';

interface Row {
  spec: string;
  state: string;
  created_by: string;
}

function toRecord(r: Row): RolloutRecord {
  return { v: 1, spec: JSON.parse(r.spec) as RolloutRecord['spec'], state: JSON.parse(r.state) as RolloutRecord['state'], createdBy: r.created_by };
}

/** First key of the per-rollout locks: 'kfro' as an int32 (cluster/leader.ts has 'kfld', the migration 'kfmg'). */
const ROLLOUT_LOCK = 0x6b66726f;

export class PostgresRolloutStore implements RolloutStore {
  constructor(private readonly pg: PostgresDb) {}

  async save(r: RolloutRecord): Promise<void> {
    // The spec is fixed at creation: a save after that rewrites the state and the columns derived from it, as on SQLite.
    await this.pg.sql`
      insert into rollouts (id, release_id, status, created_by, created_at, updated_at, spec, state)
      values (${r.spec.id}, ${r.spec.release.id}, ${r.state.status}, ${r.createdBy}, ${r.state.createdAt}, ${r.state.updatedAt},
              ${JSON.stringify(r.spec)}, ${JSON.stringify(r.state)})
      on conflict (id) do update set status = excluded.status, updated_at = excluded.updated_at, state = excluded.state`;
  }

  async load(id: string): Promise<RolloutRecord | undefined> {
    const [row] = await this.pg.sql<Row[]>`select spec, state, created_by from rollouts where id = ${id}`;
    return row ? toRecord(row) : undefined;
  }

  async list(): Promise<RolloutRecord[]> {
    // Ties in byte order, as SQLite sorts text, whatever the database's collation.
    const rows = await this.pg.sql<Row[]>`select spec, state, created_by from rollouts order by created_at, id collate "C"`;
    return rows.map(toRecord);
  }

  async exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    // Held by a transaction of its own (released at its end, whatever happens to this process); fn's statements run
    // on the pool: they only need the lock held, not this transaction.
    return (await this.pg.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${ROLLOUT_LOCK}, hashtext(${id}))`;
      return fn();
    })) as T;
  }
}
