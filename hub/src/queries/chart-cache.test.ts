import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Statement } from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { seededRandom } from '@kiosk-fleet/protocol';
import { openDatabase, type Db } from '../store/db.ts';
import { ChartCache } from './chart-cache.ts';
import { bucketsSql, sqliteChartSource, SqliteQueryStore } from './store.sqlite.ts';
import { BUCKET_FIELDS, type BucketField } from './store.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const BUCKETS = [MIN, 5 * MIN, 15 * MIN, HOUR];

describe('chart buckets kept between requests: always what the grouped SQL gives', () => {
  let dir: string;
  let db: Db;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-chart-'));
    db = openDatabase(dir).db;
  });
  afterAll(() => {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test.each([1, 2, 3])('randomised samples (seed %i): in order, late, on bucket edges, several epochs, pruned, gaps', async (seed) => {
    const rnd = seededRandom(seed);
    const int = (n: number) => Math.floor(rnd() * n);
    const T = `GZ-TH-001-${seed}`;
    const other = `GZ-TH-002-${seed}`;
    const addEpoch = db.prepare('INSERT INTO telemetry_epochs (terminal_id, epoch) VALUES (?, ?)');
    const epochs = [1, 2, 3].map((i) => Number(addEpoch.run(T, `e${seed}-${i}`).lastInsertRowid));
    const otherEpoch = Number(addEpoch.run(other, `o${seed}`).lastInsertRowid);
    const seqs = new Map<number, number>();
    const insert = db.prepare(
      `INSERT OR IGNORE INTO telemetry_samples (epoch_id, ts, seq, recv_delay, skewed, cpu, mem_used, mem_total, disk_used, disk_total, temp, uptime, pstat)
       VALUES (?, ?, ?, 40, 0, ?, ?, ?, ?, ?, ?, 1, 0)`,
    );
    const sample = (epochId: number, ts: number) => {
      const seq = (seqs.get(epochId) ?? 0) + 1;
      seqs.set(epochId, seq);
      // Whole scaled numbers as the codec writes them, and values that are not (KiB fractions, odd temperatures),
      // so that the averages depend on the order SQLite adds them in; a zero total (nullif) and missing temperatures.
      insert.run(
        epochId,
        ts,
        seq,
        int(10000),
        rnd() < 0.5 ? int(4_000_000) : rnd() * 4_000_000,
        rnd() < 0.03 ? 0 : 4_000_000 + int(3) * 0.25,
        rnd() * 1e8,
        rnd() < 0.03 ? 0 : 1e8,
        rnd() < 0.1 ? null : rnd() < 0.5 ? int(900) : rnd() * 900,
      );
    };
    let now = Date.parse('2026-11-26T00:00:00Z');
    const start = now - 26 * HOUR;
    // A day of history every 30 s in the first epoch, with a gap; the other terminal's samples beside it.
    db.transaction(() => {
      for (let ts = start; ts < now; ts += 30_000) {
        if (ts > start + 5 * HOUR && ts < start + 7 * HOUR) continue;
        sample(epochs[0]!, ts + int(1000));
        if (rnd() < 0.2) sample(otherEpoch, ts);
      }
    })();
    const cache = new ChartCache(sqliteChartSource(db), () => now);
    const plain = new Map<string, Statement>();
    const sql = (id: string, from: number, to: number, b: number, fields: BucketField[], limit: number) => {
      const key = fields.join(',');
      let st = plain.get(key);
      if (!st) plain.set(key, (st = db.prepare(bucketsSql(fields)).raw()));
      return st.all(b, b, id, from, to, limit);
    };
    const remove = db.prepare('DELETE FROM telemetry_samples WHERE epoch_id = ? AND ts >= ? AND ts < ?');
    let compared = 0;
    for (let step = 0; step < 300; step++) {
      // What happens between two requests.
      const what = rnd();
      if (what < 0.4) {
        now += int(90_000);
        sample(epochs[0]!, now - int(2000));
      } else if (what < 0.55) {
        // A replayed sample, late, in an old bucket (sometimes in another epoch: an outbox re-created).
        sample(epochs[int(3)]!, now - int(24 * HOUR));
      } else if (what < 0.65) {
        // Exactly on a bucket edge, or the millisecond before it.
        const b = BUCKETS[int(BUCKETS.length)]!;
        sample(epochs[int(2)]!, Math.floor((now - int(20 * HOUR)) / b) * b - int(2));
      } else if (what < 0.7) {
        // Pruned (retention, or a clock-skewed row going), and a sample landing in the same stretch.
        const at = now - int(24 * HOUR);
        remove.run(epochs[0]!, at, at + int(10 * MIN));
        if (rnd() < 0.5) sample(epochs[0]!, at + int(10 * MIN));
      } else if (what < 0.75) {
        sample(otherEpoch, now - int(24 * HOUR));
      }
      // The request: as the dashboard asks (the last 24 h up to now), or another range, another bucket, field list
      // or limit.
      const b = rnd() < 0.6 ? 5 * MIN : BUCKETS[int(BUCKETS.length)]!;
      const fields = rnd() < 0.5 ? (['cpuAvg', 'memPctAvg', 'diskPctAvg', 'tempAvg'] as BucketField[]) : BUCKET_FIELDS.filter(() => rnd() < 0.5);
      if (fields.length === 0) fields.push('samples');
      const r = rnd();
      const from = r < 0.6 ? now - 24 * HOUR : r < 0.8 ? Math.floor((now - int(25 * HOUR)) / b) * b : now - int(30 * HOUR);
      const to = r < 0.6 ? now : rnd() < 0.5 ? Math.min(now + HOUR, from + int(30 * HOUR)) : Math.floor(now / b) * b;
      const limit = rnd() < 0.9 ? 1000 : 1 + int(300);
      const got = await cache.rows(T, from, to, b, fields.join(','), fields.length, limit);
      const want = sql(T, from, to, b, fields, limit);
      expect(JSON.stringify(got)).toBe(JSON.stringify(want));
      expect(got).toEqual(want);
      compared += got.length;
    }
    expect(compared).toBeGreaterThan(10_000);
  }, 60_000);

  test('QueryStore: both response shapes from the kept buckets as from the grouped SQL', async () => {
    const T = 'GZ-TH-003-01';
    const e = Number(db.prepare('INSERT INTO telemetry_epochs (terminal_id, epoch) VALUES (?, ?)').run(T, 'q').lastInsertRowid);
    const ins = db.prepare(
      `INSERT INTO telemetry_samples (epoch_id, ts, seq, recv_delay, skewed, cpu, mem_used, mem_total, disk_used, disk_total, temp, uptime, pstat)
       VALUES (?, ?, ?, 40, 0, ?, ?, 8000000, ?, 1e8, ?, 1, 0)`,
    );
    const now = Date.now();
    let seq = 0;
    db.transaction(() => {
      for (let ts = now - 25 * HOUR; ts < now; ts += 30_000) ins.run(e, ts, ++seq, (seq * 37) % 10000, seq * 1.7, seq * 3.1, seq % 7 ? seq % 800 : null);
    })();
    const q = new SqliteQueryStore(db);
    const from = now - 24 * HOUR;
    const objects = db.prepare(bucketsSql(BUCKET_FIELDS));
    const rows = db.prepare(bucketsSql(['cpuAvg', 'tempMax'])).raw();
    for (let i = 0; i < 3; i++) {
      // A late sample in an old bucket between the second and the third request.
      if (i === 2) ins.run(e, from + 3 * HOUR + 7, ++seq, 9999, 1, 1, 1);
      expect(JSON.stringify(await q.telemetryBuckets(T, from, now, 5 * MIN, 1000))).toBe(JSON.stringify(objects.all(5 * MIN, 5 * MIN, T, from, now, 1000)));
      expect(await q.chartRows(T, from, now, 5 * MIN, ['cpuAvg', 'tempMax'], 1000)).toEqual(rows.all(5 * MIN, 5 * MIN, T, from, now, 1000));
    }
  });
});
