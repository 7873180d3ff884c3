/**
 * The fleet registry on PostgreSQL (postgres.js tagged templates, on the caller's transaction when given).
 *
 * Answers are those of the SQLite store, byte for byte: ids sort in byte order (`COLLATE "C"`, as SQLite's BINARY;
 * a database made with a language locale would otherwise sort `GZ-TH-001` after `GZ-T-001` differently), and the
 * next-id lookup matches ids case-insensitively like SQLite's LIKE. An import writes its terminals with one statement
 * per table (`unnest` of column arrays), not one round trip per row.
 */
import { nodeLevel, parentNodeId } from '@kiosk-fleet/protocol';
import { pgSql, type Engine, type Tx } from '../db/engine.ts';
import type { PostgresDb } from '../db/postgres/open.ts';
import { FleetStoreBase, type CredentialRow } from './store.common.ts';
import type { NewNode, NewTerminal, NodeRow, PlacementRow, TerminalRow } from './store.ts';

export class PostgresFleetStore extends FleetStoreBase {
  readonly #pg: PostgresDb;

  constructor(engine: Extract<Engine, { kind: 'postgres' }>) {
    super(engine);
    this.#pg = engine.pg;
  }

  #sql(tx?: Tx) {
    return pgSql(this.#pg.sql, tx);
  }

