/**
 * CommandStore on PostgreSQL (postgres.js tagged templates): the same statements as store.sqlite.ts in PostgreSQL's
 * dialect. Results arrive in batches from the ingest writer: one INSERT … ON CONFLICT DO NOTHING RETURNING for the
 * batch, one UPDATE … FROM unnest for the commands they complete.
 */
import type { Sql } from 'postgres';
import { pgSql, type Tx } from '../db/engine.ts';
import type { CommandResultRow, CommandRow, CommandStore, DesiredConfigRow, NewCommand, UpdateTargetRow } from './store.ts';

/** OIDs for postgres.js's sql.array: the element type of each unnest argument. */
const TEXT = 25;
const INT8 = 20;

export class PostgresCommandStore implements CommandStore {
  constructor(private readonly sql: Sql) {}

  /** The columns of a CommandRow (a fragment: postgres.js runs a query only when it is awaited). */
  #columns() {
    return this.sql`id, terminal_id as "terminalId", name, args, issued_at as "issuedAt", expires_at as "expiresAt", status,
      sent_at as "sentAt", completed_at as "completedAt", result, error, created_by as "createdBy"`;
  }

  async insert(c: NewCommand, tx?: Tx): Promise<CommandRow> {
    const sql = pgSql(this.sql, tx);
    const [row] = await sql<CommandRow[]>`
      insert into commands (id, terminal_id, name, args, issued_at, expires_at, status, created_by)
      values (${c.id}, ${c.terminalId}, ${c.name}, ${c.args}, ${c.issuedAt}, ${c.expiresAt}, 'pending', ${c.createdBy})
      returning ${this.#columns()}`;
    return { ...row! };
  }

  async get(id: string): Promise<CommandRow | undefined> {
    const [row] = await this.sql<CommandRow[]>`select ${this.#columns()} from commands where id = ${id}`;
    return row ? { ...row } : undefined;
  }

  async undelivered(terminalId: string, now: number): Promise<CommandRow[]> {
    const rows = await this.sql<CommandRow[]>`
      select ${this.#columns()} from commands
      where terminal_id = ${terminalId} and status in ('pending', 'sent') and expires_at > ${now}
      order by issued_at, id collate "C"`;
    return rows.map((r) => ({ ...r }));
  }

  async markSent(id: string, at: number, tx?: Tx): Promise<boolean> {
    const sql = pgSql(this.sql, tx);
    const r = await sql`update commands set status = 'sent', sent_at = ${at} where id = ${id} and status = 'pending'`;
    return r.count > 0;
  }

  async expire(now: number, tx?: Tx): Promise<{ id: string; terminalId: string }[]> {
    const sql = pgSql(this.sql, tx);
    const rows = await sql<{ id: string; terminalId: string }[]>`
      update commands set status = 'expired', completed_at = ${now}
      where status in ('pending', 'sent') and expires_at <= ${now}
      returning id, terminal_id as "terminalId"`;
    return rows.map((r) => ({ ...r }));
  }

  async listByTerminal(terminalId: string, before: { at: number; id: string } | null, limit: number): Promise<CommandRow[]> {
    // Ids compare byte-wise ("C"), as on SQLite: a cursor's order must not depend on the database's locale.
    const rows = before
      ? await this.sql<CommandRow[]>`
          select ${this.#columns()} from commands
          where terminal_id = ${terminalId} and (issued_at < ${before.at} or (issued_at = ${before.at} and id collate "C" < ${before.id}))
          order by issued_at desc, id collate "C" desc limit ${limit}`
      : await this.sql<CommandRow[]>`
          select ${this.#columns()} from commands where terminal_id = ${terminalId}
          order by issued_at desc, id collate "C" desc limit ${limit}`;
    return rows.map((r) => ({ ...r }));
  }

  async recordResults(rows: CommandResultRow[], tx?: Tx): Promise<boolean[]> {
    if (rows.length === 0) return [];
    const sql = pgSql(this.sql, tx);
    const col = <K extends keyof CommandResultRow>(k: K) => rows.map((r) => r[k]);
    const inserted = await sql<{ terminalId: string; epoch: string; seq: number }[]>`
      insert into command_results (terminal_id, epoch, seq, ts, received_at, skewed, command_id, status, result, error)
      select * from unnest(
        ${sql.array(col('terminalId'), TEXT)}::text[], ${sql.array(col('epoch'), TEXT)}::text[],
        ${sql.array(col('seq'), INT8)}::int8[], ${sql.array(col('ts'), INT8)}::int8[], ${sql.array(col('receivedAt'), INT8)}::int8[],
        ${sql.array(rows.map((r) => (r.skewed ? 1 : 0)), INT8)}::int8[], ${sql.array(col('commandId'), TEXT)}::text[],
        ${sql.array(col('status'), TEXT)}::text[], ${sql.array(col('result'), TEXT)}::text[], ${sql.array(col('error'), TEXT)}::text[])
      on conflict (terminal_id, epoch, seq) do nothing
      returning terminal_id as "terminalId", epoch, seq`;
    const key = (r: { terminalId: string; epoch: string; seq: number }) => `${r.terminalId}\u0000${r.epoch}\u0000${r.seq}`;
    const fresh = new Set(inserted.map(key));
    // One row of a batch per (terminal, epoch, seq) is the new one: a duplicate within the batch stores nothing more.
    const isNew = rows.map((r) => fresh.delete(key(r)));
    // The first new result of a command from its own terminal completes it (as one statement per result does on
    // SQLite: another terminal's claim first changes nothing and does not hide the owner's); an UPDATE … FROM with two
    // source rows for one target would pick either.
    const done = new Map<string, CommandResultRow>();
    rows.forEach((r, i) => {
      const k = `${r.commandId}\u0000${r.terminalId}`;
      if (isNew[i] && !done.has(k)) done.set(k, r);
    });
    if (done.size > 0) {
      const d = [...done.values()];
      await sql`
        update commands c set status = u.status, result = u.result, error = u.error, completed_at = u.at
        from unnest(
          ${sql.array(d.map((r) => r.commandId), TEXT)}::text[], ${sql.array(d.map((r) => r.terminalId), TEXT)}::text[],
          ${sql.array(d.map((r) => r.status), TEXT)}::text[], ${sql.array(d.map((r) => r.result), TEXT)}::text[],
          ${sql.array(d.map((r) => r.error), TEXT)}::text[], ${sql.array(d.map((r) => r.receivedAt), INT8)}::int8[])
          as u(id, terminal_id, status, result, error, at)
        where c.id = u.id and c.terminal_id = u.terminal_id and c.status in ('pending', 'sent')`;
    }
    return isNew;
  }

  async allDesired(): Promise<DesiredConfigRow[]> {
    const rows = await this.sql<DesiredConfigRow[]>`select terminal_id as "terminalId", version, config from desired_config`;
    return rows.map((r) => ({ ...r }));
  }

  async allTargets(): Promise<UpdateTargetRow[]> {
    const rows = await this.sql<UpdateTargetRow[]>`select terminal_id as "terminalId", payload from update_targets`;
    return rows.map((r) => ({ ...r }));
  }

  async targets(terminalIds: readonly string[]): Promise<UpdateTargetRow[]> {
    if (terminalIds.length === 0) return [];
    const rows = await this.sql<UpdateTargetRow[]>`
      select terminal_id as "terminalId", payload from update_targets where terminal_id = any(${terminalIds as string[]}::text[])`;
    return rows.map((r) => ({ ...r }));
  }

  async upsertTarget(terminalId: string, payload: string, at: number, tx?: Tx): Promise<void> {
    const sql = pgSql(this.sql, tx);
    await sql`
      insert into update_targets (terminal_id, payload, updated_at) values (${terminalId}, ${payload}, ${at})
      on conflict (terminal_id) do update set payload = excluded.payload, updated_at = excluded.updated_at`;
  }
}
