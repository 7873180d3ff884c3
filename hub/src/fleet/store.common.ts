/**
 * What both engines' fleet stores share: the rules (which node may be created, which terminal registered, moved,
 * decommissioned, and the words of each refusal) and the credential cache. Each engine's file supplies only the
 * statements (the `protected abstract` methods below).
 */
import { isTerminalId, isTerminalType, nodeLevel, parentNodeId } from '@kiosk-fleet/protocol';
import { transaction, type Engine, type Tx } from '../db/engine.ts';
import { badRequest, conflict, notFound } from '../errors.ts';
import { newSecret, SecretHasher } from '../secrets.ts';
import { terminalIdUnavailable, type FleetStore, type NewNode, type NewTerminal, type NodeRow, type PlacementRow, type TerminalRow } from './store.ts';

/** Problems with a terminal about to be registered at `station` (its node as read, if any), or null. */
export function terminalProblemIn(t: NewTerminal, station: NodeRow | undefined, pendingStations: ReadonlySet<string>): string | null {
  if (!isTerminalId(t.id)) return `terminal id ${JSON.stringify(t.id)}: 1-64 of A-Z a-z 0-9 . _ -`;
  if (!isTerminalType(t.type)) return `unknown terminal type ${JSON.stringify(t.type)}`;
  if (t.serial.length < 1 || t.serial.length > 64) return 'serial: 1-64 characters';
  if (!pendingStations.has(t.station)) {
    if (!station) return `station ${JSON.stringify(t.station)} does not exist`;
    if (station.level !== 'station') return `${t.station} is a ${station.level}, not a station`;
  }
  return null;
}

/** A terminal's stored credentials: `secretHash` is SecretHasher's stored form. */
export interface CredentialRow {
  state: string;
  secretHash: string;
}

export abstract class FleetStoreBase implements FleetStore {
  #hasher: SecretHasher | null = null;
  #loading: Promise<void> | null = null;
  /**
   * Credentials by terminal id, loaded in bulk at start so that a fleet reconnecting after a hub restart
   * authenticates without one database read per connect: the raw secret digest of an active terminal, null for a
   * decommissioned one. A missing entry is read from the database (a terminal imported by `kiosk-fleet import`
   * while the hub runs, or one just written) and cached again, unless a write may have raced the read (below).
   */
  readonly #credentials = new Map<string, Buffer | null>();
  /**
   * Bumped by every forgotten entry. Every write of a credential (register, import, rotate, decommission) forgets
   * the terminal's entry before its statement and again after it, so a rolled-back transaction cannot leave a stale
   * entry behind, and a miss whose read overlapped a write does not cache what it read (the generation moved). A
   * read that starts after the second forget waits for the write's commit on PostgreSQL (`FOR SHARE`, the row is
   * locked by then) and sees the write on SQLite (one connection; nothing is cached inside a transaction).
   */
  #generation = 0;

  constructor(protected readonly engine: Engine) {}

  // ------------------------------------------------------------------------------------ the engine's statements

  /** The hub key, made (once per database, whichever hub comes first) when missing. */
  protected abstract secretKey(candidate: string): Promise<string>;
  /** Every terminal's credentials, handed to `put` one by one. */
  protected abstract eachCredential(put: (id: string, state: string, secretHash: string) => void): Promise<void>;
  /** One terminal's committed credentials, waiting for a write in progress on the row. */
  protected abstract credentials(id: string): Promise<CredentialRow | undefined>;
  /** False while a miss's read may see uncommitted rows (SQLite inside a transaction). */
  protected abstract mayCache(): boolean;
  protected abstract selectNode(id: string, tx?: Tx): Promise<NodeRow | undefined>;
  protected abstract selectNodes(tx?: Tx): Promise<NodeRow[]>;
  protected abstract insertNodeRows(nodes: readonly NewNode[], now: number, tx?: Tx): Promise<void>;
  protected abstract selectTerminal(id: string, tx?: Tx): Promise<TerminalRow | undefined>;
  protected abstract selectTerminals(ids: readonly string[], tx?: Tx): Promise<TerminalRow[]>;
  /** Terminal rows (active), their state rows and 'registered' placements. */
  protected abstract insertTerminalRows(rows: readonly { t: NewTerminal; secretHash: string }[], by: string, now: number, tx?: Tx): Promise<void>;
  protected abstract updateSecret(id: string, secretHash: string, tx?: Tx): Promise<void>;
  /** The station and a placement row from `from`. */
  protected abstract updateStation(id: string, from: string, to: string, by: string, now: number, reason: string | null, tx?: Tx): Promise<void>;
  /** State, time and a placement row from `from` to nowhere. */
  protected abstract markDecommissioned(id: string, from: string, by: string, now: number, reason: string, tx?: Tx): Promise<void>;
  protected abstract selectPlacements(id: string, tx?: Tx): Promise<PlacementRow[]>;
  /** The terminal id under `station` that sorts last by (length, id), or undefined. */
  protected abstract selectLastTerminalId(station: string, tx?: Tx): Promise<string | undefined>;

