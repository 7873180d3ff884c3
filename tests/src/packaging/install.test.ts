/**
 * The two Debian packages as an administrator installs them, on a clean Debian 12 made by debootstrap: build them
 * (`pnpm package`, lintian included), `apt-get install ./…deb` in the chroot, start the hub and the agent from their
 * units' own lines (no systemd in a chroot: User=, WorkingDirectory=, UMask=, Environment=, EnvironmentFile= and
 * ExecStart= read from the installed unit files), see the terminal report to the hub through its API, reinstall
 * (the upgrade path of the maintainer scripts) with the data kept, remove (data and settings kept), purge (gone), and
 * check that nothing of the packages is left but the system user.
 *
 * Needs root, debootstrap, lintian and deb.debian.org (scripts/setup.sh --test installs the tools). It runs as its
 * own CI step (`pnpm test:install`, .ci/run), not in `pnpm test`: several minutes, most of it debootstrap.
 * The chroot's Node is this machine's own /usr/bin/node, packaged as `nodejs` of the same version (Debian 12's
 * nodejs is 18, and the packages depend on the Node major they were built with, as they would on a bureau's
 * server with NodeSource's or Debian 13's nodejs).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort } from '../helpers/reliability-util.ts';
import { REPO_ROOT } from '../helpers/hub.ts';

const MIRROR = process.env.KF_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-install-'));
const ROOT = path.join(tmp, 'root');
const DEBS = path.join(tmp, 'debs');
const T = 'GZ-YX-001-01';
const TOKEN = 'install-test-admin-token-0123456789';
const procs: ChildProcess[] = [];
const t0 = Date.now();
/** Where the minutes go, on stderr (this test is slow by nature: debootstrap, apt). */
const step = (what: string) => process.stderr.write(`install test: ${what} after ${Math.round((Date.now() - t0) / 1000)} s\n`);
let procMounted = false;
let mqttPort: number;
let httpPort: number;

function sh(cmd: string, args: string[], opts: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeout ?? 600_000, env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
const inRoot = (args: string[], timeout?: number) =>
  sh('chroot', [ROOT, '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'DEBIAN_FRONTEND=noninteractive', 'LANG=C.UTF-8', ...args], { timeout });
const exists = (p: string) => fs.existsSync(path.join(ROOT, p));
const mode = (p: string) => (fs.statSync(path.join(ROOT, p)).mode & 0o777).toString(8);

/** The parts of a unit's [Service] section that say how its process runs. */
function readUnit(unitPath: string): { user: string; workdir: string; umask: string; env: Record<string, string>; envFiles: string[]; exec: string[] } {
  const u = { user: 'root', workdir: '/', umask: '0022', env: {} as Record<string, string>, envFiles: [] as string[], exec: [] as string[] };
  for (const line of fs.readFileSync(path.join(ROOT, unitPath), 'utf8').split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'User') u.user = value;
    else if (key === 'WorkingDirectory') u.workdir = value;
    else if (key === 'UMask') u.umask = value;
    else if (key === 'Environment') for (const kv of value.split(/\s+/)) u.env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    else if (key === 'EnvironmentFile') u.envFiles.push(value.replace(/^-/, ''));
    else if (key === 'ExecStart') u.exec = value.split(/\s+/);
  }
  return u;
}

/** KEY=VALUE lines as systemd reads an EnvironmentFile (comments and blank lines skipped). */
function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!exists(file)) return out;
  for (const line of fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}

/** Starts a unit's ExecStart in the chroot the way systemd would: its user, directory, umask and environment. */
function startUnit(unit: string, lines: string[]): ChildProcess {
  const u = readUnit(`/lib/systemd/system/${unit}`);
  const env = { ...u.env };
  for (const f of u.envFiles) Object.assign(env, readEnvFile(f)); // EnvironmentFile= overrides Environment=
  const ids = inRoot(['sh', '-c', `echo $(id -u ${u.user}):$(id -g ${u.user})`]).trim();
  const p = spawn(
    'chroot',
    [`--userspec=${ids}`, ROOT, '/usr/bin/env', '-i', `--chdir=${u.workdir}`, 'PATH=/usr/bin:/bin', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), '/bin/sh', '-c', `umask ${u.umask}; exec "$@"`, 'sh', ...u.exec],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  p.stdout!.setEncoding('utf8').on('data', (s: string) => lines.push(...s.split('\n')));
  p.stderr!.setEncoding('utf8').on('data', (s: string) => lines.push(...s.split('\n')));
  procs.push(p);
  return p;
}

async function stop(p: ChildProcess): Promise<number | null> {
  if (p.exitCode !== null) return p.exitCode;
  return new Promise((resolve) => {
    p.once('exit', (code) => resolve(code));
    p.kill('SIGTERM');
  });
}

async function until<T>(fn: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const api = (p: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${httpPort}/api/v1${p}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers } });

