/**
 * `kiosk-fleet <command>`: the dispatcher. Every command takes `--help`/`-h` (usage on stdout, exit 0, nothing
 * done); exit codes are protocol/src/cli.ts's EXIT (2 = configuration error, 64 = usage error).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT, UsageError, formatHelp, formatProgramHelp, parseCommand, progressReporter, type CommandSpec } from '@kiosk-fleet/protocol/cli';
import pkg from '../package.json' with { type: 'json' };
import { backupDatabase } from './backup.ts';
import { ConfigError, configSchema, flagsToEnv, parseConfig, type HubConfig } from './config.ts';
import { startHub } from './hub.ts';
import { createLogger } from './log.ts';
import { importFleet, parseFleetCsv, parseFleetJson } from './fleet/import.ts';
import { createFleetStore } from './fleet/index.ts';
import { openDatabase } from './store/db.ts';
import { createAuditLog } from './audit/log.ts';
import { openEngine } from './db/open-engine.ts';
import { HubError } from './errors.ts';
import { releaseCommand } from './releases/index.ts';
import { formatCounts, migrateStore } from './db/migrate-store.ts';
import { parseDatabaseUrl } from './db/url.ts';
import { seedDemo } from './demo/seed.ts';

export const HUB_VERSION: string = pkg.version;
const PROGRAM = 'kiosk-fleet';

const SERVE: CommandSpec = {
  name: 'serve',
  summary: 'Run the hub: MQTT broker, HTTP API, dashboard. Logs JSON lines on stdout; stops cleanly on SIGTERM/SIGINT.',
  synopsis: '[--<env-name>=<value> ...]',
  options: {},
  notes: `Configuration comes from the environment (see hub/README.md); each KF_ variable can also be given as a flag
(--mqtt-port=0 sets KF_MQTT_PORT=0). Variables: ${Object.keys(configSchema.shape).join(', ')}.
A wrong value stops the start with exit code ${EXIT.config} and a message naming the variable.`,
};
const IMPORT: CommandSpec = {
  name: 'import',
  summary: "Import a fleet (nodes and terminals) into KF_DATA_DIR's database, all or nothing; prints the new terminals' secrets as JSON on stdout.",
  synopsis: '<fleet.json|fleet.csv>',
  options: {},
  notes: 'CSV columns: id,station,type,serial. Terminals that exist already are left as they are and get no secret.',
};
const BACKUP: CommandSpec = {
  name: 'backup',
  summary: "Copy KF_DATA_DIR's database to <file> with SQLite's online backup (safe while the hub runs); on PostgreSQL use pg_dump.",
  synopsis: '<file>',
  options: {},
};
const MIGRATE_STORE = {
  name: 'migrate-store',
  summary: "Copy KF_DATA_DIR's SQLite installation (every table, all history) into an empty PostgreSQL database; the hub must be stopped.",
  synopsis: '--to postgres://user[:password]@host[:port]/database [--data-dir <dir>]',
  options: {
    to: { type: 'string', value: 'url', help: 'the target PostgreSQL database (must hold no rows)' },
    'data-dir': { type: 'string', value: 'dir', help: 'the SQLite installation (default: KF_DATA_DIR, ./data)' },
  },
  notes: 'Progress on stderr; a per-table count check on stdout at the end (exit 1 on any difference). See hub/README.md, "Engines".',
} as const satisfies CommandSpec;
const DEMO_SEED = {
  name: 'demo-seed',
  summary: "Write 30 days of demo history for the imported terminals into a fresh database (KF_DATABASE_URL, else KF_DATA_DIR's SQLite file; no hub running); used by `pnpm start`.",
  synopsis: '[--data-dir <dir>] [--days <n>]',
  options: {
    'data-dir': { type: 'string', value: 'dir', help: 'the data dir (default: KF_DATA_DIR, ./data)' },
    days: { type: 'string', value: 'n', help: 'days of history (default 30)' },
  },
  notes: 'Refuses a database with any telemetry, rollup, presence history, event, alert or rollout, and while a hub serves the data dir. Import the fleet first (`kiosk-fleet import`). Progress on stderr, a JSON summary on stdout. See hub/README.md, "Demo history".',
} as const satisfies CommandSpec;
const RELEASE = { name: 'release keygen|pack', summary: 'signing keys and signed release artifacts (kiosk-fleet release <keygen|pack> --help)' };

function config(flags: string[]): HubConfig {
  return parseConfig({ ...process.env, ...flagsToEnv(flags) });
}

async function serve(flags: string[]): Promise<void> {
  const cfg = config(flags);
  const log = createLogger(cfg.logLevel);
  // A stray rejected promise (a bug) is logged, not fatal: a thousand terminals depend on this process staying up.
  // An uncaught exception leaves state unknown, so it is logged and the process exits for its supervisor to restart.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; exiting');
    process.exit(1);
  });
  const hub = await startHub(cfg, { log });
  // The ready line is a contract (scripts and tests wait for it), so it is written whatever KF_LOG_LEVEL says.
  const readyLog = log.isLevelEnabled('info') ? log : createLogger('info');
  readyLog.info({ mqttPort: hub.mqttPort, httpPort: hub.httpPort, mqttsPort: hub.mqttsPort ?? undefined, mqttProxyPort: hub.mqttProxyPort ?? undefined, dataDir: cfg.dataDir }, 'ready');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'draining');
    const force = setTimeout(() => {
      log.error('drain took over 20 s; exiting');
      process.exit(1);
    }, 20_000);
    force.unref();
    hub.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function importFile(file: string): Promise<void> {
  const cfg = config([]);
  const progress = progressReporter('import');
  const text = fs.readFileSync(file, 'utf8');
  const fleet = path.extname(file).toLowerCase() === '.csv' ? parseFleetCsv(text) : parseFleetJson(JSON.parse(text));
  progress.done(`${fleet.nodes.length} nodes and ${fleet.terminals.length} terminals read from ${file}; checking and writing them in one transaction`);
  const { engine, close } = await openEngine(cfg.database, cfg.dataDir, { pgPool: 1 });
  try {
    const audit = createAuditLog(engine);
    // The CLI import is a state change like the API's: it goes into the audit log in the same transaction.
    const result = await importFleet(engine, createFleetStore(engine), fleet, 'cli', (r, tx) =>
      audit.append({
        actor: `cli (${os.userInfo().username})`,
        actorKind: 'cli',
        userId: null,
        ip: null,
        action: 'fleet.import',
        objectType: 'fleet',
        objectId: path.basename(file),
        nodeId: null,
        after: { nodesCreated: r.nodes.created, terminalsCreated: r.terminals.created.map((t) => t.id), terminalsExisting: r.terminals.existing.length },
      }, tx),
    );
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    progress.done(`${result.terminals.created.length} terminals created, ${result.terminals.existing.length} existed already`);
  } finally {
    await close();
  }
}

/** One positional argument or a UsageError naming it; `--help`/`-h` → null (the caller prints the help). */
function onePositional(spec: CommandSpec, argv: string[], what: string): string | null {
  const r = parseCommand(spec, argv, 1);
  if (r.help) return null;
  const file = r.positionals[0];
  if (!file) throw new UsageError(`missing ${what}`);
  return file;
}

