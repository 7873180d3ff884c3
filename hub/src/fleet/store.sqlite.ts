/**
 * The registry: the city → district → station tree, terminals, their secrets and placement history.
 * All of its SQL lives here.
 */
import { isTerminalId, isTerminalType, nodeLevel, parentNodeId, type NodeLevel } from '@kiosk-fleet/protocol';
import { badRequest, conflict, HubError, notFound } from '../errors.ts';

/** A terminal id that is taken (under any node): the same words for all of them. */
export const terminalIdUnavailable = (id: string) => new HubError(409, 'id-unavailable', `terminal id ${id} is not available; choose another`, { id });
import { SecretHasher, newKey, newSecret } from '../secrets.ts';
import type { Db } from './db.ts';

export interface NodeRow {
  id: string;
  level: NodeLevel;
  parentId: string | null;
  nameZh: string;
  nameEn: string;
  kind: string | null;
  createdAt: number;
}

export interface TerminalRow {
  id: string;
  type: string;
  serial: string;
  stationId: string;
  state: 'active' | 'decommissioned';
  createdAt: number;
  decommissionedAt: number | null;
}

export interface NewNode {
  id: string;
  name: { zh: string; en: string };
  kind?: string | undefined;
}

export interface NewTerminal {
  id: string;
  type: string;
  serial: string;
  station: string;
}

export interface PlacementRow {
  terminalId: string;
  fromStation: string | null;
  toStation: string | null;
  by: string;
  at: number;
  reason: string | null;
}

const NODE_COLUMNS = 'id, level, parent_id AS parentId, name_zh AS nameZh, name_en AS nameEn, kind, created_at AS createdAt';
const TERMINAL_COLUMNS =
  'id, type, serial, station_id AS stationId, state, created_at AS createdAt, decommissioned_at AS decommissionedAt';

export class RegistryStore {
  private readonly hasher: SecretHasher;
  private readonly stmts;
  /**
   * Credentials by terminal id, loaded in bulk at start so that a fleet reconnecting after a hub restart
   * authenticates without one SQL lookup per connect: the raw secret digest of an active terminal, null for a
   * decommissioned one. Every write here (register, import, rotate, decommission) drops the terminal's entry, so a
   * rolled-back transaction cannot leave a stale one behind; a missing entry (outside a transaction) is read from the database (a terminal
   * imported by `kiosk-fleet import` while the hub runs, or one just written) and cached again.
   */
  private readonly credentialCache = new Map<string, Buffer | null>();

