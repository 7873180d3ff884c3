/**
 * Pushed config names a probe; the terminal's catalog says what runs (issue 20, item 1). The catalog loader on its
 * own, then the real agent process (its bundle, as `kiosk-fleet-agent run`) against a real broker on which the test
 * publishes config/desired as a hub would, or as an old hub or a forged retained message would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { topicFor } from '@kiosk-fleet/protocol';
import { createLogger, LogRing } from '../log.ts';
import { quiet, tempDir } from '../test-support/agent.ts';
import { startBroker, subscriber, waitFor, type TestBroker } from '../test-support/broker.ts';
import { loadProbeCatalog } from './probe-catalog.ts';

const AGENT_BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'kiosk-fleet-agent.mjs');
const ID = 'GZ-YX-001-12';
const t = tempDir('kf-probes-');
afterAll(() => t.cleanup());
const teardown: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of teardown.splice(0).reverse()) await f();
});

function script(dir: string, name: string, body: string, mode = 0o755): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, mode);
  return file;
}

function catalogFile(dir: string, name: string, content: unknown, mode = 0o644): void {
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  chmodSync(file, mode);
}

describe('probe catalog files', () => {
  it('loads the good files, skips each bad one with its reason, keeps the first of a name defined twice', () => {
    const local = path.join(t.dir, 'cat-local');
    const release = path.join(t.dir, 'cat-release');
    mkdirSync(local);
    mkdirSync(release);
    catalogFile(local, '10-printer.json', { probes: { 'receipt-printer': { command: ['/opt/vendor/prtdiag', '--json'], timeoutMs: 5000 } } });
    catalogFile(local, '20-broken.json', '{"probes": {');
    catalogFile(local, '30-path-name.json', { probes: { '/bin/sh': { command: ['/bin/sh'] } } });
    catalogFile(local, '40-no-argv.json', { probes: { camera: { command: [] } } });
    catalogFile(local, '50-writable.json', { probes: { 'qr-scanner': { command: ['/opt/qr'] } } }, 0o666);
    catalogFile(local, 'notes.txt', 'not a catalog');
    catalogFile(release, 'probes.json', { probes: { 'receipt-printer': { command: ['./other'] }, 'idcard-reader': { command: ['./bin/iddiag', '-q'] } } });
    const ring = new LogRing();
    const catalog = loadProbeCatalog([local, release, path.join(t.dir, 'missing')], createLogger({ level: 'info', ring, destination: quiet }));

    expect(catalog.names()).toEqual(['idcard-reader', 'receipt-printer']);
    expect(catalog.get('receipt-printer')).toMatchObject({ command: ['/opt/vendor/prtdiag', '--json'], timeoutMs: 5000 });
    // a release's relative program is its own file, never something found through PATH
    expect(catalog.get('idcard-reader')?.command).toEqual([path.join(release, 'bin', 'iddiag'), '-q']);
    const warned = ring.tail(100).map((l) => JSON.parse(l) as { msg: string; file?: string; reason?: string; probe?: string });
    const skipped = (name: string) => warned.find((w) => w.msg === 'probe catalog file skipped' && w.file?.endsWith(name))?.reason;
    expect(skipped('20-broken.json')).toMatch(/not JSON/);
    expect(skipped('30-path-name.json')).toMatch(/not a path/);
    expect(skipped('40-no-argv.json')).toMatch(/probes\.camera\.command/);
    expect(skipped('50-writable.json')).toMatch(/writable by group or others/);
    expect(warned.find((w) => w.msg === 'probe defined twice; the first definition is kept')).toMatchObject({ probe: 'receipt-printer' });

    // read again for the next config: the same refusals are not logged again
    loadProbeCatalog([local, release], createLogger({ level: 'info', ring, destination: quiet }));
    expect(ring.tail(200).filter((l) => l.includes('probe catalog file skipped'))).toHaveLength(4);
  });
});

interface RealAgent {
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  dataDir: string;
}

/** The agent as users run it: the bin (its bundle), config from env, the catalog in KF_PROBES_DIR. */
function runAgent(broker: TestBroker, dataDir: string, probesDir: string, env: Record<string, string> = {}): RealAgent {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path.join(dataDir, 'secret'), 'any\n', { mode: 0o600 });
  const proc = spawn(process.execPath, [AGENT_BIN, 'run'], {
    env: {
      ...process.env,
      KF_HUB_URL: broker.url,
      KF_TERMINAL_ID: ID,
      KF_AGENT_DATA_DIR: dataDir,
      KF_LOCAL_API_PORT: '0',
      KF_TELEMETRY_INTERVAL: '0.3',
      KF_RECONNECT_MIN_MS: '100',
      KF_RECONNECT_MAX_MS: '1000',
      KF_LOG_LEVEL: 'info',
      KF_PROBES_DIR: probesDir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      lines.push({ msg: l });
    }
  });
  teardown.push(
    () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  );
  return { proc, lines, dataDir };
}

