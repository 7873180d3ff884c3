import { parseFleetCsv, type FleetCsvError } from '@kiosk-fleet/protocol';

export interface FleetPreview {
  format: 'json' | 'csv';
  stations: number;
  terminals: number;
  /** The terminals as read (id, station, type), for the operator to check before importing. */
  rows: { row: number; id: string; station: string; type: string }[];
  /** Every problem found, each with its line (CSV): the import is refused while there is any. */
  errors: FleetCsvError[];
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
    return { format: 'json', stations: Array.isArray(j.stations) ? j.stations.length : 0, terminals: rows.length, rows, errors: [] };
  }
  const parsed = parseFleetCsv(content);
  const rows = parsed.rows.map(({ row, id, station, type }) => ({ row, id, station, type }));
  return { format: 'csv', stations: new Set(rows.map((r) => r.station)).size, terminals: rows.length, rows, errors: parsed.errors };
}
