import { scopeClause } from '../auth/scope.ts';

/**
 * The WHERE clause shared by the scoped list queries: "node column under `scope`" (null: every node) AND an
 * optional single-argument condition such as a keyset cursor or an "active at" bound. Empty when neither applies,
 * so callers can splice `sql` straight into their SELECT.
 */
export function scopedWhere(
  scopeColumn: string,
  scope: string | null,
  extra?: { sql: string; arg: unknown },
): { sql: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (scope !== null) {
    const sc = scopeClause(scopeColumn, scope);
    where.push(sc.sql);
    args.push(...sc.args);
  }
  if (extra !== undefined) {
    where.push(extra.sql);
    args.push(extra.arg);
  }
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
}
