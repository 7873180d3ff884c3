/**
 * The hub's configuration: one zod schema read from env (and `--key=value` flags of `serve`). A wrong value stops
 * the start with a message naming the key (`KF_MQTT_PORT: ...`). Defaults make `pnpm hub` work on a bare machine.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { AuthOptions } from './auth/service.ts';
import { parseTrustedSources } from './broker/proxy-protocol.ts';
import { DatabaseUrlError, parseDatabaseUrl, type DatabaseTarget } from './db/url.ts';
import { DEFAULT_QUOTAS, QUOTA_STREAMS, type QuotaOptions, type QuotaStream } from './ingest/quota.ts';

const port = z.coerce.number().int().min(0).max(65535);
const optionalString = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s.trim() === '' ? undefined : s));

/**
 * Per stream: messages a second (0 = no limit) and burst (messages), see ingest/quota.ts for the defaults' reasoning.
 * Env names: KF_QUOTA_TELEMETRY_RATE, KF_QUOTA_TELEMETRY_BURST, KF_QUOTA_EVENTS_RATE, ...
 */
export const QUOTA_ENV = {
  telemetry: 'TELEMETRY',
  events: 'EVENTS',
  'commands/result': 'RESULTS',
  'config/reported': 'CONFIG',
  'update/status': 'UPDATE',
} as const satisfies Record<QuotaStream, string>;

function quotaEnv() {
  const rate = z.coerce.number().min(0).max(1_000_000);
  const burst = z.coerce.number().int().min(1).max(10_000_000);
  const out: Record<string, z.ZodDefault<typeof rate>> = {};
  for (const k of QUOTA_STREAMS) {
    out[`KF_QUOTA_${QUOTA_ENV[k]}_RATE`] = rate.default(DEFAULT_QUOTAS[k].rate);
    out[`KF_QUOTA_${QUOTA_ENV[k]}_BURST`] = burst.default(DEFAULT_QUOTAS[k].burst);
  }
  return out as Record<`KF_QUOTA_${(typeof QUOTA_ENV)[QuotaStream]}_${'RATE' | 'BURST'}`, z.ZodDefault<typeof rate>>;
}

export const configSchema = z.object({
  KF_BIND: z.string().min(1).default('0.0.0.0'),
  /** `off`: no plain MQTT listener (only with TLS); 0 stays an ephemeral port, as for every port. */
  KF_MQTT_PORT: z.literal('off').or(port).default(1883),
  KF_MQTTS_PORT: port.optional(),
  /** MQTT behind a load balancer speaking PROXY protocol v2 (broker/proxy-protocol.ts); off when unset. */
  KF_MQTT_PROXY_PORT: port.optional(),
  /** Who may speak PROXY protocol to KF_MQTT_PROXY_PORT: addresses and subnets, comma-separated. */
  KF_MQTT_PROXY_FROM: z.string().default('127.0.0.1,::1'),
  KF_HTTP_PORT: port.default(8080),
  KF_DATA_DIR: z.string().min(1).default('./data'),
  /** Unset or `sqlite:`: SQLite under KF_DATA_DIR; `postgres://…`: PostgreSQL (db/url.ts). */
  KF_DATABASE_URL: optionalString,
  KF_ADMIN_TOKEN: optionalString.pipe(z.string().min(16, 'at least 16 characters').optional()),
  KF_ADMIN_PASSWORD: optionalString,
  KF_TLS_CERT: optionalString,
  KF_TLS_KEY: optionalString,
  KF_RETENTION_DAYS: z.coerce.number().min(1).max(3650).default(7),
  KF_MAX_PAYLOAD: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(65536),
  KF_TIMEZONE: z
    .string()
    .default('Asia/Shanghai')
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'unknown time zone'),
  KF_RELEASE_KEYS: optionalString,
  /** How terminals reach the hub's HTTP(S) port (download URLs in update/target); default from bind and port. */
  KF_PUBLIC_URL: optionalString.pipe(z.url({ protocol: /^https?$/, error: 'an http(s) URL' }).optional()),
  KF_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Set by `pnpm start`: the terminals are simulated (the dashboard says so, told by /api/v1/health). */
  KF_DEMO: z.enum(['0', '1', 'false', 'true']).default('0').transform((v) => v === '1' || v === 'true'),
  /** Where the dashboard's static build lives; default `dashboard/dist` beside the hub package. */
  KF_DASHBOARD_DIR: optionalString,
  /** Alerts (src/alerts): how often rules run, how long after start before they run (terminals reconnecting after a
   * hub restart are not an outage), the first webhook retry delay (doubling). */
  KF_ALERT_EVALUATE_MS: z.coerce.number().int().min(100).max(600_000).default(5000),
  KF_ALERT_START_GRACE_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
  KF_ALERT_WEBHOOK_BACKOFF_MS: z.coerce.number().int().min(10).max(3_600_000).default(1000),
  /** Per-terminal ingest quotas (ingest/quota.ts has the reasoning behind each default; hub/README.md, "Quotas"). */
  ...quotaEnv(),
  KF_QUOTA_EVENTS_PER_DAY: z.coerce.number().int().min(0).max(10_000_000).default(5000),
  /** Credential reuse (broker/takeover.ts): how long a newer address is refused after repeated takeovers. */
  KF_TAKEOVER_HOLD_OFF_S: z.coerce.number().int().min(0).max(86_400).default(600),
  /** Several hubs on one PostgreSQL (hubs/README.md): this hub's name; unset: `<host name>:<MQTT port>`. */
  KF_HUB_ID: optionalString.pipe(
    z
      .string()
      .max(128, 'at most 128 characters')
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'letters, digits and . _ : @ - (starting with a letter or digit)')
      .optional(),
  ),
  /** How long a hub's lease lasts without renewal (renewed every fifth of it): a SIGKILLed hub's terminals are
   * marked `hub-lost` this long after its last renewal, plus a reaper tick. */
  KF_HUB_LEASE_MS: z.coerce.number().int().min(1000).max(600_000).default(10_000),
});

