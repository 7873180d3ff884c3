/**
 * Layered config end to end: the real hub process and real agent processes over TCP.
 * - a change at a district reaches exactly that district's terminals, and the pushed interval governs over the
 *   agent's env default;
 * - an offline terminal drifts, then gets the config when it reconnects, and the drift clears;
 * - a config the agent cannot run is rejected with the reason, reported, and the last good one keeps running;
 * - stale writes are 409, invalid ones 400 with paths, and neither reaches a terminal.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { freePort } from '../helpers/reliability-util.ts';

async function until<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

interface Sync {
  desiredVersion: number;
  appliedVersion: number;
  status: 'in-sync' | 'pending' | 'rejected';
  rejected: { version: number; reason: string | null } | null;
  drift: { since: string } | null;
}
interface TerminalConfigView {
  version: number;
  desired: { version: number; config: Record<string, unknown> } | null;
  sync: Sync;
}
interface DriftList {
  items: { terminalId: string; status: string; presence: string | null }[];
  byNode: Record<string, number>;
}

const YX = ['GZ-YX-001-01', 'GZ-YX-001-02'];
const TH = 'GZ-TH-001-01';
let hub: HubProcess;
const secrets = new Map<string, string>();
const agents = new Map<string, AgentProcess>();

const get = async <R>(p: string): Promise<R> => {
  const r = await hub.api(p);
  if (r.status !== 200) throw new Error(`${p}: ${r.status} ${await r.text()}`);
  return (await r.json()) as R;
};
const put = (p: string, json: unknown) => hub.api(p, { method: 'PUT', json });
const view = (id: string) => get<TerminalConfigView>(`/api/v1/config/terminals/${id}`);
const telemetryCount = async (id: string) =>
  (await get<{ streams: { stream: string; count: number }[] }>(`/api/v1/terminals/${id}`)).streams
    .filter((s) => s.stream === 'telemetry')
    .reduce((n, s) => n + s.count, 0);
const applied = (a: AgentProcess, version: number) => a.lines.some((l) => l.msg === 'config applied' && l['version'] === version);

beforeAll(async () => {
  const mqttPort = await freePort();
  hub = await spawnHub({ env: { KF_MQTT_PORT: String(mqttPort) } });
  const res = await hub.importFleet({
    city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou PSB' } },
    districts: [
      { id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu' } },
      { id: 'GZ-TH', name: { zh: '天河区分局', en: 'Tianhe' } },
    ],
    stations: [
      { id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥派出所', en: 'Hongqiao' } },
      { id: 'GZ-TH-001', district: 'GZ-TH', name: { zh: '石牌派出所', en: 'Shipai' } },
    ],
    terminals: [...YX, TH].map((id) => ({ id, station: id.slice(0, 9), type: 'id-card', serial: `SN-${id}` })),
  });
  for (const t of res.terminals.created) secrets.set(t.id, t.secret);
  // The env default interval is long: a sample cadence of seconds can only come from the pushed config.
  for (const id of [...YX, TH]) {
    agents.set(id, await spawnAgent({ hubUrl: hub.mqttUrl, terminalId: id, secret: secrets.get(id)!, env: { KF_TELEMETRY_INTERVAL: '600' } }));
  }
  // a short drift grace city-wide (driftMinutes is part of the config itself)
  expect((await put('/api/v1/config/nodes/GZ', { config: { alerts: { thresholds: { driftMinutes: 0.02 } } }, expectedVersion: 0, reason: 'test grace' })).status).toBe(200);
  for (const id of [...YX, TH]) await until(() => applied(agents.get(id)!, 1), 20_000, `${id} applies the city config`);
}, 90_000);

afterAll(async () => {
  for (const a of agents.values()) await a.stop().catch(() => undefined);
  await hub?.stop();
}, 60_000);

describe('config down the tree, with real agents', () => {
  it('a district change reaches exactly that district, and the pushed interval governs over the env default', async () => {
    const res = await put('/api/v1/config/nodes/GZ-YX', { config: { telemetryInterval: 5, logLevel: 'debug' }, expectedVersion: 0, reason: 'denser telemetry' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { pushed: { terminals: { terminalId: string; version: number }[] } };
    expect(body.pushed.terminals.map((t) => t.terminalId).sort()).toEqual(YX);
    for (const id of YX) {
      await until(() => applied(agents.get(id)!, 2), 20_000, `${id} applies v2`);
      await until(async () => (await view(id)).sync.status === 'in-sync' && (await view(id)).sync.appliedVersion === 2, 20_000, `${id} reported v2`);
    }
    // the other district's terminal got nothing new
    expect((await view(TH)).desired!.version).toBe(1);
    expect(agents.get(TH)!.lines.some((l) => l.msg === 'config applied' && l['version'] === 2)).toBe(false);
    // with the env default of 600 s, several samples in a row can only come from the pushed 5 s
    const before = await telemetryCount(YX[0]!);
    await until(async () => (await telemetryCount(YX[0]!)) >= before + 2, 40_000, 'samples at the pushed interval');
  }, 90_000);

  it('an offline terminal drifts, gets the change when it reconnects, and the drift clears', async () => {
    const a = agents.get(TH)!;
    await a.kill('SIGTERM');
    await until(async () => (await get<{ presence: { state: string } }>(`/api/v1/terminals/${TH}`)).presence.state === 'offline', 20_000, 'offline');
    const res = await put('/api/v1/config/nodes/GZ-TH-001', { config: { telemetryInterval: 7 }, expectedVersion: 0 });
    expect(res.status).toBe(200);
    const drift = await until(async () => {
      const d = await get<DriftList>('/api/v1/config/drift?node=GZ-TH');
      return d.items.length === 1 ? d : null;
    }, 20_000, 'drift listed');
    expect(drift.items[0]).toMatchObject({ terminalId: TH, status: 'pending', presence: 'offline' });
    expect(drift.byNode).toMatchObject({ 'GZ-TH': 1, 'GZ-TH-001': 1 });
    expect((await get<DriftList>('/api/v1/config/drift?node=GZ')).items.map((i) => i.terminalId)).toEqual([TH]);
    expect((await view(TH)).sync.drift).not.toBeNull();

    await a.restart();
    await until(() => applied(a, 2), 20_000, 'applied on reconnect');
    await until(async () => (await get<DriftList>('/api/v1/config/drift?node=GZ-TH')).items.length === 0, 20_000, 'drift cleared');
    expect((await view(TH)).sync).toMatchObject({ status: 'in-sync', appliedVersion: 2, drift: null });
  }, 90_000);

  it('a config the agent cannot run is rejected with its reason, and the last good one keeps running', async () => {
    const id = YX[1]!;
    const a = agents.get(id)!;
    const res = await put(`/api/v1/config/terminals/${id}`, {
      // valid by the schema, but usb-presence needs a usbId to probe anything: the agent refuses it
      config: { peripherals: { idCardReader: { driver: 'usb-presence' } } },
      expectedVersion: 0,
      reason: 'new reader',
    });
    expect(res.status).toBe(200);
    await until(() => a.lines.find((l) => l.msg === 'config rejected' && l['version'] === 3), 20_000, 'agent rejects v3');
    // the district's pushed log level (debug) governs over the env's info: debug lines now appear, and did not before
    expect(a.lines.some((l) => l.msg === 'desired config received' && l['version'] === 3)).toBe(true);
    expect(a.lines.some((l) => l.msg === 'desired config received' && l['version'] === 2)).toBe(false);
    const sync = await until(async () => {
      const s = (await view(id)).sync;
      return s.status === 'rejected' ? s : null;
    }, 20_000, 'rejection reported');
    expect(sync.rejected).toMatchObject({ version: 3 });
    expect(sync.rejected!.reason).toContain('usbId');
    expect(sync.appliedVersion).toBe(2);
    // the last good config stays on disk and in force
    const stored = JSON.parse(fs.readFileSync(path.join(a.dataDir, 'config-applied.json'), 'utf8')) as { applied: { version: number; config: { telemetryInterval: number } } };
    expect(stored.applied).toMatchObject({ version: 2, config: { telemetryInterval: 5 } });
    const before = await telemetryCount(id);
    await until(async () => (await telemetryCount(id)) >= before + 2, 40_000, 'still sampling at the last good interval');
    // and it is listed as drift, with the reason
    const d = await until(async () => {
      const l = await get<DriftList>('/api/v1/config/drift?node=GZ-YX');
      return l.items.length === 1 ? l : null;
    }, 20_000, 'rejection drift');
    expect(d.items[0]).toMatchObject({ terminalId: id, status: 'rejected' });

    // fixing it clears the drift
    const fix = await put(`/api/v1/config/terminals/${id}`, { config: { peripherals: { idCardReader: { driver: 'usb-presence', usbId: '0400:c35a' } } }, expectedVersion: 1 });
    expect(fix.status).toBe(200);
    await until(() => applied(a, 4), 20_000, 'applies the fix');
    await until(async () => (await get<DriftList>('/api/v1/config/drift?node=GZ-YX')).items.length === 0, 20_000, 'drift cleared');
  }, 120_000);

  it('a stale write is 409 and an invalid one 400 with paths; neither reaches a terminal', async () => {
    const stale = await put('/api/v1/config/nodes/GZ-YX', { config: { telemetryInterval: 60 }, expectedVersion: 0 });
    expect(stale.status).toBe(409);
    const bad = await put('/api/v1/config/nodes/GZ-YX', { config: { telemetryInterval: 'fast', logLevel: 'loud' }, expectedVersion: 1 });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { details: { issues: { path: string[] }[] } } };
    expect(body.error.details.issues.map((i) => i.path.join('.')).sort()).toEqual(['config.logLevel', 'config.telemetryInterval']);
    const desired = await Promise.all(YX.map(async (id) => (await view(id)).desired!.version));
    await new Promise((r) => setTimeout(r, 500));
    expect(await Promise.all(YX.map(async (id) => (await view(id)).desired!.version))).toEqual(desired);
    expect((await get<{ version: number; config: unknown }>('/api/v1/config/nodes/GZ-YX'))).toMatchObject({ version: 1, config: { telemetryInterval: 5, logLevel: 'debug' } });
  });

  it('after a hub restart, layers, history and sync state are all there; nothing is re-applied, and versions go on', async () => {
    const before = await Promise.all(YX.map(async (id) => (await view(id)).desired!.version));
    await hub.restart();
    // the agents reconnect by themselves (same MQTT port) and see the retained desired config again: a no-op
    for (const id of YX) await until(() => agents.get(id)!.lines.filter((l) => l.msg === 'connected to hub').length >= 2, 30_000, `${id} reconnects`);
    expect((await get<{ version: number }>('/api/v1/config/nodes/GZ-YX')).version).toBe(1);
    expect((await get<{ items: unknown[] }>('/api/v1/config/nodes/GZ/history')).items).toHaveLength(1);
    expect(await Promise.all(YX.map(async (id) => (await view(id)).desired!.version))).toEqual(before);
    expect((await get<DriftList>('/api/v1/config/drift')).items).toEqual([]);
    const appliedBefore = agents.get(YX[0]!)!.lines.filter((l) => l.msg === 'config applied').length;
    await new Promise((r) => setTimeout(r, 1000));
    expect(agents.get(YX[0]!)!.lines.filter((l) => l.msg === 'config applied').length).toBe(appliedBefore);

    const res = await put('/api/v1/config/nodes/GZ-YX', { config: { telemetryInterval: 6, logLevel: 'debug' }, expectedVersion: 1 });
    expect(res.status).toBe(200);
    await until(() => applied(agents.get(YX[0]!)!, before[0]! + 1), 20_000, 'the next version is applied');
  }, 90_000);
});