  constructor(private readonly db: Db) {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'secret_key'").get() as { value: string } | undefined;
    let key = row?.value;
    if (key === undefined) {
      key = newKey();
      db.prepare("INSERT INTO meta (key, value) VALUES ('secret_key', ?)").run(key);
    }
    this.hasher = new SecretHasher(key);
    this.stmts = {
      node: db.prepare(`SELECT ${NODE_COLUMNS} FROM nodes WHERE id = ?`),
      nodes: db.prepare(`SELECT ${NODE_COLUMNS} FROM nodes ORDER BY id`),
      insertNode: db.prepare(
        'INSERT INTO nodes (id, level, parent_id, name_zh, name_en, kind, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      terminal: db.prepare(`SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id = ?`),
      credentials: db.prepare('SELECT state, secret_hash AS secretHash FROM terminals WHERE id = ?'),
      insertTerminal: db.prepare(
        "INSERT INTO terminals (id, type, serial, station_id, state, secret_hash, created_at) VALUES (?, ?, ?, ?, 'active', ?, ?)",
      ),
      insertState: db.prepare('INSERT OR IGNORE INTO terminal_state (terminal_id) VALUES (?)'),
      setSecret: db.prepare('UPDATE terminals SET secret_hash = ? WHERE id = ?'),
      setStation: db.prepare('UPDATE terminals SET station_id = ? WHERE id = ?'),
      decommission: db.prepare("UPDATE terminals SET state = 'decommissioned', decommissioned_at = ? WHERE id = ?"),
      insertPlacement: db.prepare(
        'INSERT INTO placements (terminal_id, from_station, to_station, by, at, reason) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      placements: db.prepare(
        'SELECT terminal_id AS terminalId, from_station AS fromStation, to_station AS toStation, by, at, reason FROM placements WHERE terminal_id = ? ORDER BY at, id',
      ),
      allCredentials: db.prepare('SELECT id, state, secret_hash FROM terminals'),
      maxTerminalId: db.prepare("SELECT id FROM terminals WHERE id LIKE ? || '-%' ORDER BY length(id) DESC, id DESC LIMIT 1"),
    };
    for (const [id, state, hash] of this.stmts.allCredentials.raw().iterate() as IterableIterator<[string, string, string]>) {
      this.credentialCache.set(id, state === 'active' ? SecretHasher.decode(hash) : null);
    }
  }

  node(id: string): NodeRow | undefined {
    return this.stmts.node.get(id) as NodeRow | undefined;
  }

  nodes(): NodeRow[] {
    return this.stmts.nodes.all() as NodeRow[];
  }

  /** Creates a node whose parent exists (or a city). Throws a 400 naming the problem, 409 when it exists. */
  createNode(n: NewNode, now = Date.now()): NodeRow {
    const level = nodeLevel(n.id);
    if (level === null) throw badRequest('invalid-node', `node id ${JSON.stringify(n.id)} is not a city, district or station id`);
    const parentId = parentNodeId(n.id);
    if (parentId !== null && !this.node(parentId)) {
      throw badRequest('invalid-node', `parent ${parentId} of ${n.id} does not exist`, { parent: parentId });
    }
    if (this.node(n.id)) throw conflict(`node ${n.id} exists`, { id: n.id });
    this.stmts.insertNode.run(n.id, level, parentId, n.name.zh, n.name.en, n.kind ?? null, now);
    return this.node(n.id)!;
  }

  terminal(id: string): TerminalRow | undefined {
    return this.stmts.terminal.get(id) as TerminalRow | undefined;
  }

  requireTerminal(id: string): TerminalRow {
    const t = this.terminal(id);
    if (!t) throw notFound('terminal', id);
    return t;
  }

  /** Problems with a terminal about to be registered, or null. */
  terminalProblem(t: NewTerminal, pendingStations: ReadonlySet<string> = new Set()): string | null {
    if (!isTerminalId(t.id)) return `terminal id ${JSON.stringify(t.id)}: 1-64 of A-Z a-z 0-9 . _ -`;
    if (!isTerminalType(t.type)) return `unknown terminal type ${JSON.stringify(t.type)}`;
    if (t.serial.length < 1 || t.serial.length > 64) return 'serial: 1-64 characters';
    if (!pendingStations.has(t.station)) {
      const station = this.node(t.station);
      if (!station) return `station ${JSON.stringify(t.station)} does not exist`;
      if (station.level !== 'station') return `${t.station} is a ${station.level}, not a station`;
    }
    return null;
  }

  /** Inserts a terminal (caller checked it); returns its secret, which is not stored. */
  insertTerminal(t: NewTerminal, by: string, now = Date.now()): string {
    const secret = newSecret();
    this.credentialCache.delete(t.id);
    this.stmts.insertTerminal.run(t.id, t.type, t.serial, t.station, this.hasher.hash(secret), now);
    this.stmts.insertState.run(t.id);
    this.stmts.insertPlacement.run(t.id, null, t.station, by, now, 'registered');
    return secret;
  }

  /** Next free `{station}-{nn}` id for a registration without an id. */
  nextTerminalId(station: string): string {
    const row = this.stmts.maxTerminalId.get(station) as { id: string } | undefined;
    const n = row ? Number(/-(\d+)$/.exec(row.id)?.[1] ?? 0) + 1 : 1;
    let id = `${station}-${String(n).padStart(2, '0')}`;
    for (let i = n + 1; this.terminal(id); i++) id = `${station}-${String(i).padStart(2, '0')}`;
    return id;
  }

  register(t: NewTerminal, by: string): { id: string; secret: string } {
    return this.db.transaction(() => {
      const problem = this.terminalProblem(t);
      if (problem) throw badRequest('invalid-terminal', problem);
      // One answer for every taken id, wherever it stands: the id may lie outside the caller's node, and saying
      // where (or just "exists") would confirm it there (issue 20, item 7).
      if (this.terminal(t.id)) throw terminalIdUnavailable(t.id);
      return { id: t.id, secret: this.insertTerminal(t, by) };
    })();
  }

  /** True when the terminal exists, is active and the secret is its current one. */
  verify(id: string, secret: string): boolean {
    let stored = this.credentialCache.get(id);
    if (stored === undefined) {
      const row = this.stmts.credentials.get(id) as { state: string; secretHash: string } | undefined;
      if (row === undefined) return false; // unknown ids are not cached: anyone could fill the cache with them
      stored = row.state === 'active' ? SecretHasher.decode(row.secretHash) : null;
      // Inside a transaction the row may yet be rolled back: cache only what is committed.
      if (!this.db.inTransaction) this.credentialCache.set(id, stored);
    }
    return stored !== null && this.hasher.matches(secret, stored);
  }

  rotateSecret(id: string): string {
    const t = this.requireTerminal(id);
    if (t.state !== 'active') throw conflict(`terminal ${id} is decommissioned`, { id });
    const secret = newSecret();
    this.credentialCache.delete(id);
    this.stmts.setSecret.run(this.hasher.hash(secret), id);
    return secret;
  }

  move(id: string, station: string, by: string, reason: string | null, now = Date.now()): TerminalRow {
    return this.db.transaction(() => {
      const t = this.requireTerminal(id);
      if (t.state !== 'active') throw conflict(`terminal ${id} is decommissioned`, { id });
      const target = this.node(station);
      if (!target || target.level !== 'station') {
        throw badRequest('invalid-station', `${station} is not a station`, { station });
      }
      if (t.stationId !== station) {
        this.stmts.setStation.run(station, id);
        this.stmts.insertPlacement.run(id, t.stationId, station, by, now, reason);
      }
      return this.terminal(id)!;
    })();
  }

  decommission(id: string, by: string, reason: string | null, now = Date.now()): TerminalRow {
    return this.db.transaction(() => {
      const t = this.requireTerminal(id);
      if (t.state === 'decommissioned') return t;
      this.credentialCache.delete(id);
      this.stmts.decommission.run(now, id);
      this.stmts.insertPlacement.run(id, t.stationId, null, by, now, reason ?? 'decommissioned');
      return this.terminal(id)!;
    })();
  }

  placements(id: string): PlacementRow[] {
    return this.stmts.placements.all(id) as PlacementRow[];
  }
}
