import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../log.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { JOBS, Leadership, type LeadershipChange } from './leader.ts';

const log = createLogger(process.env.KF_TEST_LOG ?? 'silent');

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Leadership on sqlite', () => {
  it('a hub alone on its file leads every job, until it stops', async () => {
    const t = await openTestEngine('sqlite');
    const l = new Leadership({ engine: t.engine, log });
    const changes: LeadershipChange[] = [];
    l.on('change', (c) => changes.push(c));
    await l.start();
    expect(l.jobsLed()).toEqual([...JOBS]);
    expect(l.isLeader('alerts')).toBe(true);
    expect(changes).toEqual([{ led: [...JOBS], gained: [...JOBS], lost: [] }]);
    await l.stop();
    expect(l.jobsLed()).toEqual([]);
    await t.close();
  });
});

describe.skipIf(!TEST_ENGINES.includes('postgres'))('Leadership on postgres: two hubs on one database', { timeout: 60_000 }, () => {
  let t: TestEngine;
  const made: Leadership[] = [];
  beforeEach(async () => {
    t = await openTestEngine('postgres');
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((l) => l.stop()));
    await t.close();
  });

  function hub(hubId: string): Leadership {
    const l = new Leadership({ engine: t.engine, log, hubId, retryMs: 500 });
    made.push(l);
    return l;
  }

  function sql() {
    if (t.engine.kind !== 'postgres') throw new Error('postgres only');
    return t.engine.pg.sql;
  }

  it('exactly one of them leads each job', async () => {
    const a = hub('a');
    const b = hub('b');
    await a.start();
    await b.start();
    const flips: LeadershipChange[] = [];
    a.on('change', (c) => flips.push(c));
    b.on('change', (c) => flips.push(c));
    // a few rounds each: neither takes what the other holds, and the leader keeps leading
    await new Promise((r) => setTimeout(r, 1500));
    expect(flips).toEqual([]);
    for (const j of JOBS) expect([a.isLeader(j), b.isLeader(j)].filter(Boolean)).toHaveLength(1);
    expect(a.jobsLed()).toEqual([...JOBS]);
    expect(b.jobsLed()).toEqual([]);
    // the locks are held on one dedicated session, named after the hub
    const [row] = await sql()<{ n: number }[]>`
      select count(*)::int as n from pg_locks l join pg_stat_activity s on s.pid = l.pid
      where l.locktype = 'advisory' and s.application_name = 'kiosk-fleet leader a'`;
    expect(row!.n).toBe(JOBS.length);
  });

  it("the leader's connection killed: it stops leading at once, the other leads within 15 s", async () => {
    const a = hub('a');
    const b = hub('b');
    await a.start();
    await b.start();
    expect(a.jobsLed()).toEqual([...JOBS]);
    const lostAt: number[] = [];
    a.on('change', (c) => {
      if (c.lost.length > 0) lostAt.push(Date.now());
    });
    let gainedAt = 0;
    b.on('change', (c) => {
      if (c.led.length === JOBS.length) gainedAt = Date.now();
      // never two leaders: whenever b gains a job, a does not act as its leader
      for (const j of c.gained) expect(a.isLeader(j)).toBe(false);
    });
    const killedAt = Date.now();
    await sql()`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'kiosk-fleet leader a'`;
    await until('b leads every job', () => b.jobsLed().length === JOBS.length, 15_000);
    expect(gainedAt - killedAt).toBeLessThan(15_000);
    expect(lostAt.length).toBeGreaterThan(0);
    expect(lostAt[0]!).toBeLessThanOrEqual(gainedAt);
    // a comes back on a new connection and campaigns, but b holds every lock
    await until('a campaigns again', async () => {
      const [r] = await sql()<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where application_name = 'kiosk-fleet leader a'`;
      return r!.n === 1;
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.jobsLed()).toEqual([]);
    expect(b.jobsLed()).toEqual([...JOBS]);
  });

  it('a leader that stops hands its jobs over within a retry', async () => {
    const a = hub('a');
    const b = hub('b');
    await a.start();
    await b.start();
    await a.stop();
    expect(a.jobsLed()).toEqual([]);
    await until('b leads every job', () => b.jobsLed().length === JOBS.length, 15_000);
  });
});
