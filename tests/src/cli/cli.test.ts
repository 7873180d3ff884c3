/**
 * Both programs as an administrator types them: `--help`/`-h` on every command prints usage on stdout, exits 0 and
 * does nothing else (no database copy named `--help`, no hub started); `--version`; exit code 2 for a configuration
 * error and 64 for a usage error, in both programs; progress of long work on stderr.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { AGENT_BIN } from '../helpers/agent.ts';
import { HUB_BIN, REPO_ROOT } from '../helpers/hub.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs a bin in an empty working directory, so that a file it should not write would show there. */
function run(bin: string, args: string[], env: Record<string, string> = {}) {
  const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', KF_DATA_DIR: path.join(cwd, 'data'), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, leftBehind: fs.readdirSync(cwd) };
}

const HUB_COMMANDS = [['serve'], ['import'], ['backup'], ['release'], ['release', 'keygen'], ['release', 'pack'], ['migrate-store']];
const AGENT_COMMANDS = [['run'], ['simulate']];

describe.each([
  ['kiosk-fleet', HUB_BIN, HUB_COMMANDS],
  ['kiosk-fleet-agent', AGENT_BIN, AGENT_COMMANDS],
] as const)('%s', (program, bin, commands) => {
  test.each(commands.flatMap((c) => [[[...c, '--help']], [[...c, '-h']]]))('%j prints usage and exits 0, doing nothing else', (args) => {
    const r = run(bin, args);
    expect(r.status, r.stderr).toBe(0);
    const name = args.slice(0, -1).join(' ');
    expect(r.stdout).toContain(`usage: ${program} ${name}`);
    expect(r.stdout).toMatch(/--help/);
    expect(r.leftBehind).toEqual([]);
  });

  test('alone or with --help it lists every command; --version prints the version', () => {
    for (const args of [[], ['--help'], ['-h']]) {
      const r = run(bin, args);
      expect(r.status).toBe(0);
      for (const c of commands) expect(r.stdout).toContain(`  ${c[0]}`);
      expect(r.stdout).toContain('64 usage error');
    }
    const v = run(bin, ['--version']);
    expect(v.status).toBe(0);
    expect(v.stdout.trim()).toBe(`${program} ${version}`);
  });

  test('an unknown command or option is a usage error: 64, the message and the usage on stderr', () => {
    const cmd = run(bin, ['frobnicate']);
    expect(cmd.status).toBe(64);
    expect(cmd.stderr).toContain('unknown command "frobnicate"');
    const opt = run(bin, [...commands.at(-1)!, '--frobnicate']);
    expect(opt.status).toBe(64);
    expect(opt.stderr).toContain("Unknown option '--frobnicate'");
    expect(opt.stderr).toContain(`usage: ${program} ${commands.at(-1)!.join(' ')}`);
  });
});

describe('exit codes and progress', () => {
  test('a configuration error exits 2 in both programs, naming the variable', () => {
    const hub = run(HUB_BIN, ['serve'], { KF_MQTT_PORT: 'eighty' });
    expect(hub.status).toBe(2);
    expect(hub.stderr).toContain('KF_MQTT_PORT');
    const agent = run(AGENT_BIN, ['run'], { KF_TERMINAL_ID: 'GZ-YX-001-01', KF_LOCAL_API_PORT: 'seventy' });
    expect(agent.status).toBe(2);
    expect(agent.stderr).toContain('KF_LOCAL_API_PORT');
  });

  test('import and backup report their progress on stderr; backup needs its file before flags', () => {
    const dataDir = path.join(tmp, 'progress-data');
    const fleet = path.join(tmp, 'fleet.csv');
    fs.writeFileSync(fleet, 'id,station,type,serial\nGZ-YX-001-01,GZ-YX-001,id-card,SN1\n');
    // a station must exist before a CSV row may name it: import the tree first
    const tree = path.join(tmp, 'tree.json');
    fs.writeFileSync(
      tree,
      JSON.stringify({
        city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
        districts: [{ id: 'GZ-YX', name: { zh: '越秀', en: 'Yuexiu' } }],
        stations: [{ id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '一所', en: 'One' } }],
      }),
    );
    const first = run(HUB_BIN, ['import', tree], { KF_DATA_DIR: dataDir });
    expect(first.status, first.stderr).toBe(0);
    const imp = run(HUB_BIN, ['import', fleet], { KF_DATA_DIR: dataDir });
    expect(imp.status, imp.stderr).toBe(0);
    expect(imp.stderr).toMatch(/import: 0 nodes and 1 terminals read from .*fleet\.csv/);
    expect(imp.stderr).toContain('import: 1 terminals created, 0 existed already');
    const file = path.join(tmp, 'backup.sqlite');
    const b = run(HUB_BIN, ['backup', file], { KF_DATA_DIR: dataDir });
    expect(b.status, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/backup: \d+% \(\d+\/\d+ pages\)/);
    expect(b.stderr).toContain(`backup: written to ${file}`);
    expect(fs.statSync(file).size).toBeGreaterThan(0);
    const flagFirst = run(HUB_BIN, ['backup', '--data-dir=x'], { KF_DATA_DIR: dataDir });
    expect(flagFirst.status).toBe(64);
    expect(flagFirst.leftBehind).toEqual([]);
  });

  test('backup refuses a hub on PostgreSQL and names pg_dump, rather than copy the SQLite file left in the data dir', () => {
    const dataDir = path.join(tmp, 'pg-backup-data');
    // The SQLite file of an installation moved to PostgreSQL with migrate-store stays behind, stale.
    const tree = path.join(tmp, 'pg-backup-tree.json');
    fs.writeFileSync(tree, JSON.stringify({ city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } }, districts: [], stations: [] }));
    expect(run(HUB_BIN, ['import', tree], { KF_DATA_DIR: dataDir }).status).toBe(0);
    const file = path.join(tmp, 'pg-backup.db');
    const b = run(HUB_BIN, ['backup', file], { KF_DATA_DIR: dataDir, KF_DATABASE_URL: 'postgres://kf:s3cret-pw@127.0.0.1:9/kiosk_fleet' });
    expect(b.status).toBe(1);
    expect(b.stderr).toContain('PostgreSQL (kf@127.0.0.1:9/kiosk_fleet)');
    expect(b.stderr).toContain('pg_dump -Fc -d kiosk_fleet');
    expect(b.stderr).not.toContain('s3cret-pw');
    expect(fs.existsSync(file)).toBe(false);
  });

  test('release pack on a large bundle reports packing and hashing on stderr, the result on stdout', () => {
    const keys = path.join(tmp, 'keys');
    expect(run(HUB_BIN, ['release', 'keygen', '--out', keys]).status).toBe(0);
    const bundle = path.join(tmp, 'bundle');
    fs.mkdirSync(bundle);
    fs.writeFileSync(path.join(bundle, 'app.bin'), randomBytes(24 * 1024 * 1024));
    const out = path.join(tmp, 'out');
    const r = run(HUB_BIN, ['release', 'pack', '--dir', bundle, '--version', '1.2.3', '--type', 'id-card', '--key', path.join(keys, 'release-private.pem'), '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/release pack: packing: \d+% \(\d+\/\d+ bytes\)/);
    expect(r.stderr).toMatch(/release pack: hashing: \d+% \(\d+\/\d+ bytes\)/);
    expect((JSON.parse(r.stdout) as { id: string }).id).toBe('app-1.2.3');
  });
});
