/**
 * Rollouts end to end without MQTT: the hub's release routes and rollout routes over real HTTP, the rollout
 * service publishing update/targets straight into real updaters (one per terminal, each with its own install
 * root), and their update/status fed back to the service, as the hub's ingest will.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpdateTarget } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, publicKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { appBundle, buildRelease, installInitial, type BuiltRelease } from '../../../agent/src/updater/testing.ts';
import { Updater } from '../../../agent/src/updater/updater.ts';
import { adminBearer, createReleases, SqliteReleaseStore, type Releases } from '../../../hub/src/releases/index.ts';
import { rolloutsRoutes } from '../../../hub/src/rollouts/routes.ts';
import { RolloutService, type RolloutPorts, type RolloutView } from '../../../hub/src/rollouts/service.ts';
import { SqliteRolloutStore } from '../../../hub/src/rollouts/store.sqlite.ts';
import { serveApps, silentLogger } from '../../../hub/src/rollouts/testing.ts';
import { openDatabase, type Db } from '../../../hub/src/store/db.ts';
import type { FleetTerminal } from '../../../hub/src/rollouts/engine.ts';

const logger = silentLogger();
const ADMIN = 'rollout-admin-token';
const keys = generateReleaseKeyPair();

let tmp: string;
let db: Db;
let releases: Releases;
let server: { url: string; close(): Promise<void> };
let good: BuiltRelease;
let bad: BuiltRelease;

interface Term {
  id: string;
  root: string;
  updater: Updater;
  window: { open: boolean };
  abort: AbortController;
}

const fleet: FleetTerminal[] = [];
const terms = new Map<string, Term>();
let service: RolloutService;
const published: { terminalId: string; target: UpdateTarget }[] = [];
const events: string[] = [];

/**
 * Health checks run asynchronously: eight synchronous ones in a row froze this process for longer than the 5 s for
 * which the in-process server keeps an idle connection, and the next request went out on the connection that server
 * was closing ("fetch failed", read ECONNRESET, under load).
 */
const execFileAsync = promisify(execFile);

function makeTerminal(id: string, station: string): void {
  const root = path.join(tmp, 'terminals', id);
  installInitial(path.join(root, 'app'), '1.0.0', appBundle('1.0.0', true));
  const window = { open: true };
  const updater = new Updater({
    stateFile: path.join(root, 'update-state.json'),
    roots: { app: path.join(root, 'app'), agent: path.join(root, 'agent') },
    publicKeys: [publicKeyFromPem(keys.publicKeyPem)],
    terminalType: 'id-card',
    agentVersion: '1.0.0',
    logger,
    policy: () => ({ windowOnly: true, healthCheckSeconds: 1 }),
    timing: { waitPollMs: 50, healthPollMs: 50, retryMinMs: 20, retryMaxMs: 200 },
    hooks: {
      restart: async () => undefined,
      healthCheck: async ({ dir }) => {
        try {
          await execFileAsync(process.execPath, [path.join(dir, 'health.mjs')]);
          return true;
        } catch {
          return false;
        }
      },
      isSessionOpen: () => false,
      isInMaintenanceWindow: () => window.open,
    },
    // what the agent publishes on update/status, delivered to the hub's rollout service
    onStatus: (s) => void service?.onStatus(id, s),
  });
  const abort = new AbortController();
  updater.resume();
  void updater.run(abort.signal);
  terms.set(id, { id, root, updater, window, abort });
  fleet.push({ id, type: 'id-card', ancestors: [station, station.split('-S')[0]!, 'GZ'] });
}

const current = (id: string): string => path.basename(fs.readlinkSync(path.join(terms.get(id)!.root, 'app', 'current')));
const working = async (id: string): Promise<string> => {
  const root = path.join(terms.get(id)!.root, 'app', 'current');
  await execFileAsync(process.execPath, [path.join(root, 'health.mjs')]);
  return fs.readFileSync(path.join(root, 'version.txt'), 'utf8');
};