  // ------------------------------------------------------------------------------------------------- the store

  load(): Promise<void> {
    this.#loading ??= (async () => {
      const key = await this.secretKey(newSecret());
      await this.eachCredential((id, state, hash) => this.#credentials.set(id, state === 'active' ? SecretHasher.decode(hash) : null));
      this.#hasher = new SecretHasher(key);
    })().catch((err: unknown) => {
      this.#loading = null;
      throw err;
    });
    return this.#loading;
  }

  async #hasherReady(): Promise<SecretHasher> {
    if (!this.#hasher) await this.load();
    return this.#hasher!;
  }

  #forget(id: string): void {
    this.#credentials.delete(id);
    this.#generation++;
  }

  forgetCredentials(ids?: readonly string[]): void {
    if (ids) for (const id of ids) this.#forget(id);
    else {
      this.#credentials.clear();
      this.#generation++;
    }
  }

  /** `fn` in the caller's transaction, else in one of its own. */
  protected atomic<T>(tx: Tx | undefined, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return tx ? fn(tx) : transaction(this.engine, fn);
  }

  node(id: string, tx?: Tx): Promise<NodeRow | undefined> {
    return this.selectNode(id, tx);
  }

  nodes(tx?: Tx): Promise<NodeRow[]> {
    return this.selectNodes(tx);
  }

  async createNode(n: NewNode, now = Date.now(), tx?: Tx): Promise<NodeRow> {
    const level = nodeLevel(n.id);
    if (level === null) throw badRequest('invalid-node', `node id ${JSON.stringify(n.id)} is not a city, district or station id`);
    const parentId = parentNodeId(n.id);
    if (parentId !== null && !(await this.selectNode(parentId, tx))) {
      throw badRequest('invalid-node', `parent ${parentId} of ${n.id} does not exist`, { parent: parentId });
    }
    if (await this.selectNode(n.id, tx)) throw conflict(`node ${n.id} exists`, { id: n.id });
    await this.insertNodeRows([n], now, tx);
    return (await this.selectNode(n.id, tx))!;
  }

  insertNodes(nodes: readonly NewNode[], now: number, tx?: Tx): Promise<void> {
    return nodes.length === 0 ? Promise.resolve() : this.insertNodeRows(nodes, now, tx);
  }

  terminal(id: string, tx?: Tx): Promise<TerminalRow | undefined> {
    return this.selectTerminal(id, tx);
  }

  terminals(ids: readonly string[], tx?: Tx): Promise<TerminalRow[]> {
    return ids.length === 0 ? Promise.resolve([]) : this.selectTerminals(ids, tx);
  }

  async requireTerminal(id: string, tx?: Tx): Promise<TerminalRow> {
    const t = await this.selectTerminal(id, tx);
    if (!t) throw notFound('terminal', id);
    return t;
  }

  async terminalProblem(t: NewTerminal, pendingStations: ReadonlySet<string> = new Set(), tx?: Tx): Promise<string | null> {
    const station = pendingStations.has(t.station) ? undefined : await this.selectNode(t.station, tx);
    return terminalProblemIn(t, station, pendingStations);
  }

  async insertTerminal(t: NewTerminal, by: string, now = Date.now(), tx?: Tx): Promise<string> {
    return (await this.insertTerminals([t], by, now, tx))[0]!;
  }

  async insertTerminals(ts: readonly NewTerminal[], by: string, now: number, tx?: Tx): Promise<string[]> {
    if (ts.length === 0) return [];
    const hasher = await this.#hasherReady();
    const secrets = ts.map(() => newSecret());
    for (const t of ts) this.#forget(t.id);
    await this.insertTerminalRows(ts.map((t, i) => ({ t, secretHash: hasher.hash(secrets[i]!) })), by, now, tx);
    for (const t of ts) this.#forget(t.id);
    return secrets;
  }

  async nextTerminalId(station: string, tx?: Tx): Promise<string> {
    const last = await this.selectLastTerminalId(station, tx);
    const n = last ? Number(/-(\d+)$/.exec(last)?.[1] ?? 0) + 1 : 1;
    let id = `${station}-${String(n).padStart(2, '0')}`;
    for (let i = n + 1; await this.selectTerminal(id, tx); i++) id = `${station}-${String(i).padStart(2, '0')}`;
    return id;
  }

  async register(t: NewTerminal, by: string, tx?: Tx): Promise<{ id: string; secret: string }> {
    await this.#hasherReady(); // before the transaction: inside it, only statements are awaited
    return this.atomic(tx, async (tx) => {
      const problem = await this.terminalProblem(t, undefined, tx);
      if (problem) throw badRequest('invalid-terminal', problem);
      // One answer for every taken id, wherever it stands: the id may lie outside the caller's node, and saying
      // where (or just "exists") would confirm it there (issue 20, item 7).
      if (await this.selectTerminal(t.id, tx)) throw terminalIdUnavailable(t.id);
      return { id: t.id, secret: await this.insertTerminal(t, by, Date.now(), tx) };
    });
  }

  async verify(id: string, secret: string): Promise<boolean> {
    const hasher = this.#hasher ?? (await this.#hasherReady());
    let stored = this.#credentials.get(id);
    if (stored === undefined) {
      const generation = this.#generation;
      const row = await this.credentials(id);
      if (row === undefined) return false; // unknown ids are not cached: anyone could fill the cache with them
      stored = row.state === 'active' ? SecretHasher.decode(row.secretHash) : null;
      if (generation === this.#generation && this.mayCache()) this.#credentials.set(id, stored);
    }
    return stored !== null && hasher.matches(secret, stored);
  }

  async rotateSecret(id: string, tx?: Tx): Promise<string> {
    const hasher = await this.#hasherReady();
    const t = await this.requireTerminal(id, tx);
    if (t.state !== 'active') throw conflict(`terminal ${id} is decommissioned`, { id }, { code: 'error.terminal-decommissioned', params: { terminal: id } });
    const secret = newSecret();
    this.#forget(id);
    await this.updateSecret(id, hasher.hash(secret), tx);
    this.#forget(id);
    return secret;
  }

  move(id: string, station: string, by: string, reason: string | null, now = Date.now(), tx?: Tx): Promise<TerminalRow> {
    return this.atomic(tx, async (tx) => {
      const t = await this.requireTerminal(id, tx);
      if (t.state !== 'active') throw conflict(`terminal ${id} is decommissioned`, { id }, { code: 'error.terminal-decommissioned', params: { terminal: id } });
      const target = await this.selectNode(station, tx);
      if (!target || target.level !== 'station') {
        throw badRequest('invalid-station', `${station} is not a station`, { station });
      }
      if (t.stationId !== station) await this.updateStation(id, t.stationId, station, by, now, reason, tx);
      return (await this.selectTerminal(id, tx))!;
    });
  }

  decommission(id: string, by: string, reason: string | null, now = Date.now(), tx?: Tx): Promise<TerminalRow> {
    return this.atomic(tx, async (tx) => {
      const t = await this.requireTerminal(id, tx);
      if (t.state === 'decommissioned') return t;
      this.#forget(id);
      await this.markDecommissioned(id, t.stationId, by, now, reason ?? 'decommissioned', tx);
      this.#forget(id);
      return (await this.selectTerminal(id, tx))!;
    });
  }

  placements(id: string, tx?: Tx): Promise<PlacementRow[]> {
    return this.selectPlacements(id, tx);
  }
}
