/**
 * The payload of every topic. One schema per topic kind; `payloadSchemas[kind]` is what the hub parses at the
 * boundary and what the agent validates before writing to its outbox.
 *
 * Objects strip unknown keys (zod's default) so that a newer agent adding an optional field keeps working against
 * an older hub; the terminal config is the exception (`.strict()` in config.ts) since an operator's typo must be
 * refused, not ignored.
 */
import * as z from 'zod';
import { PERIPHERAL_IDS } from '../catalog.ts';
import { terminalIdSchema } from '../ids.ts';
import type { TopicKind } from '../topics.ts';
import {
  code,
  isoTime,
  jsonRecord,
  peripheralStatus,
  requestId,
  schemaVersion,
  seq,
  streamHeader,
  SUPPORTED_SCHEMA_VERSIONS,
  text,
  version,
} from './common.ts';
import { terminalConfigSchema } from './config.ts';
import { fastTelemetry } from './telemetry-fast.ts';

const count = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const bytes = z.number().min(0).max(2 ** 53);

// ---------------------------------------------------------------- presence (retained, with the last will)

export const EXIT_CAUSES = ['clean', 'crash', 'power-loss', 'unknown', 'first-start'] as const;

export const presenceSchema = z.object({
  v: schemaVersion,
  state: z.enum(['online', 'offline']),
  /** Random per agent process start; a new boot id with a short uptime means the terminal rebooted. */
  bootId: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
  /** Connections made by this boot, from 1: a will whose (bootId, connSeq) is not the latest is stale. */
  connSeq: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  ts: isoTime,
  /** Why it went offline (offline only): `clean` on a graceful stop; the will says `connection-lost`. */
  reason: z.enum(['clean', 'connection-lost']).optional(),
  agentVersion: version,
  appVersion: version.optional(),
  /** Seconds the host has been up; with a new boot id, a short uptime means power loss or reboot. */
  uptime: z.number().min(0).max(10 * 365 * 86400).optional(),
  /** The telemetry interval in seconds this terminal reports at (the hub marks it stale after 3 missed). */
  interval: z.number().min(1).max(86400),
  /** Why the previous agent run ended, as the agent recorded it on start. */
  lastExit: z.object({ cause: z.enum(EXIT_CAUSES), at: isoTime.optional() }).optional(),
});
export type Presence = z.infer<typeof presenceSchema>;

// ---------------------------------------------------------------- telemetry

export const peripheralSampleSchema = z.object({
  status: peripheralStatus,
  code: code.optional(),
  message: text.optional(),
  /** Card reader (and other readers): reads and failed reads since the last sample. */
  reads: count.optional(),
  failedReads: count.optional(),
});
export type PeripheralSample = z.infer<typeof peripheralSampleSchema>;

const peripheralKey = z.string().regex(/^[A-Za-z][A-Za-z0-9]{0,31}$/);

export const telemetrySchema = z.object({
  ...streamHeader,
  host: z.object({
    /** Percent of all cores, 0-100. */
    cpu: z.number().min(0).max(100),
    memUsed: bytes,
    memTotal: bytes,
    diskUsed: bytes,
    diskTotal: bytes,
    /** Degrees Celsius; null when the machine has no sensor. */
    tempC: z.number().min(-60).max(200).nullable(),
    /** Seconds. */
    uptime: z.number().min(0).max(10 * 365 * 86400),
    net: z.array(z.object({ iface: z.string().max(32), up: z.boolean() })).max(16).optional(),
  }),
  /** Keyed by peripheral id (see the catalog); unknown ids are allowed so new hardware needs no hub release. */
  peripherals: z.record(peripheralKey, peripheralSampleSchema),
  app: z
    .object({
      up: z.boolean(),
      version: version.optional(),
      sessionActive: z.boolean(),
      /** Since the last sample. */
      transactionsOk: count,
      transactionsFailed: count,
    })
    .optional(),
  /** Messages the outbox dropped to stay within its bound, since it last reported (reported once). */
  dropped: z.object({ telemetry: count, events: count }).optional(),
});
export type Telemetry = z.infer<typeof telemetrySchema>;

