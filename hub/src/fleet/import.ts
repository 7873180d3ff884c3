/**
 * Importing a fleet: the reference fleet's JSON (fixtures/guangzhou-fleet.json) or CSV (`id,station,type,serial`).
 * All or nothing: every row is checked first, then the missing nodes and terminals are created in one transaction.
 * A terminal that exists already is left as it is and gets no secret.
 */
import { fleetCsvErrorText, nodeLevel, parentNodeId, parseFleetCsv as parseCsv } from '@kiosk-fleet/protocol';
import { z } from 'zod';
import { transaction, type Engine, type Tx } from '../db/engine.ts';
import { fieldsText, HubError } from '../errors.ts';
import { terminalProblemIn } from './store.common.ts';
import type { FleetStore, NewNode, NewTerminal } from './store.ts';

export interface ImportResult {
  nodes: { created: string[]; existing: string[] };
  terminals: { created: { id: string; secret: string }[]; existing: string[] };
}

interface Row<T> {
  row: number;
  value: T;
}

export interface ParsedFleet {
  nodes: Row<NewNode>[];
  terminals: Row<NewTerminal>[];
}

const name = z.object({ zh: z.string().min(1).max(128), en: z.string().min(1).max(128) });
const fleetSchema = z.object({
  city: z.object({ id: z.string(), name }).optional(),
  districts: z.array(z.object({ id: z.string(), name })).default([]),
  stations: z.array(z.object({ id: z.string(), district: z.string().optional(), name, kind: z.string().max(64).optional() })).default([]),
  terminals: z.array(z.unknown()).default([]),
});
const terminalRowSchema = z.object({
  id: z.string(),
  station: z.string(),
  type: z.string(),
  serial: z.string(),
});

const importText = (row: number) => ({ code: 'error.invalid-import', params: { row } });

export function invalidImport(row: number, reason: string): HubError {
  return new HubError(400, 'invalid-import', `import rejected at row ${row}: ${reason}`, { row, reason }, importText(row));
}

/**
 * Rows of the JSON format are numbered in document order, 1-based: the city, then each district, each station and
 * each terminal (so a bad terminal at index i of `terminals` is row 1 + districts + stations + i + 1 with a city).
 */
