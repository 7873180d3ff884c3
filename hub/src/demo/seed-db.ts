/**
 * Where demo-seed's rows go, per engine. seed.ts makes the rows (engine-neutral arrays in each table's column order);
 * a SeedDb writes them in bulk: on SQLite through prepared statements inside one transaction per phase, as the seed
 * always did (one connection, no hub running: the fastest path there); on PostgreSQL in batches of `unnest` inserts
 * (see insertRows for why not COPY), after making the daily partitions of the month, so that nothing of it lands in
 * the DEFAULT partition (where its days could no longer get partitions of their own).
 */
import type { Sql } from 'postgres';
import type { Engine } from '../db/engine.ts';
import { ensureDailyPartitions, PARTITIONED_TABLES } from '../db/postgres/partitions.ts';
import type { Db } from '../store/db.ts';
import { SAMPLE_COLUMNS } from '../store/telemetry-codec.ts';
import { EpochKeys } from '../store/telemetry-keys.ts';

/** The tables the seed fills row by row, with their columns in the order of the rows it makes. */
export const SEED_TABLES = {
  rollups_hourly: [
    'terminal_id', 'hour', 'samples', 'cpu_min', 'cpu_avg', 'cpu_max', 'mem_pct_min', 'mem_pct_avg', 'mem_pct_max',
    'disk_pct_min', 'disk_pct_avg', 'disk_pct_max', 'temp_min', 'temp_avg', 'temp_max', 'peripheral_ok', 'services',
  ],
  telemetry_samples: ['epoch_id', 'ts', 'seq', 'recv_delay', 'skewed', ...SAMPLE_COLUMNS.split(/\s*,\s*/)],
  streams: ['terminal_id', 'stream', 'epoch', 'first_seq', 'max_seq', 'count', 'last_at'],
  presence_transitions: ['terminal_id', 'at', 'from_state', 'to_state', 'reason', 'boot_id', 'conn_seq', 'address'],
  events: ['terminal_id', 'epoch', 'seq', 'ts', 'received_at', 'skewed', 'kind', 'severity', 'peripheral', 'code', 'message', 'data'],
  maintenance: ['target_kind', 'target_id', 'node_id', 'reason', 'starts_at', 'ends_at', 'created_by', 'created_at'],
} as const;
export type SeedTable = keyof typeof SEED_TABLES;
export type Row = (string | number | null)[];

export const ALERT_COLUMNS = [
  'open_key', 'subject_kind', 'subject_id', 'node_id', 'rule', 'severity', 'state', 'title', 'details', 'opened_at', 'last_seen_at', 'due_at',
  'acknowledged_at', 'acknowledged_by', 'assigned_to', 'assigned_at', 'resolved_at', 'resolved_by', 'resolution', 'resolution_note', 'updated_at',
] as const;
/** alert_history's columns after `alert_id`. */
export const ALERT_HISTORY_COLUMNS = ['at', 'actor', 'action', 'note', 'data'] as const;

/** An alert (ALERT_COLUMNS) and its history rows (ALERT_HISTORY_COLUMNS), which get its id when written. */
export interface SeedAlert {
  alert: Row;
  history: Row[];
}

export interface RowSink {
  add(row: Row): void;
  /** Lets buffered rows go out when enough have gathered; await it between terminals. */
  tick(): Promise<void> | void;
}