export type EnvConfig = z.infer<typeof configSchema>;

/** What createHub needs; tests build it directly (`hubConfig({ KF_MQTT_PORT: '0', ... })`). */
export interface HubConfig {
  bind: string;
  /** null: KF_MQTT_PORT=off, no plain MQTT listener. */
  mqttPort: number | null;
  mqttsPort: number | undefined;
  /** KF_MQTT_PROXY_PORT and KF_MQTT_PROXY_FROM: the PROXY protocol v2 listener and its trusted balancers. */
  mqttProxy?: { port: number; from: string } | undefined;
  httpPort: number;
  dataDir: string;
  /** KF_DATABASE_URL, parsed: which engine holds the fleet. */
  database: DatabaseTarget;
  adminToken: string | undefined;
  /** KF_ADMIN_PASSWORD: the first start's `admin` password (else one is generated and printed once). */
  adminPassword: string | undefined;
  /** KF_RELEASE_KEYS as given (see src/releases/README.md). */
  releaseKeys: string | undefined;
  /** KF_PUBLIC_URL: the hub's HTTP(S) address as terminals reach it; unset: http(s)://<bind or 127.0.0.1>:<port>. */
  publicUrl?: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  retentionDays: number;
  maxPayload: number;
  timezone: string;
  /** KF_DEMO: the terminals are simulated (scripts/demo.mjs). */
  demo?: boolean;
  logLevel: string;
  dashboardDir: string;
  /** Ingest tuning; not env (documented in README's back-pressure section). */
  ingest: { batchSize: number; flushMs: number; queueLimit: number };
  /** Presence tuning. */
  presence: { staleCheckMs: number; flapTransitions: number; flapWindowMs: number };
  /** Retention job period. */
  maintenanceMs: number;
  /** The config reconcile's backstop: `terminals` active terminals every `everyMs` (config-layers/service.ts, sweep). */
  configSweep: { everyMs: number; terminals: number };
  /** Login throttling and session tuning; not env (the defaults are in auth/service.ts, DEFAULT_AUTH_OPTIONS). */
  auth?: Partial<AuthOptions>;
  /** KF_ALERT_*: rule evaluation period, start grace, first webhook retry delay. */
  alerts: { evaluateMs: number; startGraceMs: number; webhookBackoffMs: number };
  /** KF_QUOTA_*: per-terminal rate limits per stream and the daily cap on stored events (ingest/quota.ts). */
  quota: QuotaOptions;
  /** KF_TAKEOVER_HOLD_OFF_S and the takeover window (broker/takeover.ts). */
  takeover: { holdOffMs: number };
  /** KF_HUB_ID: this hub's name among the installation's hubs (`/api/v1/hubs`, presence rows, `/health`). */
  hubId: string;
  /** KF_HUB_LEASE_MS: the hub's lease in the hubs table, renewed every fifth of it (hubs/registry.ts). */
  hubs: { leaseMs: number };
}

export class ConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(`${key}: ${message}`);
    this.name = 'ConfigError';
  }
}

const HUB_PACKAGE_DIR = path.resolve(import.meta.dirname, '..');

