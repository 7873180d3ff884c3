import { parseFleetCsv, type FleetCsvError } from '@kiosk-fleet/protocol';

export interface FleetPreview {
  format: 'json' | 'csv';
  stations: number;
  terminals: number;
  /** The terminals as read (id, station, type), for the operator to check before importing. */
  rows: { row: number; id: string; station: string; type: string }[];
  /** Every problem found, each with its line (CSV): the import is refused while there is any. */
  errors: FleetCsvError[];
  /** Stations the file itself creates (JSON), so its terminals may stand there. */
  newStations: string[];
}

/**
 * What a fleet file holds, read in the browser before anything is sent. CSV goes through protocol's parser, the one
 * the hub uses, so the preview accepts exactly what the hub reads (the hub still checks stations, types and scope).
 */
export function previewFleet(content: string): FleetPreview {
  const trimmed = content.trim();
  if (trimmed.startsWith('{')) {
    const j = JSON.parse(trimmed) as { stations?: unknown[]; terminals?: unknown[] };
    if (!Array.isArray(j.terminals)) throw new Error('no "terminals" array');
    const rows = j.terminals.map((t, i) => {
      const o = (t ?? {}) as Record<string, unknown>;
      const s = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : '');
      return { row: i + 1, id: s('id'), station: s('station'), type: s('type') };
    });
    const newStations = (Array.isArray(j.stations) ? j.stations : []).map((x) => (x as { id?: unknown } | null)?.id).filter((id): id is string => typeof id === 'string');
    return { format: 'json', stations: newStations.length, terminals: rows.length, rows, errors: [], newStations };
  }
  const parsed = parseFleetCsv(content);
  const rows = parsed.rows.map(({ row, id, station, type }) => ({ row, id, station, type }));
  return { format: 'csv', stations: new Set(rows.map((r) => r.station)).size, terminals: rows.length, rows, errors: parsed.errors, newStations: [] };
}

export type PlaceProblem = { row: number; code: 'not-in-scope' | 'unknown-station' | 'unknown-type'; value: string };

/**
 * Rows whose station the operator cannot place at, or whose type is unknown, checked against the operator's own tree
 * before sending: the hub answers "not found" for a station outside the caller's node (it does not tell what exists
 * there), which read as a typo to a district admin who named a station of the next district.
 */
export function placeProblems(p: FleetPreview, own: { root: string | null; stations: Set<string>; types: readonly string[] }): PlaceProblem[] {
  const out: PlaceProblem[] = [];
  const known = new Set([...own.stations, ...p.newStations]);
  for (const r of p.rows) {
    if (!own.types.includes(r.type)) out.push({ row: r.row, code: 'unknown-type', value: r.type });
    if (known.has(r.station)) continue;
    const inside = own.root === null || r.station === own.root || r.station.startsWith(`${own.root}-`);
    out.push({ row: r.row, code: inside ? 'unknown-station' : 'not-in-scope', value: r.station });
  }
  return out;
}
