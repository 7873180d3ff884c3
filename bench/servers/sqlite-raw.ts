/**
 * Baseline: the storage ceiling. Telemetry rows for N interleaved terminals inserted into the hub's own telemetry
 * tables (same columns, encoding and indexes, taken from the hub's migrations) through one prepared statement,
 * one transaction per batch, WAL, synchronous NORMAL, exactly as the hub opens its database. No MQTT, no JSON
 * parsing, no validation: only what SQLite costs.
 *
 * argv: <dataDir> <terminals> <batchSize> <durationMs> <maxRows>. Prints one JSON line with the result.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { availableServices, EXAMPLES, type Telemetry } from '@kiosk-fleet/protocol';
import { encodeSample, SAMPLE_COLUMNS } from '../../hub/src/ingest/telemetry-codec.ts';
import { Histogram } from '../lib/stats.ts';
import { ROOT, exitWithParent } from '../lib/proc.ts';
import { newEpoch, syntheticIds } from '../lib/terminals.ts';

exitWithParent();
const [dataDir = '/tmp', nArg = '1000', batchArg = '1000', durArg = '10000', maxArg = '2000000'] = process.argv.slice(2);
const n = Number(nArg);
const batchSize = Number(batchArg);
const durationMs = Number(durArg);
const maxRows = Number(maxArg);

/** The hub's telemetry tables (hub/src/store/schema.ts): the samples and their epoch keys. */
const TABLES = ['telemetry_samples', 'telemetry_epochs'];

function telemetryDdl(): { ddl: string[]; source: string } {
  const dir = path.join(ROOT, 'hub/drizzle');
  // Replayed in migration order, dropped tables and indexes included, so the tables are the ones the hub ends up with.
  const tables = new Map<string, string>();
  const indexes = new Map<string, { table: string; sql: string }>();
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.sql')).sort()) {
    for (const s of fs.readFileSync(path.join(dir, f), 'utf8').split('--> statement-breakpoint')) {
      const t = s.replace(/^\s*(--[^\n]*\n\s*)*/, '').trim();
      const table = /^CREATE TABLE [`"]?(\w+)[`"]?\s*\(/i.exec(t);
      const ix = /^CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?[`"]?(\w+)[`"]? ON [`"]?(\w+)[`"]?\s*\(/i.exec(t);
      const dropIx = /^DROP INDEX (?:IF EXISTS )?[`"]?(\w+)[`"]?/i.exec(t);
      const dropTable = /^DROP TABLE (?:IF EXISTS )?[`"]?(\w+)[`"]?/i.exec(t);
      if (table) tables.set(table[1]!, t);
      else if (ix) indexes.set(ix[1]!, { table: ix[2]!, sql: t });
      else if (dropIx) indexes.delete(dropIx[1]!);
      else if (dropTable) {
        tables.delete(dropTable[1]!);
        for (const [name, i] of indexes) if (i.table === dropTable[1]) indexes.delete(name);
      }
    }
  }
  const ddl = [
    ...TABLES.map((name) => tables.get(name)),
    ...[...indexes.values()].filter((i) => TABLES.includes(i.table)).map((i) => i.sql),
  ];
  if (ddl.some((x) => x === undefined)) throw new Error(`hub/drizzle does not create ${TABLES.join(', ')}`);
  return { ddl: ddl as string[], source: 'hub/drizzle migrations' };
}

fs.mkdirSync(dataDir, { recursive: true });
const file = path.join(dataDir, 'raw.db');
const db = new Database(file);
db.pragma('auto_vacuum = INCREMENTAL');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 10000'); // as hub/src/store/db.ts
const { ddl, source } = telemetryDdl();
for (const s of ddl) db.exec(s);

// The same row as the hub writes for the same sample: its own encoder (hub/src/ingest/telemetry-codec.ts).
const insert = db.prepare(
  `INSERT INTO telemetry_samples (epoch_id, ts, seq, recv_delay, skewed, ${SAMPLE_COLUMNS}) VALUES (?, ?, ?, 0, 0, ${SAMPLE_COLUMNS.replace(/\w+/g, '?')})`,
);
const ids = syntheticIds(n);
const insEpoch = db.prepare('INSERT INTO telemetry_epochs (terminal_id, epoch) VALUES (?, ?)');
const epochs = db.transaction(() => ids.map((id) => Number(insEpoch.run(id, newEpoch()).lastInsertRowid)))();
const seqs = new Array<number>(n).fill(0);
const sample = EXAMPLES.telemetry as unknown as Telemetry;
// What the hub derives for an ID-card machine sending this sample (it lacks the fingerprint scanner and touchscreen).
const services = availableServices('id-card', Object.fromEntries(Object.entries(sample.peripherals).map(([k, p]) => [k, p.status])), sample.app?.up);
const cols = encodeSample(sample, services);
const writeBatch = db.transaction((count: number, start: number) => {
  const now = Date.now();
  for (let k = 0; k < count; k++) {
    const i = (start + k) % n;
    seqs[i]!++;
    insert.run(epochs[i], now, seqs[i], ...cols);
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
