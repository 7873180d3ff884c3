/**
 * The real agent process against the real hub process: telemetry stored, hub restarts, agent SIGKILLs, refused
 * credentials, commands. Seq bookkeeping is read from the hub's terminal detail (`streams`: count, first and max
 * seq per stream and epoch), which is what the hub stored, each (terminal, stream, epoch, seq) once.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { freePort } from '../helpers/reliability-util.ts';

interface Stream {
  stream: string;
  epoch: string;
  count: number;
  firstSeq: number;
  maxSeq: number;
  missing: number;
}
interface Detail {
  id: string;
  connected: boolean;
  streams: Stream[];
  boot: { bootId: string | null; lastExit: { cause: string } | null };
  peripherals: Record<string, { status: string }>;
  [k: string]: unknown;
}

async function until<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
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

let hub: HubProcess;
let mqttPort: number;
const secrets = new Map<string, string>();
const agents: AgentProcess[] = [];
const IDS = ['GZ-YX-001-01', 'GZ-YX-001-02', 'GZ-YX-001-03', 'GZ-YX-001-04', 'GZ-YX-001-05'];

beforeAll(async () => {
  mqttPort = await freePort();
  // a fixed MQTT port, so the agents' KF_HUB_URL stays right across hub restarts
  hub = await spawnHub({ env: { KF_MQTT_PORT: String(mqttPort) } });
  const res = await hub.importFleet({
    city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou PSB' } },
    districts: [{ id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu' } }],
    stations: [{ id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥派出所', en: 'Hongqiao' } }],
    terminals: IDS.map((id) => ({ id, station: 'GZ-YX-001', type: 'id-card', serial: `SN-${id}` })),
  });
  for (const t of res.terminals.created) secrets.set(t.id, t.secret);
}, 60_000);

afterAll(async () => {
  for (const a of agents) await a.stop().catch(() => undefined);
  await hub?.stop();
}, 60_000);

async function detail(id: string): Promise<Detail> {
  const r = await hub.api(`/api/v1/terminals/${id}`);
  if (r.status !== 200) throw new Error(`detail ${r.status}`);
  return (await r.json()) as Detail;
}

/** The telemetry seqs waiting in an agent's SQLite outbox (read-only, beside the running agent). */
function outboxTelemetrySeqs(dataDir: string): number[] {
  const outbox = new Database(path.join(dataDir, 'outbox.sqlite'), { readonly: true });
  try {
    return (outbox.prepare("SELECT seq FROM messages WHERE kind = 'telemetry' ORDER BY seq").all() as { seq: number }[]).map((r) => r.seq);
  } finally {
    outbox.close();
  }
}

function telemetryStreams(d: Detail): Stream[] {
  return d.streams.filter((s) => s.stream === 'telemetry');
}

async function start(id: string, env: Record<string, string> = {}, secret = secrets.get(id), hubUrl = `mqtt://127.0.0.1:${mqttPort}`): Promise<AgentProcess> {
  const a = await spawnAgent({
    hubUrl,
    terminalId: id,
    ...(secret ? { secret } : {}),
    env: { KF_TELEMETRY_INTERVAL: '0.3', KF_PERIPHERALS: JSON.stringify({ idCardReader: { driver: 'simulated' } }), ...env },
    waitConnected: !env.KF_EXPECT_REFUSAL,
  });
  agents.push(a);
  return a;
}