export interface SeedDb {
  readonly engine: Engine;
  /** The first history table (of `tables`) that holds a row, or null. */
  firstNonEmpty(tables: readonly string[]): Promise<string | null>;
  activeTerminals(): Promise<{ id: string; type: string; station: string }[]>;
  /** Runs `fn` with sinks for the tables it fills; every row is written when it resolves (SQLite: one transaction). */
  phase<T>(fn: (sink: (table: SeedTable) => RowSink) => Promise<T>): Promise<T>;
  /** The telemetry_epochs key of `epoch` for each terminal, made now (the database has no telemetry yet). */
  epochKeys(terminalIds: readonly string[], epoch: string): Promise<number[]>;
  /** Terminals, nodes and placements that are younger than `at` are dated `at` (installed before the month). */
  installedBy(at: number): Promise<void>;
  /** Each terminal offline since `at` because the hub stopped (its terminal_state row made if missing). */
  offlineSince(terminalIds: readonly string[], at: number): Promise<void>;
  alerts(alerts: readonly SeedAlert[]): Promise<void>;
  setMeta(key: string, value: string): Promise<void>;
  /** PostgreSQL: the daily partitions of telemetry and events for [from, to]. */
  partitions(from: number, to: number): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------- SQLite

/** The statements the seed ran before it wrote PostgreSQL too, one per table (the same rows go in). */
const SQLITE_INSERT: Record<SeedTable, string> = {
  rollups_hourly: `INSERT OR REPLACE INTO rollups_hourly (${SEED_TABLES.rollups_hourly.join(', ')}) VALUES (${SEED_TABLES.rollups_hourly.map(() => '?').join(', ')})`,
  telemetry_samples: `INSERT OR IGNORE INTO telemetry_samples (${SEED_TABLES.telemetry_samples.join(', ')}) VALUES (${SEED_TABLES.telemetry_samples.map(() => '?').join(', ')})`,
  streams: `INSERT OR REPLACE INTO streams (${SEED_TABLES.streams.join(', ')}) VALUES (${SEED_TABLES.streams.map(() => '?').join(', ')})`,
  presence_transitions: `INSERT INTO presence_transitions (${SEED_TABLES.presence_transitions.join(', ')}) VALUES (${SEED_TABLES.presence_transitions.map(() => '?').join(', ')})`,
  events: `INSERT INTO events (${SEED_TABLES.events.join(', ')}) VALUES (${SEED_TABLES.events.map(() => '?').join(', ')})`,
  maintenance: `INSERT INTO maintenance (${SEED_TABLES.maintenance.join(', ')}) VALUES (${SEED_TABLES.maintenance.map(() => '?').join(', ')})`,
};

export function sqliteSeedDb(db: Db): SeedDb {
  const statements = new Map<SeedTable, { run(...params: unknown[]): unknown }>();
  const insert = (t: SeedTable) => {
    let st = statements.get(t);
    if (!st) statements.set(t, (st = db.prepare(SQLITE_INSERT[t])));
    return st;
  };
  return {
    engine: { kind: 'sqlite', db },
    async firstNonEmpty(tables) {
      return tables.find((t) => db.prepare(`SELECT 1 FROM ${t} LIMIT 1`).get() !== undefined) ?? null;
    },
    async activeTerminals() {
      return db.prepare("SELECT id, type, station_id AS station FROM terminals WHERE state = 'active' ORDER BY id").all() as { id: string; type: string; station: string }[];
    },
    async phase(fn) {
      // One transaction per phase, as before: nothing else uses the file (the data dir's lock is held).
      db.exec('BEGIN');
      try {
        const out = await fn((t) => {
          const st = insert(t);
          return { add: (row) => void st.run(...row), tick: () => undefined };
        });
        db.exec('COMMIT');
        return out;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    },
    async epochKeys(ids, epoch) {
      const keys = new EpochKeys(db);
      const tx = {};
      return db.transaction(() => ids.map((id) => keys.key(id, epoch, tx)))();
    },
    async installedBy(at) {
      db.transaction(() => {
        db.prepare('UPDATE terminals SET created_at = min(created_at, ?)').run(at);
        db.prepare('UPDATE nodes SET created_at = min(created_at, ?)').run(at);
        db.prepare('UPDATE placements SET at = min(at, ?)').run(at);
      })();
    },
    async offlineSince(ids, at) {
      const make = db.prepare('INSERT OR IGNORE INTO terminal_state (terminal_id) VALUES (?)');
      const set = db.prepare("UPDATE terminal_state SET presence = 'offline', presence_reason = 'hub-restart', presence_since = ?, last_seen_at = ? WHERE terminal_id = ?");
      db.transaction(() => {
        for (const id of ids) {
          make.run(id);
          set.run(at, at, id);
        }
      })();
    },
    async alerts(alerts) {
      const insertAlert = db
        .prepare(`INSERT INTO alerts (${ALERT_COLUMNS.join(', ')}) VALUES (${ALERT_COLUMNS.map(() => '?').join(', ')}) RETURNING id`)
        .pluck();
      const insertHistory = db.prepare(`INSERT INTO alert_history (alert_id, ${ALERT_HISTORY_COLUMNS.join(', ')}) VALUES (?, ?, ?, ?, ?, ?)`);
      db.transaction(() => {
        for (const a of alerts) {
          const id = insertAlert.get(...a.alert) as number;
          for (const h of a.history) insertHistory.run(id, ...h);
        }
      })();
    },
    async setMeta(key, value) {
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
    },
    async partitions() {},
  };
}

// ---------------------------------------------------------------------------------------------------- PostgreSQL

/** Rows per statement: a few MB of parameters, one round trip's worth of work for the server. */
const INSERT_BATCH = 10_000;

/**
 * Rows into `table` as one `INSERT … SELECT FROM unnest(…)`: a text array per column, cast to the column's type by
 * the server. Not COPY, though it is faster (46k against 36k rows/s on one connection here): postgres.js 3.4 never
 * settles a COPY FROM STDIN that the server refuses after the last byte (a bad value: the error goes to a query
 * already resolved with the stream), so a seed with one bad row would hang instead of failing.
 */
async function insertRows(sql: Sql, types: Map<string, string>, table: string, columns: readonly string[], rows: readonly Row[]): Promise<void> {
  for (let at = 0; at < rows.length; at += INSERT_BATCH) {
    const batch = rows.slice(at, at + INSERT_BATCH);
    const arrays = columns.map((_, c) => batch.map((r) => (r[c] === null || r[c] === undefined ? null : String(r[c]))));
    const cast = columns.map((c, k) => {
      const type = types.get(`${table}.${c}`);
      if (!type) throw new Error(`${table}.${c}: no such column on PostgreSQL`);
      return `c${k}::${type}`;
    });
    await sql.unsafe(
      `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) SELECT ${cast.join(', ')} FROM unnest(${columns.map((_, k) => `$${k + 1}::text[]`).join(', ')}) AS u(${columns.map((_, k) => `c${k}`).join(', ')})`,
      arrays as never[],
    );
  }
}

/** Each column's type (`table.column` → `bigint`, `text`, …), for the casts of insertRows. */
async function columnTypes(sql: Sql): Promise<Map<string, string>> {
  const rows = await sql<{ t: string; c: string; type: string }[]>`
    select table_name as t, column_name as c, format_type(a.atttypid, a.atttypmod) as type
    from information_schema.columns i
    join pg_attribute a on a.attrelid = format('%I.%I', i.table_schema, i.table_name)::regclass and a.attname = i.column_name
    where i.table_schema = 'public'`;
  return new Map(rows.map((r) => [`${r.t}.${r.c}`, r.type]));
}

export function postgresSeedDb(sql: Sql, engine: Engine): SeedDb {
  let types: Map<string, string> | null = null;
  const writeRows = async (q: Sql, table: string, columns: readonly string[], rows: readonly Row[]) => {
    types ??= await columnTypes(sql);
    await insertRows(q, types, table, columns, rows);
  };
  return {
    engine,
    async firstNonEmpty(tables) {
      for (const t of tables) {
        const [row] = await sql<{ any: boolean }[]>`select exists (select 1 from ${sql(t)}) as any`;
        if (row?.any) return t;
      }
      return null;
    },
    async activeTerminals() {
      // Byte order, as SQLite sorts: the per-terminal random draws follow this order.
      return sql<{ id: string; type: string; station: string }[]>`
        select id, type, station_id as station from terminals where state = 'active' order by id collate "C"`;
    },
    async phase(fn) {
      const buffers = new Map<SeedTable, Row[]>();
      // One batch in flight per table while the next one is made (the pool has two connections): batches of one
      // table still go in order, so identity ids follow the rows' order as on SQLite.
      const inflight = new Map<SeedTable, Promise<void>>();
      const flush = async (t: SeedTable) => {
        await inflight.get(t);
        const rows = buffers.get(t)!;
        buffers.set(t, []);
        if (rows.length === 0) return;
        const p = writeRows(sql, t, SEED_TABLES[t], rows);
        p.catch(() => {}); // awaited by the next flush of the table or at the end; not an unhandled rejection meanwhile
        inflight.set(t, p);
      };
      const out = await fn((t) => {
        if (!buffers.has(t)) buffers.set(t, []);
        return {
          add: (row) => void buffers.get(t)!.push(row),
          tick: async () => {
            if (buffers.get(t)!.length >= INSERT_BATCH) await flush(t);
          },
        };
      }).catch(async (err: unknown) => {
        await Promise.allSettled(inflight.values());
        throw err;
      });
      for (const t of buffers.keys()) await flush(t);
      for (const p of inflight.values()) await p;
      return out;
    },
    async epochKeys(ids, epoch) {
      // telemetry_epochs.id has no sequence on PostgreSQL (the ingest allots keys); no hub runs and there is no
      // telemetry yet, so the keys continue after the highest one, in the terminals' order, as SQLite's rowids do.
      const [row] = await sql<{ max: number }[]>`select coalesce(max(id), 0)::bigint as max from telemetry_epochs`;
      const keys = ids.map((_, i) => row!.max + 1 + i);
      await sql`
        insert into telemetry_epochs (id, terminal_id, epoch)
        select * from unnest(${keys}::bigint[], ${ids as string[]}::text[], array_fill(${epoch}::text, array[${ids.length}::int]))`;
      return keys;
    },
    async installedBy(at) {
      await sql.begin(async (tx) => {
        await tx`update terminals set created_at = least(created_at, ${at})`;
        await tx`update nodes set created_at = least(created_at, ${at})`;
        await tx`update placements set at = least(at, ${at})`;
      });
    },
    async offlineSince(ids, at) {
      await sql`
        insert into terminal_state (terminal_id, presence, presence_reason, presence_since, last_seen_at)
        select id, 'offline', 'hub-restart', ${at}::bigint, ${at}::bigint from unnest(${ids as string[]}::text[]) as id
        on conflict (terminal_id) do update set presence = 'offline', presence_reason = 'hub-restart',
          presence_since = excluded.presence_since, last_seen_at = excluded.last_seen_at`;
    },
    async alerts(alerts) {
      if (alerts.length === 0) return;
      await sql.begin(async (tx) => {
        // Ids taken from the alerts' own sequence, so the hub's next alert continues after them.
        const ids = (await tx<{ id: number }[]>`select nextval(pg_get_serial_sequence('alerts', 'id'))::bigint as id from generate_series(1, ${alerts.length}::int)`).map((r) => r.id);
        await writeRows(tx as unknown as Sql, 'alerts', ['id', ...ALERT_COLUMNS], alerts.map((a, i) => [ids[i]!, ...a.alert]));
        await writeRows(tx as unknown as Sql, 'alert_history', ['alert_id', ...ALERT_HISTORY_COLUMNS], alerts.flatMap((a, i) => a.history.map((h) => [ids[i]!, ...h])));
      });
    },
    async setMeta(key, value) {
      await sql`insert into meta (key, value) values (${key}, ${value}) on conflict (key) do update set value = excluded.value`;
    },
    async partitions(from, to) {
      for (const t of PARTITIONED_TABLES) await ensureDailyPartitions(sql, t, from, to);
    },
  };
}
