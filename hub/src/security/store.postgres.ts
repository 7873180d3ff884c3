/** SecurityStore on PostgreSQL (postgres.js): one upsert per flag change, the row made when missing. */
import { pgSql, type Tx } from '../db/engine.ts';
import type { PostgresDb } from '../db/postgres/open.ts';
import type { SecurityFlag, SecurityFlags, SecurityStore } from './store.ts';

export class PostgresSecurityStore implements SecurityStore {
  constructor(private readonly pg: PostgresDb) {}

  async active(tx?: Tx): Promise<SecurityFlags[]> {
    const sql = pgSql(this.pg.sql, tx);
    return sql<SecurityFlags[]>`SELECT terminal_id AS "terminalId", flooding, credential_conflict AS "credentialConflict"
      FROM terminal_state WHERE flooding IS NOT NULL OR credential_conflict IS NOT NULL ORDER BY terminal_id COLLATE "C"`;
  }

  async hubKey(candidate: string, tx?: Tx): Promise<string> {
    const sql = pgSql(this.pg.sql, tx);
    await sql`INSERT INTO meta (key, value) VALUES ('secret_key', ${candidate}) ON CONFLICT (key) DO NOTHING`;
    const [r] = await sql<{ value: string }[]>`SELECT value FROM meta WHERE key = 'secret_key'`;
    return r!.value;
  }

  async setFlag(terminalId: string, flag: SecurityFlag, json: string | null, tx?: Tx): Promise<void> {
    const sql = pgSql(this.pg.sql, tx);
    if (flag === 'flooding') {
      await sql`INSERT INTO terminal_state (terminal_id, flooding) VALUES (${terminalId}, ${json})
        ON CONFLICT (terminal_id) DO UPDATE SET flooding = excluded.flooding`;
    } else {
      await sql`INSERT INTO terminal_state (terminal_id, credential_conflict) VALUES (${terminalId}, ${json})
        ON CONFLICT (terminal_id) DO UPDATE SET credential_conflict = excluded.credential_conflict`;
    }
  }
}