// ---------------------------------------------------------------- events

export const EVENT_KINDS = [
  'peripheral.fault',
  'peripheral.recovered',
  'paper.low',
  'paper.out',
  'door.open',
  'door.closed',
  'app.crash',
  'app.down',
  'app.up',
  'agent.start',
  'outbox.dropped',
  'transaction.failed',
] as const;

export const eventSchema = z.object({
  ...streamHeader,
  kind: z.enum(EVENT_KINDS),
  severity: z.enum(['info', 'warning', 'critical']),
  peripheral: z.enum(PERIPHERAL_IDS).optional(),
  code: code.optional(),
  message: text.optional(),
  data: jsonRecord.optional(),
});
export type TerminalEvent = z.infer<typeof eventSchema>;

// ---------------------------------------------------------------- config

export const configDesiredSchema = z.object({
  v: schemaVersion,
  /** Monotonic per terminal; the agent applies only a higher version than it has. */
  version: z.int().min(1),
  config: terminalConfigSchema,
});
export type ConfigDesired = z.infer<typeof configDesiredSchema>;

export const configReportedSchema = z.object({
  ...streamHeader,
  version: z.int().min(0),
  status: z.enum(['applied', 'rejected']),
  reason: text.optional(),
});
export type ConfigReported = z.infer<typeof configReportedSchema>;

// ---------------------------------------------------------------- commands

