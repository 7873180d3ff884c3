import net from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseDatabaseUrl } from '../url.ts';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { openPostgres, POSTGRES_MIGRATIONS_DIR, type PostgresTarget } from './open.ts';
import { dropPartitionsBefore, ensureDailyPartitions } from './partitions.ts';
import { createTestDatabase } from './test-server.ts';

const pgUrl = inject('pgUrl');

function target(url: string): PostgresTarget {
  const t = parseDatabaseUrl(url);
  if (t.engine !== 'postgres') throw new Error('not postgres');
  return t;
}

describe('opening PostgreSQL', () => {
  it('names host and database, never the password, when the server is unreachable', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const err = await openPostgres(target(`postgres://kf:topsecretpw@127.0.0.1:${port}/fleet`), { connectTimeoutS: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain(`"fleet" on 127.0.0.1:${port}`);
    expect(msg).toMatch(/ECONNREFUSED/);
    expect(msg).not.toContain('topsecretpw');
  });
});

describe.skipIf(!pgUrl)('PostgreSQL schema', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase(pgUrl!);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('migrates an empty database, twice from two hubs at once, and checks the result', async () => {
    const [a, b] = await Promise.all([openPostgres(target(db.url)), openPostgres(target(db.url))]);
    try {
      const tables = await a.sql<{ n: number }[]>`select count(*)::int as n from pg_tables where schemaname = 'public'`;
      expect(tables[0]!.n).toBeGreaterThan(25);
      const applied = await a.sql<{ n: number }[]>`select count(*)::int as n from drizzle.__drizzle_migrations`;
      expect(applied[0]!.n).toBe(readMigrationFiles({ migrationsFolder: POSTGRES_MIGRATIONS_DIR }).length);
      // The audit log refuses changes as on SQLite.
      await a.sql`insert into audit_log (at, actor, actor_kind, action, object_type, outcome, prev_hash, hash) values (1, 'a', 'cli', 'x', 'y', 'ok', '', 'h')`;
      await expect(a.sql`update audit_log set actor = 'b'`).rejects.toThrow(/append-only/);
      await expect(a.sql`delete from audit_log`).rejects.toThrow(/append-only/);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('stores samples in daily partitions, dead clocks in the default one, and drops whole days', async () => {
    const pg = await openPostgres(target(db.url));
    try {
      const day = Date.UTC(2026, 11, 1);
      const made = await ensureDailyPartitions(pg.sql, 'telemetry_samples', day, day + 2 * 86_400_000);
      expect(made.created).toEqual(['telemetry_samples_p20261201', 'telemetry_samples_p20261202', 'telemetry_samples_p20261203']);
      expect((await ensureDailyPartitions(pg.sql, 'telemetry_samples', day, day + 86_400_000)).created).toEqual([]);
      const row = (ts: number, seq: number) => pg.sql`
        insert into telemetry_samples (epoch_id, ts, seq, recv_delay, cpu, mem_used, mem_total, disk_used, disk_total, uptime, pstat)
        values (1, ${ts}, ${seq}, 0, 1, 1, 2, 1, 2, 1, 0) on conflict do nothing`;
      await row(day + 1000, 1);
      await row(day + 1000, 1); // a redelivery: stored once
      await row(day + 86_400_000 + 5, 2);
      await row(0, 3); // a clock at 1970
      const where = await pg.sql<{ part: string; n: number }[]>`
        select tableoid::regclass::text as part, count(*)::int as n from telemetry_samples group by 1 order by 1`;
      expect(where).toEqual([
        { part: 'telemetry_samples_default', n: 1 },
        { part: 'telemetry_samples_p20261201', n: 1 },
        { part: 'telemetry_samples_p20261202', n: 1 },
      ]);
      // A day whose rows already sit in the default partition stays there instead of failing.
      const late = await ensureDailyPartitions(pg.sql, 'telemetry_samples', 0, 0);
      expect(late.skipped).toEqual(['telemetry_samples_p19700101']);
      expect(await dropPartitionsBefore(pg.sql, 'telemetry_samples', day + 86_400_000)).toEqual(['telemetry_samples_p20261201']);
      const left = await pg.sql<{ n: number }[]>`select count(*)::int as n from telemetry_samples`;
      expect(left[0]!.n).toBe(2);
    } finally {
      await pg.close();
    }
  });
});
