/**
 * Presence's own queries: the set-wise ones of the start, the stop and the stale sweep, and the transitions history.
 * What a writer job writes for presence (a transition, the presence columns, a birth) is recorded in the batch
 * through the ingest store (ingest/store.ts), so it commits with the batch on either engine.
 */
import type { Engine, Tx } from '../db/engine.ts';
import type { TransitionRow } from '../ingest/store.ts';
import { PostgresPresenceStore } from './store.postgres.ts';
import { SqlitePresenceStore } from './store.sqlite.ts';

export type { TransitionRow } from '../ingest/store.ts';

/** A terminal the bulk offline took offline: its flapping flag before, and after counting this transition. */
export interface BulkOffline {
  terminalId: string;
  wasFlapping: boolean;
  flapping: boolean;
}

/** Which terminals `hubOffline` takes offline: those whose connection one of `hubs` holds. */
export interface HubSelection {
  hubs: readonly string[];
  /** Also the rows that name no hub (written before hubs had ids). */
  unnamed?: boolean;
  /** Only these. */
  terminals?: readonly string[];
}

export interface PresenceStore {
  /** Terminals online or stale. */
  online(tx?: Tx): Promise<string[]>;
  /** Online terminals whose last sign of life (as committed) is older than 3 of their intervals at `now`. */
  staleCandidates(now: number, tx?: Tx): Promise<string[]>;
  /**
   * Those of `terminalIds` that are online or stale go offline at `at` with `reason`: a transition each, the
   * presence columns set, flapping when more than `flapTransitions` transitions lie after `since`.
   */
  bulkOffline(terminalIds: readonly string[], reason: string, at: number, since: number, flapTransitions: number, tx?: Tx): Promise<BulkOffline[]>;
  /**
   * `bulkOffline` for the terminals whose row names one of `sel.hubs` as holding their connection (or none, with
   * `unnamed`), limited to `sel.terminals` when given. Decided under the rows' locks (PostgreSQL), so a terminal that
   * meanwhile connected to another hub is left alone.
   */
  hubOffline(sel: HubSelection, reason: string, at: number, since: number, flapTransitions: number, tx?: Tx): Promise<BulkOffline[]>;
  /**
   * PostgreSQL: locks the terminal's state row until the transaction ends, so that what the transaction reads of it
   * next (its connection's hub and generation) holds until it commits. SQLite: nothing (one writer).
   */
  lockRow(terminalId: string, tx?: Tx): Promise<void>;
  /** A transition written on its own (tests, seeds); the hub's go through the writer. */
  insertTransition(t: TransitionRow, tx?: Tx): Promise<void>;
  /** Newest first: transitions at [from, to) with an id below `beforeId`. */
  history(terminalId: string, from: number, to: number, beforeId: number, limit: number, tx?: Tx): Promise<TransitionRow[]>;
}

export function createPresenceStore(engine: Engine): PresenceStore {
  return engine.kind === 'sqlite' ? new SqlitePresenceStore(engine.db) : new PostgresPresenceStore(engine.pg.sql);
}
