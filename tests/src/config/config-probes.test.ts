/**
 * Pushed config names a probe, never a program (issue 20, item 1), end to end: the real hub process, a district
 * admin's token, a real agent process with its probe catalog in a temp dir (KF_PROBES_DIR).
 * - the finding's PUT (argv in the config) is 400 with the path, and nothing reaches the terminal or runs there;
 * - a config naming a probe of the terminal's catalog makes the agent run it, and the hub shows what it reported;
 * - a name the terminal's catalog lacks is refused by the agent, with the name in the reason the hub shows.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';

const ID = 'GZ-YX-001-12';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-cfg-probes-'));
const probesDir = path.join(tmp, 'probes.d');
const ran = path.join(tmp, 'probe-ran');
const pwned = path.join(tmp, 'pwned');
let hub: HubProcess;
let agent: AgentProcess;
let yx: (p: string, init?: RequestInit & { json?: unknown }) => Promise<Response>;

async function until<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve(fn()).catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface ConfigView {
  version: number;
  desired: { version: number } | null;
  sync: { status: string; appliedVersion: number; rejected: { version: number; reason: string | null } | null };
}

/** A district admin of GZ-YX with an API token (as an operator would set one up). */
async function districtAdmin(): Promise<typeof yx> {
  const created = await hub.api('/api/v1/users', { method: 'POST', json: { username: 'yx-admin', role: 'district-admin', nodeId: 'GZ-YX' } });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
  const { password: oneTime } = (await created.json()) as { password: string };
  const login = await fetch(`${hub.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'yx-admin', password: oneTime }) });
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
  const { csrfToken } = (await login.json()) as { csrfToken: string };
  const session = (p: string, json: unknown) =>
    fetch(`${hub.url}${p}`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken, 'content-type': 'application/json' }, body: JSON.stringify(json) });
  expect((await session('/api/v1/auth/password', { currentPassword: oneTime, newPassword: 'yuexiu-district-passphrase-7' })).status).toBe(200);
  const tok = await session('/api/v1/auth/tokens', { name: 'probes-test' });
  const { token } = (await tok.json()) as { token: string };
  return (p, init = {}) => {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    headers.set('authorization', `Bearer ${token}`);
    if (json !== undefined) headers.set('content-type', 'application/json');
    return fetch(`${hub.url}${p}`, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
  };
}

const telemetryCount = async () =>
  ((await (await yx(`/api/v1/terminals/${ID}`)).json()) as { streams: { stream: string; count: number }[] }).streams
    .filter((st) => st.stream === 'telemetry')
    .reduce((n, st) => n + st.count, 0);
const view = async () => (await (await yx(`/api/v1/config/terminals/${ID}`)).json()) as ConfigView;
const put = async (config: unknown) => yx(`/api/v1/config/terminals/${ID}`, { method: 'PUT', json: { config, expectedVersion: (await view()).version } });

beforeAll(async () => {
  fs.mkdirSync(probesDir);
  const diag = path.join(tmp, 'a4diag.sh');
  fs.writeFileSync(diag, `#!/bin/sh\ntouch '${ran}'\necho '{"status":"degraded","code":"PAPER_LOW","message":"A4 paper low"}'\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(probesDir, 'vendor.json'), JSON.stringify({ probes: { 'a4-printer': { command: [diag], timeoutMs: 5000 } } }), { mode: 0o644 });
  hub = await spawnHub();
  const res = await hub.importFleet({
    city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou PSB' } },
    districts: [{ id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu' } }],
    stations: [{ id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥派出所', en: 'Hongqiao' } }],
    terminals: [{ id: ID, station: 'GZ-YX-001', type: 'police-multi', serial: 'SN-12' }],
  });
  yx = await districtAdmin();
  agent = await spawnAgent({ hubUrl: hub.mqttUrl, terminalId: ID, secret: res.terminals.created[0]!.secret, env: { KF_TELEMETRY_INTERVAL: '1', KF_PROBES_DIR: probesDir } });
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await hub?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('pushed config and programs on terminals', () => {
  it("the finding's PUT is 400 with the path of the argv; nothing is pushed and nothing runs", async () => {
    const res = await yx(`/api/v1/config/terminals/${ID}`, {
      method: 'PUT',
      json: { config: { peripherals: { a4Printer: { driver: 'command', command: ['/bin/sh', '-c', `id > '${pwned}'`] } } }, expectedVersion: 0 },
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { details: { issues: { path: string[]; message: string }[] } } };
    expect(body.error.details.issues.map((i) => i.path.join('.'))).toEqual(['config.peripherals.a4Printer.command']);
    expect(body.error.details.issues[0]!.message).toContain('never carry a program');
    // three samples later (each probes every peripheral), the terminal has had nothing new, and nothing ran
    const before = await telemetryCount();
    await until(async () => (await telemetryCount()) >= before + 3, 30_000, 'three more samples');
    expect((await view()).desired).toBeNull();
    expect(agent.lines.some((l) => l.msg === 'desired config received')).toBe(false);
    expect(fs.existsSync(pwned)).toBe(false);
  }, 60_000);

  it("a config naming a probe of the terminal's catalog runs it; the hub shows what it reported", async () => {
    const res = await put({ peripherals: { a4Printer: { driver: 'command', probe: 'a4-printer' } } });
    expect(res.status).toBe(200);
    const version = ((await res.json()) as { pushed: { terminals: { version: number }[] } }).pushed.terminals[0]!.version;
    await until(async () => (await view()).sync.appliedVersion === version, 30_000, 'applied');
    const a4 = await until(async () => {
      const t = (await (await yx(`/api/v1/terminals/${ID}`)).json()) as { peripherals: Record<string, { status: string; code?: string; message?: string }> };
      return t.peripherals.a4Printer?.code === 'PAPER_LOW' ? t.peripherals.a4Printer : null;
    }, 30_000, 'the probe result on the hub');
    expect(a4).toMatchObject({ status: 'degraded', message: 'A4 paper low' });
    expect(fs.existsSync(ran)).toBe(true);
  }, 60_000);

  it("a probe name the terminal's catalog lacks is refused by the agent, with the name in the reason; the last good config stays", async () => {
    const before = (await view()).sync.appliedVersion;
    const res = await put({ telemetryInterval: 3600, peripherals: { a4Printer: { driver: 'command', probe: 'a4-vendor-x' } } });
    expect(res.status).toBe(200);
    const sync = await until(async () => {
      const s = (await view()).sync;
      return s.status === 'rejected' ? s : null;
    }, 30_000, 'rejection reported');
    expect(sync.rejected!.reason).toContain('"a4-vendor-x"');
    expect(sync.rejected!.reason).toContain('a4Printer');
    expect(sync.appliedVersion).toBe(before);
    expect(agent.lines.find((l) => l.msg === 'config rejected')).toMatchObject({ reason: expect.stringContaining('a4-vendor-x') });
  }, 60_000);
});
