/** Presence SQL: transitions and the presence columns of terminal_state. */
import type { Db } from '../store/db.ts';

export interface TransitionRow {
  terminalId: string;
  at: number;
  fromState: string;
  toState: string;
  reason: string;
  bootId: string | null;
  connSeq: number | null;
}

export class PresenceStore {
  readonly s;

  constructor(db: Db) {
    this.s = {
      insert: db.prepare(
        'INSERT INTO presence_transitions (terminal_id, at, from_state, to_state, reason, boot_id, conn_seq) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      /** A transition a connection made (connected, takeover), with its remote address. */
      insertFrom: db.prepare(
        'INSERT INTO presence_transitions (terminal_id, at, from_state, to_state, reason, boot_id, conn_seq, address) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      setLastAddress: db.prepare('UPDATE terminal_state SET last_address = ? WHERE terminal_id = ?'),
      countSince: db.prepare('SELECT count(*) AS n FROM presence_transitions WHERE terminal_id = ? AND at > ?'),
      setPresence: db.prepare(
        'UPDATE terminal_state SET presence = ?, presence_reason = ?, presence_since = ?, flapping = ? WHERE terminal_id = ?',
      ),
      birth: db.prepare(
        `UPDATE terminal_state SET boot_id = ?, conn_seq = ?, interval_s = ?, agent_version = ?, app_version = coalesce(?, app_version),
           uptime = ?, last_exit = ?, clock_skew_ms = ?, last_seen_at = ? WHERE terminal_id = ?`,
      ),
      refineLastOffline: db.prepare(
        `UPDATE presence_transitions SET reason = ? WHERE id = (SELECT id FROM presence_transitions WHERE terminal_id = ?
           AND to_state = 'offline' ORDER BY at DESC, id DESC LIMIT 1) AND reason IN ('connection-lost', 'hub-restart')`,
      ),
      staleCandidates: db.prepare(
        `SELECT terminal_id AS terminalId FROM terminal_state WHERE presence = 'online'
           AND coalesce(last_seen_at, presence_since, 0) < ? - 3000 * coalesce(interval_s, 60)`,
      ),
      online: db.prepare("SELECT terminal_id AS terminalId FROM terminal_state WHERE presence IN ('online', 'stale')"),
      // Many terminals offline at once (the hub stopping or starting): the terminals are a JSON array of ids.
      bulkCandidates: db.prepare(
        `SELECT s.terminal_id AS terminalId, s.presence, s.flapping FROM terminal_state s
           WHERE s.terminal_id IN (SELECT value FROM json_each(?)) AND s.presence IN ('online', 'stale')`,
      ),
      bulkInsert: db.prepare(
        `INSERT INTO presence_transitions (terminal_id, at, from_state, to_state, reason, boot_id, conn_seq)
           SELECT terminal_id, ?, presence, 'offline', ?, boot_id, conn_seq FROM terminal_state
           WHERE terminal_id IN (SELECT value FROM json_each(?)) AND presence IN ('online', 'stale')`,
      ),
      bulkCounts: db.prepare(
        `SELECT terminal_id AS terminalId, count(*) AS n FROM presence_transitions
           WHERE terminal_id IN (SELECT value FROM json_each(?)) AND at > ? GROUP BY terminal_id`,
      ),
      bulkOffline: db.prepare(
        `UPDATE terminal_state SET presence = 'offline', presence_reason = ?, presence_since = ?,
           flapping = (SELECT count(*) FROM presence_transitions p WHERE p.terminal_id = terminal_state.terminal_id AND p.at > ?) > ?
           WHERE terminal_id IN (SELECT value FROM json_each(?)) AND presence IN ('online', 'stale')`,
      ),
      history: db.prepare(
        `SELECT terminal_id AS terminalId, at, from_state AS fromState, to_state AS toState, reason, boot_id AS bootId,
           conn_seq AS connSeq FROM presence_transitions WHERE terminal_id = ? AND at >= ? AND at < ? AND id < ?
           ORDER BY id DESC LIMIT ?`,
      ),
    };
  }
}
