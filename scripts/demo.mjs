#!/usr/bin/env node
// `pnpm start`: the demo on a bare machine — the hub (MQTT + API + dashboard) with data under ./data, and the
// simulated reference fleet (923 terminals) reporting to it. On a fresh data dir the fleet is imported first
// (`kiosk-fleet import`, its secrets handed to the simulator in data/simulator/secrets.json) and a month of history
// is seeded (`kiosk-fleet demo-seed`), both before the hub starts: the seed writes only while no hub runs.
// Ctrl-C stops the simulator first (its terminals publish a clean offline), then drains the hub.
//
// Env: KF_HTTP_PORT / KF_MQTT_PORT / KF_DATA_DIR / KF_ADMIN_TOKEN as for the hub; KF_DEMO_COUNT (terminals to
// simulate, default: the whole fleet; set, it also skips the seed), KF_DEMO_INTERVAL (seconds between samples, default 30), KF_DEMO_SEED (0: no
// month of history on a fresh data dir), KF_DEMO_CONTROL_PORT (the simulator's control API, default 7071),
// KF_DEMO_CHAOS (the simulator's fault rate multiplier, default 0.5).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, readdirSync, createWriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const startedAt = Date.now();
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

const dataDir = resolve(process.env.KF_DATA_DIR ?? './data');
mkdirSync(dataDir, { recursive: true });

const say = (msg) => process.stdout.write(`[demo] ${msg}\n`);

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

// 1. The dashboard's static build, rebuilt when its sources are newer than the build.
const dashboardIndex = join(root, 'dashboard/dist/index.html');
if (existsSync(join(root, 'dashboard/src')) && existsSync(join(root, 'dashboard/index.html'))) {
  const stale = !existsSync(dashboardIndex) || newestMtime(join(root, 'dashboard/src')) > statSync(dashboardIndex).mtimeMs;
  if (stale) {
    say('building the dashboard…');
    const r = spawnSync('pnpm', ['--filter', '@kiosk-fleet/dashboard', 'run', 'build'], { stdio: 'inherit' });
    if (r.status !== 0) {
      say('dashboard build failed; starting without it');
    }
  }
}

// 2. The admin token: given, or kept from an earlier demo run, or made now (the file is readable by its owner only).
const tokenFile = join(dataDir, 'demo-admin-token');
let token = process.env.KF_ADMIN_TOKEN;
if (!token) {
  if (existsSync(tokenFile)) token = readFileSync(tokenFile, 'utf8').trim();
  else {
    token = randomBytes(24).toString('base64url');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  }
}

const children = [];
let stopping = false;

function start(name, args, env) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push({ name, child });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      say(`${name} exited (${signal ?? code}); stopping the demo`);
      void stop(1);
    }
  });
  return child;
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  // The simulator first, so its terminals say goodbye to a hub that is still there.
  for (const { name, child } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    say(`stopping ${name}…`);
    child.kill('SIGTERM');
    await new Promise((res) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        res();
      }, 15_000);
      child.once('exit', () => {
        clearTimeout(timer);
        res();
      });
    });
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

const hubBin = join(root, 'hub/bin/kiosk-fleet.mjs');
const agentBin = join(root, 'agent/bin/kiosk-fleet-agent.mjs');
if (!existsSync(hubBin)) {
  say('the hub is not built yet (hub/bin/kiosk-fleet.mjs is missing); nothing to start');
  process.exit(1);
}

