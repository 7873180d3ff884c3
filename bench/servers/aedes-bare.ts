/**
 * Baseline: bare Aedes 1.x, in-memory, no auth, with an in-process subscriber that only counts what it receives.
 * This is the broker's own ceiling: what the hub would do if validating and storing cost nothing.
 *
 * Prints `{"msg":"ready","mqttPort":N}`; answers `{type:'count'}` over IPC with `{type:'count', n}`.
 */
import net from 'node:net';
import { Aedes } from 'aedes';
import { topicFor } from '@kiosk-fleet/protocol';
import { exitWithParent } from '../lib/proc.ts';

exitWithParent();
// BENCH_ACK_BATCH=<size>,<ms>: hold each publish in authorizePublish and release them together, as the hub's
// batch writer does (a batch flushes at <size> jobs or <ms> after its first), with no validation and no storage:
// what "acknowledge only after the commit" costs by itself.
const [batchSize = 0, batchMs = 0] = (process.env.BENCH_ACK_BATCH ?? '').split(',').map(Number);
const held: Array<() => void> = [];
let timer: NodeJS.Timeout | null = null;
const release = () => {
  if (timer) clearTimeout(timer);
  timer = null;
  for (const cb of held.splice(0)) cb();
};
const broker = await Aedes.createBroker({
  drainTimeout: 30000,
  ...(batchSize > 0
    ? {
        authorizePublish: (client, packet, cb) => {
          if (!client || packet.topic.startsWith('$SYS')) return cb(null);
          held.push(() => cb(null));
          if (held.length >= batchSize) setImmediate(release);
          else if (!timer) timer = setTimeout(release, batchMs);
        },
      }
    : {}),
});
let n = 0;
await new Promise<void>((resolve) =>
  broker.subscribe(
    'kf/v1/t/+/telemetry',
    (_packet, cb) => {
      n++;
      cb();
    },
    resolve,
  ),
);
const server = net.createServer(broker.handle);
server.listen(0, '127.0.0.1', () => {
  const addr = server.address() as net.AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'ready', mqttPort: addr.port })}\n`);
});
process.on('message', (m: { type: string; ids?: string[]; version?: number }) => {
  if (m.type === 'count') process.send?.({ type: 'count', n });
  // A config push as the hub makes one: a retained desired config to each terminal's own topic.
  if (m.type === 'push') {
    const payload = Buffer.from(JSON.stringify({ v: 1, version: m.version, config: { announcement: { zh: '通知', en: `bench ${m.version}` } } }));
    // At most 100 outstanding: 19,000 publishes issued in one loop overflow the stack in mqemitter's
    // release → _do recursion (measured: RangeError in qlobber's _match at 19,000).
    const ids = m.ids ?? [];
    let i = 0;
    const next = (): void => {
      const id = ids[i++];
      if (id === undefined) return;
      broker.publish({ cmd: 'publish', topic: topicFor(id, 'config/desired'), payload, qos: 1, retain: true, dup: false }, () => setImmediate(next));
    };
    for (let k = 0; k < 100; k++) next();
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {
  server.close();
  broker.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