type Msg = Record<string, unknown>;
const of = (messages: { topic: string; payload: string }[], kind: Parameters<typeof topicFor>[1]): Msg[] =>
  messages.filter((m) => m.topic === topicFor(ID, kind)).map((m) => JSON.parse(m.payload) as Msg);
const printer = (m: Msg) => (m.peripherals as Record<string, { status: string; code?: string }>)?.receiptPrinter;

describe('a real agent process and pushed config', () => {
  it('runs the probe a config names, from its own catalog, and reports what it says', async () => {
    const broker = await startBroker();
    teardown.push(() => broker.close());
    const sub = await subscriber(broker.url, 'kf/v1/t/#');
    teardown.push(() => sub.close());
    const dir = path.join(t.dir, 'named');
    mkdirSync(path.join(dir, 'probes.d'), { recursive: true });
    const ran = path.join(dir, 'probe-ran');
    const diag = script(dir, 'prtdiag.sh', `touch '${ran}'\necho '{"status":"fault","code":"PAPER_OUT","message":"receipt paper out"}'\nexit 1`);
    catalogFile(path.join(dir, 'probes.d'), 'vendor.json', { probes: { 'receipt-printer': { command: [diag], timeoutMs: 5000 } } });
    runAgent(broker, path.join(dir, 'data'), path.join(dir, 'probes.d'));
    await waitFor(() => of(sub.messages, 'presence').length, 60_000, 'agent online');

    await sub.client.publishAsync(
      topicFor(ID, 'config/desired'),
      JSON.stringify({ v: 1, version: 1, config: { peripherals: { receiptPrinter: { driver: 'command', probe: 'receipt-printer' } } } }),
      { qos: 1, retain: true },
    );
    expect(await waitFor(() => of(sub.messages, 'config/reported').find((r) => r.version === 1), 20_000, 'reported')).toMatchObject({ status: 'applied' });
    await waitFor(() => of(sub.messages, 'telemetry').find((m) => printer(m)?.code === 'PAPER_OUT'), 20_000, 'the probe result in telemetry');
    expect(of(sub.messages, 'telemetry').find((m) => printer(m)?.code === 'PAPER_OUT')).toMatchObject({ peripherals: { receiptPrinter: { status: 'fault', message: 'receipt paper out' } } });
    expect(existsSync(ran)).toBe(true);
  }, 90_000);

  it('refuses a probe name its catalog lacks, naming it in config/reported, and keeps the previous config', async () => {
    const broker = await startBroker();
    teardown.push(() => broker.close());
    const sub = await subscriber(broker.url, 'kf/v1/t/#');
    teardown.push(() => sub.close());
    const dir = path.join(t.dir, 'unknown');
    mkdirSync(path.join(dir, 'probes.d'), { recursive: true });
    const diag = script(dir, 'ok.sh', `echo '{"status":"ok"}'`);
    catalogFile(path.join(dir, 'probes.d'), 'vendor.json', { probes: { 'receipt-printer': { command: [diag] } } });
    const agent = runAgent(broker, path.join(dir, 'data'), path.join(dir, 'probes.d'));
    await waitFor(() => of(sub.messages, 'presence').length, 60_000, 'agent online');
    const desired = (version: number, config: unknown) =>
      sub.client.publishAsync(topicFor(ID, 'config/desired'), JSON.stringify({ v: 1, version, config }), { qos: 1, retain: true });

    await desired(1, { telemetryInterval: 5, peripherals: { receiptPrinter: { driver: 'command', probe: 'receipt-printer' } } });
    await waitFor(() => of(sub.messages, 'config/reported').find((r) => r.version === 1 && r.status === 'applied'), 20_000, 'v1 applied');
    await desired(2, { telemetryInterval: 3600, peripherals: { receiptPrinter: { driver: 'command', probe: 'prtdiag-v2' } } });
    const r = await waitFor(() => of(sub.messages, 'config/reported').find((x) => x.version === 2), 20_000, 'v2 reported');
    expect(r).toMatchObject({ status: 'rejected' });
    expect(r.reason).toContain('"prtdiag-v2"');
    expect(r.reason).toContain('receiptPrinter');
    const stored = JSON.parse(readFileSync(path.join(agent.dataDir, 'config-applied.json'), 'utf8')) as { applied: { version: number } };
    expect(stored.applied.version).toBe(1);
    // still probing with v1's probe
    const n = of(sub.messages, 'telemetry').length;
    await waitFor(() => of(sub.messages, 'telemetry').slice(n).find((m) => printer(m)?.status === 'ok'), 20_000, 'v1 probe still runs');
  }, 90_000);

  it('runs nothing from a config that carries a program (an old hub, a forged retained message), and says why', async () => {
    const broker = await startBroker();
    teardown.push(() => broker.close());
    const sub = await subscriber(broker.url, 'kf/v1/t/#');
    teardown.push(() => sub.close());
    const dir = path.join(t.dir, 'argv');
    mkdirSync(path.join(dir, 'probes.d'), { recursive: true });
    const marker = path.join(dir, 'pwned');
    const agent = runAgent(broker, path.join(dir, 'data'), path.join(dir, 'probes.d'));
    await waitFor(() => of(sub.messages, 'presence').length, 60_000, 'agent online');

    await sub.client.publishAsync(
      topicFor(ID, 'config/desired'),
      JSON.stringify({ v: 1, version: 7, config: { peripherals: { a4Printer: { driver: 'command', command: ['/bin/sh', '-c', `id > '${marker}'`] } } } }),
      { qos: 1, retain: true },
    );
    const r = await waitFor(() => of(sub.messages, 'config/reported').find((x) => x.version === 7), 20_000, 'v7 reported');
    expect(r).toMatchObject({ status: 'rejected' });
    expect(r.reason).toContain('peripherals.a4Printer.command');
    expect(r.reason).toContain('never carry a program');
    // several samples later (each one probes every peripheral) nothing has run
    const n = of(sub.messages, 'telemetry').length;
    await waitFor(() => of(sub.messages, 'telemetry').length >= n + 3, 20_000, 'three more samples');
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(path.join(agent.dataDir, 'config-applied.json')) && (JSON.parse(readFileSync(path.join(agent.dataDir, 'config-applied.json'), 'utf8')) as { applied: unknown }).applied).toBeFalsy();
  }, 90_000);

  it('a config applied before the upgrade with a program in it: the rest is kept, the program never runs', async () => {
    const broker = await startBroker();
    teardown.push(() => broker.close());
    const sub = await subscriber(broker.url, 'kf/v1/t/#');
    teardown.push(() => sub.close());
    const dir = path.join(t.dir, 'stored');
    const dataDir = path.join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    const marker = path.join(dir, 'pwned');
    writeFileSync(
      path.join(dataDir, 'config-applied.json'),
      JSON.stringify({
        applied: { version: 4, config: { telemetryInterval: 5, peripherals: { a4Printer: { driver: 'command', command: ['/bin/sh', '-c', `touch '${marker}'`] } } } },
        decidedVersion: 4,
      }),
    );
    const agent = runAgent(broker, dataDir, path.join(dir, 'probes.d'));
    await waitFor(() => of(sub.messages, 'telemetry').length >= 2, 60_000, 'samples');
    expect(agent.lines.find((l) => l.msg === 'stored config carried programs; they were dropped and will not run')).toMatchObject({ removed: ['peripherals.a4Printer.command'] });
    expect(of(sub.messages, 'telemetry').at(-1)).toMatchObject({ peripherals: { a4Printer: { status: 'unknown', code: 'E_NO_PROBE' } } });
    expect(of(sub.messages, 'presence')[0]).toMatchObject({ interval: 5 });
    expect(existsSync(marker)).toBe(false);
  }, 90_000);

  it('runs a probe shipped in the installed (signed) app release, its program beside its catalog', async () => {
    const broker = await startBroker();
    teardown.push(() => broker.close());
    const sub = await subscriber(broker.url, 'kf/v1/t/#');
    teardown.push(() => sub.close());
    const dir = path.join(t.dir, 'release');
    const dataDir = path.join(dir, 'data');
    // what the updater leaves after installing app 3.3.0: releases/3.3.0 and `current` pointing at it
    const shipped = path.join(dataDir, 'app', 'releases', '3.3.0', 'probes.d');
    mkdirSync(shipped, { recursive: true });
    symlinkSync(path.join('releases', '3.3.0'), path.join(dataDir, 'app', 'current'));
    script(shipped, 'iddiag.sh', `echo '{"status":"degraded","code":"RF_WEAK","message":"reader antenna weak"}'`);
    catalogFile(shipped, 'app.json', { probes: { 'idcard-reader': { command: ['./iddiag.sh'] } } });
    const key = path.join(dir, 'release.pub.pem');
    writeFileSync(key, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const agent = runAgent(broker, dataDir, path.join(dir, 'probes.d'), { KF_UPDATE_PUBKEY: key, KF_TERMINAL_TYPE: 'id-card' });
    await waitFor(() => of(sub.messages, 'presence').length, 60_000, 'agent online');
    expect(agent.lines.find((l) => l.msg === 'probe catalog')).toMatchObject({ probes: ['idcard-reader'] });

    await sub.client.publishAsync(
      topicFor(ID, 'config/desired'),
      JSON.stringify({ v: 1, version: 1, config: { peripherals: { idCardReader: { driver: 'command', probe: 'idcard-reader' } } } }),
      { qos: 1, retain: true },
    );
    const reader = (m: Msg) => (m.peripherals as Record<string, { status: string; code?: string }>)?.idCardReader;
    const m = await waitFor(() => of(sub.messages, 'telemetry').find((x) => reader(x)?.code === 'RF_WEAK'), 20_000, 'the shipped probe result');
    expect(reader(m)).toMatchObject({ status: 'degraded', code: 'RF_WEAK' });
  }, 90_000);
});