async function backup(argv: string[]): Promise<void> {
  // `backup <file> [--data-dir=...]`: flags after the file mirror env names as for serve
  const [file, ...flags] = argv;
  const cfg = config(flags);
  const progress = progressReporter('backup');
  const r = await backupDatabase(cfg.dataDir, file!, (p) => progress.update(p.totalPages - p.remainingPages, p.totalPages, 'pages'), cfg.database);
  progress.done(`written to ${r.file} (${r.pages} pages)`);
}

async function migrateStoreCommand(to: string | undefined, dataDir: string | undefined): Promise<number> {
  if (!to) throw new UsageError('missing --to postgres://…');
  let target;
  try {
    target = parseDatabaseUrl(to);
  } catch (err) {
    throw new ConfigError('--to', (err as Error).message);
  }
  if (target.engine !== 'postgres') throw new ConfigError('--to', 'the target must be a postgres:// URL');
  const cfg = config(dataDir ? [`--data-dir=${dataDir}`] : []);
  const r = await migrateStore({ dataDir: cfg.dataDir, target, progress: (line) => process.stderr.write(`${line}\n`) });
  const check = formatCounts(r.tables);
  process.stdout.write(`${check.text}\n`);
  if (!check.ok) {
    process.stderr.write('migrate-store: row counts differ (MISMATCH above)\n');
    return EXIT.failure;
  }
  process.stderr.write(`migrate-store: ${r.rows.toLocaleString('en-US')} rows in ${(r.ms / 1000).toFixed(1)} s; every table's count matches\n`);
  return EXIT.ok;
}

