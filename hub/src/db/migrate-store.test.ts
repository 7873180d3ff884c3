/**
 * `kiosk-fleet migrate-store`: a populated SQLite installation (the reference fleet, a week of one terminal's samples
 * and events, a user, a config layer, a maintenance window, the audit chain) copied by the real CLI into an empty
 * PostgreSQL database, every table compared; refused on a non-empty target and beside a running hub.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { parseFleetJson } from '../fleet/import.ts';
import { dbPath } from '../store/db.ts';
import { startTestHub, until, type TestHub } from '../test-support.ts';
import { createTestDatabase } from './postgres/test-server.ts';
import { parseDatabaseUrl } from './url.ts';

const pgUrl = inject('pgUrl');
const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'kiosk-fleet.mjs');
const FLEET = path.resolve(import.meta.dirname, '..', '..', '..', 'fixtures', 'guangzhou-fleet.json');

function cli(args: string[], dataDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, KF_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe.skipIf(!pgUrl)('migrate-store', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-migrate-'));
  let target: Awaited<ReturnType<typeof createTestDatabase>>;
  let hub: TestHub | null = null;
  const WEEK = 7 * 86_400_000;
  /** What the SQLite hub answered, by path, before the move. */
  const before = new Map<string, string>();
  /** A user's questions: the city summary, lists, a terminal, its charts and events, users, config, maintenance. */
  const answerPaths = (id: string, from: number) => [
    '/api/v1/nodes/GZ/summary',
    '/api/v1/nodes/GZ-YX/summary',
    '/api/v1/terminals?limit=100',
    '/api/v1/terminals?node=GZ-YX&limit=20',
    `/api/v1/terminals/${id}`,
    `/api/v1/terminals/${id}/telemetry?from=${new Date(from).toISOString()}&bucket=1h`,
    `/api/v1/terminals/${id}/telemetry?from=${new Date(from).toISOString()}&to=${new Date(from + 86_400_000).toISOString()}`,
    `/api/v1/terminals/${id}/events`,
    '/api/v1/users',
    '/api/v1/config/nodes/GZ-YX',
    '/api/v1/maintenance',
    '/api/v1/alerts?state=open',
  ];
  let answeredFrom = { id: '', start: 0 };
  const SAMPLES = 7 * 24 * 4; // every 15 min for a week

  beforeAll(async () => {
    target = await createTestDatabase(pgUrl!);
    hub = await startTestHub({}, dir, { engine: 'sqlite' }); // the SQLite installation to move
    const fleet = await hub.importFleet(parseFleetJson(JSON.parse(fs.readFileSync(FLEET, 'utf8'))), 'test');
    const t = fleet.terminals.created[0]!;
    const c = await hub.connect(t.id, t.secret);
    const start = Date.now() - WEEK;
    answeredFrom = { id: t.id, start };
    const epoch = 'epochMIGR01';
    for (let i = 0; i < SAMPLES; i += 64) {
      const batch = [];
      for (let seq = i + 1; seq <= Math.min(i + 64, SAMPLES); seq++) {
        const ts = new Date(start + (seq - 1) * 15 * 60_000).toISOString();
        batch.push(c.publishAsync(topicFor(t.id, 'telemetry'), JSON.stringify({ ...EXAMPLES.telemetry, epoch, seq, ts }), { qos: 1 }));
      }
      await Promise.all(batch);
    }
    for (let seq = 1; seq <= 20; seq++) {
      const ts = new Date(start + seq * 3_600_000).toISOString();
      await c.publishAsync(topicFor(t.id, 'events'), JSON.stringify({ ...EXAMPLES.events, epoch, seq, ts }), { qos: 1 });
    }
    expect((await hub.api('/api/v1/users', { method: 'POST', json: { username: 'tech-yx', role: 'technician', nodeId: 'GZ-YX' } })).status).toBe(201);
    expect((await hub.api('/api/v1/config/nodes/GZ-YX', { method: 'PUT', json: { config: { logLevel: 'debug' }, expectedVersion: 0 } })).status).toBe(200);
    const now = Date.now();
    const mw = await hub.api('/api/v1/maintenance', {
      method: 'POST',
      json: { nodeId: 'GZ-YX-001', reason: 'new floor', startsAt: new Date(now).toISOString(), endsAt: new Date(now + 3_600_000).toISOString() },
    });
    expect(mw.status).toBe(201);
    c.end(true);
    await hub.stop();
    hub = null;
  }, 120_000);

  afterAll(async () => {
    await hub?.stop();
    await target?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses while a hub serves the data dir', async () => {
    const running = await startTestHub({}, dir, { engine: 'sqlite' });
    try {
      const r = await cli(['migrate-store', '--to', target.url], dir);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/a hub \(pid \d+\) is running on .*stop it first/);
    } finally {
      await running.stop();
    }
  }, 60_000);

  it('copies every table with progress and a per-table count check, then refuses a second copy onto it', async () => {
    const r = await cli(['migrate-store', '--to', target.url], dir);
    expect(r.stderr).toMatch(/migrate-store: \d+ tables, [\d,]+ rows from .*kiosk-fleet\.db to postgres@127\.0\.0\.1:\d+\/kf_test_/);
    expect(r.stderr).toMatch(/telemetry_samples: \d+ daily partitions/);
    expect(r.stderr).toContain(`telemetry_samples: ${SAMPLES.toLocaleString('en-US')} rows`);
    expect(r.stdout).not.toContain('MISMATCH');
    expect(r.stderr).toMatch(/every table's count matches/);
    expect(r.code).toBe(0);

    const lite = new Database(dbPath(dir), { readonly: true });
    const pg = postgres(target.url, { max: 1, onnotice: () => {}, types: { bigint: { to: 20, from: [20], serialize: String, parse: Number } } });
    try {
      const tables = (lite.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '__drizzle_migrations'`).all() as { name: string }[]).map((x) => x.name);
      expect(tables.length).toBeGreaterThan(25);
      // Every row of every table, compared value by value (ordered by every column, so no key needs naming).
      for (const table of tables) {
        const cols = (lite.prepare('SELECT name FROM pragma_table_info(?)').all(table) as { name: string }[]).map((c) => c.name);
        const order = cols.map((c, i) => `${i + 1}`).join(', ');
        const list = cols.map((c) => `"${c}"`).join(', ');
        const a = lite.prepare(`SELECT ${list} FROM "${table}" ORDER BY ${order}`).raw(true).all() as unknown[][];
        const b = (await pg.unsafe(`SELECT ${list} FROM "${table}" ORDER BY ${order}`).values()) as unknown[][];
        expect(b.length, table).toBe(a.length);
        expect(b.map((row) => row.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))), table).toEqual(
          a.map((row) => row.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))),
        );
      }
      const counted = (t: string) => (lite.prepare(`SELECT count(*) AS n FROM "${t}"`).get() as { n: number }).n;
      expect(counted('terminals')).toBe(923);
      expect(counted('telemetry_samples')).toBe(SAMPLES);
      expect(counted('events')).toBe(20);
      // The samples sit in daily partitions, not the default one; ids continue after the copied ones.
      const parts = await pg<{ part: string }[]>`select distinct tableoid::regclass::text as part from telemetry_samples`;
      expect(parts.length).toBeGreaterThanOrEqual(7);
      expect(parts.map((p) => p.part)).not.toContain('telemetry_samples_default');
      const [next] = await pg<{ id: number }[]>`insert into audit_log (at, actor, actor_kind, action, object_type, outcome, prev_hash, hash)
        values (1, 'a', 'cli', 'x', 'y', 'ok', '', 'h') returning id`;
      expect(next!.id).toBe(counted('audit_log') + 1);
    } finally {
      lite.close();
      await pg.end();
    }

    const again = await cli(['migrate-store', '--to', target.url], dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is not empty .* migrate-store copies into an empty database only/);
  }, 120_000);

  it('a hub on the PostgreSQL copy, with an empty data dir, answers what the SQLite hub answered', async () => {
    // Both freshly started on the same history: the SQLite hub on the data dir, then a hub on the copy.
    const lite = await startTestHub({}, dir, { engine: 'sqlite' });
    try {
      for (const p of answerPaths(answeredFrom.id, answeredFrom.start)) before.set(p, await (await lite.api(p)).text());
    } finally {
      await lite.stop();
    }
    const pgHub = await startTestHub({ database: parseDatabaseUrl(target.url) }, fs.mkdtempSync(path.join(os.tmpdir(), 'kf-migrated-')), { engine: 'sqlite' });
    try {
      expect(before.size).toBeGreaterThan(10);
      for (const p of answerPaths(answeredFrom.id, answeredFrom.start)) {
        const res = await pgHub.api(p);
        expect(res.status, p).toBe(200);
        expect(await res.text(), p).toBe(before.get(p));
      }
    } finally {
      await pgHub.stop();
    }
  }, 120_000);

  it('refuses a target that is not PostgreSQL, with the reason', async () => {
    const r = await cli(['migrate-store', '--to', 'mysql://u@h/db'], dir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--to: unknown scheme "mysql:"/);
  }, 60_000);
});
