/**
 * The agent killed (SIGKILL) again and again while it reports every 200 ms, once also while the hub is down, and
 * restarted on the same data dir each time. Its on-disk outbox keeps one epoch and one counter across crashes, so in
 * the end every seq it ever took is either stored by the hub or still waiting in its outbox — none missing, none
 * stored twice.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { freePort, fuzzSeed, prng, provisionFleet, hubQuery, sleep, waitFor } from '../helpers/reliability-util.ts';

const SEED = fuzzSeed(77);
let hub: HubProcess;
let agent: AgentProcess;

async function stored(id: string): Promise<{ epoch: string; seq: number }[]> {
  const rows = await (await hubQuery(hub.dataDir))('SELECT epoch, seq FROM telemetry WHERE terminal_id = ? ORDER BY seq', id);
  return rows.map((r) => ({ epoch: String(r.epoch), seq: Number(r.seq) }));
}

beforeAll(async () => {
  hub = await spawnHub({ env: { KF_MQTT_PORT: String(await freePort()), KF_HTTP_PORT: String(await freePort()) } });
  const [t] = await provisionFleet(hub, 1, 'AC');
  agent = await spawnAgent({ hubUrl: hub.mqttUrl, terminalId: t!.id, secret: t!.secret, env: { KF_TELEMETRY_INTERVAL: '0.2', KF_KEEPALIVE: '5' } });
});

afterAll(async () => {
  await agent?.stop();
  await hub?.stop();
});

describe('the agent killed while reporting', () => {
  it(`SIGKILL at random moments (seed ${SEED}), once with the hub down too: every seq stored or still queued, none twice`, async () => {
    const rnd = prng(SEED);
    const id = agent.terminalId;
    await waitFor('first samples', async () => (await stored(id)).length >= 5, 30_000);
    for (let round = 0; round < 3; round++) {
      await sleep(300 + rnd.int(1500));
      await agent.kill('SIGKILL');
      if (round === 1) {
        // The hub dies too; the agent comes back first and queues on disk until the hub returns.
        await hub.kill('SIGKILL');
        await agent.restart({ waitConnected: false });
        await sleep(1500 + rnd.int(1500));
        await agent.kill('SIGKILL');
        await hub.restart();
      }
      await agent.restart({ waitConnected: round !== 1 });
    }
    await waitFor('the agent connected again', () => agent.lines.at(-1) !== undefined && agent.lines.some((l) => l.msg === 'connected to hub'), 30_000);
    await sleep(3000);
    // Stop producing, then compare the outbox's own counter with what the hub holds.
    await agent.kill('SIGTERM');
    const outbox = new Database(path.join(agent.dataDir, 'outbox.sqlite'), { readonly: true, fileMustExist: true });
    let lastSeq: number;
    let queued: Set<number>;
    let epoch: string;
    try {
      lastSeq = (outbox.prepare("SELECT last_seq AS n FROM streams WHERE kind = 'telemetry'").get() as { n: number }).n;
      queued = new Set((outbox.prepare("SELECT seq FROM messages WHERE kind = 'telemetry'").all() as { seq: number }[]).map((r) => r.seq));
      epoch = (outbox.prepare("SELECT value FROM meta WHERE key = 'epoch'").get() as { value: string }).value;
    } finally {
      outbox.close();
    }
    const rows = await stored(id);
    // One epoch across all crashes: the outbox survived them.
    expect(new Set(rows.map((r) => r.epoch))).toEqual(new Set([epoch]));
    const seqs = rows.map((r) => r.seq);
    expect(seqs.length).toBe(new Set(seqs).size);
    const missing: number[] = [];
    const have = new Set(seqs);
    for (let s = 1; s <= lastSeq; s++) if (!have.has(s) && !queued.has(s)) missing.push(s);
    expect(missing).toEqual([]);
    // The hub's pushed config soon sets a 30 s interval, so most samples are the one each start takes: one per life.
    expect(lastSeq).toBeGreaterThanOrEqual(5);
    console.info(`[reliability] agent crash: 4 agent SIGKILLs + 1 hub SIGKILL (seed ${SEED}); ${lastSeq} samples taken, ${rows.length} stored, ${queued.size} still queued, 0 missing, 0 duplicates`);
  }, 120_000);

  it(`killed right after each of 3 config changes (seed ${SEED}): it comes back on the newest version, in sync, never an older one`, async () => {
    const rnd = prng(SEED + 1);
    const id = agent.terminalId;
    type View = { version: number; desired: { version: number; config: { telemetryInterval?: number } } | null; sync: { desiredVersion: number; appliedVersion: number; status: string } };
    const view = async () => (await (await hub.api(`/api/v1/config/terminals/${id}`)).json()) as View;
    let layer = (await view()).version;
    for (let round = 0; round < 3; round++) {
      const put = await hub.api(`/api/v1/config/terminals/${id}`, { method: 'PUT', json: { config: { telemetryInterval: 10 + round }, expectedVersion: layer } });
      expect(put.status).toBe(200);
      layer = ((await put.json()) as View).version;
      // Somewhere between receiving the new desired config and reporting it applied.
      await sleep(rnd.int(400));
      await agent.kill('SIGKILL');
      await agent.restart({ waitConnected: round % 2 === 0 });
    }
    const final = await waitFor('the agent in sync with the newest desired config', async () => {
      const v = await view();
      return v.sync.status === 'in-sync' && v.sync.appliedVersion === v.sync.desiredVersion ? v : null;
    }, 60_000);
    expect(final.desired?.config.telemetryInterval).toBe(12);
    // The applied versions the agent reported never went backwards.
    const reported = (
      await (await hubQuery(hub.dataDir))("SELECT version FROM config_reports WHERE terminal_id = ? AND status = 'applied' ORDER BY epoch, seq", id)
    ).map((r) => Number(r.version));
    expect(reported.length).toBeGreaterThan(0);
    expect(reported).toEqual([...reported].sort((a, b) => a - b));
    expect(reported.at(-1)).toBe(final.sync.desiredVersion);
  }, 120_000);
});