const help = (spec: CommandSpec) => process.stdout.write(formatHelp(PROGRAM, spec));

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  let spec: CommandSpec | undefined;
  try {
    switch (cmd) {
      case 'serve':
        spec = SERVE;
        if (rest.includes('--help') || rest.includes('-h')) return (help(SERVE), EXIT.ok);
        await serve(rest);
        return -1; // keeps running
      case 'import': {
        spec = IMPORT;
        const file = onePositional(IMPORT, rest, 'the fleet file');
        if (file === null) return (help(IMPORT), EXIT.ok);
        await importFile(file);
        return EXIT.ok;
      }
      case 'release':
        return await releaseCommand(rest);
      case 'backup': {
        spec = BACKUP;
        if (rest.includes('--help') || rest.includes('-h')) return (help(BACKUP), EXIT.ok);
        if (!rest[0] || rest[0].startsWith('-')) throw new UsageError(rest[0] ? `${rest[0]}: the first argument is the backup file` : 'missing the backup file');
        await backup(rest);
        return EXIT.ok;
      }
      case 'migrate-store': {
        spec = MIGRATE_STORE;
        const r = parseCommand(MIGRATE_STORE, rest);
        if (r.help) return (help(MIGRATE_STORE), EXIT.ok);
        return await migrateStoreCommand(r.values.to, r.values['data-dir']);
      }
      case 'demo-seed': {
        spec = DEMO_SEED;
        const r = parseCommand(DEMO_SEED, rest);
        if (r.help) return (help(DEMO_SEED), EXIT.ok);
        const days = r.values.days === undefined ? 30 : Number(r.values.days);
        if (!Number.isInteger(days) || days < 2 || days > 400) throw new UsageError('--days: a whole number of days, 2-400');
        const cfg = config(r.values['data-dir'] ? [`--data-dir=${r.values['data-dir']}`] : []);
        const res = await seedDemo({ dataDir: cfg.dataDir, database: cfg.database, days, timezone: cfg.timezone, progress: (line) => process.stderr.write(`demo-seed: ${line}\n`) });
        process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        return EXIT.ok;
      }
      case '--version':
      case '-V':
      case 'version':
        process.stdout.write(`${PROGRAM} ${HUB_VERSION}\n`);
        return EXIT.ok;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(programHelp());
        return EXIT.ok;
      default:
        process.stderr.write(`${PROGRAM}: unknown command ${JSON.stringify(cmd)}\n\n${programHelp()}`);
        return EXIT.usage;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${PROGRAM} ${cmd}: ${err.message}\n\n${spec ? formatHelp(PROGRAM, spec) : programHelp()}`);
      return EXIT.usage;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`${PROGRAM}: invalid configuration: ${err.message}\n`);
      return EXIT.config;
    }
    if (err instanceof HubError) process.stderr.write(`${PROGRAM}: ${err.message}\n`);
    else process.stderr.write(`${PROGRAM}: ${(err as Error).message ?? String(err)}\n`);
    return EXIT.failure;
  }
}

function programHelp(): string {
  return formatProgramHelp(PROGRAM, `Kiosk Fleet hub ${HUB_VERSION}: MQTT broker, API and dashboard for a fleet of self-service terminals.`, [SERVE, IMPORT, BACKUP, RELEASE, MIGRATE_STORE, DEMO_SEED]);
}
