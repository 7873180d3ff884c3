/**
 * Configs saved before issue 20 could carry a program (`peripherals.<id>.command`, argv the agent ran as root). The
 * schema now refuses that at save; this removes what earlier saves left in the database, at every start before
 * anything is published (so the retained copies a restarted hub restores carry no program either):
 *
 * - each layer holding argv gets a new version without it, saved by `migration` with the reason, in its history;
 *   the peripheral keeps its driver and reads `unknown` (E_NO_PROBE) on the terminal until someone names a probe;
 * - each terminal's desired config holding argv gets a new version without it, so an agent that applied the old
 *   one (an agent from before the fix, which would run it) replaces it.
 *
 * Idempotent (a clean database is read and left alone) and one transaction: all of it or none.
 */
import { stripPrograms } from '@kiosk-fleet/protocol';
import type { Logger } from '../log.ts';
import type { ConfigLayerStore } from './store.ts';

export const PROGRAMS_DROPPED_REASON = 'security: config may name a probe, never carry a program (issue 20); the argv was removed';

/**
 * Reads only the rows whose text holds `"command":` (every stored config was written by JSON.stringify, so a
 * `command` key appears exactly so; the `command` driver's value does not match). 19,000 desired configs of 564 B
 * on SQLite here: reading and parsing all of them took 770–950 ms at every start, the filtered read 100–125 ms,
 * and a clean database has no such row to parse.
 */
export async function dropStoredPrograms(store: ConfigLayerStore, log: Logger, now = Date.now()): Promise<{ layers: number; terminals: number }> {
  const result = await store.transaction(async (tx) => {
    let layers = 0;
    for (const l of await store.layersWithPrograms(tx)) {
      const { config, removed } = stripPrograms(JSON.parse(l.config) as unknown);
      if (removed.length === 0) continue;
      const version = l.version + 1;
      const write = { ...l, version, config: JSON.stringify(config), updatedAt: now, updatedBy: 'migration', reason: PROGRAMS_DROPPED_REASON, pushed: 0 };
      if (!(await store.saveLayer(write, l.version, tx))) throw new Error(`config layer ${l.scope} ${l.targetId} changed during the start's program sweep`);
      log.warn({ scope: l.scope, id: l.targetId, version, removed, by: l.updatedBy }, 'config layer carried programs; removed');
      layers++;
    }
    const desired: { terminalId: string; config: string }[] = [];
    for (const d of await store.desiredWithPrograms(tx)) {
      const { config, removed } = stripPrograms(JSON.parse(d.config) as unknown);
      if (removed.length > 0) desired.push({ terminalId: d.terminalId, config: JSON.stringify(config) });
    }
    await store.putDesired(desired, now, tx);
    return { layers, terminals: desired.length };
  });
  if (result.terminals > 0) log.warn({ terminals: result.terminals }, 'desired configs carried programs; new versions without them will be pushed');
  return result;
}
