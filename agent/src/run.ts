/**
 * The real agent's entry: config, wiring, signals. Nothing here runs at import time.
 *
 * The local API (Hono) and the updater (tar) are imported only when configured: each is a chunk of the bundle that
 * an agent without it never loads (agent/README.md, "Measured").
 */
import { spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, AGENT_VERSION } from './agent.ts';
import { loadConfig, readSecret, secretFilePath, ConfigError, type AgentConfig } from './config.ts';
import { FileConfigStore } from './config-reconciler.ts';
import { FileExitRecorder } from './exit-record.ts';
import { SystemHostProbe } from './host/system.ts';
import { createLogger, LogRing } from './log.ts';
import { SqliteOutbox } from './outbox/sqlite.ts';
import { splitHubUrls } from './mqtt-link.ts';
import { runCommand } from './peripherals/command.ts';
import { loadProbeCatalog } from './peripherals/probe-catalog.ts';

export async function runAgent(opts: { configFile?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  const cfg = loadConfig({ ...(opts.configFile ? { file: opts.configFile } : {}), ...(opts.env ? { env: opts.env } : {}) });
  const password = readSecret(secretFilePath(cfg));
  const ca = readCa(cfg);
  checkUpdateKey(cfg);
  mkdirSync(cfg.dataDir, { recursive: true });
  const ring = new LogRing();
  const logger = createLogger({ level: cfg.logLevel, base: { terminalId: cfg.terminalId }, ring });
  const outbox = new SqliteOutbox(path.join(cfg.dataDir, 'outbox.sqlite'), {
    maxBytes: cfg.outboxMaxBytes,
    maxAgeMs: cfg.outboxMaxAgeDays * 86400_000,
  });
  const exitRecorder = new FileExitRecorder(cfg.dataDir);
  const { createAgentUpdater } = cfg.updatePubkey ? await import('./updater/index.ts') : { createAgentUpdater: null };
  const localApi = cfg.localApiPort !== 0 ? await import('./local-api.ts') : null;
  let shuttingDown = false;
  // the terminal's own probes, then those of the installed (signed, verified) app release
  const probeDirs = cfg.updatePubkey ? [cfg.probesDir, path.join(cfg.dataDir, 'app', 'current', 'probes.d')] : [cfg.probesDir];

  const agent = new Agent({
    terminalId: cfg.terminalId,
    hubUrl: cfg.hubUrl,
    password,
    ca,
    caSource: cfg.hubCa,
    keepalive: cfg.keepalive,
    reconnectMinMs: cfg.reconnectMinMs,
    reconnectMaxMs: cfg.reconnectMaxMs,
    authRetryMs: cfg.authRetryMs,
    defaults: { telemetryInterval: cfg.telemetryInterval, logLevel: cfg.logLevel, peripherals: cfg.peripherals },
    restartAppCommand: cfg.restartAppCommand,
    rebootCommand: cfg.rebootCommand,
    appVersion: cfg.appVersion,
    appHeartbeatTimeout: cfg.appHeartbeatTimeout,
    monitorApp: cfg.localApiPort !== 0,
    outbox,
    host: new SystemHostProbe(),
    exitRecorder,
    configStore: new FileConfigStore(cfg.dataDir, logger),
    probes: () => loadProbeCatalog(probeDirs, logger),
    logger,
    logRing: ring,
    onRestartRequested: (what) => {
      if (what === 'agent') void shutdown('restart-agent', true);
    },
    // The updater (src/updater/README.md) runs when the agent holds a release key to check releases against.
    updater: createAgentUpdater
      ? (a, report) =>
          createAgentUpdater({
            dataDir: cfg.dataDir,
            updatePubkey: cfg.updatePubkey,
            terminalType: cfg.terminalType!,
            agentVersion: AGENT_VERSION,
            logger: logger.child({ module: 'updater' }),
            view: () => ({ sessionActive: a.sessionActive, hubConnected: a.link.connected, lastAppHeartbeat: a.lastAppHeartbeat, config: a.appliedConfig?.config ?? null }),
            restartApp: async () => {
              if (!cfg.restartAppCommand) {
                logger.warn('a new app release is in place, but no restartAppCommand is configured to restart the app');
                return;
              }
              const run = await runCommand(cfg.restartAppCommand, 60_000);
              if (run.spawnError || run.timedOut || run.exitCode !== 0) logger.error({ exitCode: run.exitCode, error: run.spawnError }, 'app restart command failed');
            },
            // the service manager (or our own successor when not under systemd) starts the agent from `current`
            exitForRestart: async () => {
              await shutdown('update', true);
              return new Promise<never>(() => undefined);
            },
            onStatus: report,
          })
      : undefined,
  });

  let api: Awaited<ReturnType<NonNullable<typeof localApi>['startLocalApi']>> | null = null;

  async function shutdown(reason: string, restart = false): Promise<void> {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ reason }, 'stopping');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await api?.close().catch(() => undefined);
    await agent.stop();
    outbox.close();
    if (restart && !process.env.INVOCATION_ID) {
      // not under systemd (which restarts us, Restart=always): start our successor ourselves
      const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', detached: true });
      child.unref();
    }
    logger.flush?.();
    process.exit(0);
  }

  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; exiting');
    exitRecorder.stopped('crash');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.error({ err }, 'unhandled rejection');
  });

  const catalog = loadProbeCatalog(probeDirs, logger);
  logger.info({ dirs: probeDirs, probes: catalog.names() }, 'probe catalog');
  for (const [id, s] of Object.entries(cfg.peripherals)) {
    if (s?.driver === 'command' && s.probe && !catalog.get(s.probe)) logger.warn({ peripheral: id, probe: s.probe }, 'the local peripherals setting names a probe the catalog lacks; it reads unknown (E_UNKNOWN_PROBE)');
  }
  await agent.start();
  if (localApi) {
    try {
      api = await localApi.startLocalApi(localApi.createLocalApi(agent), cfg.localApiPort);
      logger.info({ port: api.port }, 'local API listening on 127.0.0.1');
    } catch (err) {
      logger.error({ err, port: cfg.localApiPort }, 'local API could not listen; the kiosk app cannot report');
    }
  }
  logger.info({ hub: redactUrl(cfg.hubUrl), localApiPort: api?.port ?? 0 }, 'agent ready');
}

