/**
 * deploy/haproxy.cfg under traffic: Debian's haproxy 2.6 in front of two real hub processes (their PROXY protocol
 * listeners), the shipped file with only its bind and server lines pointed at loopback ports. What an operator relies
 * on: a terminal always lands on the same hub (hash of the MQTT client id), the hub sees the terminal's address and not
 * the balancer's, and a hub that freezes has its terminals cut at once and hashed onto the other hub.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, spawnHub, type HubProcess } from '../helpers/hub.ts';

const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => fs.existsSync(p)) ?? 'haproxy';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** kf_auth_failures_total over every reason, from the hub's /metrics. */
async function authFailures(hub: HubProcess): Promise<number> {
  const text = await (await hub.api('/metrics')).text();
  let n = 0;
  for (const m of text.matchAll(/^kf_auth_failures_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/** An MQTT client from a chosen loopback address (mqtt.js' own TCP transport cannot bind one). */
function connect(port: number, clientId: string, password: string, localAddress?: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = new mqtt.MqttClient(() => net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }), {
      clientId,
      username: clientId,
      password,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      keepalive: 60,
    });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
    c.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

// Skipped only on a developer machine without haproxy; CI installs it (scripts/setup.sh --test), and a missing one fails there.
describe.skipIf(HAPROXY === 'haproxy' && !process.env.CI)('deploy/haproxy.cfg with two hubs', () => {
  const hubs: HubProcess[] = [];
  let balancer: ChildProcess | null = null;
  let port = 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-haproxy-'));
  const haproxyLog: string[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) hubs.push(await spawnHub({ env: { KF_MQTT_PROXY_PORT: '0', KF_MQTT_PROXY_FROM: '127.0.0.1' } }));
    port = await freePort();
    const shipped = fs.readFileSync(path.join(REPO_ROOT, 'deploy', 'haproxy.cfg'), 'utf8');
    expect(shipped).toMatch(/^\s+bind :1883$/m);
    expect(shipped.match(/^\s+server hub-\w \S+$/gm)).toHaveLength(3);
    const cfg = shipped
      // this machine's processes may hold 20,000 files; the shipped figure assumes a raised limit
      .replace(/^(\s+)maxconn \d+$/m, '$1maxconn 4000')
      .replace(/^(\s+)bind :1883$/m, `$1bind 127.0.0.1:${port}`)
      .replace(/^\s+server hub-a \S+$/m, `    server hub-a 127.0.0.1:${hubs[0]!.mqttProxyPort} port ${hubs[0]!.httpPort}`)
      .replace(/^\s+server hub-b \S+$/m, `    server hub-b 127.0.0.1:${hubs[1]!.mqttProxyPort} port ${hubs[1]!.httpPort}`)
      .replace(/^\s+server hub-c \S+\n/m, '');
    const file = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(file, cfg);
    balancer = spawn(HAPROXY!, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    balancer.stdout!.on('data', (d: Buffer) => haproxyLog.push(d.toString()));
    balancer.stderr!.on('data', (d: Buffer) => haproxyLog.push(d.toString()));
    // ready when its frontend accepts and both servers passed their first checks (rise 2, inter 1 s)
    const end = Date.now() + 20_000;
    for (;;) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (up) break;
      if (balancer.exitCode !== null) throw new Error(`haproxy exited:\n${haproxyLog.join('')}`);
      if (Date.now() > end) throw new Error(`haproxy did not listen:\n${haproxyLog.join('')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 2500));
  }, 90_000);

  afterAll(async () => {
    balancer?.kill('SIGKILL');
    for (const h of hubs) {
      h.proc.kill('SIGCONT');
      await h.stop();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  let probe = 0;
  /**
   * Which hub a client id is hashed to: a login with a wrong secret, counted by that hub alone. Each probe comes from
   * its own loopback address, so the hubs' per-address login throttle (which sees it through PROXY) never delays one.
   */
  async function hubOf(clientId: string, localAddress = `127.0.1.${++probe}`): Promise<number> {
    const before = await Promise.all(hubs.map(authFailures));
    await connect(port, clientId, 'not-the-secret', localAddress).then(
      (c) => c.end(true),
      () => undefined,
    );
    const after = await Promise.all(hubs.map(authFailures));
    const hit = after.map((n, i) => n - before[i]!);
    expect(hit.reduce((a, b) => a + b)).toBe(1);
    return hit.indexOf(1);
  }

  it('keeps each terminal on one hub, spreads the fleet over both, and hands the hub the terminal address', async () => {
    const first = await hubOf('GZ-YX-001-01');
    for (let i = 0; i < 3; i++) expect(await hubOf('GZ-YX-001-01')).toBe(first);
    const spread = new Set<number>();
    for (let i = 2; i <= 11; i++) spread.add(await hubOf(`GZ-YX-001-${String(i).padStart(2, '0')}`));
    expect([...spread].sort()).toEqual([0, 1]);
    // The refusal log of the hub names the terminal's address (a loopback alias here), not haproxy's 127.0.0.1.
    const at = await hubOf('GZ-YX-002-01', '127.0.0.23');
    const refused = () => hubs[at]!.logs.filter((l) => l.includes('"msg":"connection refused"') && l.includes('GZ-YX-002-01'));
    // the hub's log line reaches its stdout a moment after the CONNACK
    for (let i = 0; i < 100 && refused().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(refused().at(-1)).toContain('"address":"127.0.0.23"');
  }, 60_000);

  it('cuts the terminals of a frozen hub at once; they reconnect onto the other hub', async () => {
    const id = 'GZ-YX-003-01';
    const home = await hubOf(id);
    const other = 1 - home;
    const res = await hubs[home]!.importFleet({
      city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou PSB' } },
      districts: [{ id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu' } }],
      stations: [{ id: 'GZ-YX-003', district: 'GZ-YX', name: { zh: '站', en: 'Station' } }],
      terminals: [{ id, station: 'GZ-YX-003', type: 'id-card', serial: `SN-${id}` }],
    });
    const secret = res.terminals.created[0]!.secret;
    const c = await connect(port, id, secret);
    const closed = new Promise<number>((resolve) => c.once('close', () => resolve(Date.now())));
    // Frozen, not dead: its sockets stay open, so only haproxy's check (inter 1 s, fall 2, timeout 2 s) and
    // on-marked-down shutdown-sessions end the session; the terminal's own keepalive would take 90 s.
    hubs[home]!.proc.kill('SIGSTOP');
    const frozeAt = Date.now();
    const at = await Promise.race([closed, new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`session not cut in 20 s:\n${haproxyLog.join('')}`)), 20_000))]);
    expect(at - frozeAt).toBeGreaterThan(0);
    c.end(true);
    // The next attempt is hashed onto the surviving hub (which does not know this terminal: it refuses and counts).
    const before = await authFailures(hubs[other]!);
    await connect(port, id, secret).then(
      (x) => x.end(true),
      () => undefined,
    );
    expect(await authFailures(hubs[other]!)).toBe(before + 1);
    hubs[home]!.proc.kill('SIGCONT');
  }, 60_000);
});
