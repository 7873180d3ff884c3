/**
 * What `kiosk-fleet serve` does with KF_DATABASE_URL and its data dir, as an operator sees it: the process's exit
 * status and its one line on stderr.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestHub, telemetry, topicFor, type TestHub } from '../test-support.ts';
import { queryNumber } from './test-query.ts';
import { parseDatabaseUrl } from './url.ts';
import { createTestDatabase } from './postgres/test-server.ts';

const pgUrl = inject('pgUrl');
const BIN = path.resolve(import.meta.dirname, '..', '..', 'bin', 'kiosk-fleet.mjs');

function serve(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, KF_BIND: '127.0.0.1', KF_MQTT_PORT: '0', KF_HTTP_PORT: '0', KF_LOG_LEVEL: 'warn', KF_ADMIN_PASSWORD: 'serve-db-test-password-1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stdout.resume();
    // Every case here must end by itself; a hub that starts serving instead is a failure, stopped after 30 s.
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stderr });
    });
  });
}

describe('serve: database and data dir', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-serve-db-'));
    dirs.push(d);
    return d;
  };
  let running: TestHub | null = null;
  let db: Awaited<ReturnType<typeof createTestDatabase>> | null = null;
  beforeAll(async () => {
    if (pgUrl) db = await createTestDatabase(pgUrl);
  });
  afterAll(async () => {
    await running?.stop();
    await db?.drop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('refuses a malformed or unknown KF_DATABASE_URL with the reason, never the password', async () => {
    const r = await serve({ KF_DATA_DIR: tmp(), KF_DATABASE_URL: 'postgres://kf:pw-do-not-print@/fleet' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/KF_DATABASE_URL: malformed URL: no host/);
    expect(r.stderr).not.toContain('pw-do-not-print');
    const u = await serve({ KF_DATA_DIR: tmp(), KF_DATABASE_URL: 'redis://h/0' });
    expect(u.stderr).toMatch(/KF_DATABASE_URL: unknown scheme "redis:"/);
  }, 60_000);

  it('names host and database when PostgreSQL is unreachable, and exits', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const r = await serve({ KF_DATA_DIR: tmp(), KF_DATABASE_URL: `postgres://kf:pw-do-not-print@127.0.0.1:${port}/fleet` });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`cannot open PostgreSQL database "fleet" on 127.0.0.1:${port} as kf`);
    expect(r.stderr).not.toContain('pw-do-not-print');
  }, 60_000);

  it.skipIf(!pgUrl)('serves from PostgreSQL: a hub with an empty data dir and the same URL serves the same fleet, secret and history', async () => {
    // The URL given explicitly (`database`), whatever engine this run's other hubs use.
    const database = parseDatabaseUrl(db!.url);
    const first = await startTestHub({ database }, tmp(), { engine: 'sqlite' });
    running = first;
    expect(await (await first.api('/api/v1/health')).json()).toMatchObject({ database: { engine: 'postgres', status: 'ok' } });
    const t = await first.terminal('GZ-T-001-01');
    const c = await first.connect(t.id, t.secret);
    await c.publishAsync(topicFor(t.id, 'telemetry'), telemetry(1), { qos: 1 });
    c.end(true);
    await first.stop();
    running = null;

    const dir = tmp();
    const second = await startTestHub({ database }, dir, { engine: 'sqlite' });
    running = second;
    // Nothing of the fleet is in the new data dir: only the lock and the log-side files.
    expect(fs.existsSync(path.join(dir, 'kiosk-fleet.db'))).toBe(false);
    const res = await second.api(`/api/v1/terminals/${t.id}`);
    expect(res.status).toBe(200);
    expect(await queryNumber(second.engine, 'SELECT count(*) AS n FROM telemetry WHERE terminal_id = ?', t.id)).toBe(1);
    // The secret issued by the first hub still opens the door.
    const again = await second.connect(t.id, t.secret);
    expect(again.connected).toBe(true);
    again.end(true);
    await second.stop();
    running = null;
  }, 60_000);

  it('refuses a second hub on a data dir a live hub serves', async () => {
    const dir = tmp();
    running = await startTestHub({}, dir);
    const r = await serve({ KF_DATA_DIR: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/another hub \(pid \d+, since .*\) is serving/);
    await running.stop();
    running = null;
    // A stale lock (a crashed hub's, its pid gone) does not stand in the way.
    fs.writeFileSync(path.join(dir, 'hub.lock'), JSON.stringify({ pid: 2 ** 22 + 17, startTicks: '1', host: os.hostname(), at: 'then' }));
    running = await startTestHub({}, dir);
    expect(fs.existsSync(path.join(dir, 'hub.lock'))).toBe(true);
    await running.stop();
    running = null;
    expect(fs.existsSync(path.join(dir, 'hub.lock'))).toBe(false);
  }, 60_000);
});
