/** SecurityStore on the hub's SQLite file: better-sqlite3, synchronous underneath. */
import type { Tx } from '../db/engine.ts';
import type { Db } from '../store/db.ts';
import type { SecurityFlag, SecurityFlags, SecurityStore } from './store.ts';

export class SqliteSecurityStore implements SecurityStore {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      ensureState: db.prepare('INSERT OR IGNORE INTO terminal_state (terminal_id) VALUES (?)'),
      setFlooding: db.prepare('UPDATE terminal_state SET flooding = ? WHERE terminal_id = ?'),
      setCredentialConflict: db.prepare('UPDATE terminal_state SET credential_conflict = ? WHERE terminal_id = ?'),
      active: db.prepare(
        `SELECT terminal_id AS terminalId, flooding, credential_conflict AS credentialConflict FROM terminal_state
         WHERE flooding IS NOT NULL OR credential_conflict IS NOT NULL ORDER BY terminal_id`,
      ),
      insertKey: db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('secret_key', ?)"),
      key: db.prepare("SELECT value FROM meta WHERE key = 'secret_key'").pluck(),
      // Both statements or neither (a savepoint inside a caller's transaction).
      set: db.transaction((terminalId: string, flag: SecurityFlag, json: string | null) => {
        this.s.ensureState.run(terminalId);
        (flag === 'flooding' ? this.s.setFlooding : this.s.setCredentialConflict).run(json, terminalId);
      }),
    };
  }

  async active(_tx?: Tx): Promise<SecurityFlags[]> {
    return this.s.active.all() as SecurityFlags[];
  }

  async hubKey(candidate: string, _tx?: Tx): Promise<string> {
    this.s.insertKey.run(candidate);
    return this.s.key.get() as string;
  }

  async setFlag(terminalId: string, flag: SecurityFlag, json: string | null, _tx?: Tx): Promise<void> {
    this.s.set(terminalId, flag, json);
  }
}
