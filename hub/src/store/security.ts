/** Security SQL: the flooding and credential-conflict columns of terminal_state (read by the alert rules). */
import type { Db } from './db.ts';

export class SecurityStore {
  readonly s;

  constructor(db: Db) {
    this.s = {
      setFlooding: db.prepare('UPDATE terminal_state SET flooding = ? WHERE terminal_id = ?'),
      setCredentialConflict: db.prepare('UPDATE terminal_state SET credential_conflict = ? WHERE terminal_id = ?'),
      /** What a previous run left flagged, for the trackers to carry on with at start. */
      active: db.prepare(
        `SELECT terminal_id AS terminalId, flooding, credential_conflict AS credentialConflict FROM terminal_state
         WHERE flooding IS NOT NULL OR credential_conflict IS NOT NULL`,
      ),
    };
  }
}
