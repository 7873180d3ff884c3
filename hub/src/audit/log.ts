/**
 * The audit log: who did what to which object, before and after, when and from where.
 *
 * Invariants:
 * - Append-only: rows are only inserted (triggers refuse UPDATE and DELETE, see drizzle/0003_audit_append_only.sql).
 * - Row n carries `prevHash` = row n-1's `hash` (GENESIS for the first) and `hash` = sha256 over prevHash and every
 *   column of row n including its id, so an edited row no longer matches its own hash, and a removed row breaks
 *   the next row's link. `verify()` walks the chain and names the first row that fails.
 * - The id is chosen inside the same IMMEDIATE transaction that reads the previous hash, so two hub processes on one
 *   database cannot fork the chain.
 * - Secrets and passwords never go into before/after (callers pass descriptions, e.g. `{ rotated: true }`).
 */
import crypto from 'node:crypto';
import type { Db } from '../store/db.ts';
import { scopeClause } from '../auth/scope.ts';

export const GENESIS = '0'.repeat(64);

export interface AuditEntry {
  actor: string;
  actorKind: string;
  userId: string | null;
  action: string;
  objectType: string;
  objectId: string | null;
  nodeId: string | null;
  before?: unknown;
  after?: unknown;
  ip: string | null;
  outcome?: 'ok' | 'denied' | 'failed';
  at?: number;
}

export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  actorKind: string;
  userId: string | null;
  action: string;
  objectType: string;
  objectId: string | null;
  nodeId: string | null;
  before: string | null;
  after: string | null;
  ip: string | null;
  outcome: string;
  prevHash: string;
  hash: string;
}

export interface AuditFilter {
  /** Only records whose node lies under this one; null: all (installation-wide records included). */
  scope: string | null;
  action?: string | undefined;
  objectType?: string | undefined;
  objectId?: string | undefined;
  actor?: string | undefined;
  /** Records with id below this (newest first). */
  before?: number | undefined;
  limit: number;
}

export type VerifyResult =
  | { ok: true; checked: number; head: string }
  | { ok: false; checked: number; brokenAt: number; reason: 'hash-mismatch' | 'chain-broken'; message: string };

const COLUMNS = `id, at, actor, actor_kind AS actorKind, user_id AS userId, action, object_type AS objectType, object_id AS objectId,
  node_id AS nodeId, before, after, ip, outcome, prev_hash AS prevHash, hash`;

export function rowHash(r: Omit<AuditRow, 'hash'>): string {
  const fields = [r.prevHash, r.id, r.at, r.actor, r.actorKind, r.userId, r.action, r.objectType, r.objectId, r.nodeId, r.before, r.after, r.ip, r.outcome];
  return crypto.createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

const toJson = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));

export class AuditLog {
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
    this.appendTx = db.transaction((e: AuditEntry): AuditRow => {
      const last = this.s.last.get() as { id: number; hash: string } | undefined;
      const base = {
        id: (last?.id ?? 0) + 1,
        at: e.at ?? Date.now(),
        actor: e.actor,
        actorKind: e.actorKind,
        userId: e.userId,
        action: e.action,
        objectType: e.objectType,
        objectId: e.objectId,
        nodeId: e.nodeId,
        before: toJson(e.before),
        after: toJson(e.after),
        ip: e.ip,
        outcome: e.outcome ?? 'ok',
        prevHash: last?.hash ?? GENESIS,
      };
      const row = { ...base, hash: rowHash(base) };
      this.s.insert.run(row);
      return row;
    });
  }

  /** Appends one record; inside a caller's transaction it commits (or rolls back) with the change it describes. */
  append(e: AuditEntry): AuditRow {
    return this.db.inTransaction ? this.appendTx(e) : this.appendTx.immediate(e);
  }

  list(f: AuditFilter): AuditRow[] {
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

  /** Walks the whole chain (streamed, constant memory) and names the first row that does not hold. */
  verify(): VerifyResult {
    let prev = GENESIS;
    let checked = 0;
    for (const r of this.s.all.iterate() as IterableIterator<AuditRow>) {
      if (r.prevHash !== prev) {
        return { ok: false, checked, brokenAt: r.id, reason: 'chain-broken', message: `record ${r.id} does not follow the record before it (one was removed or changed)` };
      }
      const { hash, ...rest } = r;
      if (rowHash(rest) !== hash) {
        return { ok: false, checked, brokenAt: r.id, reason: 'hash-mismatch', message: `record ${r.id} was changed after it was written` };
      }
      prev = hash;
      checked++;
    }
    return { ok: true, checked, head: prev };
  }
}
