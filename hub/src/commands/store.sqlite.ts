/**
 * CommandStore on the hub's SQLite file: better-sqlite3 prepared statements, synchronous underneath (each method's
 * work is done within its call). A `tx` is the same connection inside BEGIN, so the statements just run in it.
 */
import type { Tx } from '../db/engine.ts';
import type { Db } from '../store/db.ts';
import type { CommandResultRow, CommandRow, CommandStore, DesiredConfigRow, NewCommand, UpdateTargetRow } from './store.ts';

const COMMAND_COLUMNS = `id, terminal_id AS terminalId, name, args, issued_at AS issuedAt, expires_at AS expiresAt, status,
  sent_at AS sentAt, completed_at AS completedAt, result, error, created_by AS createdBy`;

function sqliteTx(tx?: Tx): void {
  if (tx && tx.kind !== 'sqlite') throw new Error('a PostgreSQL transaction handed to a SQLite store');
}

export class SqliteCommandStore implements CommandStore {
  readonly #s;

  constructor(db: Db) {
    this.#s = {
      insertCommand: db.prepare(
        "INSERT INTO commands (id, terminal_id, name, args, issued_at, expires_at, status, created_by) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
      ),
      command: db.prepare(`SELECT ${COMMAND_COLUMNS} FROM commands WHERE id = ?`),
      undelivered: db.prepare(
        `SELECT ${COMMAND_COLUMNS} FROM commands WHERE terminal_id = ? AND status IN ('pending', 'sent') AND expires_at > ? ORDER BY issued_at`,
      ),
      markSent: db.prepare("UPDATE commands SET status = 'sent', sent_at = ? WHERE id = ? AND status = 'pending'"),
      expire: db.prepare(
        `UPDATE commands SET status = 'expired', completed_at = ? WHERE status IN ('pending', 'sent') AND expires_at <= ? RETURNING id, terminal_id AS terminalId`,
      ),
      commands: db.prepare(
        `SELECT ${COMMAND_COLUMNS} FROM commands WHERE terminal_id = ? AND (issued_at < ? OR (issued_at = ? AND id < ?)) ORDER BY issued_at DESC, id DESC LIMIT ?`,
      ),
      commandResult: db.prepare(
        `INSERT OR IGNORE INTO command_results (terminal_id, epoch, seq, ts, received_at, skewed, command_id, status, result, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // A terminal can only complete its own commands (the update is keyed on terminal_id too).
      commandDone: db.prepare(
        "UPDATE commands SET status = ?, result = ?, error = ?, completed_at = ? WHERE id = ? AND terminal_id = ? AND status IN ('pending', 'sent')",
      ),
      allDesired: db.prepare('SELECT terminal_id AS terminalId, version, config FROM desired_config'),
      allTargets: db.prepare('SELECT terminal_id AS terminalId, payload FROM update_targets'),
      targets: db.prepare('SELECT terminal_id AS terminalId, payload FROM update_targets WHERE terminal_id IN (SELECT value FROM json_each(?))'),
      upsertTarget: db.prepare(
        `INSERT INTO update_targets (terminal_id, payload, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (terminal_id) DO UPDATE SET payload = excluded.payload, updated_at = excluded.updated_at`,
      ),
    };
  }

  async insert(c: NewCommand, tx?: Tx): Promise<CommandRow> {
    sqliteTx(tx);
    this.#s.insertCommand.run(c.id, c.terminalId, c.name, c.args, c.issuedAt, c.expiresAt, c.createdBy);
    return this.#s.command.get(c.id) as CommandRow;
  }

  async get(id: string): Promise<CommandRow | undefined> {
    return this.#s.command.get(id) as CommandRow | undefined;
  }

  async undelivered(terminalId: string, now: number): Promise<CommandRow[]> {
    return this.#s.undelivered.all(terminalId, now) as CommandRow[];
  }

  async markSent(id: string, at: number, tx?: Tx): Promise<boolean> {
    sqliteTx(tx);
    return this.#s.markSent.run(at, id).changes > 0;
  }

  async expire(now: number, tx?: Tx): Promise<{ id: string; terminalId: string }[]> {
    sqliteTx(tx);
    return this.#s.expire.all(now, now) as { id: string; terminalId: string }[];
  }

  async listByTerminal(terminalId: string, before: { at: number; id: string } | null, limit: number): Promise<CommandRow[]> {
    const at = before?.at ?? Number.MAX_SAFE_INTEGER;
    return this.#s.commands.all(terminalId, at, at, before?.id ?? '\uffff', limit) as CommandRow[];
  }

  async recordResults(rows: CommandResultRow[], tx?: Tx): Promise<boolean[]> {
    sqliteTx(tx);
    return rows.map((r) => {
      const inserted =
        this.#s.commandResult.run(r.terminalId, r.epoch, r.seq, r.ts, r.receivedAt, r.skewed ? 1 : 0, r.commandId, r.status, r.result, r.error)
          .changes > 0;
      if (inserted) this.#s.commandDone.run(r.status, r.result, r.error, r.receivedAt, r.commandId, r.terminalId);
      return inserted;
    });
  }

  async allDesired(): Promise<DesiredConfigRow[]> {
    return this.#s.allDesired.all() as DesiredConfigRow[];
  }

  async allTargets(): Promise<UpdateTargetRow[]> {
    return this.#s.allTargets.all() as UpdateTargetRow[];
  }

  async targets(terminalIds: readonly string[]): Promise<UpdateTargetRow[]> {
    if (terminalIds.length === 0) return [];
    return this.#s.targets.all(JSON.stringify(terminalIds)) as UpdateTargetRow[];
  }

  async upsertTarget(terminalId: string, payload: string, at: number, tx?: Tx): Promise<void> {
    sqliteTx(tx);
    this.#s.upsertTarget.run(terminalId, payload, at);
  }
}
