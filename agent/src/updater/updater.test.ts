import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateReleaseKeyPair, privateKeyFromPem, publicKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { isInWindow } from './maintenance-window.ts';
import { loadState, saveState, initialState } from './state.ts';
import { appBundle, buildRelease, installInitial, serveArtifacts, targetFor, type ArtifactServer, type BuiltRelease } from './testing.ts';
import { Updater, type StatusReport, type UpdaterHooks } from './updater.ts';

const run = promisify(execFile);
const logger = pino({ level: 'silent' });
const keys = generateReleaseKeyPair();
const rogue = generateReleaseKeyPair();
let tmp: string;
let server: ArtifactServer;
let v2: BuiltRelease;
let v2bad: BuiltRelease;
let v2rogue: BuiltRelease;
let v2big: BuiltRelease;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-updater-'));
  const priv = privateKeyFromPem(keys.privateKeyPem);
  v2 = await buildRelease({ workDir: tmp, version: '2.0.0', files: appBundle('2.0.0', true), privateKey: priv });
  v2bad = await buildRelease({ workDir: tmp, version: '2.1.0', files: appBundle('2.1.0', false), privateKey: priv });
  v2rogue = await buildRelease({ workDir: tmp, version: '2.2.0', files: appBundle('2.2.0', true), privateKey: privateKeyFromPem(rogue.privateKeyPem) });
  const blob: Record<string, string> = { ...appBundle('2.3.0', true), 'blob.txt': randomBytes(150_000).toString('base64') };
  v2big = await buildRelease({ workDir: tmp, version: '2.3.0', files: blob, privateKey: priv });
  const tampered = Buffer.from(v2.artifact);
  tampered[100]! ^= 0xff;
  server = await serveArtifacts(
    { good: v2.artifact, bad: v2bad.artifact, rogue: v2rogue.artifact, tampered, big: v2big.artifact, 'wrong-type': v2.artifact },
    { cutAfter: { big: 50_000 } },
  );
});

