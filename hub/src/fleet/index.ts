/**
 * The fleet registry (nodes, terminals, secrets, placements, import) on the hub's engine:
 *
 *   const fleet = createFleetStore(engine);
 *   await fleet.load();                                  // hub key and credentials, before the broker starts
 *   await transaction(engine, async (tx) => { await fleet.move(id, station, by, reason, Date.now(), tx); … });
 */
import type { Engine } from '../db/engine.ts';
import { PostgresFleetStore } from './store.postgres.ts';
import { SqliteFleetStore } from './store.sqlite.ts';
import type { FleetStore } from './store.ts';

export function createFleetStore(engine: Engine): FleetStore {
  return engine.kind === 'sqlite' ? new SqliteFleetStore(engine) : new PostgresFleetStore(engine);
}

export type { FleetStore, NewNode, NewTerminal, NodeRow, PlacementRow, TerminalRow } from './store.ts';
export { terminalIdUnavailable } from './store.ts';
