/**
 * A district change across a simulated fleet (the real hub process, the fleet simulator's virtual terminals over
 * TCP): exactly the terminals of that district apply it and report it; every other terminal gets nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';

// three districts of two stations with four terminals each
const DISTRICTS = ['GZ-YX', 'GZ-TH', 'GZ-HZ'];
const COUNT = DISTRICTS.length * 2 * 4;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-cfg-sim-'));
const fleetFile = path.join(tmp, 'fleet.json');
let hub: HubProcess;
let sim: SimulatorProcess;

function writeFleet(): void {
  const stations = DISTRICTS.flatMap((d) => ['001', '002'].map((n) => ({ id: `${d}-${n}`, district: d, name: { zh: `${d}-${n}`, en: `${d}-${n}` } })));
  fs.writeFileSync(
    fleetFile,
    JSON.stringify({
      city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou PSB' } },
      districts: DISTRICTS.map((id) => ({ id, name: { zh: id, en: id } })),
      stations,
      terminals: stations.flatMap((st) => [1, 2, 3, 4].map((i) => ({ id: `${st.id}-0${i}`, station: st.id, type: 'id-card', serial: `SN-${st.id}-${i}` }))),
    }),
  );
}

interface SimView {
  id: string;
  station: string;
  connected: boolean;
  configVersion: number;
}

async function until<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const terminals = async () => (await sim.control<{ items: SimView[] }>('/terminals')).items;
const district = (station: string) => station.split('-').slice(0, 2).join('-');

beforeAll(async () => {
  writeFleet();
  hub = await spawnHub();
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, provision: true, fleet: fleetFile, interval: 30 });
}, 120_000);

afterAll(async () => {
  await sim?.stop();
  await hub?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}, 60_000);

it('a district change reaches exactly the simulated terminals of that district, and each reports it applied', async () => {
  const all = await terminals();
  expect(all).toHaveLength(COUNT);
  const target = 'GZ-TH';
  const inside = all.filter((t) => district(t.station) === target).map((t) => t.id).sort();
  const outside = all.filter((t) => district(t.station) !== target).map((t) => t.id);
  expect(inside).toHaveLength(8);
  expect(outside).toHaveLength(16);

  const dry = await hub.api(`/api/v1/config/nodes/${target}/dry-run`, { method: 'POST', json: { config: { telemetryInterval: 20, announcement: { zh: '系统升级', en: 'Upgrade tonight' } } } });
  expect(dry.status).toBe(200);
  const plan = (await dry.json()) as { terminals: { terminalId: string }[] };
  expect(plan.terminals.map((t) => t.terminalId).sort()).toEqual(inside);

  const res = await hub.api(`/api/v1/config/nodes/${target}`, {
    method: 'PUT',
    json: { config: { telemetryInterval: 20, announcement: { zh: '系统升级', en: 'Upgrade tonight' } }, expectedVersion: 0, reason: 'notice' },
  });
  expect(res.status).toBe(200);
  const saved = (await res.json()) as { pushed: { terminals: { terminalId: string }[] } };
  expect(saved.pushed.terminals.map((t) => t.terminalId).sort()).toEqual(inside);

  await until(async () => (await terminals()).filter((t) => inside.includes(t.id)).every((t) => t.configVersion === 1), 30_000, 'every terminal of the district applied v1');
  // the hub saw every report: nothing pending, nothing drifting
  await until(async () => {
    const views = await Promise.all(inside.map(async (id) => (await (await hub.api(`/api/v1/config/terminals/${id}`)).json()) as { sync: { status: string; appliedVersion: number } }));
    return views.every((v) => v.sync.status === 'in-sync' && v.sync.appliedVersion === 1);
  }, 30_000, 'every report stored');
  // everyone else: no desired config, nothing applied
  const others = (await terminals()).filter((t) => outside.includes(t.id));
  expect(others.every((t) => t.configVersion === 0)).toBe(true);
  for (const id of outside.slice(0, 10)) {
    const v = (await (await hub.api(`/api/v1/config/terminals/${id}`)).json()) as { desired: unknown };
    expect(v.desired).toBeNull();
  }
}, 120_000);
