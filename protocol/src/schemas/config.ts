/**
 * The terminal config: what the hub pushes on `config/desired`, set in layers city → district → station →
 * terminal (the hub merges them; see hub's config service). Every key is optional in a layer; the agent fills
 * what no layer sets from its env defaults. Unknown keys are refused (`strict`): an operator's typo must fail the
 * save with the path of the bad key, not be ignored in the field.
 */
import * as z from 'zod';
import { PERIPHERAL_IDS, SERVICE_IDS } from '../catalog.ts';
import { text } from './common.ts';

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'time: HH:MM, 00:00-23:59');
/** A span of local time (the bureau's zone); `to` before `from` crosses midnight. */
const span = z.object({ from: hhmm, to: hhmm }).strict();
/** Per weekday (mon..sun), a list of spans; an empty list means closed that day. */
const weekly = z
  .object({
    mon: z.array(span).max(4),
    tue: z.array(span).max(4),
    wed: z.array(span).max(4),
    thu: z.array(span).max(4),
    fri: z.array(span).max(4),
    sat: z.array(span).max(4),
    sun: z.array(span).max(4),
  })
  .partial()
  .strict();

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/**
 * A probe's name in a terminal's probe catalog (agent/README.md, "Probe catalog"). Never a path: the catalog on the
 * terminal maps it to the program, so whoever writes config can choose among the terminal's probes, not add one.
 */
export const PROBE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const probeName = z.string().regex(PROBE_NAME, 'probe: a probe name of the terminal\'s catalog (a-z 0-9 . _ -, at most 64), not a path');

/** Why a config carrying a program is refused, at the hub's save and again on the terminal (issue 20, item 1). */
export const PROGRAM_REFUSED = 'config may name a probe ({"driver":"command","probe":"<name>"}), never carry a program: the argv lives in the terminal\'s probe catalog';

const driverSettings = z
  .object({
    driver: z.enum(['usb-presence', 'command', 'simulated']),
    /** usb-presence: `vvvv:pppp` hex ids. */
    usbId: z.string().regex(/^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$/).optional(),
    /** command: the name of a probe in the terminal's own catalog; without one the peripheral reads `unknown`. */
    probe: probeName.optional(),
    /**
     * Refused, with its own message: configs from before issue 20 carried argv here, and pushed config ran it as
     * root on every terminal below the layer.
     */
    command: z.never({ error: PROGRAM_REFUSED }).optional(),
    timeoutMs: z.int().min(100).max(120_000).optional(),
  })
  .strict();

/**
 * A copy of a config (or a layer) without the argv that configs saved before issue 20 carried in
 * `peripherals.<id>.command`, and the dotted paths removed. The hub runs it over stored layers and desired configs at
 * start, the agent over its stored applied config; the peripheral keeps its driver and reads `unknown` until a probe
 * is named.
 */
export function stripPrograms<T>(config: T): { config: T; removed: string[] } {
  const removed: string[] = [];
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return { config, removed };
  const peripherals = (config as Record<string, unknown>).peripherals;
  if (typeof peripherals !== 'object' || peripherals === null || Array.isArray(peripherals)) return { config, removed };
  const out: Record<string, unknown> = {};
  for (const [id, s] of Object.entries(peripherals)) {
    if (typeof s === 'object' && s !== null && !Array.isArray(s) && Object.hasOwn(s, 'command')) {
      const { command: _dropped, ...rest } = s as Record<string, unknown>;
      removed.push(`peripherals.${id}.command`);
      out[id] = rest;
    } else out[id] = s;
  }
  return removed.length === 0 ? { config, removed } : { config: { ...config, peripherals: out } as T, removed };
}

const minutes = z.number().min(0).max(7 * 24 * 60);

export const alertThresholdsSchema = z
  .object({
    offlineMinutes: minutes,
    peripheralFaultMinutes: minutes,
    diskPercent: z.number().min(1).max(100),
    temperatureC: z.number().min(0).max(150),
    driftMinutes: minutes,
    flapping: z.object({ transitions: z.int().min(2).max(1000), windowMinutes: minutes }).strict(),
  })
  .partial()
  .strict();

export const alertSlaSchema = z
  .object({
    /** Minutes until an unacknowledged alert of this severity escalates to the district admin. */
    critical: minutes,
    major: minutes,
    minor: minutes,
  })
  .partial()
  .strict();

export const terminalConfigSchema = z
  .object({
    /** Seconds between telemetry samples. */
    telemetryInterval: z.int().min(5).max(3600),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
    openingHours: weekly,
    maintenanceWindow: weekly,
    /** Which of the type's citizen services the kiosk app offers; omitted: all of them. */
    servicesEnabled: z.array(z.enum(SERVICE_IDS)).max(SERVICE_IDS.length),
    announcement: z.object({ zh: text, en: text }).strict().nullable(),
    peripherals: z.partialRecord(z.enum(PERIPHERAL_IDS), driverSettings),
    updatePolicy: z
      .object({
        /** Install only inside the maintenance window (unless a rollout is urgent). */
        windowOnly: z.boolean(),
        /** Seconds the new version has to pass its health check. */
        healthCheckSeconds: z.int().min(10).max(3600),
      })
      .partial()
      .strict(),
    alerts: z.object({ thresholds: alertThresholdsSchema, sla: alertSlaSchema }).partial().strict(),
  })
  .partial()
  .strict();
export type TerminalConfig = z.infer<typeof terminalConfigSchema>;