describe('agent ↔ hub', () => {
  it('telemetry is stored and the terminal is online; a graceful stop leaves it offline with a clean exit', async () => {
    const a = await start(IDS[0]!);
    const d = await until(async () => {
      const x = await detail(IDS[0]!);
      return x.connected && (telemetryStreams(x)[0]?.count ?? 0) >= 3 ? x : null;
    }, 20_000, 'telemetry stored');
    expect(telemetryStreams(d)[0]).toMatchObject({ firstSeq: 1, missing: 0 });
    expect(d.boot.lastExit?.cause).toBe('first-start');
    expect(d.peripherals.idCardReader?.status).toBe('ok');
    await a.kill('SIGTERM');
    await until(async () => !(await detail(IDS[0]!)).connected, 10_000, 'offline');
    await a.restart();
    const after = await until(async () => {
      const x = await detail(IDS[0]!);
      return x.boot.lastExit?.cause === 'clean' ? x : null;
    }, 10_000, 'clean lastExit reported');
    expect(after.connected).toBe(true);
    await a.stop();
  });

  it('hub down for a while and back: every telemetry seq stored exactly once', async () => {
    const a = await start(IDS[1]!);
    await until(async () => (telemetryStreams(await detail(IDS[1]!))[0]?.count ?? 0) >= 2, 20_000, 'first samples');
    await hub.kill('SIGTERM');
    // samples keep going into the outbox while the hub is away (waited for, not slept on: a loaded machine samples late)
    await until(async () => (outboxTelemetrySeqs(a.dataDir).length >= 3 ? true : null), 20_000, 'three samples waiting in the outbox');
    await hub.restart();
    const d = await until(async () => {
      const x = await detail(IDS[1]!);
      const s = telemetryStreams(x)[0];
      return s && s.count >= 12 ? x : null;
    }, 30_000, 'replay after hub restart');
    const s = telemetryStreams(d);
    expect(s).toHaveLength(1);
    expect(s[0]).toMatchObject({ firstSeq: 1, missing: 0 });
    expect(s[0]!.count).toBe(s[0]!.maxSeq);
    await a.stop();
  }, 90_000);

  it('agent SIGKILLed while holding unsent samples: restarted, its outbox replays; nothing lost, nothing twice', async () => {
    const a = await start(IDS[2]!);
    await until(async () => (telemetryStreams(await detail(IDS[2]!))[0]?.count ?? 0) >= 2, 20_000, 'first samples');
    // freeze the hub: the agent's publishes get no PUBACK and stay in its outbox
    hub.proc.kill('SIGSTOP');
    await until(async () => (outboxTelemetrySeqs(a.dataDir).length >= 3 ? true : null), 20_000, 'three samples held in the outbox');
    await a.kill('SIGKILL');
    const held = outboxTelemetrySeqs(a.dataDir);
    hub.proc.kill('SIGCONT');
    expect(held.length).toBeGreaterThanOrEqual(3);
    await a.restart();
    const d = await until(async () => {
      const x = await detail(IDS[2]!);
      const s = telemetryStreams(x)[0];
      return s && s.maxSeq >= held.at(-1)! + 3 ? x : null;
    }, 30_000, 'replay after SIGKILL');
    const s = telemetryStreams(d);
    expect(s).toHaveLength(1); // same outbox, same epoch
    expect(s[0]).toMatchObject({ firstSeq: 1, missing: 0 });
    expect(s[0]!.count).toBe(s[0]!.maxSeq);
    expect(d.boot.lastExit?.cause).toBe('crash');
    await a.stop();
  }, 90_000);

  it('refused credentials: a clear log line and a slow retry, no hot loop', async () => {
    const a = await start(IDS[3]!, { KF_EXPECT_REFUSAL: '1', KF_AUTH_RETRY_MS: '1500', KF_RECONNECT_MIN_MS: '20', KF_RECONNECT_MAX_MS: '40' }, 'not-the-secret');
    await a.waitForLog((l) => String(l.msg).includes('refused the terminal'), 15_000);
    await new Promise((r) => setTimeout(r, 2500));
    const refusals = a.lines.filter((l) => String(l.msg).includes('refused the terminal')).length;
    expect(refusals).toBeGreaterThanOrEqual(1);
    // a 20-40 ms backoff would mean dozens of attempts; the auth retry allows about two
    expect(refusals).toBeLessThanOrEqual(4);
    expect(a.lines.some((l) => JSON.stringify(l).includes('not-the-secret'))).toBe(false);
    await a.stop();
  }, 30_000);

  it('a command round trip through the hub API', async () => {
    const a = await start(IDS[0]!);
    const r = await hub.api(`/api/v1/terminals/${IDS[0]}/commands`, { method: 'POST', json: { name: 'self-test', expiresInSeconds: 60 } });
    expect(r.status).toBe(201);
    const cmd = (await r.json()) as { id: string };
    const done = await until(async () => {
      const list = (await (await hub.api(`/api/v1/terminals/${IDS[0]}/commands`)).json()) as { items: { id: string; status: string; result: unknown }[] };
      const c = list.items.find((x) => x.id === cmd.id);
      return c && c.status !== 'pending' && c.status !== 'sent' ? c : null;
    }, 20_000, 'command result');
    expect(done.status).toBe('ok');
    expect(done.result).toMatchObject({ peripherals: { idCardReader: { status: 'ok' } } });
    await a.stop();
  }, 40_000);

  it('MQTT over WebSocket (ws://…/mqtt) works the same', async () => {
    const a = await start(IDS[4]!, {}, secrets.get(IDS[4]!), `ws://127.0.0.1:${hub.httpPort}/mqtt`);
    const d = await until(async () => {
      const x = await detail(IDS[4]!);
      return x.connected && (telemetryStreams(x)[0]?.count ?? 0) >= 2 ? x : null;
    }, 20_000, 'telemetry over ws');
    expect(telemetryStreams(d)[0]).toMatchObject({ firstSeq: 1, missing: 0 });
    await a.stop();
  }, 40_000);

  it('a command that expires before the terminal is back is never run', async () => {
    const id = IDS[0]!;
    await until(async () => !(await detail(id)).connected, 10_000, 'offline');
    const r = await hub.api(`/api/v1/terminals/${id}/commands`, { method: 'POST', json: { name: 'restart-agent', expiresInSeconds: 1 } });
    expect(r.status).toBe(201);
    const cmd = (await r.json()) as { id: string };
    await new Promise((res) => setTimeout(res, 2000));
    const a = await start(id);
    const final = await until(async () => {
      const list = (await (await hub.api(`/api/v1/terminals/${id}/commands`)).json()) as { items: { id: string; status: string }[] };
      const c = list.items.find((x) => x.id === cmd.id);
      return c && c.status === 'expired' ? c : null;
    }, 20_000, 'expired');
    expect(final.status).toBe('expired');
    // restart-agent was not run: the same process is still connected
    await new Promise((res) => setTimeout(res, 1000));
    expect(a.proc.exitCode).toBeNull();
    expect(a.lines.some((l) => l.reason === 'restart-agent')).toBe(false);
    await a.stop();
  }, 40_000);
});
