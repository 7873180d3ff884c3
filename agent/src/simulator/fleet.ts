/**
 * The fleet file (reference format: fixtures/guangzhou-fleet.json) and which terminals the simulator runs.
 */
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { isTerminalType, TERMINAL_TYPES, terminalIdSchema, type PeripheralId, type TerminalType } from '@kiosk-fleet/protocol';

const name = z.object({ zh: z.string(), en: z.string() });
export const fleetSchema = z.object({
  note: z.string().optional(),
  city: z.object({ id: z.string(), name }),
  districts: z.array(z.object({ id: z.string(), name })),
  stations: z.array(z.object({ id: z.string(), district: z.string(), name, kind: z.string().optional(), demoPoint: z.boolean().optional() }).passthrough()),
  terminalTypes: z.array(z.object({ id: z.string() }).passthrough()).optional(),
  terminals: z.array(z.object({ id: terminalIdSchema, station: z.string(), type: z.string(), serial: z.string() })),
});
export type Fleet = z.infer<typeof fleetSchema>;
export type FleetTerminal = Fleet['terminals'][number];

export interface SimTerminalSpec {
  id: string;
  station: string;
  type: TerminalType;
  serial: string;
  peripherals: PeripheralId[];
  /** Not in the fleet file: added to reach --count. */
  added: boolean;
}

export function loadFleet(file: string): Fleet {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read fleet file ${file}: ${(err as Error).message}`);
  }
  const r = fleetSchema.safeParse(json);
  if (!r.success) throw new Error(`fleet file ${file} is not in the reference format: ${z.prettifyError(r.error)}`);
  return r.data;
}

/**
 * The first `count` terminals of the fleet; past the fleet's size, new terminals are added round-robin under its
 * stations (`{station}-{nn}`, numbered after the station's last one), cycling through the terminal types.
 */
export function selectTerminals(fleet: Fleet, count?: number): SimTerminalSpec[] {
  const known = fleet.terminals.filter((t) => isTerminalType(t.type));
  const n = count ?? known.length;
  const out: SimTerminalSpec[] = known.slice(0, n).map((t) => spec(t, false));
  if (n <= known.length || fleet.stations.length === 0) return out;
  const next = new Map<string, number>();
  for (const t of known) {
    const m = /-(\d+)$/.exec(t.id);
    const num = m ? Number(m[1]) : 0;
    next.set(t.station, Math.max(next.get(t.station) ?? 0, num));
  }
  const types = Object.keys(TERMINAL_TYPES) as TerminalType[];
  const ids = new Set(known.map((t) => t.id));
  for (let i = 0; out.length < n; i++) {
    const station = fleet.stations[i % fleet.stations.length]!;
    let num = (next.get(station.id) ?? 0) + 1;
    let id = `${station.id}-${String(num).padStart(2, '0')}`;
    while (ids.has(id)) id = `${station.id}-${String(++num).padStart(2, '0')}`;
    next.set(station.id, num);
    ids.add(id);
    out.push(spec({ id, station: station.id, type: types[i % types.length]!, serial: `SIM${String(i).padStart(9, '0')}` }, true));
  }
  return out;
}

function spec(t: FleetTerminal, added: boolean): SimTerminalSpec {
  const type = t.type as TerminalType;
  return { id: t.id, station: t.station, type, serial: t.serial, peripherals: [...TERMINAL_TYPES[type].peripherals], added };
}

/** The import body for the hub: the fleet's tree and only the terminals simulated. */
export function importBody(fleet: Fleet, terminals: SimTerminalSpec[]): Record<string, unknown> {
  return {
    city: fleet.city,
    districts: fleet.districts,
    stations: fleet.stations,
    ...(fleet.terminalTypes ? { terminalTypes: fleet.terminalTypes } : {}),
    terminals: terminals.map((t) => ({ id: t.id, station: t.station, type: t.type, serial: t.serial })),
  };
}
