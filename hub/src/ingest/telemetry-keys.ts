/**
 * The integer key of a terminal's outbox epoch (`telemetry_epochs.id`), which telemetry rows and their indexes carry
 * instead of the terminal id and epoch text.
 *
 * Invariant: a key handed out is a committed row's, or a row written by the caller's current transaction. A key
 * first seen in another transaction (it may have been rolled back since, and its number reused) is checked against
 * the table once before it is trusted again. This needs no hook into the batch writer: a new key is rare (one per
 * terminal and outbox), so the check costs one SELECT per terminal after each new epoch or restart.
 */
import type { Db } from '../store/db.ts';

interface Entry {
  id: number;
  /** The transaction (its number, see `key`) that wrote or read it, until it was seen committed (0). */
  tx: number;
}

export class EpochKeys {
  private readonly s;
  private readonly cache = new Map<string, Entry>();
  /**
   * Transactions are numbered here rather than held by the entries: an entry holding its transaction's context kept
   * that whole batch (its jobs and their parsed messages) alive until the terminal's next sample, 30 s later: with
   * 19,000 terminals, the first round of samples after every start.
   */
  private lastTx: object | null = null;
  private txNumber = 0;

  constructor(db: Db) {
    this.s = {
      find: db.prepare('SELECT id FROM telemetry_epochs WHERE terminal_id = ? AND epoch = ?').pluck(),
      add: db.prepare('INSERT INTO telemetry_epochs (terminal_id, epoch) VALUES (?, ?)'),
    };
  }

  /** Inside a write transaction identified by `tx` (any object unique to it). */
  key(terminalId: string, epoch: string, tx: object): number {
    // Transactions run one at a time: a new context object is a new transaction.
    if (tx !== this.lastTx) {
      this.lastTx = tx;
      this.txNumber++;
    }
    const k = `${terminalId}\u0000${epoch}`;
    const e = this.cache.get(k);
    if (e !== undefined) {
      if (e.tx === 0 || e.tx === this.txNumber) return e.id;
      const id = this.s.find.get(terminalId, epoch) as number | undefined;
      if (id === e.id) {
        e.tx = 0;
        return id;
      }
      this.cache.delete(k);
    }
    let id = this.s.find.get(terminalId, epoch) as number | undefined;
    id ??= Number(this.s.add.run(terminalId, epoch).lastInsertRowid);
    if (this.cache.size >= 100_000) this.cache.clear();
    this.cache.set(k, { id, tx: this.txNumber });
    return id;
  }
}
