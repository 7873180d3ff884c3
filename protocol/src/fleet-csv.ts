/**
 * The fleet CSV (`id,station,type,serial`, header line required, any column order): one parser for the dashboard's
 * import preview and the hub's import, so a file the preview accepts is one the hub reads the same way (a header-less
 * file used to pass the preview and fail on the hub). Rows are file line numbers (header = 1). Every problem is
 * collected, so a preview can show them all at once; the hub refuses the file when there is any.
 */

export const FLEET_CSV_COLUMNS = ['id', 'station', 'type', 'serial'] as const;
export type FleetCsvColumn = (typeof FLEET_CSV_COLUMNS)[number];

export interface FleetCsvRow {
  row: number;
  id: string;
  station: string;
  type: string;
  serial: string;
}

export type FleetCsvError =
  | { row: number; code: 'missing-column'; column: FleetCsvColumn }
  | { row: number; code: 'quoted' }
  | { row: number; code: 'field-count'; expected: number; got: number }
  | { row: number; code: 'empty-field'; column: FleetCsvColumn };

export interface ParsedFleetCsv {
  rows: FleetCsvRow[];
  errors: FleetCsvError[];
}

/** The English reason of an error (the hub's message; the dashboard says it in the user's language by `code`). */
export function fleetCsvErrorText(e: FleetCsvError): string {
  switch (e.code) {
    case 'missing-column':
      return `header must name id,station,type,serial (missing ${e.column})`;
    case 'quoted':
      return 'quoted fields are not supported';
    case 'field-count':
      return `expected ${e.expected} fields, got ${e.got}`;
    case 'empty-field':
      return `${e.column} is empty`;
  }
}

export function parseFleetCsv(text: string): ParsedFleetCsv {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase());
  const at = Object.fromEntries(FLEET_CSV_COLUMNS.map((c) => [c, header.indexOf(c)])) as Record<FleetCsvColumn, number>;
  const missing = FLEET_CSV_COLUMNS.filter((c) => at[c] < 0);
  // Without its header the columns are unknown: every row would be guessed, so nothing is read.
  if (missing.length > 0) return { rows: [], errors: missing.map((column) => ({ row: 1, code: 'missing-column', column })) };
  const rows: FleetCsvRow[] = [];
  const errors: FleetCsvError[] = [];
  lines.forEach((line, i) => {
    if (i === 0 || line.trim() === '') return;
    const row = i + 1;
    if (line.includes('"')) {
      errors.push({ row, code: 'quoted' });
      return;
    }
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length !== header.length) {
      errors.push({ row, code: 'field-count', expected: header.length, got: cells.length });
      return;
    }
    const value = { row, id: cells[at.id]!, station: cells[at.station]!, type: cells[at.type]!, serial: cells[at.serial]! };
    const empty = FLEET_CSV_COLUMNS.find((c) => value[c] === '');
    if (empty) errors.push({ row, code: 'empty-field', column: empty });
    else rows.push(value);
  });
  return { rows, errors };
}
