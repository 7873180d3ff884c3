/** Security SQL: the flooding and credential-conflict columns of terminal_state (read by the alert rules). */
import type { Db } from './db.ts';

export class SecurityStore {
  readonly s;

  constructor(db: Db) {
    this.s = {
      setFlooding: db.prepare('UPDATE terminal_state SET flooding = ? WHERE terminal_id = ?'),
      setCredentialConflict: db.prepare('UPDATE terminal_state SET credential_conflict = ? WHERE terminal_id = ?'),
      /** At start no flood and no conflict is going on (their trackers live in memory and start empty). */
      clearAll: db.prepare('UPDATE terminal_state SET flooding = NULL, credential_conflict = NULL WHERE flooding IS NOT NULL OR credential_conflict IS NOT NULL'),
    };
  }
}