// 3. A fresh data dir: import the fleet (the secrets go to the simulator, as its --provision would keep them) and
// seed a month of history, while no hub runs.
const simDir = join(dataDir, 'simulator');
// On PostgreSQL (KF_DATABASE_URL=postgres://…) the fleet lives in the database: a data dir without the simulator's
// secrets is fresh there (use an empty database with a fresh data dir, or the same data dir again).
const onPostgres = /^postgres(ql)?:/.test(process.env.KF_DATABASE_URL ?? '');
const fresh = onPostgres ? !existsSync(join(simDir, 'secrets.json')) : !existsSync(join(dataDir, 'kiosk-fleet.db'));
if (fresh && process.env.KF_DEMO_SEED !== '0' && !process.env.KF_DEMO_COUNT) {
  say('a fresh data dir: importing the reference fleet and seeding 30 days of history…');
  const env = { ...process.env, KF_DATA_DIR: dataDir };
  const imp = spawnSync(process.execPath, [hubBin, 'import', join(root, 'fixtures/guangzhou-fleet.json')], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (imp.status !== 0) {
    process.stderr.write(imp.stderr);
    say('import failed; stopping');
    process.exit(1);
  }
  const secrets = {};
  for (const t of JSON.parse(imp.stdout).terminals.created) secrets[t.id] = t.secret;
  mkdirSync(simDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(simDir, 'secrets.json'), JSON.stringify(secrets, null, 1), { mode: 0o600 });
  const seed = spawnSync(process.execPath, [hubBin, 'demo-seed'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (seed.status !== 0) say('demo-seed failed (see above); starting without history');
}

// The demo's release signing key pair (written by demo-seed, or now): the hub trusts its public half.
const keysDir = join(dataDir, 'release-keys');
if (!existsSync(join(keysDir, 'release-public.pem'))) {
  spawnSync(process.execPath, [hubBin, 'release', 'keygen', '--out', keysDir], { stdio: ['ignore', 'ignore', 'inherit'] });
}
const releaseKeys = [process.env.KF_RELEASE_KEYS, join(keysDir, 'release-public.pem')].filter(Boolean).join(',');

// 4. The hub; its JSON log goes to data/hub.log, the ready line tells the real ports.
const hubLog = createWriteStream(join(dataDir, 'hub.log'), { flags: 'a' });
const hub = start('hub', [hubBin, 'serve'], { KF_DATA_DIR: dataDir, KF_ADMIN_TOKEN: token, KF_DEMO: '1', KF_RELEASE_KEYS: releaseKeys });
hub.stderr.pipe(process.stderr);
const ready = await new Promise((res, rej) => {
  let buf = '';
  hub.stdout.on('data', (chunk) => {
    hubLog.write(chunk);
    if (buf === null) return;
    buf += chunk.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const rec = JSON.parse(line);
        if (rec.msg === 'ready') {
          buf = null;
          res(rec);
          return;
        }
      } catch {
        // not JSON: passed through to the log file only
      }
    }
  });
  hub.once('exit', () => rej(new Error('the hub exited before it was ready; see data/hub.log')));
});

const bind = process.env.KF_BIND && process.env.KF_BIND !== '0.0.0.0' ? process.env.KF_BIND : '127.0.0.1';
const api = `http://${bind}:${ready.httpPort}`;
say(`hub ready: MQTT on ${ready.mqttPort}, API and dashboard on ${api}/ (log: ${join(dataDir, 'hub.log')})`);

// 5. The simulated fleet, with its control API (fault injection) and a low fault rate.
const controlPort = process.env.KF_DEMO_CONTROL_PORT ?? '7071';
if (existsSync(agentBin)) {
  const args = [
    agentBin,
    'simulate',
    '--fleet',
    join(root, 'fixtures/guangzhou-fleet.json'),
    '--hub',
    `mqtt://${bind}:${ready.mqttPort}`,
    '--api',
    api,
    '--token',
    token,
    '--provision',
    '--data-dir',
    join(dataDir, 'simulator'),
    '--interval',
    process.env.KF_DEMO_INTERVAL ?? '30',
    '--control-port',
    controlPort,
    '--chaos',
    process.env.KF_DEMO_CHAOS ?? '0.5',
  ];
  if (process.env.KF_DEMO_COUNT) args.push('--count', process.env.KF_DEMO_COUNT);
  const sim = start('simulator', args, { KF_LOG_LEVEL: process.env.KF_LOG_LEVEL ?? 'warn' });
  sim.stdout.pipe(process.stdout);
  sim.stderr.pipe(process.stderr);
} else {
  say('the simulator is not built yet (agent/bin/kiosk-fleet-agent.mjs is missing); the hub runs alone');
}

say(`ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
say(`the simulator's control API: http://127.0.0.1:${controlPort}/ — e.g. break a card reader:`);
say(`  curl -X POST http://127.0.0.1:${controlPort}/terminals/GZ-YX-001-01/fault -d '{"peripheral":"idCardReader"}'`);
say(`  (…/recover, …/network-drop {"seconds":60}, …/power-loss, …/app-crash; GET /terminals, /summary)`);
say(`a signed release: the hub trusts ${join(keysDir, 'release-public.pem')}; pack and upload one with`);
say(`  node hub/bin/kiosk-fleet.mjs release pack --dir <bundle dir> --version 3.4.0 --type id-card --kind app --key ${join(keysDir, 'release-private.pem')} --out ${join(dataDir, 'dist')}`);
say(`  curl -X POST ${api}/api/v1/releases -H "Authorization: Bearer $(cat ${tokenFile})" -H "X-KF-Manifest: $(base64 -w0 ${join(dataDir, 'dist/app-3.4.0.manifest.json')})" -H "X-KF-Signature: $(cat ${join(dataDir, 'dist/app-3.4.0.sig')})" --data-binary @${join(dataDir, 'dist/app-3.4.0.tar.gz')}`);
say('  then start a rollout on the Releases page (or POST /api/v1/rollouts)');
say(`open ${api}/ and sign in as "admin" with the one-time password the hub printed above on its first start`);
say(`(or choose "admin token" on the login page: ${token}, kept in data/demo-admin-token)`);
say('Ctrl-C stops the demo');
