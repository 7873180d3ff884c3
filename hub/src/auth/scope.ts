/**
 * The one SQL scope filter: "this node column lies under node X" with `isUnderNode` semantics (X itself or
 * `X-...`). LIKE wildcards in X are escaped, so `%` or `_` in a caller's input never widens a scope (finding F11-2).
 */
export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function scopeClause(column: string, nodeId: string): { sql: string; args: string[] } {
  return { sql: `(${column} = ? OR ${column} LIKE ? ESCAPE '\\')`, args: [nodeId, `${escapeLike(nodeId)}-%`] };
}
