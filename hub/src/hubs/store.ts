/**
 * The hubs table (schema.ts): each hub's lease, renewed by its registry (registry.ts), read by `GET /api/v1/hubs`
 * and by the reaper (reaper.ts). Times are the database's clock on PostgreSQL (shared by every hub, so a hub whose
 * host clock runs ahead cannot expire another's lease early) and the hub's clock on SQLite (one hub).
 */
import type { Engine, Tx } from '../db/engine.ts';
import { PostgresHubStore } from './store.postgres.ts';
import { SqliteHubStore } from './store.sqlite.ts';

export interface HubLeaseInput {
  id: string;
  version: string;
  startedAt: number;
  leaseMs: number;
  connectedTerminals: number;
  leaderOf: readonly string[];
}

export interface HubRow {
  id: string;
  version: string;
  startedAt: number;
  leaseExpiresAt: number;
  connectedTerminals: number;
  leaderOf: string[];
  /** The lease has not run out (by the database's clock). */
  alive: boolean;
}

export interface Renewal {
  /** The lease's end before this renewal; null when the hub had no row. */
  previous: number | null;
  /** The clock the lease was measured by (the database's on PostgreSQL). */
  now: number;
}

export interface HubStore {
  /** Upserts the hub's row with a lease of `leaseMs` from now. */
  renew(h: HubLeaseInput, tx?: Tx): Promise<Renewal>;
  /** A clean stop: the lease ends now (the row stays, listed as not alive). */
  expire(id: string, tx?: Tx): Promise<void>;
  /** Every hub, ordered by id. */
  list(tx?: Tx): Promise<HubRow[]>;
  /** Hubs whose lease has run out, with when it ran out. */
  dead(tx?: Tx): Promise<{ id: string; leaseExpiresAt: number }[]>;
  /** Forgets hubs whose lease ran out more than `ageMs` ago (a renamed or retired hub). */
  prune(ageMs: number, tx?: Tx): Promise<number>;
}

export function createHubStore(engine: Engine): HubStore {
  return engine.kind === 'sqlite' ? new SqliteHubStore(engine.db) : new PostgresHubStore(engine.pg.sql);
}

/** leader_of as stored (JSON text) → the list; anything else is an empty list. */
export function parseLeaderOf(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
