/**
 * Signed software updates end to end, with real processes: `kiosk-fleet release keygen|pack` signs, the hub
 * (`kiosk-fleet serve`) verifies uploads and serves artifacts with download tokens and Range, and the agent's
 * updater runs in child processes that are cut off, SIGKILLed at each state and restarted.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpdateTarget } from '@kiosk-fleet/protocol';
import { privateKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { appBundle, installInitial, serveArtifacts, type ArtifactServer, type BundleFiles } from '../../../agent/src/updater/testing.ts';
import { SqliteReleaseStore } from '../../../hub/src/releases/store.sqlite.ts';
import { issueDownloadToken } from '../../../hub/src/releases/tokens.ts';
import { openDatabase } from '../../../hub/src/store/db.ts';
import { killAll, REPO, startTs, type Proc } from './proc.ts';

const RUNNER = path.join(REPO, 'agent/src/updater/test-runner.ts');
const HUB_BIN = path.join(REPO, 'hub/bin/kiosk-fleet.mjs');
const GUARD = path.join(REPO, 'agent/src/updater/boot-guard.mjs');
const ADMIN = 'admin-token-for-update-scenarios-0123456789';

let tmp: string;
let hub: Proc;
let hubUrl: string;

interface Packed {
  id: string;
  version: string;
  kind: 'app' | 'agent';
  artifact: Buffer;
  manifestB64: string;
  signature: string;
  sha256: string;
}

/**
 * Asynchronous on purpose. undici drops an idle keep-alive connection by a timer a second or two before the hub's
 * keep-alive timeout (65 s). The SIGKILL tests leave this process's connections idle for about that long under load,
 * and the three synchronous packs in the self-update beforeAll then froze its event loop for ~9 s: neither that timer
 * nor the hub's FIN was handled, so the upload went out on a connection the hub had just closed ("other side closed").
 * Every child process the test waits for runs this way.
 */
const execFileAsync = promisify(execFile);

async function cli(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [HUB_BIN, 'release', ...args], { cwd: REPO, encoding: 'utf8' });
  return stdout;
}

async function pack(version: string, files: BundleFiles, o: { kind?: 'app' | 'agent'; keyDir?: string } = {}): Promise<Packed> {
  const kind = o.kind ?? 'app';
  const dir = path.join(tmp, 'bundles', `${kind}-${version}`);
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  const out = path.join(tmp, 'packed', o.keyDir ?? 'keys');
  const key = path.join(tmp, o.keyDir ?? 'keys', 'release-private.pem');
  const r = JSON.parse(await cli(['pack', '--dir', dir, '--version', version, '--type', 'id-card,police-multi', '--kind', kind, '--key', key, '--out', out])) as {
    id: string;
    artifact: string;
    manifest: string;
    signature: string;
    sha256: string;
  };
  return {
    id: r.id,
    version,
    kind,
    artifact: fs.readFileSync(r.artifact),
    manifestB64: fs.readFileSync(r.manifest).toString('base64'),
    signature: fs.readFileSync(r.signature, 'utf8'),
    sha256: r.sha256,
  };
}

function upload(p: Packed, body = p.artifact): Promise<Response> {
  return fetch(`${hubUrl}/api/v1/releases`, {
    method: 'POST',
    body,
    headers: { authorization: `Bearer ${ADMIN}`, 'x-kf-manifest': p.manifestB64, 'x-kf-signature': p.signature, 'content-type': 'application/gzip' },
  });
}

/** Terminals registered with the hub in beforeAll: only registered, active terminals may download. */
const TERMINAL_IDS = Array.from({ length: 30 }, (_, i) => `GZ-TH-001-${String(i + 1).padStart(2, '0')}`);
let nextTerminal = 0;

/** The running hub's download-token key, as its database holds it. */
async function hubTokenKey(): Promise<Buffer> {
  const { db } = openDatabase(path.join(tmp, 'hub-data'));
  try {
    return await new SqliteReleaseStore(db).tokenKey();
  } finally {
    db.close();
  }
}

