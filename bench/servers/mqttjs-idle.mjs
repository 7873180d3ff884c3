// The floor under the agent, in plain JavaScript (no tsx, no zod), idle: node alone (`bare`), node + mqtt.js
// connected with its defaults (`mqtt`), and the same with `writeCache: false` as the agent sets it (`mqtt-nocache`:
// no pre-built Buffer for each of the 65,536 message ids).
// argv: <mqtt url> <terminal id> <secret> [bare|mqtt|mqtt-nocache]. Prints {"msg":"connected"}; exits when its
// parent does.
const [url, id, secret, mode = 'mqtt'] = process.argv.slice(2);
let client = null;
if (mode !== 'bare') {
  const { default: mqtt } = await import('mqtt');
  client = await mqtt.connectAsync(url, {
    clientId: id,
    username: id,
    password: secret,
    protocolVersion: 4,
    reconnectPeriod: 0,
    keepalive: 30,
    ...(mode === 'mqtt-nocache' ? { writeCache: false } : {}),
  });
}
process.stdout.write(`${JSON.stringify({ msg: 'connected' })}\n`);
const ppid = Number(process.env.BENCH_PARENT_PID);
setInterval(() => {
  try {
    if (ppid) process.kill(ppid, 0);
  } catch {
    process.exit(3);
  }
}, 1000);
process.on('SIGTERM', () => (client ? client.end(false, {}, () => process.exit(0)) : process.exit(0)));
