/**
 * Storage: bytes on disk per stored telemetry sample (table and its indexes, from SQLite's dbstat), and the size
 * a database reaches after 7 days of the reference fleet (923 terminals) at a 30 s interval.
 *
 * The hub's figure comes from samples sent through the hub by the reference fleet's terminals (so every column
 * the hub fills is filled); the baseline is the same number of rows batch-inserted straight into the same table.
 *
 * Goal (issue 10): under 150 bytes a sample.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Load } from '../lib/load.ts';
import { tmpDir } from '../lib/brokers.ts';
import { hubAvailable, registerTerminals, startHub } from '../lib/hub.ts';
import { BENCH_DIR, SERVER_CORE, hardTimeout, spawnNodeTs, stopChild, waitForLine } from '../lib/proc.ts';
import { Report, scale } from '../lib/report.ts';
import { fmt, ratio } from '../lib/stats.ts';
import { referenceFleet } from '../lib/fleet.ts';

const S = scale();
const FLEET = 923;
const PER_TERMINAL = Math.max(20, Math.round(200 * S));
const SAMPLES = FLEET * PER_TERMINAL;
const WEEK_SAMPLES = FLEET * 7 * 2880;

hardTimeout(15 * 60 * 1000, 'storage');
const report = new Report('storage', `Storage per telemetry sample (${fmt(SAMPLES)} samples from ${FLEET} terminals)`);

interface Usage {
  samples: number;
  /** The telemetry tables (samples and epoch keys) and their indexes. */
  telemetryBytes: number;
  /** Everything in the database file. */
  fileBytes: number;
  perObject: Array<{ name: string; bytes: number }>;
}

function usage(file: string): Usage {
  const db = new Database(file, { readonly: true });
  try {
    const objects = db
      .prepare(`SELECT d.name AS name, SUM(d.pgsize) AS bytes FROM dbstat d GROUP BY d.name ORDER BY bytes DESC`)
      .all() as Array<{ name: string; bytes: number }>;
    // The samples, their epoch keys, and every index on either (hub/src/store/schema.ts).
    const tables = db
      .prepare(`SELECT name, tbl_name AS tbl FROM sqlite_schema WHERE type IN ('table', 'index') AND tbl_name IN ('telemetry_samples', 'telemetry_epochs')`)
      .all() as Array<{ name: string; tbl: string }>;
    const mine = new Set(tables.map((t) => t.name));
    const samples = (db.prepare('SELECT COUNT(*) AS n FROM telemetry_samples').get() as { n: number }).n;
    return {
      samples,
      telemetryBytes: objects.filter((o) => mine.has(o.name)).reduce((a, o) => a + o.bytes, 0),
      fileBytes: fs.statSync(file).size,
      perObject: objects.filter((o) => mine.has(o.name)),
    };
  } finally {
    db.close();
  }
}

async function raw(): Promise<Usage> {
  const dir = tmpDir('storage-raw');
  try {
    const proc = spawnNodeTs(path.join(BENCH_DIR, 'servers/sqlite-raw.ts'), [dir, String(FLEET), '1000', '600000', String(SAMPLES)], { core: SERVER_CORE });
    await waitForLine(proc, (_l, j) => ((j as { msg?: string })?.msg === 'result' ? true : undefined), 600000, 'raw insert');
    await stopChild(proc);
    return usage(path.join(dir, 'raw.db'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function hub(): Promise<Usage> {
  const h = await startHub({ keepData: true });
  let load: Load | null = null;
  try {
    const creds = await registerTerminals(h, FLEET, referenceFleet());
    load = await Load.start({
      port: h.mqttPort,
      terminals: creds,
      processes: 4,
      keepalive: 60,
      presence: true,
      subscribeConfig: false,
      connectConcurrency: 50,
      connectTimeoutMs: 30000,
      readyTimeoutMs: 120000,
    });
    await load.run({ mode: 'flood', window: 1, durationMs: 600000, warmupMs: 0, maxMessages: SAMPLES }, 700000);
    await load.close('clean');
    load = null;
    await h.stop(); // a clean stop checkpoints the WAL into the database file
    return usage(path.join(h.dataDir, 'kiosk-fleet.db'));
  } finally {
    await load?.close('clean');
    await h.stop();
    fs.rmSync(h.dataDir, { recursive: true, force: true });
  }
}

const rows: Array<{ target: string; u: Usage }> = [];
process.stdout.write('storage: raw insert …\n');
rows.push({ target: 'raw insert, same table', u: await raw() });
if (hubAvailable()) {
  process.stdout.write('storage: hub …\n');
  try {
    rows.push({ target: 'hub', u: await hub() });
  } catch (err) {
    report.note(`hub: failed: ${(err as Error).message}`);
  }
} else report.note('hub not runnable yet (hub/bin/kiosk-fleet.mjs missing): hub row skipped');

const base = rows[0]!.u.telemetryBytes / rows[0]!.u.samples;
report.table({
  title: 'Bytes on disk per telemetry sample',
  columns: ['target', 'samples', 'telemetry + indexes MB', 'bytes / sample', 'vs raw insert', 'whole file MB', '7 days × 923 terminals @ 30 s, GB'],
  rows: rows.map(({ target, u }) => {
    const per = u.telemetryBytes / Math.max(1, u.samples);
    return [target, fmt(u.samples), fmt(u.telemetryBytes / 2 ** 20, 1), fmt(per, 0), ratio(per, base), fmt(u.fileBytes / 2 ** 20, 1), fmt((per * WEEK_SAMPLES) / 2 ** 30, 2)];
  }),
  notes: [
    `7 days of the reference fleet = ${fmt(WEEK_SAMPLES)} samples; the estimate is bytes/sample × that (rollups and other tables not included).`,
    ...rows.map(({ target, u }) => `${target}: ${u.perObject.map((o) => `${o.name} ${fmt(o.bytes / Math.max(1, u.samples), 0)} B`).join(', ')}`),
  ],
});
const h = rows.find((r) => r.target === 'hub');
if (h) {
  const per = h.u.telemetryBytes / Math.max(1, h.u.samples);
  report.goal({ what: 'bytes on disk per stored sample', target: '< 150', value: fmt(per), met: per < 150 });
}
report.save();
process.exit(0);
