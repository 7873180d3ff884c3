/**
 * The fleet registry on the hub's SQLite file: prepared better-sqlite3 statements, synchronous underneath (each method
 * finishes within its call; a caller's `tx` is this same connection inside BEGIN, so it needs no passing on).
 */
import type { Engine, Tx } from '../db/engine.ts';
import type { Db } from '../store/db.ts';
import { FleetStoreBase, type CredentialRow } from './store.common.ts';
import type { NewNode, NewTerminal, NodeRow, PlacementRow, TerminalRow } from './store.ts';
import { nodeLevel, parentNodeId } from '@kiosk-fleet/protocol';

const NODE_COLUMNS = 'id, level, parent_id AS parentId, name_zh AS nameZh, name_en AS nameEn, kind, created_at AS createdAt';
const TERMINAL_COLUMNS =
  'id, type, serial, station_id AS stationId, state, created_at AS createdAt, decommissioned_at AS decommissionedAt';

function prepare(db: Db) {
  return {
    secretKey: db.prepare("SELECT value FROM meta WHERE key = 'secret_key'"),
    insertSecretKey: db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('secret_key', ?)"),
    node: db.prepare(`SELECT ${NODE_COLUMNS} FROM nodes WHERE id = ?`),
    nodes: db.prepare(`SELECT ${NODE_COLUMNS} FROM nodes ORDER BY id`),
    insertNode: db.prepare('INSERT INTO nodes (id, level, parent_id, name_zh, name_en, kind, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    terminal: db.prepare(`SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id = ?`),
    terminals: db.prepare(`SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id`),
    credentials: db.prepare('SELECT state, secret_hash AS secretHash FROM terminals WHERE id = ?'),
    insertTerminal: db.prepare(
      "INSERT INTO terminals (id, type, serial, station_id, state, secret_hash, created_at) VALUES (?, ?, ?, ?, 'active', ?, ?)",
    ),
    insertState: db.prepare('INSERT OR IGNORE INTO terminal_state (terminal_id) VALUES (?)'),
    setSecret: db.prepare('UPDATE terminals SET secret_hash = ? WHERE id = ?'),
    setStation: db.prepare('UPDATE terminals SET station_id = ? WHERE id = ?'),
    decommission: db.prepare("UPDATE terminals SET state = 'decommissioned', decommissioned_at = ? WHERE id = ?"),
    insertPlacement: db.prepare('INSERT INTO placements (terminal_id, from_station, to_station, by, at, reason) VALUES (?, ?, ?, ?, ?, ?)'),
    placements: db.prepare(
      'SELECT terminal_id AS terminalId, from_station AS fromStation, to_station AS toStation, by, at, reason FROM placements WHERE terminal_id = ? ORDER BY at, id',
    ),
    allCredentials: db.prepare('SELECT id, state, secret_hash FROM terminals'),
    lastTerminalId: db.prepare("SELECT id FROM terminals WHERE id LIKE ? || '-%' ORDER BY length(id) DESC, id DESC LIMIT 1"),
  };
}

export class SqliteFleetStore extends FleetStoreBase {
  readonly #db: Db;
  readonly #s: ReturnType<typeof prepare>;

  constructor(engine: Extract<Engine, { kind: 'sqlite' }>) {
    super(engine);
    this.#db = engine.db;
    this.#s = prepare(engine.db);
  }

  /** Several statements as one: in the caller's transaction (a savepoint there), else in one of their own. */
  #all(fn: () => void): void {
    this.#db.transaction(fn)();
  }

  protected async secretKey(candidate: string): Promise<string> {
    this.#s.insertSecretKey.run(candidate);
    return (this.#s.secretKey.get() as { value: string }).value;
  }

  protected async eachCredential(put: (id: string, state: string, secretHash: string) => void): Promise<void> {
    for (const [id, state, hash] of this.#s.allCredentials.raw().iterate() as IterableIterator<[string, string, string]>) put(id, state, hash);
  }

  protected async credentials(id: string): Promise<CredentialRow | undefined> {
    return this.#s.credentials.get(id) as CredentialRow | undefined;
  }

  // Inside a transaction the row may yet be rolled back: cache only what is committed.
  protected mayCache(): boolean {
    return !this.#db.inTransaction;
  }

  protected async selectNode(id: string, _tx?: Tx): Promise<NodeRow | undefined> {
    return this.#s.node.get(id) as NodeRow | undefined;
  }

  protected async selectNodes(_tx?: Tx): Promise<NodeRow[]> {
    return this.#s.nodes.all() as NodeRow[];
  }

  protected async insertNodeRows(nodes: readonly NewNode[], now: number, _tx?: Tx): Promise<void> {
    this.#all(() => {
      for (const n of nodes) this.#s.insertNode.run(n.id, nodeLevel(n.id), parentNodeId(n.id), n.name.zh, n.name.en, n.kind ?? null, now);
    });
  }

  protected async selectTerminal(id: string, _tx?: Tx): Promise<TerminalRow | undefined> {
    return this.#s.terminal.get(id) as TerminalRow | undefined;
  }

  protected async selectTerminals(ids: readonly string[], _tx?: Tx): Promise<TerminalRow[]> {
    return this.#s.terminals.all(JSON.stringify(ids)) as TerminalRow[];
  }

  protected async insertTerminalRows(rows: readonly { t: NewTerminal; secretHash: string }[], by: string, now: number, _tx?: Tx): Promise<void> {
    this.#all(() => {
      for (const { t, secretHash } of rows) {
        this.#s.insertTerminal.run(t.id, t.type, t.serial, t.station, secretHash, now);
        this.#s.insertState.run(t.id);
        this.#s.insertPlacement.run(t.id, null, t.station, by, now, 'registered');
      }
    });
  }

  protected async updateSecret(id: string, secretHash: string, _tx?: Tx): Promise<void> {
    this.#s.setSecret.run(secretHash, id);
  }

  protected async updateStation(id: string, from: string, to: string, by: string, now: number, reason: string | null, _tx?: Tx): Promise<void> {
    this.#all(() => {
      this.#s.setStation.run(to, id);
      this.#s.insertPlacement.run(id, from, to, by, now, reason);
    });
  }

  protected async markDecommissioned(id: string, from: string, by: string, now: number, reason: string, _tx?: Tx): Promise<void> {
    this.#all(() => {
      this.#s.decommission.run(now, id);
      this.#s.insertPlacement.run(id, from, null, by, now, reason);
    });
  }

  protected async selectPlacements(id: string, _tx?: Tx): Promise<PlacementRow[]> {
    return this.#s.placements.all(id) as PlacementRow[];
  }

  protected async selectLastTerminalId(station: string, _tx?: Tx): Promise<string | undefined> {
    return (this.#s.lastTerminalId.get(station) as { id: string } | undefined)?.id;
  }
}