/** Sets variables in an installed env file, as an administrator edits it. */
function configure(file: string, values: Record<string, string | number>): void {
  const f = path.join(ROOT, file);
  fs.appendFileSync(f, `\n${Object.entries(values).map(([k, v]) => `${k}=${v}`).join('\n')}\n`);
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the install test runs as root (chroot, dpkg)');
  for (const tool of ['debootstrap', 'lintian']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing: bash scripts/setup.sh --test`);
  }
  // the packages, built as `pnpm package` builds them, lintian included
  sh(process.execPath, [path.join(REPO_ROOT, 'scripts', 'package.mjs')], { env: { ...process.env, KF_PACKAGE_OUT: DEBS } });
  step('packages built');
  sh('debootstrap', ['--variant=minbase', 'bookworm', ROOT, MIRROR], { timeout: 900_000 });
  fs.copyFileSync('/etc/resolv.conf', path.join(ROOT, 'etc', 'resolv.conf'));
  sh('mount', ['-t', 'proc', 'proc', path.join(ROOT, 'proc')]);
  procMounted = true;
  step('debootstrap done');
  // Node for the chroot: the node binary that runs here, as a `nodejs` package of its version
  const nodePkg = path.join(tmp, 'nodejs');
  fs.mkdirSync(path.join(nodePkg, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(nodePkg, 'usr', 'bin'), { recursive: true });
  fs.copyFileSync(process.execPath, path.join(nodePkg, 'usr', 'bin', 'node'));
  fs.chmodSync(path.join(nodePkg, 'usr', 'bin', 'node'), 0o755);
  const arch = sh('dpkg', ['--print-architecture']).trim();
  fs.writeFileSync(
    path.join(nodePkg, 'DEBIAN', 'control'),
    `Package: nodejs\nVersion: ${process.versions.node}-kf1\nArchitecture: ${arch}\nMaintainer: install test <kf@example.org>\nDepends: libc6, libstdc++6, libgcc-s1\nDescription: Node.js ${process.versions.node} (this machine's binary)\n`,
  );
  sh('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z1', '--build', nodePkg, path.join(ROOT, 'tmp', 'nodejs.deb')]);
  inRoot(['apt-get', 'update', '-qq'], 300_000);
  inRoot(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', '/tmp/nodejs.deb'], 600_000);
  step('nodejs installed in the chroot');
  for (const f of fs.readdirSync(DEBS).filter((f) => f.endsWith('.deb'))) fs.copyFileSync(path.join(DEBS, f), path.join(ROOT, 'tmp', f));
  mqttPort = await freePort();
  httpPort = await freePort();
}, 1_500_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  if (procMounted) spawnSync('umount', ['-l', path.join(ROOT, 'proc')]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const deb = (pkg: string) => `/tmp/${fs.readdirSync(DEBS).find((f) => f.startsWith(`${pkg}_`))!}`;

test('installed from the two .deb files, a terminal reports to the hub; remove keeps the data, purge deletes it', async () => {
  inRoot(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', deb('kiosk-fleet-hub'), deb('kiosk-fleet-agent')], 600_000);
  step('packages installed');

  // what the packages set up
  expect(inRoot(['getent', 'passwd', 'kiosk-fleet'])).toMatch(/^kiosk-fleet:x:\d+:\d+:.*:\/var\/lib\/kiosk-fleet:\/usr\/sbin\/nologin/);
  for (const dir of ['/var/lib/kiosk-fleet', '/var/lib/kiosk-fleet-agent']) {
    expect(mode(dir), dir).toBe('700');
    expect(inRoot(['stat', '-c', '%U', dir]).trim()).toBe('kiosk-fleet');
  }
  for (const f of ['/etc/kiosk-fleet/hub.env', '/etc/kiosk-fleet/agent.env']) expect(mode(f), f).toBe('600');
  expect(fs.readFileSync(path.join(ROOT, 'var/lib/dpkg/info/kiosk-fleet-hub.conffiles'), 'utf8')).toContain('/etc/kiosk-fleet/hub.env');
  expect(inRoot(['kiosk-fleet', '--version']).trim()).toBe('kiosk-fleet 0.1.0');
  expect(inRoot(['kiosk-fleet-agent', '--version']).trim()).toBe('kiosk-fleet-agent 0.1.0');
  // nothing to build on the terminal: no TypeScript, no compiler, no package manager in the packages
  const files = inRoot(['dpkg', '-L', 'kiosk-fleet-hub', 'kiosk-fleet-agent']);
  expect(files).not.toMatch(/\.ts$|\/tsx\/|\/esbuild\/|\/pnpm/m);
  expect(files).toMatch(/better_sqlite3\.node$/m);
  // a configuration error is exit 2 (the units' RestartPreventExitStatus), naming the variable
  const bad = spawnSync('chroot', [ROOT, '/usr/bin/env', '-i', 'PATH=/usr/bin:/bin', 'KF_MQTT_PORT=eighty', 'kiosk-fleet', 'serve'], { encoding: 'utf8', timeout: 60_000 });
  expect(bad.status, bad.stderr).toBe(2);
  expect(bad.stderr).toContain('KF_MQTT_PORT');
  const noId = spawnSync('chroot', [ROOT, '/usr/bin/env', '-i', 'PATH=/usr/bin:/bin', 'kiosk-fleet-agent', 'run'], { encoding: 'utf8', timeout: 60_000 });
  expect(noId.status, noId.stderr).toBe(2);
  expect(noId.stderr).toContain('terminalId');

  // the hub, configured as an administrator would, started as its unit says
  configure('/etc/kiosk-fleet/hub.env', { KF_BIND: '127.0.0.1', KF_MQTT_PORT: mqttPort, KF_HTTP_PORT: httpPort, KF_ADMIN_TOKEN: TOKEN });
  const hubLog: string[] = [];
  let hub = startUnit('kiosk-fleet-hub.service', hubLog);
  await until(async () => hubLog.some((l) => l.includes('"msg":"ready"')), 'the hub to be ready');
  const dashboard = await fetch(`http://127.0.0.1:${httpPort}/`, { headers: { 'accept-encoding': 'br' } });
  expect(dashboard.headers.get('content-encoding')).toBe('br');
  expect(await dashboard.text()).toContain('<div id="app">');

  // enrol one terminal; its secret goes where the agent's unit looks for it
  const imported = await api('/import', {
    method: 'POST',
    body: JSON.stringify({
      city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
      districts: [{ id: 'GZ-YX', name: { zh: '越秀', en: 'Yuexiu' } }],
      stations: [{ id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥', en: 'Hongqiao' } }],
      terminals: [{ id: T, station: 'GZ-YX-001', type: 'id-card', serial: 'SN-DEB-1' }],
    }),
  });
  expect(imported.status).toBe(200);
  const secret = ((await imported.json()) as { terminals: { created: { secret: string }[] } }).terminals.created[0]!.secret;
  fs.writeFileSync(path.join(ROOT, 'etc/kiosk-fleet/secret'), `${secret}\n`, { mode: 0o400 });
  inRoot(['chown', 'kiosk-fleet:kiosk-fleet', '/etc/kiosk-fleet/secret']);
  configure('/etc/kiosk-fleet/agent.env', { KF_TERMINAL_ID: T, KF_HUB_URL: `mqtt://127.0.0.1:${mqttPort}`, KF_TELEMETRY_INTERVAL: 2, KF_LOCAL_API_PORT: 0 });
  const agentLog: string[] = [];
  const agent = startUnit('kiosk-fleet-agent.service', agentLog);

  const detail = await until(
    async () => {
      const d = (await (await api(`/terminals/${T}`)).json()) as { presence: { state: string }; latest: unknown; versions: { agent: string | null } };
      return d.presence.state === 'online' && d.latest !== null ? d : null;
    },
    'the terminal online with telemetry',
    90_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nhub:\n${hubLog.slice(-20).join('\n')}\nagent:\n${agentLog.slice(-20).join('\n')}`);
  });
  step('the terminal reported');
  expect(detail.versions.agent).toBe('0.1.0');
  expect(exists('/var/lib/kiosk-fleet-agent/outbox.sqlite')).toBe(true);
  // the administrator's backup of the running hub finds the service's database by itself
  expect(inRoot(['sh', '-c', 'kiosk-fleet backup /root/kf-backup.db 2>&1'])).toContain('backup: written to /root/kf-backup.db');

  // an upgrade (here: the same version again) runs prerm upgrade / postinst configure <old>: data kept
  expect(await stop(hub)).toBe(0);
  inRoot(['apt-get', 'install', '-y', '-qq', '--reinstall', deb('kiosk-fleet-hub')], 600_000);
  hubLog.length = 0;
  hub = startUnit('kiosk-fleet-hub.service', hubLog);
  await until(async () => hubLog.some((l) => l.includes('"msg":"ready"')), 'the reinstalled hub to be ready');
  await until(async () => ((await (await api(`/terminals/${T}`)).json()) as { presence: { state: string } }).presence.state === 'online', 'the terminal back online');
  expect(await stop(agent)).toBe(0);
  expect(await stop(hub)).toBe(0);

  // remove: programs gone, data and settings kept
  inRoot(['dpkg', '--remove', 'kiosk-fleet-agent', 'kiosk-fleet-hub']);
  for (const gone of ['/usr/lib/kiosk-fleet-hub', '/usr/lib/kiosk-fleet-agent', '/usr/bin/kiosk-fleet', '/lib/systemd/system/kiosk-fleet-hub.service']) expect(exists(gone), gone).toBe(false);
  for (const kept of ['/var/lib/kiosk-fleet/kiosk-fleet.db', '/var/lib/kiosk-fleet-agent/outbox.sqlite', '/etc/kiosk-fleet/hub.env', '/etc/kiosk-fleet/agent.env', '/etc/kiosk-fleet/secret']) {
    expect(exists(kept), kept).toBe(true);
  }

  // purge: everything of theirs gone; the system user stays (Debian policy)
  inRoot(['dpkg', '--purge', 'kiosk-fleet-agent', 'kiosk-fleet-hub']);
  for (const f of fs.readdirSync(DEBS)) fs.rmSync(path.join(ROOT, 'tmp', f), { force: true });
  const left = inRoot(['find', '/', '-xdev', '-name', '*kiosk-fleet*', '-not', '-path', '/proc/*']).trim();
  expect(left).toBe('');
  expect(exists('/etc/kiosk-fleet')).toBe(false);
  expect(inRoot(['getent', 'passwd', 'kiosk-fleet'])).toContain('kiosk-fleet');
}, 900_000);