export function parseConfig(env: Record<string, string | undefined>, overrides: Partial<HubConfig> = {}): HubConfig {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = String(issue?.path[0] ?? 'config');
    throw new ConfigError(key, `${issue?.message ?? 'invalid'} (got ${JSON.stringify(env[key])})`);
  }
  const c = result.data;
  if ((c.KF_TLS_CERT === undefined) !== (c.KF_TLS_KEY === undefined)) {
    throw new ConfigError(c.KF_TLS_CERT === undefined ? 'KF_TLS_CERT' : 'KF_TLS_KEY', 'KF_TLS_CERT and KF_TLS_KEY go together');
  }
  if (c.KF_MQTT_PORT === 'off' && c.KF_TLS_CERT === undefined) {
    // Without TLS the plain listener is the terminals' only MQTT transport but ws:// at /mqtt, which is no safer.
    throw new ConfigError('KF_MQTT_PORT', 'off needs KF_TLS_CERT and KF_TLS_KEY (terminals then use mqtts:// on KF_MQTTS_PORT or wss:// at /mqtt)');
  }
  if (c.KF_MQTTS_PORT !== undefined && c.KF_TLS_CERT === undefined) {
    throw new ConfigError('KF_MQTTS_PORT', 'needs KF_TLS_CERT and KF_TLS_KEY');
  }
  let database: DatabaseTarget;
  try {
    database = parseDatabaseUrl(c.KF_DATABASE_URL);
  } catch (err) {
    // The message never repeats the URL: it may hold a password.
    if (err instanceof DatabaseUrlError) throw new ConfigError('KF_DATABASE_URL', err.message);
    throw err;
  }
  if (c.KF_MQTT_PROXY_PORT !== undefined) {
    try {
      parseTrustedSources(c.KF_MQTT_PROXY_FROM);
    } catch (err) {
      throw new ConfigError('KF_MQTT_PROXY_FROM', (err as Error).message);
    }
  }
  return {
    bind: c.KF_BIND,
    mqttPort: c.KF_MQTT_PORT === 'off' ? null : c.KF_MQTT_PORT,
    mqttsPort: c.KF_MQTTS_PORT ?? (c.KF_TLS_CERT !== undefined ? 8883 : undefined),
    mqttProxy: c.KF_MQTT_PROXY_PORT !== undefined ? { port: c.KF_MQTT_PROXY_PORT, from: c.KF_MQTT_PROXY_FROM } : undefined,
    httpPort: c.KF_HTTP_PORT,
    dataDir: path.resolve(c.KF_DATA_DIR),
    database,
    adminToken: c.KF_ADMIN_TOKEN,
    adminPassword: c.KF_ADMIN_PASSWORD,
    releaseKeys: c.KF_RELEASE_KEYS,
    publicUrl: c.KF_PUBLIC_URL,
    tlsCert: c.KF_TLS_CERT,
    tlsKey: c.KF_TLS_KEY,
    retentionDays: c.KF_RETENTION_DAYS,
    maxPayload: c.KF_MAX_PAYLOAD,
    timezone: c.KF_TIMEZONE,
    demo: c.KF_DEMO,
    logLevel: c.KF_LOG_LEVEL,
    dashboardDir: c.KF_DASHBOARD_DIR ?? path.join(HUB_PACKAGE_DIR, '..', 'dashboard', 'dist'),
    ingest: { batchSize: 1000, flushMs: 5, queueLimit: 20_000 },
    presence: { staleCheckMs: 5000, flapTransitions: 6, flapWindowMs: 10 * 60_000 },
    maintenanceMs: 10 * 60_000,
    configSweep: { everyMs: 1000, terminals: 2000 },
    alerts: { evaluateMs: c.KF_ALERT_EVALUATE_MS, startGraceMs: c.KF_ALERT_START_GRACE_MS, webhookBackoffMs: c.KF_ALERT_WEBHOOK_BACKOFF_MS },
    quota: {
      streams: Object.fromEntries(
        QUOTA_STREAMS.map((k) => [k, { rate: c[`KF_QUOTA_${QUOTA_ENV[k]}_RATE`], burst: c[`KF_QUOTA_${QUOTA_ENV[k]}_BURST`] }]),
      ) as QuotaOptions['streams'],
      eventsPerDay: c.KF_QUOTA_EVENTS_PER_DAY,
      floodQuietMs: 60_000,
    },
    takeover: { holdOffMs: c.KF_TAKEOVER_HOLD_OFF_S * 1000 },
    // with the plain listener off (TLS only), the MQTTS port names the hub on its host instead
    hubId: c.KF_HUB_ID ?? `${os.hostname()}:${c.KF_MQTT_PORT === 'off' ? (c.KF_MQTTS_PORT ?? 8883) : c.KF_MQTT_PORT}`,
    hubs: { leaseMs: c.KF_HUB_LEASE_MS },
    ...overrides,
  };
}

/** `--mqtt-port=0` → `KF_MQTT_PORT=0`: flags mirror the env names. */
export function flagsToEnv(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!m) throw new ConfigError(arg, 'flags look like --mqtt-port=1883');
    out[`KF_${m[1]!.replaceAll('-', '_').toUpperCase()}`] = m[2]!;
  }
  return out;
}