function readCa(cfg: AgentConfig): Buffer | undefined {
  if (!cfg.hubCa) return undefined;
  try {
    return readFileSync(cfg.hubCa);
  } catch (err) {
    throw new ConfigError(`cannot read KF_HUB_CA (hubCa) ${cfg.hubCa}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The updater (a later issue) verifies releases with this key; a wrong one must stop the agent now, not then. */
function checkUpdateKey(cfg: AgentConfig): void {
  if (!cfg.updatePubkey) return;
  let pem = cfg.updatePubkey;
  if (!pem.includes('-----BEGIN')) {
    try {
      pem = readFileSync(pem, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read KF_UPDATE_PUBKEY (updatePubkey) ${cfg.updatePubkey}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  let type: string | undefined;
  try {
    type = createPublicKey(pem).asymmetricKeyType;
  } catch (err) {
    throw new ConfigError(`KF_UPDATE_PUBKEY (updatePubkey) is not a public key: ${(err as Error).message}`);
  }
  if (type !== 'ed25519') throw new ConfigError(`KF_UPDATE_PUBKEY (updatePubkey) must be an Ed25519 public key, not ${type ?? 'unknown'}`);
}

/** KF_HUB_URL for the log: each URL of the list without a password. */
function redactUrl(url: string): string {
  return splitHubUrls(url)
    .map((one) => {
      const u = new URL(one);
      u.password = '';
      return u.toString();
    })
    .join(',');
}
