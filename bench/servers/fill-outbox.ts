/**
 * Fills a terminal's on-disk outbox with N telemetry messages, as a terminal cut off from the hub for a long time
 * would have it: the agent's own SqliteOutbox creates the file (schema, epoch), then the rows go in through one
 * transaction (the agent's one-fsync-per-append would take minutes for 100,000 and is not what is measured).
 *
 * argv: <outbox file> <count>. Prints `{"msg":"filled","count":N,"bytes":B}`.
 */
import Database from 'better-sqlite3';
import { EXAMPLES } from '@kiosk-fleet/protocol';
import { SqliteOutbox } from '../../agent/src/outbox/sqlite.ts';

const [file = '', countArg = '100000'] = process.argv.slice(2);
const count = Number(countArg);
const ob = new SqliteOutbox(file, { maxBytes: 1e10, maxAgeMs: 365 * 86400_000 });
const epoch = ob.epoch;
ob.close();

const db = new Database(file);
const { v: _v, epoch: _e, seq: _s, ts: _t, ...body } = EXAMPLES.telemetry;
const insert = db.prepare('INSERT INTO messages (kind, seq, payload, bytes, created_at) VALUES (?, ?, ?, ?, ?)');
let bytes = 0;
const now = Date.now();
db.transaction(() => {
  for (let seq = 1; seq <= count; seq++) {
    // Made over the last hour (the outbox's age limit must not expire them before the replay).
    const at = now - Math.round(((count - seq) / count) * 3600_000);
    const payload = JSON.stringify({ ...body, v: 1, epoch, seq, ts: new Date(at).toISOString() });
    bytes += Buffer.byteLength(payload);
    insert.run('telemetry', seq, payload, Buffer.byteLength(payload), at);
  }
  db.prepare('INSERT INTO streams (kind, last_seq) VALUES (?, ?) ON CONFLICT (kind) DO UPDATE SET last_seq = excluded.last_seq').run('telemetry', count);
})();
db.pragma('wal_checkpoint(TRUNCATE)');
db.close();
process.stdout.write(`${JSON.stringify({ msg: 'filled', count, bytes })}\n`);