afterAll(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const running: AbortController[] = [];
afterEach(() => {
  for (const c of running.splice(0)) c.abort();
});

async function healthy(dir: string): Promise<boolean> {
  try {
    await run(process.execPath, [path.join(dir, 'health.mjs')]);
    return true;
  } catch {
    return false;
  }
}

interface Rig {
  updater: Updater;
  statuses: StatusReport[];
  restarts: string[];
  root: string;
  stateFile: string;
  session: { open: boolean };
  window: { open: boolean };
  /** Called for each status, before it is recorded (to act at an exact state). */
  onStatus: (s: StatusReport) => void;
  start(): void;
  waitFor(pred: (s: StatusReport) => boolean, ms?: number): Promise<StatusReport>;
  current(): string;
}

let rigCount = 0;
function rig(o: { terminalType?: string; healthCheckSeconds?: number; windowOpen?: boolean; dir?: string } = {}): Rig {
  const root = o.dir ?? path.join(tmp, `t${++rigCount}`);
  const appRoot = path.join(root, 'app');
  if (!fs.existsSync(appRoot)) installInitial(appRoot, '1.0.0', appBundle('1.0.0', true));
  const statuses: StatusReport[] = [];
  const restarts: string[] = [];
  const session = { open: false };
  const window = { open: o.windowOpen ?? true };
  const hooks: UpdaterHooks = {
    restart: async (_kind, version) => void restarts.push(version),
    healthCheck: ({ dir }) => healthy(dir),
    isSessionOpen: () => session.open,
    isInMaintenanceWindow: () => window.open,
  };
  const stateFile = path.join(root, 'update-state.json');
  const updater = new Updater({
    stateFile,
    roots: { app: appRoot, agent: path.join(root, 'agent') },
    publicKeys: [publicKeyFromPem(keys.publicKeyPem)],
    terminalType: o.terminalType ?? 'id-card',
    agentVersion: '1.0.0',
    hooks,
    policy: () => ({ windowOnly: true, healthCheckSeconds: o.healthCheckSeconds ?? 10 }),
    onStatus: (s) => {
      result.onStatus(s);
      statuses.push(s);
    },
    logger,
    timing: { waitPollMs: 50, healthPollMs: 50, retryMinMs: 20, retryMaxMs: 200 },
  });
  const result: Rig = {
    onStatus: () => undefined,
    updater,
    statuses,
    restarts,
    root,
    stateFile,
    session,
    window,
    start() {
      const c = new AbortController();
      running.push(c);
      updater.resume();
      void updater.run(c.signal);
    },
    async waitFor(pred, ms = 15_000) {
      const until = Date.now() + ms;
      for (;;) {
        const hit = statuses.find(pred);
        if (hit) return hit;
        if (Date.now() > until) throw new Error(`timed out; statuses: ${JSON.stringify(statuses.map((s) => [s.state, s.error?.code]))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    current: () => path.basename(fs.readlinkSync(path.join(appRoot, 'current'))),
  };
  return result;
}

const states = (r: Rig): string[] => r.statuses.map((s) => s.state).filter((s, i, a) => a[i - 1] !== s);

describe('updater', { timeout: 30_000 }, () => {
  it('walks every state to committed and switches current to the new version', async () => {
    const r = rig();
    r.start();
    r.updater.setTarget(targetFor(v2, server.url('good'), { rolloutId: 'r-1' }));
    const done = await r.waitFor((s) => s.state === 'committed' || s.state === 'failed');
    expect(done).toMatchObject({ state: 'committed', releaseId: 'app-2.0.0', version: '2.0.0', rolloutId: 'r-1' });
    expect(states(r)).toEqual(['idle', 'downloading', 'verifying', 'waiting', 'installing', 'switching', 'restarting', 'health-check', 'committed']);
    expect(r.current()).toBe('2.0.0');
    expect(r.restarts).toEqual(['2.0.0']);
    expect(loadState(r.stateFile)).toMatchObject({ ok: true, state: { state: 'committed', previous: '1.0.0' } });
    // the download is gone; the previous version stays for a manual rollback
    expect(fs.readdirSync(path.join(r.root, 'app', 'downloads'))).toEqual([]);
    expect(fs.readdirSync(path.join(r.root, 'app', 'releases')).sort()).toEqual(['1.0.0', '2.0.0']);
  });

  it('refuses a tampered artifact and a bad signature, stays on the old version, and never retries them', async () => {
    const r = rig();
    r.start();
    const tamperedTarget = targetFor(v2, server.url('tampered'));
    r.updater.setTarget(tamperedTarget);
    expect(await r.waitFor((s) => s.state === 'failed')).toMatchObject({ error: { code: 'sha256-mismatch' } });
    expect(r.current()).toBe('1.0.0');

    r.updater.setTarget(targetFor(v2rogue, server.url('rogue')));
    expect(await r.waitFor((s) => s.state === 'failed' && s.version === '2.2.0')).toMatchObject({ error: { code: 'bad-signature' } });

    // the hub re-sends the same (retained) target: refused without downloading again
    const before = server.requests.filter((q) => q.path === 'tampered').length;
    r.updater.setTarget(tamperedTarget);
    expect(await r.waitFor((s) => s.error?.code === 'previously-failed')).toMatchObject({ state: 'failed', version: '2.0.0' });
    expect(server.requests.filter((q) => q.path === 'tampered').length).toBe(before);
    expect(r.current()).toBe('1.0.0');
  });

  it('refuses a manifest whose fields were changed in update/target, and a release for another terminal type', async () => {
    const r = rig({ terminalType: 'endorsement' });
    r.start();
    const t = targetFor(v2, server.url('wrong-type'));
    r.updater.setTarget(t);
    expect(await r.waitFor((s) => s.state === 'failed')).toMatchObject({ error: { code: 'wrong-terminal-type' } });
    const r2 = rig();
    r2.start();
    const lying = targetFor(v2bad, server.url('bad'));
    lying.release!.version = '9.9.9';
    r2.updater.setTarget(lying);
    expect(await r2.waitFor((s) => s.state === 'failed')).toMatchObject({ error: { code: 'manifest-mismatch' } });
    expect(r2.current()).toBe('1.0.0');
  });

  it('rolls back a version whose health check fails within the limit, and does not retry it', async () => {
    const r = rig({ healthCheckSeconds: 1 });
    r.start();
    r.updater.setTarget(targetFor(v2bad, server.url('bad')));
    const f = await r.waitFor((s) => s.state === 'failed');
    expect(f.error?.code).toBe('health-check-failed');
    expect(states(r).slice(-3)).toEqual(['health-check', 'rolling-back', 'failed']);
    expect(r.current()).toBe('1.0.0');
    expect(r.restarts).toEqual(['2.1.0', '1.0.0']);
    expect(fs.existsSync(path.join(r.root, 'app', 'releases', '2.1.0'))).toBe(false);
    r.statuses.length = 0;
    r.updater.setTarget(targetFor(v2bad, server.url('bad')));
    expect(await r.waitFor((s) => s.state === 'failed')).toMatchObject({ error: { code: 'previously-failed' } });
    expect(r.restarts).toHaveLength(2);
  });

  it('defers the install while a citizen session is open and outside the window; urgent skips only the window', async () => {
    const r = rig({ windowOpen: false });
    r.start();
    r.updater.setTarget(targetFor(v2, server.url('good')));
    await r.waitFor((s) => s.state === 'waiting' && s.error?.code === 'outside-window');
    await new Promise((res) => setTimeout(res, 300));
    expect(r.updater.state.state).toBe('waiting');
    expect(r.current()).toBe('1.0.0');

    r.session.open = true;
    r.updater.setTarget(targetFor(v2, server.url('good'), { urgent: true })); // same release, now urgent
    await r.waitFor((s) => s.state === 'waiting' && s.error?.code === 'session-open');
    await new Promise((res) => setTimeout(res, 300));
    expect(r.updater.state.state).toBe('waiting');

    r.session.open = false;
    r.updater.nudge();
    await r.waitFor((s) => s.state === 'committed');
    expect(r.current()).toBe('2.0.0');
  });

  it('does not restart the app while a session opened during the install', async () => {
    const r = rig();
    // the session opens just as the install starts: the restart must wait for it
    const orig = r.updater;
    r.onStatus = (s) => {
      if (s.state === 'installing') r.session.open = true;
    };
    r.start();
    r.updater.setTarget(targetFor(v2, server.url('good')));
    await r.waitFor((s) => s.state === 'restarting');
    await new Promise((res) => setTimeout(res, 300));
    expect(r.restarts).toEqual([]);
    expect(orig.state.state).toBe('restarting');
    r.session.open = false;
    await r.waitFor((s) => s.state === 'committed');
    expect(r.restarts).toEqual(['2.0.0']);
  });

  it('resumes a download cut in the middle with a Range request', async () => {
    const r = rig();
    r.start();
    r.updater.setTarget(targetFor(v2big, server.url('big')));
    await r.waitFor((s) => s.state === 'committed', 20_000);
    const reqs = server.requests.filter((q) => q.path === 'big');
    expect(reqs.length).toBeGreaterThanOrEqual(2);
    expect(reqs[0]!.range).toBeUndefined();
    expect(Number(/^bytes=(\d+)-$/.exec(reqs[1]!.range ?? '')?.[1])).toBeGreaterThan(0);
    expect(r.statuses.some((s) => s.error?.code === 'download-interrupted')).toBe(true);
    expect(r.current()).toBe('2.3.0');
  });

  it('a null target cancels a waiting update; a new target replaces it', async () => {
    const r = rig({ windowOpen: false });
    r.start();
    r.updater.setTarget(targetFor(v2big, server.url('big')));
    await r.waitFor((s) => s.state === 'waiting');
    r.updater.setTarget({ v: 1, release: null, urgent: false });
    await r.waitFor((s) => s.state === 'idle' && r.statuses.indexOf(s) > 0);
    expect(r.updater.state.target).toBeNull();
    r.updater.setTarget(targetFor(v2, server.url('good'), { urgent: true }));
    await r.waitFor((s) => s.state === 'committed');
    expect(r.current()).toBe('2.0.0');
  });

  it('a target for the version already running is reported committed without downloading', async () => {
    const r = rig();
    r.start();
    r.updater.setTarget(targetFor(v2, server.url('good')));
    await r.waitFor((s) => s.state === 'committed');
    const n = server.requests.length;
    r.statuses.length = 0;
    r.updater.setTarget(targetFor(v2, server.url('good')));
    r.updater.setTarget(targetFor(v2, server.url('good'), { token: 'fresh' }));
    await new Promise((res) => setTimeout(res, 200));
    expect(server.requests.length).toBe(n);
    expect(r.updater.state.state).toBe('committed');
  });

  it('counts starts during health-check and rolls back a boot loop', async () => {
    const r = rig();
    r.start();
    r.updater.setTarget(targetFor(v2, server.url('good')));
    await r.waitFor((s) => s.state === 'committed');
    running.splice(0).forEach((c) => c.abort());
    // pretend the process died in health-check three times (what the persisted file would say)
    const st = loadState(r.stateFile);
    if (!st.ok) throw new Error(st.reason);
    saveState(r.stateFile, { ...st.state, state: 'health-check', boots: 3, healthDeadline: new Date(Date.now() + 60_000).toISOString() });
    const again = rig({ dir: r.root });
    again.start();
    await again.waitFor((s) => s.state === 'failed');
    expect(again.statuses[0]).toMatchObject({ state: 'rolling-back', error: { code: 'boot-loop' } });
    expect(again.current()).toBe('1.0.0');
  });

  it('starts afresh from an unreadable state file, on the version current points at', async () => {
    const r = rig();
    fs.writeFileSync(r.stateFile, '{"v":1,"state":"inst');
    r.start();
    expect(r.updater.state.state).toBe('idle');
    expect(fs.readdirSync(r.root).some((f) => f.startsWith('update-state.json.corrupt-'))).toBe(true);
    expect(r.current()).toBe('1.0.0');
    expect(initialState().state).toBe('idle');
  });
});

describe('maintenance window', () => {
  const w = { mon: [{ from: '01:00', to: '04:00' }], tue: [{ from: '23:00', to: '02:00' }] };
  const at = (iso: string): boolean => isInWindow(w, new Date(iso), 'Asia/Shanghai');
  it('evaluates spans in the bureau time zone, including spans across midnight', () => {
    expect(at('2026-11-29T17:30:00Z')).toBe(true); // Mon 01:30 Shanghai
    expect(at('2026-11-29T20:00:00Z')).toBe(false); // Mon 04:00: end is exclusive
    expect(at('2026-12-01T15:30:00Z')).toBe(true); // Tue 23:30
    expect(at('2026-12-01T17:30:00Z')).toBe(true); // Wed 01:30, from Tuesday's span
    expect(at('2026-12-01T18:30:00Z')).toBe(false); // Wed 02:30
    expect(at('2026-11-30T17:30:00Z')).toBe(false); // Tue 01:30: Monday has no overnight span
    expect(isInWindow(undefined, new Date(), 'Asia/Shanghai')).toBe(false);
  });
});

describe('updater start-up order', () => {
  it('a target arriving before resume() does not overwrite the persisted state', async () => {
    const r = rig();
    r.start();
    r.updater.setTarget(targetFor(v2, server.url('good')));
    await r.waitFor((s) => s.state === 'committed');
    running.splice(0).forEach((c) => c.abort());
    const again = rig({ dir: r.root });
    // no resume() yet: the retained message is first
    again.updater.setTarget(targetFor(v2bad, server.url('bad')));
    expect(again.updater.state.previous).toBe('1.0.0'); // the persisted state was read, not replaced
    expect(again.updater.state.state).toBe('committed');
  });
});
