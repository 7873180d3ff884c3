/** The hubs table on SQLite (the interface: store.ts). The hub's clock is the only one. */
import type { Db } from '../store/db.ts';
import { parseLeaderOf, type HubLeaseInput, type HubRow, type HubStore, type Renewal } from './store.ts';

interface Row {
  id: string;
  version: string;
  startedAt: number;
  leaseExpiresAt: number;
  connectedTerminals: number;
  leaderOf: string;
}

export class SqliteHubStore implements HubStore {
  readonly s;

  constructor(db: Db) {
    this.s = {
      previous: db.prepare('SELECT lease_expires_at FROM hubs WHERE id = ?').pluck(),
      renew: db.prepare(
        `INSERT INTO hubs (id, version, started_at, lease_expires_at, connected_terminals, leader_of) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, started_at = excluded.started_at,
           lease_expires_at = excluded.lease_expires_at, connected_terminals = excluded.connected_terminals, leader_of = excluded.leader_of`,
      ),
      expire: db.prepare('UPDATE hubs SET lease_expires_at = min(lease_expires_at, ?), connected_terminals = 0, leader_of = ? WHERE id = ?'),
      list: db.prepare(
        `SELECT id, version, started_at AS startedAt, lease_expires_at AS leaseExpiresAt, connected_terminals AS connectedTerminals,
           leader_of AS leaderOf FROM hubs ORDER BY id`,
      ),
      dead: db.prepare('SELECT id, lease_expires_at AS leaseExpiresAt FROM hubs WHERE lease_expires_at <= ? ORDER BY id'),
      prune: db.prepare('DELETE FROM hubs WHERE lease_expires_at < ?'),
    };
  }

  renew(h: HubLeaseInput): Promise<Renewal> {
    const now = Date.now();
    const previous = (this.s.previous.get(h.id) as number | undefined) ?? null;
    this.s.renew.run(h.id, h.version, h.startedAt, now + h.leaseMs, h.connectedTerminals, JSON.stringify(h.leaderOf));
    return Promise.resolve({ previous, now });
  }

  expire(id: string): Promise<void> {
    this.s.expire.run(Date.now(), '[]', id);
    return Promise.resolve();
  }

  list(): Promise<HubRow[]> {
    const now = Date.now();
    return Promise.resolve((this.s.list.all() as Row[]).map((r) => ({ ...r, leaderOf: parseLeaderOf(r.leaderOf), alive: r.leaseExpiresAt > now })));
  }

  dead(): Promise<{ id: string; leaseExpiresAt: number }[]> {
    return Promise.resolve(this.s.dead.all(Date.now()) as { id: string; leaseExpiresAt: number }[]);
  }

  prune(ageMs: number): Promise<number> {
    return Promise.resolve(this.s.prune.run(Date.now() - ageMs).changes);
  }
}
