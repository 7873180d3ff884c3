/**
 * Rollouts over MQTT, end to end with real processes: the hub (`kiosk-fleet serve`) with a trusted release key and
 * real agents (`kiosk-fleet-agent run`) holding KF_UPDATE_PUBKEY. A signed release is uploaded, a rollout with a pilot
 * wave sends `update/target` (retained, with a download token) to the pilot station's agents; they download from the
 * hub, verify, install, restart the "kiosk app" and report `update/status` through their outbox to the hub, whose
 * ingest feeds the rollout; the rollout advances wave by wave. A release whose app never comes back is rolled back on
 * every pilot terminal and the rollout pauses after the pilot wave, saying why.
 *
 * The kiosk app here is a launcher script run as the agent's restartAppCommand: it runs the release's `health.mjs`
 * and, when that passes, sends the heartbeat to the agent's local API that the updater's health check waits for.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateReleaseKeyPair, privateKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { appBundle, buildRelease, installInitial, type BuiltRelease } from '../../../agent/src/updater/testing.ts';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';

const PILOTS = ['GZ-TH-001-01', 'GZ-TH-001-02'];
const REST = 'GZ-TH-002-01';
const ALL = [...PILOTS, REST];

interface RolloutView {
  id: string;
  status: string;
  wave: number;
  pauseReason: { code: string; message: string; terminals?: { id: string; code: string }[] } | null;
  waves: { wave: number; name: string; size: number; counts: Record<string, number>; passed: string | null }[];
  terminals: Record<string, { wave: number; phase: string; error: { code: string } | null }>;
}

let tmp: string;
let hub: HubProcess;
const agents = new Map<string, AgentProcess>();
const apiPorts = new Map<string, number>();
let good: BuiltRelease;
let bad: BuiltRelease;

// The kiosk app's restart: run the new release's health check; a healthy app says so with a heartbeat.
const LAUNCHER = `
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
const [appRoot, port] = process.argv.slice(2);
const current = path.join(appRoot, 'current');
try { execFileSync(process.execPath, [path.join(current, 'health.mjs')]); } catch { process.exit(0); }
const version = fs.readFileSync(path.join(current, 'version.txt'), 'utf8').trim();
await fetch('http://127.0.0.1:' + port + '/v1/heartbeat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) });
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function json<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function upload(r: BuiltRelease): Promise<void> {
  const res = await hub.api('/api/v1/releases', {
    method: 'POST',
    body: r.artifact,
    headers: { 'x-kf-manifest': r.manifestB64, 'x-kf-signature': r.signature, 'content-type': 'application/gzip' },
  });
  expect(res.status, await res.text()).toBe(201);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const rollout = async (id: string): Promise<RolloutView> => json<RolloutView>(await hub.api(`/api/v1/rollouts/${id}`));
const currentVersion = (id: string): string => path.basename(fs.readlinkSync(path.join(agents.get(id)!.dataDir, 'app', 'current')));

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-rollout-e2e-'));
  const keys = generateReleaseKeyPair();
  const pub = path.join(tmp, 'release-public.pem');
  fs.writeFileSync(pub, keys.publicKeyPem);
  const launcher = path.join(tmp, 'launcher.mjs');
  fs.writeFileSync(launcher, LAUNCHER);
  const privateKey = privateKeyFromPem(keys.privateKeyPem);
  [good, bad] = await Promise.all([
    buildRelease({ workDir: tmp, version: '2.0.0', files: appBundle('2.0.0', true), privateKey }),
    buildRelease({ workDir: tmp, version: '3.0.0', files: appBundle('3.0.0', false), privateKey }),
  ]);

  hub = await spawnHub({ env: { KF_RELEASE_KEYS: pub } });
  const imported = await hub.importFleet({
    city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
    districts: [{ id: 'GZ-TH', name: { zh: '天河', en: 'Tianhe' } }],
    stations: [
      { id: 'GZ-TH-001', district: 'GZ-TH', name: { zh: '一所', en: 'Station 1' } },
      { id: 'GZ-TH-002', district: 'GZ-TH', name: { zh: '二所', en: 'Station 2' } },
    ],
    terminals: ALL.map((id) => ({ id, station: id.slice(0, 9), type: 'id-card', serial: `SN-${id}` })),
  });
  // No maintenance window to wait for, and a short health check (the minimum the config allows).
  await json(await hub.api('/api/v1/config/nodes/GZ', { method: 'PUT', json: { config: { updatePolicy: { windowOnly: false, healthCheckSeconds: 10 } }, expectedVersion: 0 } }));
  for (const r of [good, bad]) await upload(r);

  await Promise.all(
    imported.terminals.created.map(async ({ id, secret }) => {
      const dataDir = path.join(tmp, id);
      // what provisioning leaves on a terminal: app 1.0.0 installed, `current` pointing at it
      installInitial(path.join(dataDir, 'app'), '1.0.0', appBundle('1.0.0', true));
      const port = await freePort();
      apiPorts.set(id, port);
      const agent = await spawnAgent({
        hubUrl: hub.mqttUrl,
        terminalId: id,
        secret,
        dataDir,
        env: {
          KF_UPDATE_PUBKEY: pub,
          KF_TERMINAL_TYPE: 'id-card',
          KF_LOCAL_API_PORT: String(port),
          KF_RESTART_APP_COMMAND: JSON.stringify([process.execPath, launcher, path.join(dataDir, 'app'), String(port)]),
          KF_APP_HEARTBEAT_TIMEOUT: '3600',
          KF_TELEMETRY_INTERVAL: '2',
        },
      });
      agents.set(id, agent);
      await agent.waitForLog((l) => l.msg === 'config applied');
      // the running kiosk app's first heartbeat (its health is part of the rollout's gate)
      await until('local API up', async () => ((await fetch(`http://127.0.0.1:${port}/v1/heartbeat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"version":"1.0.0"}' })).ok ? true : undefined), 10_000);
    }),
  );
}, 90_000);

afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => a.stop()));
  await hub?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('rollouts over MQTT with real hub and agents', () => {
  it('installs on the pilot station first, each terminal reports through to committed, then the rollout goes on to the rest', async () => {
    const created = await json<RolloutView>(
      await hub.api('/api/v1/rollouts', {
        method: 'POST',
        json: { releaseId: good.id, nodeIds: ['GZ'], waves: [{ kind: 'pilot', name: 'pilot', stations: ['GZ-TH-001'] }, { kind: 'rest' }], gate: { successRatio: 1, soakMinutes: 0 } },
      }),
      201,
    );
    expect(created.waves.map((w) => w.size)).toEqual([2, 1]);
    const first = await rollout(created.id);
    // the pilot wave is targeted; the rest waits for the gate
    for (const id of PILOTS) expect(first.terminals[id]?.phase).not.toBe('pending');
    expect(first.terminals[REST]?.phase).toBe('pending');

    const done = await until('rollout completed', async () => {
      const r = await rollout(created.id);
      expect(r.status).not.toBe('paused');
      return r.status === 'completed' ? r : undefined;
    }, 60_000);
    expect(done.waves.map((w) => w.passed)).toEqual(['gate', 'gate']);
    for (const id of ALL) {
      expect(done.terminals[id]?.phase).toMatch(/^(committed|soaked)$/);
      expect(currentVersion(id)).toBe('2.0.0');
    }
  }, 80_000);

  it('a release whose health check fails is rolled back on every pilot terminal and the rollout pauses after the pilot wave, saying why', async () => {
    const created = await json<RolloutView>(
      await hub.api('/api/v1/rollouts', {
        method: 'POST',
        json: { releaseId: bad.id, nodeIds: ['GZ'], waves: [{ kind: 'pilot', stations: ['GZ-TH-001'] }, { kind: 'rest' }], gate: { successRatio: 1, soakMinutes: 0 } },
      }),
      201,
    );
    const paused = await until('both pilots failed and the rollout paused', async () => {
      const r = await rollout(created.id);
      return r.status === 'paused' && PILOTS.every((id) => r.terminals[id]?.phase === 'failed') ? r : undefined;
    }, 60_000);
    expect(paused.wave).toBe(0);
    expect(paused.pauseReason?.code).toBe('wave-gate-failed');
    expect(paused.pauseReason?.terminals?.map((t) => t.id).sort()).toEqual([...PILOTS].sort());
    expect(paused.pauseReason?.terminals?.every((t) => t.code === 'health-check-failed')).toBe(true);
    // the list shows it too, with the reason, for the dashboard
    const list = await json<{ items: RolloutView[] }>(await hub.api('/api/v1/rollouts'));
    expect(list.items.find((r) => r.id === created.id)?.pauseReason?.message).toMatch(/2 of 2 terminals failed/);
    // rolled back: the pilots run the previous release; the rest was never sent the bad one
    for (const id of PILOTS) expect(currentVersion(id)).toBe('2.0.0');
    expect(paused.terminals[REST]?.phase).toBe('pending');
    expect(currentVersion(REST)).toBe('2.0.0');
  }, 80_000);
});