/**
 * What a rollout publishes: the target with a download token made with the hub's own token key, for the next
 * registered terminal (`purpose` only names the caller).
 */
async function hubTarget(p: Packed, purpose: string, extra: Partial<UpdateTarget> = {}): Promise<UpdateTarget> {
  void purpose;
  const terminalId = TERMINAL_IDS[nextTerminal++ % TERMINAL_IDS.length]!;
  const key = await hubTokenKey();
  const { token, expiresAt } = issueDownloadToken(key, { releaseId: p.id, terminalId, ttlSeconds: 600 });
  return targetAt(p, `${hubUrl}/api/v1/releases/${p.id}/artifact`, { token, tokenExpiresAt: expiresAt.toISOString(), ...extra });
}

function targetAt(p: Packed, url: string, extra: Partial<UpdateTarget> = {}): UpdateTarget {
  return {
    v: 1,
    release: { id: p.id, kind: p.kind, version: p.version, url, size: p.artifact.length, sha256: p.sha256, manifest: p.manifestB64, signature: p.signature },
    urgent: false,
    ...extra,
  };
}

interface Terminal {
  dir: string;
  appRoot: string;
  agentRoot: string;
  stateFile: string;
  sessionFile: string;
  windowFile: string;
}

let termCount = 0;
function terminal(o: { window?: boolean } = {}): Terminal {
  const dir = path.join(tmp, 'terminals', `t${++termCount}`);
  const t: Terminal = {
    dir,
    appRoot: path.join(dir, 'app'),
    agentRoot: path.join(dir, 'agent'),
    stateFile: path.join(dir, 'update-state.json'),
    sessionFile: path.join(dir, 'session.lock'),
    windowFile: path.join(dir, 'window.open'),
  };
  installInitial(t.appRoot, '1.0.0', appBundle('1.0.0', true));
  if (o.window ?? true) fs.writeFileSync(t.windowFile, '');
  return t;
}

function runner(t: Terminal, target: UpdateTarget | undefined, o: { pauseAt?: string; healthCheckSeconds?: number } = {}): Proc {
  return startTs(RUNNER, [], runnerEnv(t, target, o));
}

function runnerEnv(t: Terminal, target: UpdateTarget | undefined, o: { pauseAt?: string; healthCheckSeconds?: number } = {}): Record<string, string> {
  return {
    KF_TEST_UPDATER: JSON.stringify({
      stateFile: t.stateFile,
      appRoot: t.appRoot,
      agentRoot: t.agentRoot,
      pubkeyPem: fs.readFileSync(path.join(tmp, 'keys', 'release-public.pem'), 'utf8'),
      terminalType: 'id-card',
      agentVersion: '1.0.0',
      sessionFile: t.sessionFile,
      windowFile: t.windowFile,
      healthCheckSeconds: o.healthCheckSeconds ?? 5,
      ...(target ? { target } : {}),
      ...(o.pauseAt ? { pauseAt: o.pauseAt } : {}),
    }),
  };
}

type Status = { state: string; version?: string; error?: { code: string } };
const status = (l: Record<string, unknown>): Status | undefined => l.status as Status | undefined;
const isFinal = (version: string) => (l: Record<string, unknown>) =>
  (status(l)?.state === 'committed' || status(l)?.state === 'failed') && status(l)?.version === version;

/** What "a working version" means on the terminal: `current` resolves to a complete release whose health passes. */
async function working(root: string): Promise<string> {
  const version = path.basename(fs.readlinkSync(path.join(root, 'current')));
  await execFileAsync(process.execPath, [path.join(root, 'current', 'health.mjs')]);
  expect(fs.readFileSync(path.join(root, 'current', 'version.txt'), 'utf8')).toBe(version);
  return version;
}

