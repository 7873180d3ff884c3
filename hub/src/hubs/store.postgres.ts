/** The hubs table on PostgreSQL (the interface: store.ts). Leases are measured by the database's clock. */
import type { Sql } from 'postgres';
import { pgSql, type Tx } from '../db/engine.ts';
import { parseLeaderOf, type HubLeaseInput, type HubRow, type HubStore, type Renewal } from './store.ts';

interface Row {
  id: string;
  version: string;
  startedAt: number;
  leaseExpiresAt: number;
  connectedTerminals: number;
  leaderOf: string;
  alive: boolean;
}

export class PostgresHubStore implements HubStore {
  constructor(private readonly sql: Sql) {}

  async renew(h: HubLeaseInput, tx?: Tx): Promise<Renewal> {
    const sql = pgSql(this.sql, tx);
    // the CTE reads the row as it was before the upsert (one snapshot for the whole statement)
    const [r] = await sql<{ previous: number | null; now: number }[]>`
      with clock as (select (extract(epoch from clock_timestamp()) * 1000)::int8 as now),
        prev as (select lease_expires_at from hubs where id = ${h.id})
      insert into hubs (id, version, started_at, lease_expires_at, connected_terminals, leader_of)
      select ${h.id}, ${h.version}, ${h.startedAt}, clock.now + ${h.leaseMs}, ${h.connectedTerminals}, ${JSON.stringify(h.leaderOf)} from clock
      on conflict (id) do update set version = excluded.version, started_at = excluded.started_at,
        lease_expires_at = excluded.lease_expires_at, connected_terminals = excluded.connected_terminals, leader_of = excluded.leader_of
      returning (select lease_expires_at from prev) as previous, lease_expires_at - ${h.leaseMs}::int8 as now`;
    return { previous: r!.previous, now: r!.now };
  }

  async expire(id: string, tx?: Tx): Promise<void> {
    await pgSql(this.sql, tx)`
      update hubs set lease_expires_at = least(lease_expires_at, (extract(epoch from clock_timestamp()) * 1000)::int8),
        connected_terminals = 0, leader_of = '[]'
      where id = ${id}`;
  }

  async list(tx?: Tx): Promise<HubRow[]> {
    const rows = await pgSql(this.sql, tx)<Row[]>`
      select id, version, started_at as "startedAt", lease_expires_at as "leaseExpiresAt", connected_terminals as "connectedTerminals",
        leader_of as "leaderOf", lease_expires_at > (extract(epoch from clock_timestamp()) * 1000)::int8 as alive
      from hubs order by id collate "C"`;
    return rows.map((r) => ({ ...r, leaderOf: parseLeaderOf(r.leaderOf) }));
  }

  async dead(tx?: Tx): Promise<{ id: string; leaseExpiresAt: number }[]> {
    return pgSql(this.sql, tx)<{ id: string; leaseExpiresAt: number }[]>`
      select id, lease_expires_at as "leaseExpiresAt" from hubs
      where lease_expires_at <= (extract(epoch from clock_timestamp()) * 1000)::int8 order by id`;
  }

  async prune(ageMs: number, tx?: Tx): Promise<number> {
    const r = await pgSql(this.sql, tx)`
      delete from hubs where lease_expires_at < (extract(epoch from clock_timestamp()) * 1000)::int8 - ${ageMs}::int8`;
    return r.count;
  }
}
