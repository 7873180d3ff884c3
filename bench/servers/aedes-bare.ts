/**
 * Baseline: bare Aedes 1.x, in-memory, no auth, with an in-process subscriber that only counts what it receives.
 * This is the broker's own ceiling: what the hub would do if validating and storing cost nothing.
 *
 * Prints `{"msg":"ready","mqttPort":N}`; answers `{type:'count'}` over IPC with `{type:'count', n}`.
 */
import net from 'node:net';
import { Aedes } from 'aedes';
import { exitWithParent } from '../lib/proc.ts';

exitWithParent();
const broker = await Aedes.createBroker({ drainTimeout: 30000 });
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
process.on('message', (m: { type: string }) => {
  if (m.type === 'count') process.send?.({ type: 'count', n });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {
  server.close();
  broker.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