let good: Packed;
let bad: Packed;
let big: Packed;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-updates-'));
  JSON.parse(await cli(['keygen', '--out', path.join(tmp, 'keys')]));
  JSON.parse(await cli(['keygen', '--out', path.join(tmp, 'rogue')]));
  good = await pack('2.0.0', appBundle('2.0.0', true));
  bad = await pack('2.1.0', appBundle('2.1.0', false));
  // big enough that a download has several progress reports and a cut lands mid-body
  big = await pack('2.2.0', { ...appBundle('2.2.0', true), 'assets/blob.b64': randomBytes(600_000).toString('base64') });
  // The real hub (`kiosk-fleet serve`) on ephemeral ports.
  hub = startTs(HUB_BIN, ['serve'], {
    KF_BIND: '127.0.0.1',
    KF_MQTT_PORT: '0',
    KF_HTTP_PORT: '0',
    KF_DATA_DIR: path.join(tmp, 'hub-data'),
    KF_RELEASE_KEYS: path.join(tmp, 'keys', 'release-public.pem'),
    KF_ADMIN_TOKEN: ADMIN,
    KF_LOG_LEVEL: 'info',
  });
  const ready = await hub.waitLine((l) => l.msg === 'ready');
  hubUrl = `http://127.0.0.1:${ready.httpPort as number}`;
  const imported = await fetch(`${hubUrl}/api/v1/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
      districts: [{ id: 'GZ-TH', name: { zh: '天河', en: 'Tianhe' } }],
      stations: [{ id: 'GZ-TH-001', district: 'GZ-TH', name: { zh: '一所', en: 'Station 1' } }],
      terminals: TERMINAL_IDS.map((id) => ({ id, station: 'GZ-TH-001', type: 'id-card', serial: `SN-${id}` })),
    }),
  });
  expect(imported.status).toBe(200);
  for (const p of [good, bad, big]) expect((await upload(p)).status).toBe(201);
});

afterAll(async () => {
  await killAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('hub: signed uploads only', () => {
  it('refuses a tampered artifact and a bad signature; serves what it stored only to a token holder', async () => {
    const p = await pack('3.0.0', appBundle('3.0.0', true));
    const tampered = Buffer.from(p.artifact);
    tampered[tampered.length >> 1]! ^= 0x01;
    const r1 = await upload(p, tampered);
    expect(r1.status).toBe(400);
    expect(await r1.json()).toMatchObject({ error: { code: 'sha256-mismatch' } });

    const rogue = await pack('3.1.0', appBundle('3.1.0', true), { keyDir: 'rogue' });
    const r2 = await upload(rogue);
    expect(r2.status).toBe(400);
    expect(await r2.json()).toMatchObject({ error: { code: 'bad-signature' } });

    const list = (await (await fetch(`${hubUrl}/api/v1/releases`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { items: { id: string }[] };
    expect(list.items.map((i) => i.id).sort()).toEqual(['app-2.0.0', 'app-2.1.0', 'app-2.2.0']);

    expect((await fetch(`${hubUrl}/api/v1/releases/app-2.0.0/artifact`)).status).toBe(401);
    const t = await hubTarget(good, 'download');
    const res = await fetch(t.release!.url, { headers: { authorization: `Bearer ${t.token}`, range: 'bytes=100-' } });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(good.artifact.subarray(100));

    // registered terminals only: a token for an unknown terminal, or one decommissioned since, opens nothing
    const key = await hubTokenKey();
    const stranger = issueDownloadToken(key, { releaseId: good.id, terminalId: 'GZ-TH-001-99' }).token;
    expect((await fetch(t.release!.url, { headers: { authorization: `Bearer ${stranger}` } })).status).toBe(403);
    const gone = await hubTarget(good, 'decommissioned');
    const terminalId = JSON.parse(Buffer.from(gone.token!.split('.')[0]!, 'base64url').toString()).t as string;
    const dec = await fetch(`${hubUrl}/api/v1/terminals/${terminalId}/decommission`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'scrapped' }),
    });
    expect(dec.status).toBe(200);
    expect((await fetch(gone.release!.url, { headers: { authorization: `Bearer ${gone.token}` } })).status).toBe(403);
  });
});

describe('agent: verifies what it downloads', () => {
  let evil: ArtifactServer;
  afterAll(async () => evil?.close());

  it('refuses a tampered artifact and a bad signature and stays on its working version', async () => {
    const tampered = Buffer.from(good.artifact);
    tampered[tampered.length >> 1]! ^= 0x01;
    evil = await serveArtifacts({ tampered, plain: good.artifact });
    const t = terminal();
    const r = runner(t, targetAt(good, evil.url('tampered')));
    expect(status(await r.waitLine(isFinal('2.0.0')))).toMatchObject({ state: 'failed', error: { code: 'sha256-mismatch' } });
    await r.kill();
    expect(await working(t.appRoot)).toBe('1.0.0');

    // A manifest signed by a key the agent does not trust (a compromised hub could send exactly this).
    const rogueKey = privateKeyFromPem(fs.readFileSync(path.join(tmp, 'rogue', 'release-private.pem')));
    const forged = { ...good, id: 'app-2.0.0', signature: signManifest(Buffer.from(good.manifestB64, 'base64'), rogueKey), sha256: good.sha256 };
    const t2 = terminal();
    const r2 = runner(t2, targetAt(forged, evil.url('plain')));
    expect(status(await r2.waitLine(isFinal('2.0.0')))).toMatchObject({ state: 'failed', error: { code: 'bad-signature' } });
    await r2.kill();
    expect(await working(t2.appRoot)).toBe('1.0.0');
  });
});

describe('agent: download cut in the middle', () => {
  it('resumes with a Range request after the link drops mid-body', async () => {
    const cutter = await serveArtifacts({ big: big.artifact }, { cutAfter: { big: Math.floor(big.artifact.length / 3) } });
    try {
      const t = terminal();
      const r = runner(t, targetAt(big, cutter.url('big')));
      expect(status(await r.waitLine(isFinal('2.2.0')))).toMatchObject({ state: 'committed' });
      await r.kill();
      expect(r.lines.some((l) => status(l)?.error?.code === 'download-interrupted')).toBe(true);
      const ranges = cutter.requests.map((q) => q.range);
      expect(ranges[0]).toBeUndefined();
      expect(Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1])).toBeGreaterThan(0);
      expect(await working(t.appRoot)).toBe('2.2.0');
    } finally {
      await cutter.close();
    }
  });
});

describe('agent: SIGKILL at each state ends on a working version', () => {
  const goodStates = ['downloading', 'downloading@0.3', 'verifying', 'waiting', 'installing', 'switching', 'restarting', 'health-check'];
  it.each(goodStates)('killed at %s, a healthy release is committed after restart', async (state) => {
    const t = terminal();
    const target = await hubTarget(big, `GZ-KILL-${state}`);
    const first = runner(t, target, { pauseAt: state });
    await first.waitLine((l) => l.paused !== undefined);
    await first.kill('SIGKILL');
    // the kill landed in that state, after it was persisted
    expect(JSON.parse(fs.readFileSync(t.stateFile, 'utf8')).state).toBe(state.split('@')[0]);
    if (state === 'downloading@0.3') {
      expect(fs.statSync(path.join(t.appRoot, 'downloads', `${big.sha256}.part`)).size).toBeGreaterThanOrEqual(0.3 * big.artifact.length);
    }
    expect(await working(t.appRoot)).toMatch(/^(1\.0\.0|2\.2\.0)$/);
    // The agent starts again; the hub's retained update/target arrives again.
    const second = runner(t, target);
    expect(status(await second.waitLine(isFinal('2.2.0')))).toMatchObject({ state: 'committed' });
    await second.kill();
    expect(await working(t.appRoot)).toBe('2.2.0');
    expect(fs.readFileSync(path.join(t.appRoot, 'restarts.log'), 'utf8')).toContain('2.2.0');
  });

  const badStates = ['switching', 'restarting', 'health-check', 'rolling-back'];
  it.each(badStates)('killed at %s, a release failing its health check is rolled back and not retried', async (state) => {
    const t = terminal();
    const target = await hubTarget(bad, `GZ-KILLBAD-${state}`);
    const first = runner(t, target, { pauseAt: state, healthCheckSeconds: 1 });
    await first.waitLine((l) => l.paused !== undefined);
    await first.kill('SIGKILL');
    expect(JSON.parse(fs.readFileSync(t.stateFile, 'utf8')).state).toBe(state);
    const second = runner(t, target, { healthCheckSeconds: 1 });
    expect(status(await second.waitLine(isFinal('2.1.0')))).toMatchObject({ state: 'failed' });
    await second.kill();
    expect(await working(t.appRoot)).toBe('1.0.0');
    const restarts = fs.readFileSync(path.join(t.appRoot, 'restarts.log'), 'utf8');
    expect(restarts.trim().split('\n').at(-1)).toBe('1.0.0');

    // Once more, as after any reconnect: the failed release is not tried again.
    const third = runner(t, target, { healthCheckSeconds: 1 });
    expect(status(await third.waitLine((l) => status(l)?.error?.code === 'previously-failed'))).toMatchObject({ state: 'failed' });
    await new Promise((r) => setTimeout(r, 300));
    await third.kill();
    expect(fs.readFileSync(path.join(t.appRoot, 'restarts.log'), 'utf8')).toBe(restarts);
    expect(await working(t.appRoot)).toBe('1.0.0');
  });
});

describe('agent: installs wait for the window and the session lock', () => {
  it('defers outside the maintenance window and while a citizen session is open', async () => {
    const t = terminal({ window: false });
    fs.writeFileSync(t.sessionFile, '');
    const r = runner(t, await hubTarget(good, 'GZ-DEFER'));
    await r.waitLine((l) => status(l)?.error?.code === 'session-open');
    fs.rmSync(t.sessionFile);
    await r.waitLine((l) => status(l)?.error?.code === 'outside-window');
    await new Promise((res) => setTimeout(res, 500));
    expect(r.lines.some((l) => ['installing', 'committed'].includes(status(l)?.state ?? ''))).toBe(false);
    expect(await working(t.appRoot)).toBe('1.0.0');
    fs.writeFileSync(t.windowFile, '');
    expect(status(await r.waitLine(isFinal('2.0.0')))).toMatchObject({ state: 'committed' });
    await r.kill();
    expect(await working(t.appRoot)).toBe('2.0.0');
  });
});

describe('agent self-update: a new agent that cannot run or reach the hub is rolled back', () => {
  /** An agent bundle: its entry runs the updater (the agent's job here); health.mjs stands for "reached the hub". */
  const agentBundle = (version: string, o: { connects: boolean; crashes?: boolean }): BundleFiles => ({
    'version.txt': version,
    'health.mjs': `process.exit(${o.connects ? 0 : 1});\n`,
    'agent.mjs': o.crashes ? `throw new Error('broken build ${version}');\n` : `await import(${JSON.stringify(pathToFileURL(RUNNER).href)});\n`,
  });

  /**
   * What the systemd unit does (Restart=always, ExecStartPre=boot guard): run the guard, start the agent from
   * `current`, and when it exits, again. Returns the versions started, until a line matches `done`.
   */
  async function supervise(t: Terminal, target: UpdateTarget, done: (l: Record<string, unknown>) => boolean, healthCheckSeconds = 10): Promise<{ started: string[]; guard: string[]; lines: Record<string, unknown>[] }> {
    const started: string[] = [];
    const guard: string[] = [];
    const lines: Record<string, unknown>[] = [];
    for (let run = 0; run < 10; run++) {
      const g = JSON.parse((await execFileAsync(process.execPath, [GUARD, '--state-file', t.stateFile, '--agent-root', t.agentRoot, '--max-starts', '3'], { encoding: 'utf8' })).stdout.trim()) as { action: string; reason?: string };
      guard.push(g.reason ? `${g.action}:${g.reason}` : g.action);
      started.push(path.basename(fs.readlinkSync(path.join(t.agentRoot, 'current'))));
      const p = startTs(path.join(t.agentRoot, 'current', 'agent.mjs'), [], runnerEnv(t, target, { healthCheckSeconds }));
      const outcome = await Promise.race([p.exited.then(() => 'exit' as const), p.waitLine(done, 60_000).then(() => 'done' as const, () => 'exit' as const)]);
      lines.push(...p.lines);
      if (outcome === 'done') {
        await p.kill();
        return { started, guard, lines };
      }
    }
    throw new Error(`no outcome after 10 starts: ${JSON.stringify({ started, guard })}`);
  }

  async function agentTerminal(): Promise<Terminal> {
    const t = terminal();
    installInitial(t.agentRoot, '1.0.0', agentBundle('1.0.0', { connects: true }));
    return t;
  }

  let agentGood: Packed;
  let agentNoConnect: Packed;
  let agentCrash: Packed;
  beforeAll(async () => {
    agentGood = await pack('2.0.0', agentBundle('2.0.0', { connects: true }), { kind: 'agent' });
    agentNoConnect = await pack('2.1.0', agentBundle('2.1.0', { connects: false }), { kind: 'agent' });
    agentCrash = await pack('2.2.0', agentBundle('2.2.0', { connects: true, crashes: true }), { kind: 'agent' });
    for (const p of [agentGood, agentNoConnect, agentCrash]) expect((await upload(p)).status).toBe(201);
  });

  it('commits a new agent that comes back and passes its check', async () => {
    const t = await agentTerminal();
    const r = await supervise(t, await hubTarget(agentGood, 'GZ-SELF-1'), isFinal('2.0.0'));
    expect(r.lines.find(isFinal('2.0.0'))).toMatchObject({ status: { state: 'committed' } });
    expect(r.started).toEqual(['1.0.0', '2.0.0']);
    expect(await working(t.agentRoot)).toBe('2.0.0');
  });

  it('rolls back a new agent that runs but cannot reach the hub within the limit', async () => {
    const t = await agentTerminal();
    const r = await supervise(t, await hubTarget(agentNoConnect, 'GZ-SELF-2'), isFinal('2.1.0'), 2);
    expect(r.lines.find(isFinal('2.1.0'))).toMatchObject({ status: { state: 'failed', error: { code: 'health-check-failed' } } });
    // old agent → new agent (fails its check, switches back, exits) → old agent records the failure
    expect(r.started).toEqual(['1.0.0', '2.1.0', '1.0.0']);
    expect(await working(t.agentRoot)).toBe('1.0.0');
  });

  it('rolls back a new agent that crashes at start, through the boot guard, and does not retry it', async () => {
    const t = await agentTerminal();
    const target = await hubTarget(agentCrash, 'GZ-SELF-3');
    const r = await supervise(t, target, isFinal('2.2.0'));
    expect(r.lines.find(isFinal('2.2.0'))).toMatchObject({ status: { state: 'failed', error: { code: 'boot-loop' } } });
    expect(r.started).toEqual(['1.0.0', '2.2.0', '2.2.0', '2.2.0', '1.0.0']);
    expect(r.guard).toEqual(['none:no readable update state', 'counted:start 1 of 3', 'counted:start 2 of 3', 'counted:start 3 of 3', 'rolled-back:boot-loop']);
    expect(await working(t.agentRoot)).toBe('1.0.0');
    const again = await supervise(t, target, (l) => status(l)?.error?.code === 'previously-failed');
    expect(again.started).toEqual(['1.0.0']);
  });
});
