/**
 * AuditStore on PostgreSQL (postgres.js). The chain head is serialised with a transaction-scoped advisory lock
 * taken before the head is read: a second appender (another request, another hub) waits until the first one's
 * transaction ends, then reads its row as the head (READ COMMITTED takes a new snapshot per statement).
 */
import type { Sql, TransactionSql } from 'postgres';
import { pgSql, type Tx } from '../db/engine.ts';
import type { PostgresDb } from '../db/postgres/open.ts';
import { escapeLike } from '../auth/scope.ts';
import { nextRow, type AuditEntry, type AuditFilter, type AuditRow, type AuditStore } from './store.ts';

/** The advisory lock of the chain head: 'kfal' in the two-int4 key space (apart from the migration lock's int8). */
const HEAD_LOCK = [0x6b66616c, 0] as const;
const PAGE = 1000;

type Q = Sql | TransactionSql;

function columns(sql: Q) {
  return sql`id, at, actor, actor_kind AS "actorKind", user_id AS "userId", action, object_type AS "objectType",
    object_id AS "objectId", node_id AS "nodeId", before, after, ip, outcome, prev_hash AS "prevHash", hash`;
}

export class PostgresAuditStore implements AuditStore {
  constructor(private readonly pg: PostgresDb) {}

  async append(e: AuditEntry, tx?: Tx): Promise<AuditRow> {
    const run = async (sql: Q): Promise<AuditRow> => {
      await sql`SELECT pg_advisory_xact_lock(${HEAD_LOCK[0]}, ${HEAD_LOCK[1]})`;
      const [last] = await sql<{ id: number; hash: string }[]>`SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`;
      const r = nextRow(e, last);
      await sql`INSERT INTO audit_log (id, at, actor, actor_kind, user_id, action, object_type, object_id, node_id, before, after, ip,
          outcome, prev_hash, hash)
        VALUES (${r.id}, ${r.at}, ${r.actor}, ${r.actorKind}, ${r.userId}, ${r.action}, ${r.objectType}, ${r.objectId}, ${r.nodeId},
          ${r.before}, ${r.after}, ${r.ip}, ${r.outcome}, ${r.prevHash}, ${r.hash})`;
      return r;
    };
    if (tx) return run(pgSql(this.pg.sql, tx));
    return (await this.pg.sql.begin((sql) => run(sql))) as AuditRow;
  }

  async list(f: AuditFilter): Promise<AuditRow[]> {
    const sql = this.pg.sql;
    const conds = [sql`true`];
    if (f.scope !== null) conds.push(sql`(node_id = ${f.scope} OR node_id LIKE ${`${escapeLike(f.scope)}-%`} ESCAPE '\\')`);
    if (f.action !== undefined) conds.push(sql`action = ${f.action}`);
    if (f.objectType !== undefined) conds.push(sql`object_type = ${f.objectType}`);
    if (f.objectId !== undefined) conds.push(sql`object_id = ${f.objectId}`);
    if (f.actor !== undefined) conds.push(sql`actor = ${f.actor}`);
    if (f.before !== undefined) conds.push(sql`id < ${f.before}`);
    const where = conds.reduce((a, c) => sql`${a} AND ${c}`);
    return sql<AuditRow[]>`SELECT ${columns(sql)} FROM audit_log WHERE ${where} ORDER BY id DESC LIMIT ${f.limit}`;
  }

  async *all(): AsyncIterable<AuditRow> {
    // Keyset pages, not a cursor: a cursor needs a transaction held open for the whole walk.
    let after = 0;
    for (;;) {
      const rows = await this.pg.sql<AuditRow[]>`SELECT ${columns(this.pg.sql)} FROM audit_log WHERE id > ${after} ORDER BY id LIMIT ${PAGE}`;
      for (const r of rows) yield r;
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.id;
    }
  }
}
