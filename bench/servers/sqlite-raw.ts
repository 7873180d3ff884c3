/**
 * Baseline: the storage ceiling. Telemetry rows for N interleaved terminals inserted into the hub's own telemetry
 * table (same columns and indexes, taken from the hub's migrations when present) through one prepared statement,
 * one transaction per batch, WAL, synchronous NORMAL, exactly as the hub opens its database. No MQTT, no JSON
 * parsing, no validation: only what SQLite costs.
 *
 * argv: <dataDir> <terminals> <batchSize> <durationMs> <maxRows>. Prints one JSON line with the result.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { EXAMPLES } from '@kiosk-fleet/protocol';
import { Histogram } from '../lib/stats.ts';
import { ROOT, exitWithParent } from '../lib/proc.ts';
import { newEpoch, syntheticIds } from '../lib/terminals.ts';

exitWithParent();
const [dataDir = '/tmp', nArg = '1000', batchArg = '1000', durArg = '10000', maxArg = '2000000'] = process.argv.slice(2);
const n = Number(nArg);
const batchSize = Number(batchArg);
const durationMs = Number(durArg);
const maxRows = Number(maxArg);

// Mirrors hub/src/store/schema.ts `telemetry` as of this writing; replaced by the migration's DDL when there is one.
const FALLBACK_DDL = [
  `CREATE TABLE telemetry (id integer PRIMARY KEY AUTOINCREMENT NOT NULL, terminal_id text NOT NULL, epoch text NOT NULL,
    seq integer NOT NULL, ts integer NOT NULL, received_at integer NOT NULL, skewed integer DEFAULT 0 NOT NULL, cpu real NOT NULL,
    mem_used real NOT NULL, mem_total real NOT NULL, disk_used real NOT NULL, disk_total real NOT NULL, temp_c real,
    uptime real NOT NULL, peripherals text NOT NULL, app text, services text)`,
  'CREATE UNIQUE INDEX telemetry_once ON telemetry (terminal_id, epoch, seq)',
  'CREATE INDEX telemetry_time ON telemetry (terminal_id, received_at)',
  'CREATE INDEX telemetry_received ON telemetry (received_at)',
];

function telemetryDdl(): { ddl: string[]; source: string } {
  const dir = path.join(ROOT, 'hub/drizzle');
  if (!fs.existsSync(dir)) return { ddl: FALLBACK_DDL, source: 'bench copy of hub/src/store/schema.ts' };
  // Replayed in migration order, dropped indexes included, so the table is the one the hub ends up with.
  const stmts: string[] = [];
  const created = new Map<string, number>(); // index name → position in stmts
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.sql')).sort()) {
    for (const s of fs.readFileSync(path.join(dir, f), 'utf8').split('--> statement-breakpoint')) {
      const t = s.trim();
      const ix = /^CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?[`"]?(\w+)[`"]? ON [`"]?telemetry[`"]?\s*\(/i.exec(t);
      const drop = /^DROP INDEX (?:IF EXISTS )?[`"]?(\w+)[`"]?/i.exec(t);
      if (/^CREATE TABLE [`"]?telemetry[`"]?\s*\(/i.test(t)) stmts.push(t);
      else if (ix) {
        created.set(ix[1]!, stmts.length);
        stmts.push(t);
      } else if (drop && created.has(drop[1]!)) {
        stmts[created.get(drop[1]!)!] = '';
        created.delete(drop[1]!);
      }
    }
  }
  const ddl = stmts.filter(Boolean);
  return ddl.length ? { ddl, source: 'hub/drizzle migrations' } : { ddl: FALLBACK_DDL, source: 'bench copy of hub/src/store/schema.ts' };
}

fs.mkdirSync(dataDir, { recursive: true });
const file = path.join(dataDir, 'raw.db');
const db = new Database(file);
db.pragma('auto_vacuum = INCREMENTAL');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
const { ddl, source } = telemetryDdl();
for (const s of ddl) db.exec(s);

const insert = db.prepare(
  `INSERT INTO telemetry (terminal_id, epoch, seq, ts, received_at, skewed, cpu, mem_used, mem_total, disk_used, disk_total, temp_c, uptime, peripherals, app, services)
   VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
);
const ids = syntheticIds(n);
const epochs = ids.map(() => newEpoch());
const seqs = new Array<number>(n).fill(0);
const h = EXAMPLES.telemetry.host;
const peripherals = JSON.stringify(EXAMPLES.telemetry.peripherals);
const app = JSON.stringify(EXAMPLES.telemetry.app);
const services = JSON.stringify(['id-card-apply', 'id-card-collect']);
const writeBatch = db.transaction((count: number, start: number) => {
  const now = Date.now();
  for (let k = 0; k < count; k++) {
    const i = (start + k) % n;
    seqs[i]!++;
    insert.run(ids[i], epochs[i], seqs[i], now, now, h.cpu, h.memUsed, h.memTotal, h.diskUsed, h.diskTotal, h.tempC, h.uptime, peripherals, app, services);
  }
});

const lag = new Histogram();
let rows = 0;
let maxBatchMs = 0;
const t0 = performance.now();
const end = t0 + durationMs;
while (performance.now() < end && rows < maxRows) {
  const b0 = performance.now();
  writeBatch(batchSize, rows);
  const ms = performance.now() - b0;
  if (ms > maxBatchMs) maxBatchMs = ms;
  // Every row of a batch waits for the batch's commit: its lag is somewhere between 0 and the batch's time.
  for (let k = 0; k < batchSize; k++) lag.record(ms * ((k + 1) / batchSize));
  rows += batchSize;
}
const elapsed = (performance.now() - t0) / 1000;
db.close();
const bytes = ['', '-wal', '-shm'].reduce((a, s) => a + (fs.existsSync(file + s) ? fs.statSync(file + s).size : 0), 0);
process.stdout.write(
  `${JSON.stringify({ msg: 'result', rows, seconds: elapsed, rate: rows / elapsed, maxBatchMs, bytes, ddlSource: source, hist: lag.toJSON() })}\n`,
);
