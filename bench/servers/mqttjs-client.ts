/**
 * Baseline for the agent: a bare mqtt.js 5 client (what the agent is built on) with the same credentials, idle for a
 * while and then publishing N telemetry messages from memory with the agent's replay window (256 in flight), no outbox.
 *
 * argv: <mqtt url> <terminal id> <secret> <idle ms> <count>. Prints `{"msg":"connected"}`, `{"msg":"idle-done"}`,
 * `{"msg":"done","ms":T}`.
 */
import mqtt from 'mqtt';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { exitWithParent } from '../lib/proc.ts';
import { newEpoch } from '../lib/terminals.ts';

exitWithParent();
const [url = '', id = '', secret = '', idleArg = '10000', countArg = '100000'] = process.argv.slice(2);
const WINDOW = 256; // the agent's REPLAY_WINDOW (agent/src/agent.ts)
const client = await mqtt.connectAsync(url, { clientId: id, username: id, password: secret, protocolVersion: 4, reconnectPeriod: 0, keepalive: 30 });
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
say({ msg: 'connected' });
await new Promise((r) => setTimeout(r, Number(idleArg)));
say({ msg: 'idle-done' });
const count = Number(countArg);
const epoch = newEpoch();
const topic = topicFor(id, 'telemetry');
const { v: _v, epoch: _e, seq: _s, ts: _t, ...body } = EXAMPLES.telemetry;
const t0 = performance.now();
let next = 1;
let acked = 0;
await new Promise<void>((resolve, reject) => {
  const send = () => {
    const seq = next++;
    client.publish(topic, JSON.stringify({ ...body, v: 1, epoch, seq, ts: new Date().toISOString() }), { qos: 1 }, (err) => {
      if (err) return reject(err);
      acked++;
      if (acked === count) resolve();
      else if (next <= count) send();
    });
  };
  for (let i = 0; i < Math.min(WINDOW, count); i++) send();
});
say({ msg: 'done', ms: performance.now() - t0 });
await client.endAsync();
process.exit(0);
