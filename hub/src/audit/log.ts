/**
 * The audit log: who did what to which object, before and after, when and from where.
 *
 * Invariants:
 * - Append-only: rows are only inserted (triggers refuse UPDATE and DELETE on both engines: drizzle/0003_audit_append_only.sql,
 *   drizzle-postgres/0000_init.sql).
 * - Row n carries `prevHash` = row n-1's `hash` (GENESIS for the first) and `hash` = sha256 over prevHash and every
 *   column of row n including its id, so an edited row no longer matches its own hash, and a removed row breaks
 *   the next row's link. `verify()` walks the chain and names the first row that fails.
 * - The id is chosen in the same transaction that reads the previous hash, with the head serialised across
 *   connections (store.ts), so several hubs on one database cannot fork the chain.
 * - Secrets and passwords never go into before/after (callers pass descriptions, e.g. `{ rotated: true }`).
 */
import type { Engine, Tx } from '../db/engine.ts';
import { createAuditStore, GENESIS, rowHash, type AuditEntry, type AuditFilter, type AuditRow, type AuditStore } from './store.ts';

export { GENESIS, rowHash, type AuditEntry, type AuditFilter, type AuditRow, type AuditStore };

export type VerifyResult =
  | { ok: true; checked: number; head: string }
  | { ok: false; checked: number; brokenAt: number; reason: 'hash-mismatch' | 'chain-broken'; message: string };

export class AuditLog {
  constructor(private readonly store: AuditStore) {}

  /** Appends one record; with `tx` it commits (or rolls back) with the change it describes. */
  append(e: AuditEntry, tx?: Tx): Promise<AuditRow> {
    return this.store.append(e, tx);
  }

  list(f: AuditFilter): Promise<AuditRow[]> {
    return this.store.list(f);
  }

  /** Walks the whole chain (streamed, constant memory) and names the first row that does not hold. */
  async verify(): Promise<VerifyResult> {
    let prev = GENESIS;
    let checked = 0;
    for await (const r of this.store.all()) {
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

export function createAuditLog(engine: Engine): AuditLog {
  return new AuditLog(createAuditStore(engine));
}