export function parseFleetJson(body: unknown): ParsedFleet {
  const parsed = fleetSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HubError(400, 'invalid-import', `import rejected: ${issue.path.join('.')}: ${issue.message}`, {
      row: 0,
      reason: `${issue.path.join('.')}: ${issue.message}`,
    }, fieldsText('error.invalid-fields', [issue]));
  }
  const f = parsed.data;
  const nodes: Row<NewNode>[] = [];
  let row = 0;
  if (f.city) nodes.push({ row: ++row, value: { id: f.city.id, name: f.city.name } });
  for (const d of f.districts) nodes.push({ row: ++row, value: { id: d.id, name: d.name } });
  for (const s of f.stations) {
    row++;
    if (s.district !== undefined && parentNodeId(s.id) !== s.district) {
      throw invalidImport(row, `station ${s.id} is not under district ${s.district}`);
    }
    nodes.push({ row, value: { id: s.id, name: s.name, kind: s.kind } });
  }
  const terminals: Row<NewTerminal>[] = [];
  for (const t of f.terminals) {
    row++;
    const r = terminalRowSchema.safeParse(t);
    if (!r.success) throw invalidImport(row, `terminal: ${r.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
    terminals.push({ row, value: r.data });
  }
  return { nodes, terminals };
}

/**
 * CSV with the header `id,station,type,serial` (any column order), read by protocol's parser (the dashboard's preview
 * uses the same one); rows are file line numbers (header = 1). The first problem refuses the file; all of them are
 * in the error's details.
 */
export function parseFleetCsv(text: string): ParsedFleet {
  const parsed = parseCsv(text);
  const first = parsed.errors[0];
  if (first) {
    const reason = fleetCsvErrorText(first);
    throw new HubError(400, 'invalid-import', `import rejected at row ${first.row}: ${reason}`, { row: first.row, reason, errors: parsed.errors }, importText(first.row));
  }
  return { nodes: [], terminals: parsed.rows.map(({ row, ...value }) => ({ row, value })) };
}

/**
 * Checks every row against the registry as `tx` sees it, then creates the missing nodes and terminals in `tx`: all or
 * nothing with the caller's other writes (its audit entry). Reads the tree and the named terminals once each and
 * writes with one batch per table, so that an import costs a few statements on either engine, not a few per row.
 */
export async function applyImport(registry: FleetStore, fleet: ParsedFleet, by: string, tx: Tx): Promise<ImportResult> {
  if (fleet.nodes.length === 0 && fleet.terminals.length === 0) {
    throw new HubError(400, 'invalid-import', 'import rejected: it names no node and no terminal', { row: 0, reason: 'empty import' });
  }
  const result: ImportResult = { nodes: { created: [], existing: [] }, terminals: { created: [], existing: [] } };
  const stored = new Map((await registry.nodes(tx)).map((n) => [n.id, n]));
  const pendingNodes = new Map<string, string>(); // id → level
  const seen = new Set<string>();
  for (const { row, value } of fleet.nodes) {
    const level = nodeLevel(value.id);
    if (level === null) throw invalidImport(row, `node id ${JSON.stringify(value.id)} is not a city, district or station id`);
    if (seen.has(value.id)) throw invalidImport(row, `node ${value.id} appears twice`);
    seen.add(value.id);
    const parent = parentNodeId(value.id);
    if (parent !== null && !pendingNodes.has(parent) && !stored.has(parent)) {
      throw invalidImport(row, `parent ${parent} of ${value.id} does not exist`);
    }
    const existing = stored.get(value.id);
    if (existing) {
      if (existing.level !== level) throw invalidImport(row, `${value.id} exists as a ${existing.level}`);
      result.nodes.existing.push(value.id);
    } else pendingNodes.set(value.id, level);
  }
  const stations = new Set([...pendingNodes].filter(([, level]) => level === 'station').map(([id]) => id));
  const taken = new Set((await registry.terminals(fleet.terminals.map((t) => t.value.id), tx)).map((t) => t.id));
  const terminalIds = new Set<string>();
  const toCreate: NewTerminal[] = [];
  for (const { row, value } of fleet.terminals) {
    if (terminalIds.has(value.id)) throw invalidImport(row, `terminal ${value.id} appears twice`);
    terminalIds.add(value.id);
    const problem = terminalProblemIn(value, stored.get(value.station), stations);
    if (problem) throw invalidImport(row, problem);
    if (taken.has(value.id)) result.terminals.existing.push(value.id);
    else toCreate.push(value);
  }
  const now = Date.now();
  const newNodes = fleet.nodes.filter(({ value }) => pendingNodes.has(value.id)).map(({ value }) => value);
  await registry.insertNodes(newNodes, now, tx);
  result.nodes.created.push(...newNodes.map((n) => n.id));
  const secrets = await registry.insertTerminals(toCreate, by, now, tx);
  result.terminals.created.push(...toCreate.map((t, i) => ({ id: t.id, secret: secrets[i]! })));
  return result;
}

/**
 * `applyImport` in a transaction of its own, with `alsoInTx` (the caller's audit entry) in the same one. The key and
 * credentials are loaded first: inside the transaction only statements are awaited.
 */
export async function importFleet(
  engine: Engine,
  registry: FleetStore,
  fleet: ParsedFleet,
  by: string,
  alsoInTx?: (r: ImportResult, tx: Tx) => unknown,
): Promise<ImportResult> {
  await registry.load();
  return transaction(engine, async (tx) => {
    const r = await applyImport(registry, fleet, by, tx);
    await alsoInTx?.(r, tx);
    return r;
  });
}
