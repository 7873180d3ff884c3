/**
 * The integer key of a terminal's outbox epoch (`telemetry_epochs.id`), which telemetry rows and their indexes carry
 * instead of the terminal id and epoch text.
 *
 * Invariant: a key handed out is a committed row's, or a row written by the caller's current transaction. A key
 * first seen in another transaction (it may have been rolled back since, and its number reused) is checked against
 * the table once before it is trusted again. This needs no hook into the batch writer: a new key is rare (one per
 * terminal and outbox), so the check costs one SELECT per terminal after each new epoch or restart.
 */
import type { Db } from './db.ts';

interface Entry {
  id: number;
  /** The transaction that wrote or read it, until it was seen committed (null). */
  tx: object | null;
}

export class EpochKeys {
  private readonly s;
  private readonly cache = new Map<string, Entry>();

  constructor(db: Db) {
    this.s = {
      find: db.prepare('SELECT id FROM telemetry_epochs WHERE terminal_id = ? AND epoch = ?').pluck(),
      add: db.prepare('INSERT INTO telemetry_epochs (terminal_id, epoch) VALUES (?, ?)'),
    };
  }

  /** Inside a write transaction identified by `tx` (any object unique to it). */
  key(terminalId: string, epoch: string, tx: object): number {
    const k = `${terminalId}\u0000${epoch}`;
    const e = this.cache.get(k);
    if (e !== undefined) {
      if (e.tx === null || e.tx === tx) return e.id;
      const id = this.s.find.get(terminalId, epoch) as number | undefined;
      if (id === e.id) {
        e.tx = null;
        return id;
      }
      this.cache.delete(k);
    }
    let id = this.s.find.get(terminalId, epoch) as number | undefined;
    id ??= Number(this.s.add.run(terminalId, epoch).lastInsertRowid);
    if (this.cache.size >= 100_000) this.cache.clear();
    this.cache.set(k, { id, tx });
    return id;
  }
}