export const COMMAND_NAMES = ['ping', 'self-test', 'collect-logs', 'restart-app', 'restart-agent', 'reboot'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

/**
 * The envelope a terminal receives. `name` is any string here so that an agent can answer an unknown command with
 * an error result (instead of the message failing the schema); `commandArgsSchemas` checks the known ones.
 */
export const commandSchema = z.object({
  v: schemaVersion,
  id: requestId,
  name: z.string().min(1).max(64),
  args: jsonRecord,
  issuedAt: isoTime,
  expiresAt: isoTime,
});
export type Command = z.infer<typeof commandSchema>;

export const commandArgsSchemas = {
  ping: z.object({}).strict(),
  'self-test': z.object({}).strict(),
  'collect-logs': z.object({ lines: z.int().min(1).max(10_000).default(200) }).strict(),
  'restart-app': z.object({ force: z.boolean().default(false) }).strict(),
  'restart-agent': z.object({}).strict(),
  reboot: z.object({}).strict(),
} as const satisfies Record<CommandName, z.ZodType>;

export const commandResultSchema = z.object({
  ...streamHeader,
  id: requestId,
  status: z.enum(['ok', 'error', 'expired']),
  result: jsonRecord.optional(),
  error: z.object({ code, message: text }).optional(),
});
export type CommandResult = z.infer<typeof commandResultSchema>;

/**
 * What an agent's `self-test` command returns as `result`: the peripherals checked now and which are not ok. The hub
 * reads it to say on an alert which peripherals failed; other keys (host, app) are shown as they come.
 */
export const selfTestResultSchema = z.looseObject({
  passed: z.boolean(),
  failing: z.array(z.string().max(32)).max(64),
  peripherals: z.record(z.string().max(32), peripheralSampleSchema),
});
export type SelfTestResult = z.infer<typeof selfTestResultSchema>;

// ---------------------------------------------------------------- updates

export const RELEASE_KINDS = ['app', 'agent'] as const;

export const updateTargetSchema = z.object({
  v: schemaVersion,
  /** null: nothing to install (a rollout aborted or finished). */
  release: z
    .object({
      id: z.string().min(1).max(128),
      kind: z.enum(RELEASE_KINDS),
      version,
      url: z.string().url().max(2048),
      size: z.int().min(0),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      /** The signed manifest (base64 of its JSON bytes) and its Ed25519 signature (base64). */
      manifest: z.string().max(8192),
      signature: z.string().max(512),
    })
    .nullable(),
  rolloutId: z.string().max(128).optional(),
  /** Short-lived token for the artifact download. */
  token: z.string().max(512).optional(),
  tokenExpiresAt: isoTime.optional(),
  /** Install outside the maintenance window. */
  urgent: z.boolean().default(false),
});
export type UpdateTarget = z.infer<typeof updateTargetSchema>;

export const UPDATE_STATES = [
  'idle',
  'downloading',
  'verifying',
  'waiting',
  'installing',
  'switching',
  'restarting',
  'health-check',
  'committed',
  'rolling-back',
  'failed',
] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

export const updateStatusSchema = z.object({
  ...streamHeader,
  rolloutId: z.string().max(128).optional(),
  releaseId: z.string().max(128).optional(),
  version: version.optional(),
  state: z.enum(UPDATE_STATES),
  /** 0-1 within the state (download progress). */
  progress: z.number().min(0).max(1).optional(),
  error: z.object({ code, message: text }).optional(),
});
export type UpdateStatus = z.infer<typeof updateStatusSchema>;

// ---------------------------------------------------------------- the table

export const payloadSchemas = {
  presence: presenceSchema,
  telemetry: telemetrySchema,
  events: eventSchema,
  'config/desired': configDesiredSchema,
  'config/reported': configReportedSchema,
  commands: commandSchema,
  'commands/result': commandResultSchema,
  'update/target': updateTargetSchema,
  'update/status': updateStatusSchema,
} as const satisfies Record<TopicKind, z.ZodType>;

export type PayloadOf<K extends TopicKind> = z.infer<(typeof payloadSchemas)[K]>;

export type ParsePayloadResult<K extends TopicKind> =
  | { ok: true; value: PayloadOf<K> }
  | { ok: false; reason: 'invalid-json' | 'unsupported-version' | 'schema'; message: string };

/**
 * Parse a raw MQTT payload for `kind`: JSON first, then the schema version, then the schema. The reason is a fixed
 * label (for metrics); the message names the failing path.
 */
export function parsePayload<K extends TopicKind>(kind: K, raw: Buffer | Uint8Array | string): ParsePayloadResult<K> {
  let json: unknown;
  // A view, not a copy, of the bytes (Buffer.from(buffer) would copy them).
  const text = typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8');
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: 'invalid-json', message: (err as Error).message };
  }
  // PostgreSQL stores no U+0000 in text (22021): such a message would fail its whole write batch, and again at every
  // resend. JSON carries it only escaped (a raw one is invalid JSON), so the text is searched first, the value only then.
  if (text.includes('\\u0000')) {
    const at = nulPath(json);
    if (at !== null) return { ok: false, reason: 'schema', message: `${at}: text with a NUL character (U+0000), which is not stored` };
  }
  const v = (json as { v?: unknown } | null)?.v;
  if (typeof json !== 'object' || json === null || !SUPPORTED_V.has(v)) {
    return { ok: false, reason: 'unsupported-version', message: `schema version ${JSON.stringify(v)} not supported` };
  }
  // Telemetry, the hub's hot path, is checked by hand first; whatever that cannot vouch for goes to zod.
  if (kind === 'telemetry') {
    const fast = fastTelemetry(json);
    if (fast !== undefined) return { ok: true, value: fast as PayloadOf<K> };
  }
  const result = payloadSchemas[kind].safeParse(json);
  if (!result.success) return { ok: false, reason: 'schema', message: z.prettifyError(result.error) };
  return { ok: true, value: result.data as PayloadOf<K> };
}

const SUPPORTED_V = new Set<unknown>(SUPPORTED_SCHEMA_VERSIONS);

/** The path of the first key or string holding U+0000 ('(root)' for the value itself), null when none does. */
function nulPath(value: unknown): string | null {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [v, at] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return at || '(root)';
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        const path = at ? `${at}.${k}` : k;
        if (k.includes('\u0000')) return path;
        stack.push([child, path]);
      }
    }
  }
  return null;
}

// The terminal id appears in topics only, never in payloads (the topic is authoritative); re-exported for callers.
export { terminalIdSchema, seq as seqSchema };
