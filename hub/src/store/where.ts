import type { EngineKind } from '../db/engine.ts';

/**
 * "`column` lies under `node`" with `isUnderNode` semantics (the node itself or `node-…`, case-sensitive like the
 * permission checks), as a byte-order range that an index on the column serves: every string starting with `X-` lies
 * in [`X-`, `X.`), since `.` follows `-`. SQLite compares text bytewise (BINARY); PostgreSQL by the database's
 * collation, so there the comparisons say COLLATE "C". `next` is the number of the first `$n` placeholder on
 * PostgreSQL. (A LIKE 'X-%' would ignore the case of ASCII letters on SQLite: a `gz-…` node under `GZ`.)
 */
export function underNodeWhere(column: string, node: string, engine: EngineKind = 'sqlite', next = 1): { sql: string; args: string[] } {
  if (engine === 'sqlite') return { sql: `(${column} >= ? AND ${column} < ? AND (${column} = ? OR ${column} >= ?))`, args: [node, `${node}.`, node, `${node}-`] };
  const c = `${column} COLLATE "C"`;
  return { sql: `(${c} >= $${next} AND ${c} < $${next + 1} AND (${column} = $${next} OR ${c} >= $${next + 2}))`, args: [node, `${node}.`, `${node}-`] };
}

/**
 * The WHERE clause shared by the scoped list queries: "node column under `scope`" (null: every node) AND an
 * optional single-argument condition such as a keyset cursor or an "active at" bound (written with one `?`, which
 * becomes `$n` on PostgreSQL). Empty when neither applies, so callers can splice `sql` straight into their SELECT.
 */
export function scopedWhere(
  scopeColumn: string,
  scope: string | null,
  extra?: { sql: string; arg: unknown },
  engine: EngineKind = 'sqlite',
): { sql: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (scope !== null) {
    const sc = underNodeWhere(scopeColumn, scope, engine, 1);
    where.push(sc.sql);
    args.push(...sc.args);
  }
  if (extra !== undefined) {
    where.push(engine === 'sqlite' ? extra.sql : extra.sql.replace('?', `$${args.length + 1}`));
    args.push(extra.arg);
  }
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
}
