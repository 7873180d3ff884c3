/**
 * The agent's local config: one zod schema, read from a JSON file (`--config`) and from env, env winning.
 *
 * These are local settings (identity, hub, keys, data dir) plus the defaults of the operational settings
 * (interval, log level, peripheral drivers); once the hub pushes a config, the config reconciler's applied config
 * governs those, and these values are only the fallback (see config-reconciler.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as z from 'zod';
import { TERMINAL_TYPE_IDS, terminalConfigSchema, terminalIdSchema } from '@kiosk-fleet/protocol';

function isHubUrl(s: string): boolean {
  try {
    return ['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(new URL(s).protocol);
  } catch {
    return false;
  }
}

/** One hub URL, or a comma-separated list of the installation's hubs (the link tries them in a shuffled order). */
const hubUrl = z
  .string()
  .refine((s) => s.split(',').some((u) => u.trim() !== ''), 'must name at least one hub')
  .refine(
    (s) => s.split(',').every((u) => u.trim() === '' || isHubUrl(u.trim())),
    'must be a URL with scheme mqtt://, mqtts://, ws:// or wss://, or a comma-separated list of them',
  );

/** A command line as an argv array (never a shell string: no quoting surprises, no injection). */
const argv = z.array(z.string().min(1).max(1024)).min(1).max(32);

export const peripheralsSchema = terminalConfigSchema.shape.peripherals.unwrap();

export const agentConfigSchema = z
  .object({
    hubUrl: hubUrl.default('mqtt://127.0.0.1:1883'),
    /** PEM file of the CA that signed the hub's certificate (mqtts://, wss://); system CAs otherwise. */
    hubCa: z.string().min(1).optional(),
    terminalId: terminalIdSchema,
    /** File holding the terminal's secret (the MQTT password). Default: `<dataDir>/secret`. */
    secretFile: z.string().min(1).optional(),
    dataDir: z.string().min(1).default('./data/agent'),
    /** Seconds between telemetry samples (jittered ±10%); the pushed config's value governs once applied. */
    telemetryInterval: z.number().min(0.2).max(3600).default(30),
    /** Port of the local API for the kiosk app on 127.0.0.1; 0 turns it off. */
    localApiPort: z.int().min(0).max(65535).default(7070),
    /** Ed25519 public key (PEM, or a path to one) that update manifests must be signed with. */
    updatePubkey: z.string().min(1).optional(),
    /** This terminal's type (catalog id): the updater installs only releases whose signed manifest names it. */
    terminalType: z.enum(TERMINAL_TYPE_IDS as [string, ...string[]]).optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    peripherals: peripheralsSchema.default({}),
    /** Directory of the probe catalog (`*.json`: probe name → argv); pushed config can only name its probes. */
    probesDir: z.string().min(1).default('/etc/kiosk-fleet/probes.d'),
    /** How the kiosk app is restarted (`restart-app`); the command is refused when unset. */
    restartAppCommand: argv.optional(),
    /** How the terminal is rebooted (`reboot`); off unless set. */
    rebootCommand: argv.optional(),
    appVersion: z.string().min(1).max(64).optional(),
    /** The kiosk app is down when its heartbeat is older than this many seconds. */
    appHeartbeatTimeout: z.number().min(1).max(3600).default(30),
    outboxMaxBytes: z.int().min(4096).default(100 * 1024 * 1024),
    outboxMaxAgeDays: z.number().min(0.0001).max(365).default(7),
    /** Reconnect backoff: capped exponential with jitter, from min to max milliseconds. */
    reconnectMinMs: z.int().min(10).max(600_000).default(1000),
    reconnectMaxMs: z.int().min(10).max(3_600_000).default(60_000),
    /** Retry delay after the hub refused our credentials (a new secret has to be installed first). */
    authRetryMs: z.int().min(10).max(86_400_000).default(300_000),
    keepalive: z.int().min(5).max(3600).default(30),
  })
  .strict();

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type AgentConfigInput = z.input<typeof agentConfigSchema>;

