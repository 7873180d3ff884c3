// The floor under both: node and mqtt.js alone, plain JavaScript (no tsx, no zod), connected and idle.
// argv: <mqtt url> <terminal id> <secret>. Prints {"msg":"connected"}; exits when its parent does.
import mqtt from 'mqtt';

const [url, id, secret] = process.argv.slice(2);
const client = await mqtt.connectAsync(url, { clientId: id, username: id, password: secret, protocolVersion: 4, reconnectPeriod: 0, keepalive: 30 });
process.stdout.write(`${JSON.stringify({ msg: 'connected' })}\n`);
const ppid = Number(process.env.BENCH_PARENT_PID);
setInterval(() => {
  try {
    if (ppid) process.kill(ppid, 0);
  } catch {
    process.exit(3);
  }
}, 1000);
process.on('SIGTERM', () => client.end(false, {}, () => process.exit(0)));
