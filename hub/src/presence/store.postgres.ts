/** Presence SQL on PostgreSQL (the interface: store.ts). */
import type { Sql } from 'postgres';
import { pgSql, type Tx } from '../db/engine.ts';
import type { BulkOffline, HubSelection, PresenceStore, TransitionRow } from './store.ts';

export class PostgresPresenceStore implements PresenceStore {
  constructor(private readonly sql: Sql) {}

  async online(tx?: Tx): Promise<string[]> {
    const rows = await pgSql(this.sql, tx)<{ id: string }[]>`select terminal_id as id from terminal_state where presence in ('online', 'stale')`;
    return rows.map((r) => r.id);
  }

  async staleCandidates(now: number, tx?: Tx): Promise<string[]> {
    const rows = await pgSql(this.sql, tx)<{ id: string }[]>`
      select terminal_id as id from terminal_state where presence = 'online'
        and coalesce(last_seen_at, presence_since, 0) < ${now} - 3000 * coalesce(interval_s, 60)`;
    return rows.map((r) => r.id);
  }

  async bulkOffline(terminalIds: readonly string[], reason: string, at: number, since: number, flapTransitions: number, tx?: Tx): Promise<BulkOffline[]> {
    if (terminalIds.length === 0) return [];
    const sql = pgSql(this.sql, tx);
    const ids = [...terminalIds];
    const rows = await sql<{ terminalId: string; flapping: number }[]>`
      select terminal_id as "terminalId", flapping from terminal_state
      where terminal_id = any(${ids}::text[]) and presence in ('online', 'stale') for update`;
    return this.#offline(sql, rows, reason, at, since, flapTransitions);
  }

  async hubOffline(sel: HubSelection, reason: string, at: number, since: number, flapTransitions: number, tx?: Tx): Promise<BulkOffline[]> {
    const sql = pgSql(this.sql, tx);
    const only = sel.terminals ? [...sel.terminals] : null;
    // `for update` re-checks the condition on each row's newest version: a terminal that another hub's connection
    // took meanwhile no longer names these hubs and is skipped
    const rows = await sql<{ terminalId: string; flapping: number }[]>`
      select terminal_id as "terminalId", flapping from terminal_state
      where presence in ('online', 'stale') and (conn_hub = any(${[...sel.hubs]}::text[]) or (${sel.unnamed === true} and conn_hub is null))
        and (${only}::text[] is null or terminal_id = any(${only}::text[]))
      for update`;
    return this.#offline(sql, rows, reason, at, since, flapTransitions);
  }

  async lockRow(terminalId: string, tx?: Tx): Promise<void> {
    await pgSql(this.sql, tx)`select 1 from terminal_state where terminal_id = ${terminalId} for update`;
  }

  /** The locked `rows` (online or stale) go offline: a transition each, the presence columns, the flapping flag. */
  async #offline(sql: ReturnType<typeof pgSql>, rows: { terminalId: string; flapping: number }[], reason: string, at: number, since: number, flapTransitions: number): Promise<BulkOffline[]> {
    if (rows.length === 0) return [];
    const hit = rows.map((r) => r.terminalId);
    await sql`
      insert into presence_transitions (terminal_id, at, from_state, to_state, reason, boot_id, conn_seq)
      select terminal_id, ${at}, presence, 'offline', ${reason}, boot_id, conn_seq from terminal_state where terminal_id = any(${hit}::text[])`;
    const after = await sql<{ terminalId: string; flapping: number }[]>`
      update terminal_state s set presence = 'offline', presence_reason = ${reason}, presence_since = ${at},
        flapping = ((select count(*) from presence_transitions p where p.terminal_id = s.terminal_id and p.at > ${since}) > ${flapTransitions})::int
      where terminal_id = any(${hit}::text[])
      returning terminal_id as "terminalId", flapping`;
    const now = new Map(after.map((r) => [r.terminalId, r.flapping === 1]));
    return rows.map((r) => ({ terminalId: r.terminalId, wasFlapping: r.flapping === 1, flapping: now.get(r.terminalId) ?? false }));
  }

  async insertTransition(t: TransitionRow, tx?: Tx): Promise<void> {
    await pgSql(this.sql, tx)`
      insert into presence_transitions (terminal_id, at, from_state, to_state, reason, boot_id, conn_seq, address)
      values (${t.terminalId}, ${t.at}, ${t.fromState}, ${t.toState}, ${t.reason}, ${t.bootId}, ${t.connSeq}, ${t.address ?? null})`;
  }

  async history(terminalId: string, from: number, to: number, beforeId: number, limit: number, tx?: Tx): Promise<TransitionRow[]> {
    return pgSql(this.sql, tx)<TransitionRow[]>`
      select terminal_id as "terminalId", at, from_state as "fromState", to_state as "toState", reason, boot_id as "bootId",
        conn_seq as "connSeq" from presence_transitions
      where terminal_id = ${terminalId} and at >= ${from} and at < ${to} and id < ${beforeId}
      order by id desc limit ${limit}`;
  }
}
