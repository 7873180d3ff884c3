/** SQL for what the hub sends: commands, desired config, update targets. */
import type { Db } from './db.ts';

export interface CommandRow {
  id: string;
  terminalId: string;
  name: string;
  args: string;
  issuedAt: number;
  expiresAt: number;
  status: string;
  sentAt: number | null;
  completedAt: number | null;
  result: string | null;
  error: string | null;
  createdBy: string;
}

const COMMAND_COLUMNS = `id, terminal_id AS terminalId, name, args, issued_at AS issuedAt, expires_at AS expiresAt, status,
  sent_at AS sentAt, completed_at AS completedAt, result, error, created_by AS createdBy`;

export class DownlinkStore {
  readonly s;

  constructor(db: Db) {
    this.s = {
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
      allDesired: db.prepare('SELECT terminal_id AS terminalId, version, config FROM desired_config'),
      target: db.prepare('SELECT terminal_id AS terminalId, payload, updated_at AS updatedAt FROM update_targets WHERE terminal_id = ?'),
      allTargets: db.prepare('SELECT terminal_id AS terminalId, payload FROM update_targets'),
      upsertTarget: db.prepare(
        `INSERT INTO update_targets (terminal_id, payload, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (terminal_id) DO UPDATE SET payload = excluded.payload, updated_at = excluded.updated_at`,
      ),
    };
  }
}
