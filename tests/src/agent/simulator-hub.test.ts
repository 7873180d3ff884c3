/**
 * The fleet simulator against the real hub: provisioning through the import API, secrets kept and reused, a
 * fault forced through the control API showing up in the hub, a power loss reported as such.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';

let hub: HubProcess;
let sim: SimulatorProcess | null = null;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-sim-test-'));
const COUNT = 6;
const ID = 'GZ-YX-001-01';

async function until<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Detail {
  connected: boolean;
  peripherals: Record<string, { status: string; code: string | null }>;
  boot: { bootId: string | null; lastExit: { cause: string } | null };
}
const detail = async (id: string): Promise<Detail> => (await (await hub.api(`/api/v1/terminals/${id}`)).json()) as Detail;

beforeAll(async () => {
  hub = await spawnHub();
}, 60_000);

afterAll(async () => {
  await sim?.stop();
  await hub?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe('simulator ↔ hub', () => {
  it('provisions its terminals, keeps the secrets, and they all come online', async () => {
    sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, provision: true, count: COUNT, dataDir, interval: 1 });
    const secrets = JSON.parse(fs.readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')) as Record<string, string>;
    expect(Object.keys(secrets)).toHaveLength(COUNT);
    expect((fs.statSync(path.join(dataDir, 'secrets.json')).mode & 0o777).toString(8)).toBe('600');
    const list = (await (await hub.api('/api/v1/terminals?limit=100')).json()) as { items: { id: string }[] };
    expect(list.items.map((t) => t.id)).toContain(ID);
    await until(async () => (await detail(ID)).connected, 10_000, 'online in the hub');
    // no secret in the simulator's output
    expect(sim.lines.some((l) => Object.values(secrets).some((s) => JSON.stringify(l).includes(s)))).toBe(false);
  }, 90_000);

  it('a card-reader fault forced through the control API reaches the hub, and so does the recovery', async () => {
    await sim!.control(`/terminals/${ID}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE', message: 'reader did not answer' });
    const faulty = await until(async () => {
      const d = await detail(ID);
      return d.peripherals.idCardReader?.status === 'fault' ? d : null;
    }, 15_000, 'fault in the hub');
    expect(faulty.peripherals.idCardReader?.code).toBe('E_NO_RESPONSE');
    const events = (await (await hub.api(`/api/v1/terminals/${ID}/events?kind=peripheral.fault`)).json()) as { items: { peripheral: string }[] };
    expect(events.items[0]?.peripheral).toBe('idCardReader');
    await sim!.control(`/terminals/${ID}/recover`, { peripheral: 'idCardReader' });
    await until(async () => (await detail(ID)).peripherals.idCardReader?.status === 'ok', 15_000, 'recovery in the hub');
  }, 40_000);

  it('a power loss: offline, then back with a new boot id and lastExit power-loss', async () => {
    const before = await detail(ID);
    await sim!.control(`/terminals/${ID}/power-loss`, { seconds: 1 });
    const after = await until(async () => {
      const d = await detail(ID);
      return d.connected && d.boot.bootId !== before.boot.bootId ? d : null;
    }, 20_000, 'back after power loss');
    expect(after.boot.lastExit?.cause).toBe('power-loss');
  }, 40_000);

  it('restarted, it reuses its secrets; a terminal whose secret it lost gets a new one', async () => {
    await sim!.stop();
    sim = null;
    const file = path.join(dataDir, 'secrets.json');
    const secrets = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>;
    const lost = 'GZ-YX-001-02';
    const kept = secrets[ID];
    delete secrets[lost];
    fs.writeFileSync(file, JSON.stringify(secrets));
    sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, provision: true, count: COUNT, dataDir, interval: 1 });
    const again = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>;
    expect(again[ID]).toBe(kept);
    expect(again[lost]).toBeTruthy();
    const summary = await sim.summary();
    expect(summary.connected).toBe(COUNT);
    expect(summary.refused).toBe(0);
  }, 90_000);
});
