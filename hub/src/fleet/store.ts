/**
 * The fleet registry, engine-neutral: the city → district → station tree, terminals, their secrets and placement
 * history. `store.sqlite.ts` and `store.postgres.ts` say how; both share the rules in `store.common.ts`, so an
 * answer (or a refusal, word for word) is the same on either engine.
 *
 * Write methods take the caller's transaction as their last parameter (`transaction(engine, async (tx) => …)`,
 * db/engine.ts); without one, a write that touches several rows (register, move, decommission) runs in its own.
 */
import type { NodeLevel } from '@kiosk-fleet/protocol';
import type { Tx } from '../db/engine.ts';
import { HubError } from '../errors.ts';

/** A terminal id that is taken (under any node): the same words for all of them. */
export const terminalIdUnavailable = (id: string) => new HubError(409, 'id-unavailable', `terminal id ${id} is not available; choose another`, { id });

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

export interface FleetStore {
  /**
   * Reads the hub key (`meta.secret_key`, made once per database) and every terminal's credentials into memory, so
   * that a fleet reconnecting after a restart authenticates without a database read each. Before the broker starts;
   * the other methods call it themselves when it has not run.
   */
  load(): Promise<void>;
  /**
   * Drops cached credentials (of these terminals, or all): another hub rotated a secret or decommissioned a terminal
   * (cluster/feed-hub.ts); the next login reads the table.
   */
  forgetCredentials(ids?: readonly string[]): void;

  node(id: string, tx?: Tx): Promise<NodeRow | undefined>;
  /** The whole tree, ordered by id (byte order on both engines). */
  nodes(tx?: Tx): Promise<NodeRow[]>;
  /** Creates a node whose parent exists (or a city). Throws a 400 naming the problem, 409 when it exists. */
  createNode(n: NewNode, now?: number, tx?: Tx): Promise<NodeRow>;
  /** Inserts nodes the caller checked (import), parents before children, in one statement per engine round trip. */
  insertNodes(nodes: readonly NewNode[], now: number, tx?: Tx): Promise<void>;

  terminal(id: string, tx?: Tx): Promise<TerminalRow | undefined>;
  /** Those of `ids` that exist, in id order. */
  terminals(ids: readonly string[], tx?: Tx): Promise<TerminalRow[]>;
  /** The terminal, or a 404. */
  requireTerminal(id: string, tx?: Tx): Promise<TerminalRow>;
  /** Problems with a terminal about to be registered, or null. `pendingStations`: stations this write creates. */
  terminalProblem(t: NewTerminal, pendingStations?: ReadonlySet<string>, tx?: Tx): Promise<string | null>;
  /** Inserts a terminal the caller checked, with its state row and first placement; returns its secret (not stored). */
  insertTerminal(t: NewTerminal, by: string, now?: number, tx?: Tx): Promise<string>;
  /** `insertTerminal` for many (import): the secrets in the order given. */
  insertTerminals(ts: readonly NewTerminal[], by: string, now: number, tx?: Tx): Promise<string[]>;
  /** Next free `{station}-{nn}` id for a registration without an id. */
  nextTerminalId(station: string, tx?: Tx): Promise<string>;
  /** Checks and inserts a terminal (400 naming the problem, 409 when the id is taken anywhere); the secret once. */
  register(t: NewTerminal, by: string, tx?: Tx): Promise<{ id: string; secret: string }>;
  /** True when the terminal exists, is active and the secret is its current one. */
  verify(id: string, secret: string): Promise<boolean>;
  /** A new secret for an active terminal (409 when decommissioned); the old one stops verifying at once. */
  rotateSecret(id: string, tx?: Tx): Promise<string>;
  /** Moves an active terminal to a station, with a placement row when it changes (400 when not a station). */
  move(id: string, station: string, by: string, reason: string | null, now?: number, tx?: Tx): Promise<TerminalRow>;
  /** Idempotent; its credentials stop verifying at once. */
  decommission(id: string, by: string, reason: string | null, now?: number, tx?: Tx): Promise<TerminalRow>;
  /** Oldest first. */
  placements(id: string, tx?: Tx): Promise<PlacementRow[]>;
}
