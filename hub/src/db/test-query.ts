/**
 * SQL straight on a test hub's database, whichever engine it runs on: for tests that check what was stored (a row
 * count, a column) rather than what the API answers. `?` placeholders on both engines; PostgreSQL's int8 and
 * numeric come back as numbers as on SQLite. Not imported by production code.
 */
import type { Engine } from './engine.ts';

export type Row = Record<string, unknown>;

export async function queryRows(engine: Engine, text: string, ...params: unknown[]): Promise<Row[]> {
  if (engine.kind === 'sqlite') return engine.db.prepare(text).all(...params) as Row[];
  let i = 0;
  return [...(await engine.pg.sql.unsafe(text.replace(/\?/g, () => `$${++i}`), params as never[]))];
}

/** The first row's first column as a number (a count). */
export async function queryNumber(engine: Engine, text: string, ...params: unknown[]): Promise<number> {
  const [row] = await queryRows(engine, text, ...params);
  return row ? Number(Object.values(row)[0]) : 0;
}

/** Runs a statement (INSERT/UPDATE/DELETE) on either engine: for tests that set a scene the API cannot. */
export async function execute(engine: Engine, text: string, ...params: unknown[]): Promise<void> {
  if (engine.kind === 'sqlite') {
    engine.db.prepare(text).run(...params);
    return;
  }
  let i = 0;
  await engine.pg.sql.unsafe(text.replace(/\?/g, () => `$${++i}`), params as never[]);
}
