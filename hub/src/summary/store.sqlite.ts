/**
 * The node counters' reads on SQLite. Another connection's writes to the file (the `import` CLI while the hub runs)
 * change `PRAGMA data_version`: then everything is loaded again. Presence transitions are followed by id: one writer
 * connection commits them in id order.
 */
import type { Db } from '../store/db.ts';
import type { CounterChanges, CounterRow, SummaryStore } from './store.ts';

const COLUMNS = `t.id, t.station_id AS stationId, t.type, t.state, s.presence, s.fault_count AS faultCount, s.services
  FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id`;

export class SqliteSummaryStore implements SummaryStore {
  private readonly s;
  private dataVersion = 0;
  /** The last presence_transitions row returned. */
  private lastTransition = 0;

  constructor(private readonly db: Db) {
    this.s = {
      all: db.prepare(`SELECT ${COLUMNS} WHERE t.state = 'active'`),
      one: db.prepare(`SELECT ${COLUMNS} WHERE t.id = ?`),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      lastTransition: db.prepare('SELECT coalesce(max(id), 0) FROM presence_transitions').pluck(),
      transitions: db.prepare('SELECT id, terminal_id AS terminalId, to_state AS toState FROM presence_transitions WHERE id > ? ORDER BY id'),
    };
  }

  async load(): Promise<CounterRow[]> {
    // One read transaction: the rows and the last transition id are of the same moment.
    return this.db.transaction(() => {
      this.dataVersion = this.s.dataVersion.get() as number;
      this.lastTransition = this.s.lastTransition.get() as number;
      return this.s.all.all() as CounterRow[];
    })();
  }

  async changes(): Promise<CounterChanges> {
    if (this.s.dataVersion.get() !== this.dataVersion) return { reload: true, transitions: [], refresh: [] };
    const transitions: CounterChanges['transitions'] = [];
    for (const t of this.s.transitions.iterate(this.lastTransition) as IterableIterator<{ id: number; terminalId: string; toState: string }>) {
      this.lastTransition = t.id;
      transitions.push({ terminalId: t.terminalId, toState: t.toState });
    }
    return { reload: false, transitions, refresh: [] };
  }

  async rows(ids: readonly string[]): Promise<CounterRow[]> {
    const out: CounterRow[] = [];
    for (const id of ids) {
      const r = this.s.one.get(id) as CounterRow | undefined;
      if (r) out.push(r);
    }
    return out;
  }
}