async function api<T>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${server.url}/api/v1${p}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function until<T>(f: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out; events ${events.slice(-10).join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-rollouts-'));
  const priv = privateKeyFromPem(keys.privateKeyPem);
  good = await buildRelease({ workDir: tmp, version: '2.0.0', files: appBundle('2.0.0', true), privateKey: priv });
  bad = await buildRelease({ workDir: tmp, version: '2.1.0', files: appBundle('2.1.0', false), privateKey: priv });
  fs.writeFileSync(path.join(tmp, 'release-public.pem'), keys.publicKeyPem);
  ({ db } = openDatabase(path.join(tmp, 'hub')));
  releases = await createReleases({ store: new SqliteReleaseStore(db), releaseKeys: path.join(tmp, 'release-public.pem'), logger, isAdminToken: (t) => t === ADMIN });
  let baseUrl = '';
  service = await new RolloutService({
    store: new SqliteRolloutStore(db),
    logger,
    ports: {
      fleet: async () => fleet,
      health: async () => ({ online: true, newPeripheralFault: false, appAlive: true, failureRate: null, baselineFailureRate: null }),
      release: (id) => releases.store.get(id),
      makeTarget: (r, terminalId, o) => releases.updateTarget(r, terminalId, { baseUrl, ...o }),
      publishTarget: async (terminalId, target) => {
        published.push({ terminalId, target });
        terms.get(terminalId)?.updater.setTarget(target); // the retained message reaching the terminal
      },
      emit: (e) => void events.push(e.action.kind === 'event' ? `${e.action.event}:${e.action.wave}` : `${e.action.kind}:${e.action.terminalId}`),
    },
  }).init();
  server = await serveApps([
    ['/api/v1/releases', releases.routes],
    ['/api/v1/rollouts', rolloutsRoutes({ service, requireAdmin: adminBearer((t) => t === ADMIN) })],
  ]);
  baseUrl = server.url;
  for (const r of [good, bad]) {
    const res = await fetch(`${server.url}/api/v1/releases`, {
      method: 'POST',
      body: r.artifact,
      headers: { authorization: `Bearer ${ADMIN}`, 'x-kf-manifest': r.manifestB64, 'x-kf-signature': r.signature },
    });
    expect(res.status).toBe(201);
  }
  // Tianhe: pilot station with 2 terminals, another station with 4; Yuexiu: 2.
  for (const [st, n] of [['TH-S1', 2], ['TH-S2', 4], ['YX-S1', 2]] as const) for (let i = 1; i <= n; i++) makeTerminal(`${st}-T${i}`, st);
});

