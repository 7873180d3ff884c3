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
import type { Db } from '../store/db.ts';
import { ConfigLayerStore, type DesiredRow, type LayerRow } from './store.ts';

export const PROGRAMS_DROPPED_REASON = 'security: config may name a probe, never carry a program (issue 20); the argv was removed';

export function dropStoredPrograms(db: Db, log: Logger, now = Date.now()): { layers: number; terminals: number } {
  const store = new ConfigLayerStore(db);
  const result = store.tx(() => {
    let layers = 0;
    let terminals = 0;
    for (const l of store.allLayers() as LayerRow[]) {
      const { config, removed } = stripPrograms(JSON.parse(l.config) as unknown);
      if (removed.length === 0) continue;
      const text = JSON.stringify(config);
      const version = l.version + 1;
      store.s.upsertLayer.run(l.scope, l.targetId, version, text, now, 'migration', PROGRAMS_DROPPED_REASON);
      store.s.insertHistory.run(l.scope, l.targetId, version, text, now, 'migration', PROGRAMS_DROPPED_REASON, 0);
      log.warn({ scope: l.scope, id: l.targetId, version, removed, by: l.updatedBy }, 'config layer carried programs; removed');
      layers++;
    }
    for (const d of store.s.allDesired.all() as DesiredRow[]) {
      const { config, removed } = stripPrograms(JSON.parse(d.config) as unknown);
      if (removed.length === 0) continue;
      store.s.upsertDesired.run(d.terminalId, d.version + 1, JSON.stringify(config), now);
      terminals++;
    }
    return { layers, terminals };
  });
  if (result.terminals > 0) log.warn({ terminals: result.terminals }, 'desired configs carried programs; new versions without them will be pushed');
  return result;
}
