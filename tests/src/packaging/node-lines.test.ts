/**
 * The packages built for other Node lines than this machine's (issue 22: Node 20 left upstream support in April
 * 2026, the packages must run on 22 and 24): `pnpm package --node N` fetches the official Node N from the npm
 * registry (`node-linux-<arch>`), compiles better-sqlite3 against its headers and packs that; here both .debs are
 * unpacked (`dpkg-deb -x`), and the packaged hub and agent run under that very Node binary: `--version`, the hub
 * serving, a terminal registered through its API, the agent reporting telemetry.
 *
 * Part of `pnpm test:install` (the packaging step of CI), not `pnpm test`: each line is a native build (1.5 to 4 min
 * on 2 cores), cached with the fetched Node in $KF_NODE_CACHE (else ~/.cache/kiosk-fleet/node-lines) for the next
 * run. A registry that cannot be reached fails the test: it is never skipped. KF_NODE_LINES=22 picks the lines.
 * Node 20 (this machine's) is the install test's, installed in a chroot.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { freePort } from '../helpers/reliability-util.ts';
import { REPO_ROOT } from '../helpers/hub.ts';

const LINES = (process.env.KF_NODE_LINES ?? '22,24').split(',').map((s) => Number(s.trim()));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-node-lines-'));
const TOKEN = 'node-lines-test-admin-token-0123456789';
const procs: ChildProcess[] = [];
const t0 = Date.now();
const step = (what: string) => process.stderr.write(`node lines test: ${what} after ${Math.round((Date.now() - t0) / 1000)} s\n`);

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 1_200_000, env, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

function start(cmd: string, args: string[], env: Record<string, string>, lines: string[]): ChildProcess {
  const p = spawn(cmd, args, { env: { PATH: '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

for (const line of LINES) {
  test(`built with --node ${line}, the packaged hub and agent run on Node ${line}: a terminal reports`, async () => {
    const dir = path.join(tmp, `node${line}`);
    const debs = path.join(dir, 'debs');
    const built = sh(process.execPath, [path.join(REPO_ROOT, 'scripts', 'package.mjs'), '--node', String(line), '--no-lintian'], { ...process.env, KF_PACKAGE_OUT: debs });
    const nodeDir = /headers from (\S+)\)/.exec(built.stderr)?.[1];
    expect(nodeDir, built.stderr).toBeDefined();
    const node = path.join(nodeDir!, 'bin', 'node');
    const nodeVersion = sh(node, ['--version']).stdout.trim();
    expect(nodeVersion).toMatch(new RegExp(`^v${line}\\.`));
    step(`Node ${nodeVersion}: packages built`);

    const root = path.join(dir, 'root');
    const files = fs.readdirSync(debs).filter((f) => f.endsWith('.deb'));
    for (const pkg of ['kiosk-fleet-hub', 'kiosk-fleet-agent']) {
      const f = files.find((x) => x.startsWith(`${pkg}_`));
      // the line in the version, hence in the file name: packages for 20, 22 and 24 side by side
      expect(f, files.join(' ')).toMatch(new RegExp(`^${pkg}_\\d+\\.\\d+\\.\\d+\\+node${line}_[a-z0-9]+\\.deb$`));
      expect(sh('dpkg-deb', ['-f', path.join(debs, f!), 'Depends']).stdout).toContain(`nodejs (>= ${line}), nodejs (<< ${line + 1})`);
      sh('dpkg-deb', ['-x', path.join(debs, f!), root]);
    }
    const hubMain = path.join(root, 'usr/lib/kiosk-fleet-hub/hub/dist/kiosk-fleet.mjs');
    const agentMain = path.join(root, 'usr/lib/kiosk-fleet-agent/bin/kiosk-fleet-agent.mjs');
    expect(sh(node, [hubMain, '--version']).stdout.trim()).toBe('kiosk-fleet 0.1.0');
    expect(sh(node, [agentMain, '--version']).stdout.trim()).toBe('kiosk-fleet-agent 0.1.0');

    // the hub as /usr/bin/kiosk-fleet starts it (its V8 flag), on ephemeral ports, with a temp data dir
    const mqttPort = await freePort();
    const httpPort = await freePort();
    const hubLog: string[] = [];
    const hub = start(
      node,
      ['--no-allocation-site-pretenuring', hubMain, 'serve'],
      { KF_DATA_DIR: path.join(dir, 'hub-data'), KF_BIND: '127.0.0.1', KF_MQTT_PORT: String(mqttPort), KF_HTTP_PORT: String(httpPort), KF_ADMIN_TOKEN: TOKEN },
      hubLog,
    );
    const api = (p: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${httpPort}${p}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers } });
    await until(async () => hubLog.some((l) => l.includes('"msg":"ready"')), 'the hub to be ready').catch((err: Error) => {
      throw new Error(`${err.message}\nhub:\n${hubLog.slice(-20).join('\n')}`);
    });
    // the hub's own report of the Node it runs on (prom-client's nodejs_version_info)
    expect(await (await api('/metrics')).text()).toContain(`nodejs_version_info{version="${nodeVersion}"`);

    const T = `GZ-YX-00${line % 10}-01`;
    const imported = await api('/api/v1/import', {
      method: 'POST',
      body: JSON.stringify({
        city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
        districts: [{ id: 'GZ-YX', name: { zh: '越秀', en: 'Yuexiu' } }],
        stations: [{ id: T.slice(0, 9), district: 'GZ-YX', name: { zh: '洪桥', en: 'Hongqiao' } }],
        terminals: [{ id: T, station: T.slice(0, 9), type: 'id-card', serial: `SN-NODE-${line}` }],
      }),
    });
    expect(imported.status).toBe(200);
    const secret = ((await imported.json()) as { terminals: { created: { secret: string }[] } }).terminals.created[0]!.secret;
    const secretFile = path.join(dir, 'secret');
    fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o400 });

    // the agent with its unit's flags (agent/packaging/kiosk-fleet-agent.service)
    const agentData = path.join(dir, 'agent-data');
    fs.mkdirSync(agentData, { mode: 0o700 });
    const agentLog: string[] = [];
    const agent = start(
      node,
      ['--max-semi-space-size=2', '--max-old-space-size=64', '--single-threaded', agentMain, 'run'],
      {
        NODE_ENV: 'production',
        KF_AGENT_DATA_DIR: agentData,
        KF_SECRET_FILE: secretFile,
        KF_TERMINAL_ID: T,
        KF_HUB_URL: `mqtt://127.0.0.1:${mqttPort}`,
        KF_TELEMETRY_INTERVAL: '2',
        KF_LOCAL_API_PORT: '0',
      },
      agentLog,
    );
    const detail = await until(
      async () => {
        const d = (await (await api(`/api/v1/terminals/${T}`)).json()) as { presence: { state: string }; latest: unknown; versions: { agent: string | null } };
        return d.presence.state === 'online' && d.latest !== null ? d : null;
      },
      'the terminal online with telemetry',
      90_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nhub:\n${hubLog.slice(-20).join('\n')}\nagent:\n${agentLog.slice(-20).join('\n')}`);
    });
    expect(detail.versions.agent).toBe('0.1.0');
    // the agent's outbox is better-sqlite3 too: the packaged module loaded in this Node
    expect(fs.existsSync(path.join(agentData, 'outbox.sqlite'))).toBe(true);
    step(`Node ${nodeVersion}: the terminal reported`);
    expect(await stop(agent)).toBe(0);
    expect(await stop(hub)).toBe(0);
  }, 1_500_000);
}
