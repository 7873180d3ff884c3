/**
 * A throwaway PostgreSQL server for the test suites (issue 18): Debian's `postgresql` binaries, one server per test
 * run in a temp dir on a free loopback port, a fresh database per test file, everything removed afterwards. As root
 * (CI), initdb refuses to run, so initdb and pg_ctl run as the `postgres` user the package creates. About 1.5 s.
 * Not imported by production code.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';

export interface TestPostgres {
  /** Superuser URL of the server's `postgres` database. */
  url: string;
  port: number;
  dir: string;
  /** `pg_ctl restart -m fast`: every connection cut, the server back on the same port (issue 18's fault test). */
  restart(): Promise<void>;
  /** `pg_ctl stop -m fast` / `start`: the server away for as long as a test needs. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** The newest PostgreSQL under /usr/lib/postgresql (Debian's layout), or KF_TEST_PG_BIN; null when none is installed. */
export function findPostgresBin(): string | null {
  const fromEnv = process.env.KF_TEST_PG_BIN;
  if (fromEnv) return fs.existsSync(path.join(fromEnv, 'initdb')) ? fromEnv : null;
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  } catch {
    return null;
  }
  for (const v of versions) {
    const bin = path.join(root, v, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const isRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL binary as the `postgres` user when we are root (initdb refuses root), else as ourselves. */
function pgRun(bin: string, tool: string, args: string[]): void {
  const cmd = isRoot ? 'runuser' : path.join(bin, tool);
  const argv = isRoot ? ['-u', 'postgres', '--', path.join(bin, tool), ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
}

export interface TestPostgresOptions {
  /**
   * Leave fsync, synchronous_commit and full_page_writes at PostgreSQL's defaults (every commit flushed to disk), as a
   * production server runs: for the benchmarks (`pnpm bench postgres`), which must measure what a bureau would get.
   * The test suites keep them off.
   */
  durable?: boolean;
}

export async function startTestPostgres(o: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = findPostgresBin();
  if (!bin) throw new Error('no PostgreSQL under /usr/lib/postgresql: apt-get install postgresql (scripts/setup.sh --test does)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-pg-'));
  if (isRoot) {
    fs.chmodSync(dir, 0o755);
    execFileSync('chown', ['postgres:postgres', dir]);
  }
  const data = path.join(dir, 'data');
  // -A trust on a server that listens on 127.0.0.1 only, in a temp dir, for the length of a test run.
  pgRun(bin, 'initdb', ['--no-sync', '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '-D', data]);
  const port = await freePort();
  const opts = [
    `-p ${port}`,
    "-c listen_addresses='127.0.0.1'",
    `-c unix_socket_directories='${dir}'`,
    // Durability is not what a test run checks; fsync off makes CREATE DATABASE and commits cheap on a shared disk.
    ...(o.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
    '-c max_connections=300',
  ].join(' ');
  pgRun(bin, 'pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    dir,
    async restart() {
      pgRun(bin, 'pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-o', opts, '-m', 'fast', '-w', '-t', '60', 'restart']);
    },
    async pause() {
      pgRun(bin, 'pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
    },
    async resume() {
      pgRun(bin, 'pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
    },
    async stop() {
      try {
        pgRun(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A new empty database on the test server; `drop()` removes it (connections to it are terminated first). */
export async function createTestDatabase(serverUrl: string, prefix = 'kf_test'): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end({ timeout: 2 });
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      const a = postgres(serverUrl, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await a.end({ timeout: 2 });
      }
    },
  };
}
