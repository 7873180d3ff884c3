/** Presence SQL on SQLite (the interface: store.ts). */
import type { Db } from '../store/db.ts';
import type { BulkOffline, HubSelection, PresenceStore, TransitionRow } from './store.ts';

export class SqlitePresenceStore implements PresenceStore {
  readonly s;

  constructor(db: Db) {
    this.s = {
      insert: db.prepare(
        'INSERT INTO presence_transitions (terminal_id, at, from_state, to_state, reason, boot_id, conn_seq) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      insertFrom: db.prepare(
        'INSERT INTO presence_transitions (terminal_id, at, from_state, to_state, reason, boot_id, conn_seq, address) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      staleCandidates: db.prepare(
        `SELECT terminal_id AS terminalId FROM terminal_state WHERE presence = 'online'
           AND coalesce(last_seen_at, presence_since, 0) < ? - 3000 * coalesce(interval_s, 60)`,
      ).pluck(),
      online: db.prepare("SELECT terminal_id AS terminalId FROM terminal_state WHERE presence IN ('online', 'stale')").pluck(),
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
      // the rows `hubOffline` selects: the hubs and terminals are JSON arrays, `unnamed` 0/1
      hubCandidates: db.prepare(
        `SELECT terminal_id FROM terminal_state WHERE presence IN ('online', 'stale')
           AND (conn_hub IN (SELECT value FROM json_each(?)) OR (? = 1 AND conn_hub IS NULL))
           AND (? IS NULL OR terminal_id IN (SELECT value FROM json_each(?)))`,
      ).pluck(),
      history: db.prepare(
        `SELECT terminal_id AS terminalId, at, from_state AS fromState, to_state AS toState, reason, boot_id AS bootId,
           conn_seq AS connSeq FROM presence_transitions WHERE terminal_id = ? AND at >= ? AND at < ? AND id < ?
           ORDER BY id DESC LIMIT ?`,
      ),
    };
  }

  online(): Promise<string[]> {
    return Promise.resolve(this.s.online.all() as string[]);
  }

  staleCandidates(now: number): Promise<string[]> {
    return Promise.resolve(this.s.staleCandidates.all(now) as string[]);
  }

  /**
   * Four statements instead of three per terminal: a restart under 19,000 terminals wrote 19,000 transitions one by
   * one at the stop and again at the start (`pnpm bench reconnect`).
   */
  bulkOffline(terminalIds: readonly string[], reason: string, at: number, since: number, flapTransitions: number): Promise<BulkOffline[]> {
    if (terminalIds.length === 0) return Promise.resolve([]);
    const ids = JSON.stringify(terminalIds);
    const rows = this.s.bulkCandidates.all(ids) as { terminalId: string; presence: string; flapping: number }[];
    if (rows.length === 0) return Promise.resolve([]);
    this.s.bulkInsert.run(at, reason, ids);
    const counts = new Map((this.s.bulkCounts.all(ids, since) as { terminalId: string; n: number }[]).map((r) => [r.terminalId, r.n]));
    this.s.bulkOffline.run(reason, at, since, flapTransitions, ids);
    return Promise.resolve(rows.map((r) => ({ terminalId: r.terminalId, wasFlapping: r.flapping === 1, flapping: (counts.get(r.terminalId) ?? 0) > flapTransitions })));
  }

  hubOffline(sel: HubSelection, reason: string, at: number, since: number, flapTransitions: number): Promise<BulkOffline[]> {
    const only = sel.terminals ? JSON.stringify(sel.terminals) : null;
    const ids = this.s.hubCandidates.all(JSON.stringify(sel.hubs), sel.unnamed ? 1 : 0, only, only) as string[];
    return this.bulkOffline(ids, reason, at, since, flapTransitions);
  }

  lockRow(): Promise<void> {
    return Promise.resolve();
  }

  insertTransition(t: TransitionRow): Promise<void> {
    if (t.address == null) this.s.insert.run(t.terminalId, t.at, t.fromState, t.toState, t.reason, t.bootId, t.connSeq);
    else this.s.insertFrom.run(t.terminalId, t.at, t.fromState, t.toState, t.reason, t.bootId, t.connSeq, t.address);
    return Promise.resolve();
  }

  history(terminalId: string, from: number, to: number, beforeId: number, limit: number): Promise<TransitionRow[]> {
    return Promise.resolve(this.s.history.all(terminalId, from, to, beforeId, limit) as TransitionRow[]);
  }
}