/** Env var → config key; values are strings, so numbers and JSON are coerced per key below. */
export const ENV_KEYS = {
  KF_HUB_URL: 'hubUrl',
  KF_HUB_CA: 'hubCa',
  KF_TERMINAL_ID: 'terminalId',
  KF_SECRET_FILE: 'secretFile',
  KF_AGENT_DATA_DIR: 'dataDir',
  KF_TELEMETRY_INTERVAL: 'telemetryInterval',
  KF_LOCAL_API_PORT: 'localApiPort',
  KF_UPDATE_PUBKEY: 'updatePubkey',
  KF_TERMINAL_TYPE: 'terminalType',
  KF_LOG_LEVEL: 'logLevel',
  KF_PERIPHERALS: 'peripherals',
  KF_PROBES_DIR: 'probesDir',
  KF_RESTART_APP_COMMAND: 'restartAppCommand',
  KF_REBOOT_COMMAND: 'rebootCommand',
  KF_APP_VERSION: 'appVersion',
  KF_APP_HEARTBEAT_TIMEOUT: 'appHeartbeatTimeout',
  KF_OUTBOX_MAX_BYTES: 'outboxMaxBytes',
  KF_OUTBOX_MAX_AGE_DAYS: 'outboxMaxAgeDays',
  KF_RECONNECT_MIN_MS: 'reconnectMinMs',
  KF_RECONNECT_MAX_MS: 'reconnectMaxMs',
  KF_AUTH_RETRY_MS: 'authRetryMs',
  KF_KEEPALIVE: 'keepalive',
} as const satisfies Record<string, keyof AgentConfig>;

const NUMERIC = new Set<string>([
  'telemetryInterval',
  'localApiPort',
  'appHeartbeatTimeout',
  'outboxMaxBytes',
  'outboxMaxAgeDays',
  'reconnectMinMs',
  'reconnectMaxMs',
  'authRetryMs',
  'keepalive',
]);
const JSON_KEYS = new Set<string>(['peripherals', 'restartAppCommand', 'rebootCommand']);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function envName(key: string): string | undefined {
  return Object.entries(ENV_KEYS).find(([, k]) => k === key)?.[0];
}

/**
 * Merge file and env (env wins) and validate. Throws ConfigError whose message names each wrong key, with its env
 * var where it came from env.
 */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): AgentConfig {
  const env = opts.env ?? process.env;
  let fromFile: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${opts.file}: ${(err as Error).message}`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      fromFile = parsed as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`config file ${opts.file} is not a JSON object: ${(err as Error).message}`);
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  const sourcedFromEnv = new Set<string>();
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    sourcedFromEnv.add(key);
    if (NUMERIC.has(key)) merged[key] = /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
    else if (JSON_KEYS.has(key)) {
      try {
        merged[key] = JSON.parse(raw);
      } catch {
        throw new ConfigError(`invalid config: ${name} (${key}) is not valid JSON`);
      }
    } else merged[key] = raw;
  }
  const result = agentConfigSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.map(String).join('.') || '(root)';
      const top = String(issue.path[0] ?? '');
      const where = sourcedFromEnv.has(top) ? `${envName(top)} (${key})` : key;
      if (issue.code === 'unrecognized_keys') return `${issue.keys.join(', ')}: unknown key`;
      return `${where}: ${issue.message}`;
    });
    throw new ConfigError(`invalid config: ${lines.join('; ')}`);
  }
  const cfg = result.data;
  if (cfg.reconnectMaxMs < cfg.reconnectMinMs) {
    throw new ConfigError('invalid config: reconnectMaxMs must be >= reconnectMinMs');
  }
  if (cfg.updatePubkey && !cfg.terminalType) {
    // the updater checks that a signed release names this terminal's type; without it every release is refused
    throw new ConfigError('invalid config: KF_UPDATE_PUBKEY (updatePubkey) needs KF_TERMINAL_TYPE (terminalType), e.g. id-card');
  }
  for (const [id, d] of Object.entries(cfg.peripherals)) {
    const problem = driverProblem(d);
    if (problem) throw new ConfigError(`invalid config: peripherals.${id}: ${problem}`);
  }
  return cfg;
}

/**
 * What a driver setting lacks to be usable (the schema makes every field optional). A `command` driver without a
 * probe is usable: it reads `unknown` (E_NO_PROBE), which is what configs saved before probes had become.
 */
export function driverProblem(d: { driver: string; usbId?: string | undefined }): string | null {
  if (d.driver === 'usb-presence' && !d.usbId) return 'usb-presence needs usbId';
  return null;
}

export function secretFilePath(cfg: AgentConfig): string {
  return cfg.secretFile ?? path.join(cfg.dataDir, 'secret');
}

/** The secret, from its file (never the command line or env: those leak into `ps` and logs). */
export function readSecret(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the secret file ${file} (KF_SECRET_FILE): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const secret = text.trim();
  if (!secret) throw new ConfigError(`the secret file ${file} (KF_SECRET_FILE) is empty`);
  return secret;
}
