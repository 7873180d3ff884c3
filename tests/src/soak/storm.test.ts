/**
 * Soak: a reconnect storm. 1,000 simulated terminals report to a hub; the hub is restarted (SIGTERM, then SIGKILL
 * in a second round); all 1,000 reconnect at once (with the agent's jittered backoff). All come back, every outbox
 * drains, nothing is lost or stored twice, and the API answers throughout. Run with `pnpm test:soak`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { drained, expectNothingLost } from '../helpers/reliability-fleet.ts';
import { freePort, metric, sleep, waitFor } from '../helpers/reliability-util.ts';

const TERMINALS = Number(process.env.KF_SOAK_TERMINALS ?? 1000);

let hub: HubProcess;
let sim: SimulatorProcess;

beforeAll(async () => {
  hub = await spawnHub({ env: { KF_MQTT_PORT: String(await freePort()), KF_HTTP_PORT: String(await freePort()) } });
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, count: TERMINALS, provision: true, interval: 5, extraArgs: ['--ramp', '200'] });
}, 300_000);

afterAll(async () => {
  await sim?.stop();
  await hub?.stop();
});

/** Polls the API every 250 ms until stopped; returns each answer's status and time. */
function pollApi() {
  const answers: { status: number; ms: number }[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const t0 = Date.now();
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), 10_000);
      const res = await hub.api('/api/v1/terminals?limit=100&presence=online', { signal: ctl.signal }).catch(() => null);
      await res?.body?.cancel();
      clearTimeout(timer);
      answers.push({ status: res?.status ?? 0, ms: Date.now() - t0 });
      await sleep(250);
    }
  })();
  return {
    answers,
    async stop() {
      on = false;
      await loop;
      return answers;
    },
  };
}

describe(`reconnect storm of ${TERMINALS} terminals`, () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`after a ${signal} restart all ${TERMINALS} come back, outboxes drain, the API answers throughout`, async () => {
      await drained(sim, 240_000);
      await hub.kill(signal);
      await sleep(3000);
      await hub.restart();
      const poll = pollApi();
      const t0 = Date.now();
      await waitFor('every terminal connected to the hub', async () => (await metric(hub, 'kf_connected_terminals')) === TERMINALS, 240_000, 500);
      const allBackMs = Date.now() - t0;
      const s = await drained(sim, 240_000);
      const answers = await poll.stop();
      expect(answers.length).toBeGreaterThan(0);
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      const a = await expectNothingLost(hub.dataDir, TERMINALS, s);
      const worst = Math.max(...answers.map((x) => x.ms));
      console.info(`[reliability] storm (${signal}): ${TERMINALS} back in ${allBackMs} ms; ${answers.length} API calls meanwhile, all 200, slowest ${worst} ms; ${a.rows.telemetry} telemetry stored for ${s.telemetry} produced, 0 gaps, 0 duplicates`);
    }, 600_000);
  }
});
