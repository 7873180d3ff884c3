/**
 * What the hub's security needs from the database, engine-neutral: the flooding and credential-conflict columns of
 * terminal_state (read by the alert rules), and the hub key in `meta` (secrets.ts: terminal secrets' HMAC key, from
 * which the webhook secrets' sealing key is derived). `store.sqlite.ts` and `store.postgres.ts` implement it.
 */
import type { Engine, Tx } from '../db/engine.ts';
import { SqliteSecurityStore } from './store.sqlite.ts';
import { PostgresSecurityStore } from './store.postgres.ts';

export type SecurityFlag = 'flooding' | 'credentialConflict';

/** A terminal's flags as stored: JSON text, null when not flagged. */
export interface SecurityFlags {
  terminalId: string;
  flooding: string | null;
  credentialConflict: string | null;
}

export interface SecurityStore {
  /** What a previous run left flagged, for the trackers to carry on with at start. Ordered by terminal id. */
  active(tx?: Tx): Promise<SecurityFlags[]>;
  /** Sets (JSON text) or clears (null) one flag; a terminal without a state row yet gets one. */
  setFlag(terminalId: string, flag: SecurityFlag, json: string | null, tx?: Tx): Promise<void>;
  /**
   * The hub key (`meta.secret_key`): made from `candidate` by the first caller on this database, then the stored one
   * for everyone (several hubs starting at once agree on one key).
   */
  hubKey(candidate: string, tx?: Tx): Promise<string>;
}

export function createSecurityStore(engine: Engine): SecurityStore {
  return engine.kind === 'sqlite' ? new SqliteSecurityStore(engine.db) : new PostgresSecurityStore(engine.pg);
}
