/** Rows the alert tests need in other domains' tables (terminals and their state), on either engine. */
import type { Engine } from '../db/engine.ts';

export const T0 = 1_780_000_000_000;

/** Rows of other domains' tables, written as they are (SQL with `?` placeholders, run on either engine). */
export async function exec(engine: Engine, text: string, ...args: unknown[]): Promise<void> {
  if (engine.kind === 'sqlite') engine.db.prepare(text).run(...args);
  else {
    let i = 0;
    await engine.pg.sql.unsafe(text.replace(/\?/g, () => `$${++i}`), args as never[]);
  }
}

export async function addTerminal(engine: Engine, id: string, station: string, state: Record<string, unknown> = {}, active = true): Promise<void> {
  await exec(engine, "INSERT INTO terminals (id, type, serial, station_id, state, secret_hash, created_at) VALUES (?, 'kiosk-a', ?, ?, ?, 'x', ?)", id, `SN-${id}`, station, active ? 'active' : 'decommissioned', T0);
  const cols = ['terminal_id', 'presence', ...Object.keys(state)];
  await exec(engine, `INSERT INTO terminal_state (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, id, 'online', ...Object.values(state));
}