  /** Several statements as one: in the caller's transaction, else in one of their own. */
  #all(tx: Tx | undefined, fn: (tx: Tx) => Promise<void>): Promise<void> {
    return this.atomic(tx, fn);
  }

  protected async secretKey(candidate: string): Promise<string> {
    const sql = this.#pg.sql;
    // Several hubs may start at once on one database: the first insert wins, every hub reads the same key.
    await sql`insert into meta (key, value) values ('secret_key', ${candidate}) on conflict (key) do nothing`;
    const [row] = await sql<{ value: string }[]>`select value from meta where key = 'secret_key'`;
    return row!.value;
  }

  protected async eachCredential(put: (id: string, state: string, secretHash: string) => void): Promise<void> {
    // A cursor keeps a province's fleet (10^5 rows) from arriving as one array.
    await this.#pg.sql`select id, state, secret_hash from terminals`
      .values()
      .cursor(5000, (rows) => {
        for (const [id, state, hash] of rows as unknown as [string, string, string][]) put(id, state, hash);
      });
  }

  protected async credentials(id: string): Promise<CredentialRow | undefined> {
    // FOR SHARE waits for a transaction that has written the row (rotate, decommission) to end, then reads what it
    // committed: a miss never caches the secret a commit is about to replace (store.common.ts, #generation).
    const [row] = await this.#pg.sql<CredentialRow[]>`
      select state, secret_hash as "secretHash" from terminals where id = ${id} for share`;
    return row;
  }

  // Reads go through the pool: only committed rows.
  protected mayCache(): boolean {
    return true;
  }

  protected async selectNode(id: string, tx?: Tx): Promise<NodeRow | undefined> {
    const [row] = await this.#sql(tx)<NodeRow[]>`
      select id, level, parent_id as "parentId", name_zh as "nameZh", name_en as "nameEn", kind, created_at as "createdAt"
      from nodes where id = ${id}`;
    return row;
  }

  protected async selectNodes(tx?: Tx): Promise<NodeRow[]> {
    return [
      ...(await this.#sql(tx)<NodeRow[]>`
      select id, level, parent_id as "parentId", name_zh as "nameZh", name_en as "nameEn", kind, created_at as "createdAt"
      from nodes order by id collate "C"`),
    ];
  }

  protected async insertNodeRows(nodes: readonly NewNode[], now: number, tx?: Tx): Promise<void> {
    const sql = this.#sql(tx);
    await sql`
      insert into nodes (id, level, parent_id, name_zh, name_en, kind, created_at)
      select n.id, n.level, n.parent_id, n.name_zh, n.name_en, n.kind, ${now}::bigint
      from unnest(${sql.array(nodes.map((n) => n.id))}::text[], ${sql.array(nodes.map((n) => nodeLevel(n.id) ?? ''))}::text[],
                  ${sql.array(nodes.map((n) => parentNodeId(n.id)))}::text[], ${sql.array(nodes.map((n) => n.name.zh))}::text[],
                  ${sql.array(nodes.map((n) => n.name.en))}::text[], ${sql.array(nodes.map((n) => n.kind ?? null))}::text[])
           with ordinality as n(id, level, parent_id, name_zh, name_en, kind, ord)
      order by n.ord`;
  }

  protected async selectTerminal(id: string, tx?: Tx): Promise<TerminalRow | undefined> {
    const [row] = await this.#sql(tx)<TerminalRow[]>`
      select id, type, serial, station_id as "stationId", state, created_at as "createdAt", decommissioned_at as "decommissionedAt"
      from terminals where id = ${id}`;
    return row;
  }

  protected async selectTerminals(ids: readonly string[], tx?: Tx): Promise<TerminalRow[]> {
    const sql = this.#sql(tx);
    return [
      ...(await sql<TerminalRow[]>`
      select id, type, serial, station_id as "stationId", state, created_at as "createdAt", decommissioned_at as "decommissionedAt"
      from terminals where id = any(${sql.array([...ids])}::text[]) order by id collate "C"`),
    ];
  }

  protected async insertTerminalRows(rows: readonly { t: NewTerminal; secretHash: string }[], by: string, now: number, tx?: Tx): Promise<void> {
    await this.#all(tx, async (tx) => {
      const sql = this.#sql(tx);
      const ids = sql.array(rows.map((r) => r.t.id));
      const stations = sql.array(rows.map((r) => r.t.station));
      await sql`
        insert into terminals (id, type, serial, station_id, state, secret_hash, created_at)
        select t.id, t.type, t.serial, t.station_id, 'active', t.secret_hash, ${now}::bigint
        from unnest(${ids}::text[], ${sql.array(rows.map((r) => r.t.type))}::text[], ${sql.array(rows.map((r) => r.t.serial))}::text[],
                    ${stations}::text[], ${sql.array(rows.map((r) => r.secretHash))}::text[]) as t(id, type, serial, station_id, secret_hash)`;
      await sql`insert into terminal_state (terminal_id) select unnest(${ids}::text[]) on conflict do nothing`;
      // In the order given, so that placement ids (the tie-break of equal times) follow it as on SQLite.
      await sql`
        insert into placements (terminal_id, from_station, to_station, "by", "at", reason)
        select p.id, null, p.station, ${by}, ${now}::bigint, 'registered'
        from unnest(${ids}::text[], ${stations}::text[]) with ordinality as p(id, station, ord)
        order by p.ord`;
    });
  }

  protected async updateSecret(id: string, secretHash: string, tx?: Tx): Promise<void> {
    await this.#sql(tx)`update terminals set secret_hash = ${secretHash} where id = ${id}`;
  }

  protected async updateStation(id: string, from: string, to: string, by: string, now: number, reason: string | null, tx?: Tx): Promise<void> {
    await this.#all(tx, async (tx) => {
      const sql = this.#sql(tx);
      await sql`update terminals set station_id = ${to} where id = ${id}`;
      await sql`insert into placements (terminal_id, from_station, to_station, "by", "at", reason) values (${id}, ${from}, ${to}, ${by}, ${now}, ${reason})`;
    });
  }

  protected async markDecommissioned(id: string, from: string, by: string, now: number, reason: string, tx?: Tx): Promise<void> {
    await this.#all(tx, async (tx) => {
      const sql = this.#sql(tx);
      await sql`update terminals set state = 'decommissioned', decommissioned_at = ${now} where id = ${id}`;
      await sql`insert into placements (terminal_id, from_station, to_station, "by", "at", reason) values (${id}, ${from}, null, ${by}, ${now}, ${reason})`;
    });
  }

  protected async selectPlacements(id: string, tx?: Tx): Promise<PlacementRow[]> {
    return [
      ...(await this.#sql(tx)<PlacementRow[]>`
      select terminal_id as "terminalId", from_station as "fromStation", to_station as "toStation", "by", "at", reason
      from placements where terminal_id = ${id} order by "at", id`),
    ];
  }

  protected async selectLastTerminalId(station: string, tx?: Tx): Promise<string | undefined> {
    // ILIKE: SQLite's LIKE ignores ASCII case, and terminal ids are ASCII.
    const [row] = await this.#sql(tx)<{ id: string }[]>`
      select id from terminals where id ilike ${station} || '-%' order by length(id) desc, id collate "C" desc limit 1`;
    return row?.id;
  }
}
