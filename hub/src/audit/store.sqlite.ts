/**
 * AuditStore on the hub's SQLite file: better-sqlite3, synchronous underneath, so an `append` without `tx` that is
 * called inside another synchronous transaction on this connection joins it (as before the port), and one with
 * `tx` joins the caller's BEGIN IMMEDIATE.
 */
import type { Tx } from '../db/engine.ts';
import type { Db } from '../store/db.ts';
import { scopeClause } from '../auth/scope.ts';
import { nextRow, type AuditEntry, type AuditFilter, type AuditRow, type AuditStore } from './store.ts';

const COLUMNS = `id, at, actor, actor_kind AS actorKind, user_id AS userId, action, object_type AS objectType, object_id AS objectId,
  node_id AS nodeId, before, after, ip, outcome, prev_hash AS prevHash, hash`;

export class SqliteAuditStore implements AuditStore {
  private readonly s;
  private readonly appendTx;

  constructor(private readonly db: Db) {
    this.s = {
      last: db.prepare('SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1'),
      insert: db.prepare(
        `INSERT INTO audit_log (id, at, actor, actor_kind, user_id, action, object_type, object_id, node_id, before, after, ip, outcome, prev_hash, hash)
         VALUES (@id, @at, @actor, @actorKind, @userId, @action, @objectType, @objectId, @nodeId, @before, @after, @ip, @outcome, @prevHash, @hash)`,
      ),
      all: db.prepare(`SELECT ${COLUMNS} FROM audit_log ORDER BY id`),
    };
    // The id is chosen inside the IMMEDIATE transaction that reads the previous hash: two hub processes on one file
    // cannot fork the chain.
    this.appendTx = db.transaction((e: AuditEntry): AuditRow => {
      const row = nextRow(e, this.s.last.get() as { id: number; hash: string } | undefined);
      this.s.insert.run(row);
      return row;
    });
  }

  /**
   * Not `async` on purpose: a failure throws synchronously, so a caller still inside a synchronous better-sqlite3
   * transaction that does not await (a store not yet ported) sees the throw and rolls back its change with the
   * record, as before the port. An awaiting caller sees a rejection either way.
   */
  append(e: AuditEntry, _tx?: Tx): Promise<AuditRow> {
    return Promise.resolve(this.db.inTransaction ? this.appendTx(e) : this.appendTx.immediate(e));
  }

  async list(f: AuditFilter): Promise<AuditRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.scope !== null) {
      const sc = scopeClause('node_id', f.scope);
      where.push(sc.sql);
      args.push(...sc.args);
    }
    for (const [col, v] of [
      ['action', f.action],
      ['object_type', f.objectType],
      ['object_id', f.objectId],
      ['actor', f.actor],
    ] as const) {
      if (v !== undefined) {
        where.push(`${col} = ?`);
        args.push(v);
      }
    }
    if (f.before !== undefined) {
      where.push('id < ?');
      args.push(f.before);
    }
    return this.db
      .prepare(`SELECT ${COLUMNS} FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, f.limit) as AuditRow[];
  }

  async *all(): AsyncIterable<AuditRow> {
    // Read in pages by id rather than one open iterator: a statement iterating across awaits would keep the one
    // connection busy for every other statement of the hub.
    let after = 0;
    const page = this.db.prepare(`SELECT ${COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT 1000`);
    for (;;) {
      const rows = page.all(after) as AuditRow[];
      for (const r of rows) yield r;
      if (rows.length < 1000) return;
      after = rows[rows.length - 1]!.id;
    }
  }
}
