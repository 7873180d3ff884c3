/**
 * What the audit log needs from the database, engine-neutral; `store.sqlite.ts` and `store.postgres.ts` implement
 * it, `createAuditStore` picks by engine. The chain's rules (log.ts) hold on both:
 * - `append` reads the chain head, numbers and hashes the new row and inserts it in ONE transaction (the caller's
 *   when given: the change and its record commit or roll back together), with the head serialised across
 *   connections (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock taken before the head is
 *   read), so concurrent appends from several hubs stay one chain. Append last in a transaction: the lock is held
 *   until it ends.
 * - Ids and every hashed column read back identically on both engines (numbers, text), so a chain copied by
 *   migrate-store verifies on PostgreSQL.
 */
import crypto from 'node:crypto';
import type { Engine, Tx } from '../db/engine.ts';
import { SqliteAuditStore } from './store.sqlite.ts';
import { PostgresAuditStore } from './store.postgres.ts';

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

export interface AuditStore {
  /** Appends one record after the chain head (see above). */
  append(e: AuditEntry, tx?: Tx): Promise<AuditRow>;
  /** Newest first. */
  list(f: AuditFilter): Promise<AuditRow[]>;
  /** Every record, oldest first, streamed (constant memory). */
  all(): AsyncIterable<AuditRow>;
}

export function rowHash(r: Omit<AuditRow, 'hash'>): string {
  const fields = [r.prevHash, r.id, r.at, r.actor, r.actorKind, r.userId, r.action, r.objectType, r.objectId, r.nodeId, r.before, r.after, r.ip, r.outcome];
  return crypto.createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

const toJson = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));

/** The row that follows `last` (undefined: the first), hashed. */
export function nextRow(e: AuditEntry, last: { id: number; hash: string } | undefined): AuditRow {
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
  return { ...base, hash: rowHash(base) };
}

export function createAuditStore(engine: Engine): AuditStore {
  return engine.kind === 'sqlite' ? new SqliteAuditStore(engine.db) : new PostgresAuditStore(engine.pg);
}
