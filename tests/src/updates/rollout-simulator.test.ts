/**
 * Rollouts over a simulated fleet (what the dashboard demo runs): the real hub process and `kiosk-fleet-agent
 * simulate` with provisioning; the simulated updater answers update/target with the real states. A good release
 * reaches every terminal wave by wave; with the control API's lever one pilot terminal fails its health check and
 * the rollout pauses after the pilot wave, naming it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TERMINAL_TYPE_IDS } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { appBundle, buildRelease, type BuiltRelease } from '../../../agent/src/updater/testing.ts';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';

interface SimTerminalView {
  id: string;
  station: string;
  appVersion: string;
  update: { state: string };
}
interface RolloutView {
  id: string;
  status: string;
  wave: number;
  pauseReason: { code: string; terminals?: { id: string; code: string }[] } | null;
  terminals: Record<string, { wave: number; phase: string }>;
}

let tmp: string;
let hub: HubProcess;
let sim: SimulatorProcess;
let terminals: SimTerminalView[];
let pilotStation: string;
const releases: Record<string, BuiltRelease> = {};

async function json<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const rollout = async (id: string) => json<RolloutView>(await hub.api(`/api/v1/rollouts/${id}`));

async function start(releaseId: string): Promise<RolloutView> {
  return json<RolloutView>(
    await hub.api('/api/v1/rollouts', {
      method: 'POST',
      json: { releaseId, nodeIds: ['GZ'], waves: [{ kind: 'pilot', stations: [pilotStation] }, { kind: 'rest' }], gate: { successRatio: 1, soakMinutes: 0 } },
    }),
    201,
  );
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-rollout-sim-'));
  const keys = generateReleaseKeyPair();
  fs.writeFileSync(path.join(tmp, 'pub.pem'), keys.publicKeyPem);
  hub = await spawnHub({ env: { KF_RELEASE_KEYS: path.join(tmp, 'pub.pem') } });
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, provision: true, count: 5, interval: 2 });
  const privateKey = privateKeyFromPem(keys.privateKeyPem);
  for (const version of ['4.0.0', '4.1.0']) {
    const r = await buildRelease({ workDir: tmp, version, files: appBundle(version, true), privateKey, terminalTypes: [...TERMINAL_TYPE_IDS] });
    releases[version] = r;
    const res = await hub.api('/api/v1/releases', { method: 'POST', body: r.artifact, headers: { 'x-kf-manifest': r.manifestB64, 'x-kf-signature': r.signature } });
    expect(res.status, await res.text()).toBe(201);
  }
  terminals = (await sim.control<{ items: SimTerminalView[] }>('/terminals')).items;
  pilotStation = terminals[0]!.station;
}, 120_000);

afterAll(async () => {
  await sim?.stop();
  await hub?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('rollouts over a simulated fleet', () => {
  it('a good release reaches the pilot station, then every simulated terminal', async () => {
    const r = await start(releases['4.0.0']!.id);
    const done = await until('completed', async () => {
      const v = await rollout(r.id);
      expect(v.status).not.toBe('paused');
      return v.status === 'completed' ? v : undefined;
    }, 60_000);
    expect(Object.keys(done.terminals).sort()).toEqual(terminals.map((t) => t.id).sort());
    const now = (await sim.control<{ items: SimTerminalView[] }>('/terminals')).items;
    expect(now.every((t) => t.appVersion === '4.0.0' && t.update.state === 'committed')).toBe(true);
  }, 70_000);

  it('a pilot terminal whose health check fails pauses the rollout after the pilot wave, naming it', async () => {
    const pilot = terminals.find((t) => t.station === pilotStation)!;
    await sim.control(`/terminals/${pilot.id}/update-health`, { fail: true });
    const r = await start(releases['4.1.0']!.id);
    const paused = await until('paused', async () => {
      const v = await rollout(r.id);
      return v.status === 'paused' ? v : undefined;
    }, 60_000);
    expect(paused.wave).toBe(0);
    expect(paused.pauseReason).toMatchObject({ code: 'wave-gate-failed', terminals: [{ id: pilot.id, code: 'health-check-failed' }] });
    for (const t of terminals.filter((x) => x.station !== pilotStation)) expect(paused.terminals[t.id]?.phase).toBe('pending');
    const after = (await sim.control<SimTerminalView>(`/terminals/${pilot.id}`));
    expect(after.appVersion).toBe('4.0.0');
  }, 70_000);
});
