/**
 * Baseline: the PostgreSQL storage ceiling (issue 18). Telemetry rows for N interleaved terminals written into the
 * hub's own telemetry tables (its migrations: telemetry_epochs + telemetry_samples partitioned by day) the fastest way
 * the issue measured here: per batch of 1,000 rows one transaction of COPY into a temp table and
 * `INSERT … SELECT … ON CONFLICT DO NOTHING` into the table, on 2 connections at once (46k rows/s on one, 71k on
 * two, 21-column rows). The rows are the hub's encoding of the same sample (its own encoder). No MQTT, no JSON
 * parsing, no validation: only what PostgreSQL costs, with every commit durable (the server's defaults).
 *
 * argv: <databaseUrl> <terminals> <batchSize> <durationMs> <maxRows> <connections>. Prints `{"msg":"started"}` once
 * connected and set up, then one JSON line with the result, then waits for SIGTERM.
 */
import { availableServices, EXAMPLES, type Telemetry } from '@kiosk-fleet/protocol';
import { encodeSample, SAMPLE_COLUMNS } from '../../hub/src/store/telemetry-codec.ts';
import { Histogram } from '../lib/stats.ts';
import { exitWithParent } from '../lib/proc.ts';
import { benchClient, copyInto, copyLine } from '../lib/postgres.ts';
import { newEpoch, syntheticIds } from '../lib/terminals.ts';

exitWithParent();
const [url = '', nArg = '1000', batchArg = '1000', durArg = '10000', maxArg = '2000000', connArg = '2'] = process.argv.slice(2);
if (!url) throw new Error('usage: pg-raw.ts <databaseUrl> <terminals> <batchSize> <durationMs> <maxRows> <connections>');
const n = Number(nArg);
const batchSize = Number(batchArg);
const durationMs = Number(durArg);
const maxRows = Number(maxArg);
const connections = Number(connArg);

const COLS = `epoch_id, ts, seq, recv_delay, skewed, ${SAMPLE_COLUMNS}`;
const ids = syntheticIds(n);
const setup = benchClient(url);
// Epoch keys numbered as the hub's PostgreSQL store numbers them (telemetry_epochs.id has no sequence).
const keyRows = await setup<Array<{ id: number; terminal_id: string }>>`
  insert into telemetry_epochs (id, terminal_id, epoch)
  select (select coalesce(max(id), 0) from telemetry_epochs) + row_number() over (), v.t, v.e
  from unnest(${ids}::text[], ${ids.map(() => newEpoch())}::text[]) as v(t, e)
  returning id, terminal_id`;
await setup.end({ timeout: 2 });
const keyOf = new Map(keyRows.map((r) => [r.terminal_id, r.id]));
const epochs = ids.map((id) => keyOf.get(id)!);
const seqs = new Array<number>(n).fill(0);
const sample = EXAMPLES.telemetry as unknown as Telemetry;
// What the hub derives for an ID-card machine sending this sample (it lacks the fingerprint scanner and touchscreen).
const services = availableServices('id-card', Object.fromEntries(Object.entries(sample.peripherals).map(([k, p]) => [k, p.status])), sample.app?.up);
// The same sample each time: its columns after the keys, in COPY's text format once.
const tail = copyLine(encodeSample(sample, services));

const writers = await Promise.all(
  Array.from({ length: connections }, async () => {
    const sql = benchClient(url);
    // One temp table per connection, emptied by every commit.
    await sql.unsafe('CREATE TEMP TABLE kf_samples_in (LIKE telemetry_samples INCLUDING DEFAULTS) ON COMMIT DELETE ROWS');
    return sql;
  }),
);
process.stdout.write(`${JSON.stringify({ msg: 'started' })}\n`);

const lag = new Histogram();
let rows = 0;
let inserted = 0;
let maxBatchMs = 0;
const t0 = performance.now();
const end = t0 + durationMs;

async function writeLoop(sql: (typeof writers)[number]): Promise<void> {
  while (performance.now() < end && rows < maxRows) {
    const b0 = performance.now();
    // Rows are made synchronously, so the connections take turns over one interleaved stream of terminals.
    const now = Date.now();
    const start = rows;
    rows += batchSize;
    let text = '';
    for (let k = 0; k < batchSize; k++) {
      const i = (start + k) % n;
      const seq = seqs[i]! + 1;
      seqs[i] = seq;
      text += `${epochs[i]}\t${now}\t${seq}\t0\t0\t${tail}`;
    }
    const done = await sql.begin(async (tx) => {
      await copyInto(tx, 'kf_samples_in', COLS, text);
      return (await tx.unsafe(`INSERT INTO telemetry_samples (${COLS}) SELECT ${COLS} FROM kf_samples_in ON CONFLICT DO NOTHING`)).count;
    });
    inserted += done;
    const ms = performance.now() - b0;
    if (ms > maxBatchMs) maxBatchMs = ms;
    // Every row of a batch waits for the batch's commit: its lag is somewhere between 0 and the batch's time.
    for (let k = 0; k < batchSize; k++) lag.record(ms * ((k + 1) / batchSize));
  }
}

await Promise.all(writers.map(writeLoop));
const elapsed = (performance.now() - t0) / 1000;
process.stdout.write(`${JSON.stringify({ msg: 'result', rows: inserted, seconds: elapsed, rate: inserted / elapsed, maxBatchMs, connections, hist: lag.toJSON() })}\n`);
// The connections stay open until the parent stops this process: their backends' CPU is read after the result, and
// an ended backend's is gone from /proc.
process.once('SIGTERM', () => void Promise.all(writers.map((w) => w.end({ timeout: 2 }))).finally(() => process.exit(0)));
