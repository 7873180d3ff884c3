/**
 * `kiosk-fleet-agent simulate`: flags, provisioning, the control API, signals.
 */
import path from 'node:path';
import * as z from 'zod';
import { seededRandom } from '@kiosk-fleet/protocol';
import { parseCommand, type CommandSpec } from '@kiosk-fleet/protocol/cli';
import { ConfigError } from '../config.ts';
import { startLocalApi } from '../local-api.ts';
import { createLogger } from '../log.ts';
import { createControlApi } from './control.ts';
import { importBody, loadFleet, selectTerminals } from './fleet.ts';
import { loadSecrets, provision } from './provision.ts';
import { Simulator } from './simulator.ts';

/** The repository root: agent/src/simulator → ../../.. */
export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
export const DEFAULT_FLEET = path.join(REPO_ROOT, 'fixtures', 'guangzhou-fleet.json');

const argsSchema = z
  .object({
    fleet: z.string().min(1).default(DEFAULT_FLEET),
    count: z.int().min(1).max(100_000).optional(),
    interval: z.number().min(0.2).max(3600).default(30),
    hub: z
      .string()
      .refine((s) => /^(mqtts?|wss?):\/\//.test(s), 'must be an mqtt://, mqtts://, ws:// or wss:// URL')
      .default('mqtt://127.0.0.1:1883'),
    api: z.string().url().default('http://127.0.0.1:8080'),
    token: z.string().min(1).optional(),
    provision: z.boolean().default(false),
    dataDir: z.string().min(1).default('./data/simulator'),
    localAddress: z.array(z.ipv4()).default([]),
    controlPort: z.int().min(0).max(65535).optional(),
    ramp: z.int().min(1).max(100_000).default(100),
    chaos: z.number().min(0).max(1000).default(1),
    summaryEvery: z.number().min(0.5).max(3600).default(5),
    seed: z.int().optional(),
    alwaysOpen: z.boolean().default(false),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();
export type SimulatorArgs = z.infer<typeof argsSchema>;

const FLAGS: Record<string, string> = { alwaysOpen: '--always-open', dataDir: '--data-dir', localAddress: '--local-address', controlPort: '--control-port', summaryEvery: '--summary-every', logLevel: '--log-level' };

export const SIMULATE = {
  name: 'simulate',
  summary: 'Run many virtual terminals in one process (the reference fleet by default) against a hub, with realistic faults.',
  options: {
    fleet: { type: 'string', value: 'file', help: 'fleet file (default fixtures/guangzhou-fleet.json)' },
    count: { type: 'string', value: 'n', help: 'how many of its terminals (default all; more adds synthetic ones)' },
    interval: { type: 'string', value: 's', help: 'telemetry interval in seconds (default KF_TELEMETRY_INTERVAL or 30)' },
    hub: { type: 'string', value: 'url', help: 'MQTT URL of the hub (default KF_HUB_URL or mqtt://127.0.0.1:1883)' },
    api: { type: 'string', value: 'url', help: "the hub's HTTP address for --provision (default KF_API_URL or http://127.0.0.1:8080)" },
    token: { type: 'string', value: 't', help: 'admin token for --provision (KF_ADMIN_TOKEN keeps it out of ps)' },
    provision: { type: 'boolean', help: 'import the fleet into the hub first and keep the secrets in --data-dir' },
    'data-dir': { type: 'string', value: 'dir', help: 'where secrets are kept (default KF_AGENT_DATA_DIR or ./data/simulator)' },
    'local-address': { type: 'string', multiple: true, value: 'a,b,...', help: 'source IPv4 addresses to spread connections over' },
    'control-port': { type: 'string', value: 'p', help: 'serve the control API (faults on demand) on 127.0.0.1:<p>' },
    ramp: { type: 'string', value: 'n', help: 'connections started per second (default 100)' },
    chaos: { type: 'string', value: 'x', help: 'fault rate multiplier; 0 = none (default 1)' },
    'summary-every': { type: 'string', value: 's', help: 'seconds between summary log lines (default 5)' },
    seed: { type: 'string', value: 'n', help: 'seed of the random faults, for a repeatable run' },
    'log-level': { type: 'string', value: 'level', help: 'fatal|error|warn|info|debug|trace|silent (default KF_LOG_LEVEL or info)' },
    'always-open': { type: 'boolean', help: 'every station open around the clock (no opening hours)' },
  },
} as const satisfies CommandSpec;

/** The simulator's options; throws UsageError (unknown flag) or ConfigError (a bad value). `--help` is the caller's. */
export function parseSimulatorArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): SimulatorArgs {
  const parsed = parseCommand(SIMULATE, argv);
  if (parsed.help) throw new Error('parseSimulatorArgs: --help is handled by the caller');
  const values = parsed.values;
  const num = (s: string | undefined): number | string | undefined => (s === undefined ? undefined : /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s);
  const raw = {
    fleet: values.fleet,
    count: num(values.count),
    interval: num(values.interval ?? env.KF_TELEMETRY_INTERVAL),
    hub: values.hub ?? env.KF_HUB_URL,
    api: values.api ?? env.KF_API_URL,
    // a token on the command line shows in `ps`; KF_ADMIN_TOKEN is the quieter way
    token: values.token ?? env.KF_API_TOKEN ?? env.KF_ADMIN_TOKEN,
    provision: values.provision,
    dataDir: values['data-dir'] ?? env.KF_AGENT_DATA_DIR,
    localAddress: values['local-address']?.flatMap((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
    controlPort: num(values['control-port']),
    ramp: num(values.ramp),
    chaos: num(values.chaos),
    summaryEvery: num(values['summary-every']),
    seed: num(values.seed),
    logLevel: values['log-level'] ?? env.KF_LOG_LEVEL,
    alwaysOpen: values['always-open'],
  };
  const r = argsSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  if (!r.success) {
    throw new ConfigError(
      `invalid simulator option: ${r.error.issues.map((i) => `${FLAGS[String(i.path[0])] ?? `--${String(i.path[0])}`}: ${i.message}`).join('; ')}`,
    );
  }
  if (r.data.provision && !r.data.token) throw new ConfigError('invalid simulator option: --provision needs --token (or KF_ADMIN_TOKEN)');
  return r.data;
}


export async function runSimulator(args: SimulatorArgs): Promise<void> {
  const logger = createLogger({ level: args.logLevel, base: { service: 'kiosk-fleet-simulator' } });
  const fleet = loadFleet(path.resolve(args.fleet));
  const terminals = selectTerminals(fleet, args.count);
  logger.info({ fleet: args.fleet, terminals: terminals.length, added: terminals.filter((t) => t.added).length, hub: args.hub }, 'simulating');
  const dataDir = path.resolve(args.dataDir);
  let secrets = loadSecrets(dataDir);
  if (args.provision) {
    secrets = await provision({ api: args.api, token: args.token!, body: importBody(fleet, terminals), ids: terminals.map((t) => t.id), dataDir, logger });
  }
  const sim = new Simulator({
    terminals,
    hubUrl: args.hub,
    secrets,
    interval: args.interval,
    localAddresses: args.localAddress,
    ramp: args.ramp,
    chaos: args.chaos,
    summaryEveryMs: args.summaryEvery * 1000,
    logger,
    ...(args.seed !== undefined ? { random: seededRandom(args.seed) } : {}),
    alwaysOpen: args.alwaysOpen,
  });
  let control: Awaited<ReturnType<typeof startLocalApi>> | null = null;
  if (args.controlPort !== undefined) {
    control = await startLocalApi(createControlApi(sim), args.controlPort);
    logger.info({ controlPort: control.port }, 'control API listening on 127.0.0.1');
  }
  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping the simulated fleet');
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    await control?.close().catch(() => undefined);
    await sim.stop();
    logger.info('simulator stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  await sim.start();
  logger.info({ controlPort: control?.port ?? null, terminals: terminals.length, connected: sim.connectedCount() }, 'simulator ready');
}
