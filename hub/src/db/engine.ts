/**
 * The database a hub runs on, as the stores see it: one SQLite file (better-sqlite3, synchronous underneath) or a
 * PostgreSQL pool (postgres.js). Each domain's store has one implementation per engine (`store.sqlite.ts`,
 * `store.postgres.ts`) behind one async interface (`store.ts`); the wiring picks by `engine.kind`. Nothing outside a
 * store names SQL or a driver.
 *
 * Writes that span domains (a terminal moved and its audit entry) run in one `transaction(engine, async (tx) => …)`
 * and pass `tx` to every store method they call; a store method without `tx` runs on its own.
 *
 * SQLite has one connection, so a transaction there is BEGIN IMMEDIATE … COMMIT on it, serialised by a lock that the
 * batch writer takes too (otherwise a writer batch would become a savepoint inside an open transaction and share its
 * rollback). Rule: inside a transaction await only store calls, never real I/O (network, scrypt, timers): on SQLite
 * they settle in microtasks, so nothing else's statements land inside the transaction.
 */
import { Mutex } from 'async-mutex';
import type { Sql, TransactionSql } from 'postgres';
import type { Db } from '../store/db.ts';
import type { PostgresDb } from './postgres/open.ts';

export type Engine = { kind: 'sqlite'; db: Db } | { kind: 'postgres'; pg: PostgresDb };

export type EngineKind = Engine['kind'];

/** A transaction in progress, handed to store methods. SQLite: the connection (in BEGIN); PostgreSQL: its `sql`. */
export type Tx = { kind: 'sqlite'; db: Db } | { kind: 'postgres'; sql: TransactionSql };

const sqliteLocks = new WeakMap<Db, Mutex>();

/** The one lock of SQLite write transactions on `db` (ingest/writer.ts takes it around each batch). */
export function sqliteWriteLock(db: Db): Mutex {
  let m = sqliteLocks.get(db);
  if (!m) {
    m = new Mutex();
    sqliteLocks.set(db, m);
  }
  return m;
}

export async function transaction<T>(engine: Engine, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (engine.kind === 'postgres') {
    // postgres.js types begin()'s result as UnwrapPromiseArray<T>; for a single awaited value that is T.
    return (await engine.pg.sql.begin((sql) => fn({ kind: 'postgres', sql }))) as T;
  }
  const db = engine.db;
  return sqliteWriteLock(db).runExclusive(async () => {
    db.exec('BEGIN IMMEDIATE');
    try {
      const out = await fn({ kind: 'sqlite', db });
      db.exec('COMMIT');
      return out;
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
  });
}

/** The `sql` a PostgreSQL store method runs on: the caller's transaction, else the pool. */
export function pgSql(pool: Sql, tx?: Tx): Sql | TransactionSql {
  if (!tx) return pool;
  if (tx.kind !== 'postgres') throw new Error('a SQLite transaction handed to a PostgreSQL store');
  return tx.sql;
}
