/**
 * `kiosk-fleet serve | import <file> | backup <file>`.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { backupDatabase } from './backup.ts';
import { ConfigError, flagsToEnv, parseConfig, type HubConfig } from './config.ts';
import { startHub } from './hub.ts';
import { createLogger } from './log.ts';
import { applyImport, parseFleetCsv, parseFleetJson } from './services/import.ts';
import { openDatabase } from './store/db.ts';
import { AuditLog } from './audit/log.ts';
import { RegistryStore } from './store/registry.ts';
import { HubError } from './errors.ts';
import { releaseCommand } from './releases/index.ts';
import { formatCounts, migrateStore } from './db/migrate-store.ts';
import { parseDatabaseUrl } from './db/url.ts';

const USAGE = `usage: kiosk-fleet <command>
  serve [--mqtt-port=N ...]   run the hub (env: KF_BIND, KF_MQTT_PORT, KF_HTTP_PORT, KF_DATA_DIR, ... see hub/README.md)
  import <file.json|file.csv> import a fleet into KF_DATA_DIR's database; prints the new secrets as JSON
  backup <file>               copy the live database to <file> (safe while the hub runs)
  release keygen|pack ...     signing keys and signed release artifacts (see hub/src/releases/README.md)
  migrate-store --to postgres://user@host/db
                              copy KF_DATA_DIR's SQLite installation into an empty PostgreSQL database (hub stopped)`;

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

function importFile(file: string | undefined): void {
  if (!file) throw new ConfigError('file', 'kiosk-fleet import <file.json|file.csv>');
  const cfg = config([]);
  const text = fs.readFileSync(file, 'utf8');
  const fleet = path.extname(file).toLowerCase() === '.csv' ? parseFleetCsv(text) : parseFleetJson(JSON.parse(text));
  const { db } = openDatabase(cfg.dataDir);
  try {
    const audit = new AuditLog(db);
    // The CLI import is a state change like the API's: it goes into the audit log in the same transaction.
    const result = db.transaction(() => {
      const r = applyImport(db, new RegistryStore(db), fleet, 'cli');
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
      });
      return r;
    })();
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    db.close();
  }
}

async function migrateStoreCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { to: { type: 'string' }, 'data-dir': { type: 'string' } }, strict: true });
  if (!values.to) throw new ConfigError('--to', 'kiosk-fleet migrate-store --to postgres://user[:password]@host[:port]/database');
  let target;
  try {
    target = parseDatabaseUrl(values.to);
  } catch (err) {
    throw new ConfigError('--to', (err as Error).message);
  }
  if (target.engine !== 'postgres') throw new ConfigError('--to', 'the target must be a postgres:// URL');
  const cfg = config(values['data-dir'] ? [`--data-dir=${values['data-dir']}`] : []);
  const r = await migrateStore({ dataDir: cfg.dataDir, target, progress: (line) => process.stderr.write(`${line}\n`) });
  const check = formatCounts(r.tables);
  process.stdout.write(`${check.text}\n`);
  if (!check.ok) {
    process.stderr.write('migrate-store: row counts differ (MISMATCH above)\n');
    return 1;
  }
  process.stderr.write(`migrate-store: ${r.rows.toLocaleString('en-US')} rows in ${(r.ms / 1000).toFixed(1)} s; every table's count matches\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve':
        await serve(rest);
        return -1; // keeps running
      case 'import':
        importFile(rest[0]);
        return 0;
      case 'release':
        return await releaseCommand(rest);
      case 'backup': {
        if (!rest[0]) throw new ConfigError('file', 'kiosk-fleet backup <file>');
        const r = await backupDatabase(config(rest.slice(1)).dataDir, rest[0]);
        process.stderr.write(`backup written to ${r.file} (${r.pages} pages)\n`);
        return 0;
      }
      case 'migrate-store':
        return await migrateStoreCommand(rest);
      default:
        process.stderr.write(`${USAGE}\n`);
        return cmd === undefined || cmd === '--help' || cmd === 'help' ? 0 : 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) process.stderr.write(`kiosk-fleet: invalid configuration: ${err.message}\n`);
    else if (err instanceof HubError) process.stderr.write(`kiosk-fleet: ${err.message}\n`);
    else process.stderr.write(`kiosk-fleet: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}