afterAll(async () => {
  for (const t of terms.values()) t.abort.abort();
  service?.stop();
  await server?.close();
  db?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const waves = [
  { kind: 'pilot', name: 'pilot', stations: ['TH-S1'] },
  { kind: 'share', name: 'half of Tianhe', nodeId: 'TH', ratio: 0.5 },
  { kind: 'rest', name: 'city' },
];

describe('rollouts', () => {
  it('refuses a bad rollout request with the path of the field, and an unknown rollout with 404', async () => {
    const r = await api<{ error: { code: string; message: string } }>('POST', '/rollouts', { releaseId: 'app-2.0.0', nodeIds: ['GZ'], waves: [{ kind: 'share', nodeId: 'TH', ratio: 2 }] });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/waves\.0\.ratio/);
    expect((await api('POST', '/rollouts', { releaseId: 'app-9.9.9', nodeIds: ['GZ'], waves: [{ kind: 'rest' }] })).status).toBe(400);
    expect((await api('GET', '/rollouts/r-nope')).status).toBe(404);
    expect((await api('POST', '/rollouts/r-nope/abort')).status).toBe(404);
  });

  it('a release failing its health check is rolled back on every pilot terminal, and the rollout pauses after the pilot', async () => {
    const created = await api<RolloutView>('POST', '/rollouts', { releaseId: 'app-2.1.0', nodeIds: ['GZ'], waves, gate: { soakMinutes: 0 } });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const paused = await until(() => {
      const v = service.get(id);
      return v.status === 'paused' && v.pauseReason?.terminals?.length === 2 ? v : undefined;
    });
    expect(paused.pauseReason).toMatchObject({ code: 'wave-gate-failed', terminals: [{ id: 'TH-S1-T1', code: 'health-check-failed' }, { id: 'TH-S1-T2', code: 'health-check-failed' }] });
    for (const t of ['TH-S1-T1', 'TH-S1-T2']) {
      expect(terms.get(t)!.updater.state.state).toBe('failed');
      expect(await working(t)).toBe('1.0.0');
    }
    // nobody outside the pilot got the release
    expect(new Set(published.filter((p) => p.target.release?.id === 'app-2.1.0').map((p) => p.terminalId))).toEqual(new Set(['TH-S1-T1', 'TH-S1-T2']));
    const progress = (await api<RolloutView>('GET', `/rollouts/${id}`)).body;
    expect(progress.waves[0]).toMatchObject({ name: 'pilot', size: 2, counts: { failed: 2 } });
    expect(progress.waves[2]!.counts).toEqual({ pending: 4 });

    const aborted = await api<RolloutView>('POST', `/rollouts/${id}/abort`);
    expect(aborted.body.status).toBe('aborted');
    for (const t of terms.keys()) expect(await working(t)).toBe('1.0.0');
  });

  it('a healthy release goes wave by wave through the tree to every terminal', async () => {
    const created = await api<RolloutView>('POST', '/rollouts', { releaseId: 'app-2.0.0', nodeIds: ['GZ'], waves, gate: { soakMinutes: 0 }, maxInFlight: 2 });
    const id = created.body.id;
    const done = await until(() => {
      const v = service.get(id);
      return v.status === 'completed' ? v : undefined;
    });
    expect(done.waves.map((w) => [w.name, w.size, w.passed])).toEqual([
      ['pilot', 2, 'gate'],
      ['half of Tianhe', 2, 'gate'],
      ['city', 4, 'gate'],
    ]);
    expect(events.filter((e) => e.startsWith('wave-passed') || e.startsWith('completed')).slice(-4)).toEqual(['wave-passed:0', 'wave-passed:1', 'wave-passed:2', 'completed:2']);
    for (const t of terms.keys()) expect(await working(t)).toBe('2.0.0');
  });

  it('abort cancels terminals still waiting for their window; every terminal stays on a working version', async () => {
    // back to a known state: a new release 3.0.0 so that every terminal has something to do
    const r3 = await buildRelease({ workDir: tmp, version: '3.0.0', files: appBundle('3.0.0', true), privateKey: privateKeyFromPem(keys.privateKeyPem) });
    await fetch(`${server.url}/api/v1/releases`, { method: 'POST', body: r3.artifact, headers: { authorization: `Bearer ${ADMIN}`, 'x-kf-manifest': r3.manifestB64, 'x-kf-signature': r3.signature } });
    for (const t of terms.values()) t.window.open = false; // night has not come yet
    const created = await api<RolloutView>('POST', '/rollouts', { releaseId: 'app-3.0.0', nodeIds: ['GZ'], waves: [{ kind: 'rest' }], gate: { soakMinutes: 0 } });
    const id = created.body.id;
    await until(() => [...terms.values()].every((t) => t.updater.state.state === 'waiting'));
    // one terminal's window opens and it installs; then the operator aborts
    terms.get('YX-S1-T1')!.window.open = true;
    terms.get('YX-S1-T1')!.updater.nudge();
    await until(() => terms.get('YX-S1-T1')!.updater.state.state === 'committed');
    const aborted = await api<RolloutView>('POST', `/rollouts/${id}/abort`);
    expect(aborted.body.status).toBe('aborted');
    await until(() => [...terms.values()].filter((t) => t.id !== 'YX-S1-T1').every((t) => t.updater.state.state === 'idle'));
    for (const t of terms.values()) t.window.open = true;
    for (const t of terms.values()) t.updater.nudge();
    await new Promise((r) => setTimeout(r, 300));
    for (const t of terms.keys()) expect(await working(t)).toBe(t === 'YX-S1-T1' ? '3.0.0' : '2.0.0');
    expect(current('TH-S2-T1')).toBe('2.0.0');
  });

  it('rollouts survive a restart of the service', async () => {
    const again = await new RolloutService({ store: new SqliteRolloutStore(db), logger, ports: {} as RolloutPorts }).init(); // loading touches no port
    expect(again.list().map((r) => r.status).sort()).toEqual(['aborted', 'aborted', 'completed']);
  });
});
