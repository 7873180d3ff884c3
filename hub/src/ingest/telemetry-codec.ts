/**
 * The compact telemetry row (issue 10: under 150 bytes a sample with its index; it was 447 as JSON text with text
 * ids). A sample is stored as small numbers:
 *
 * - `epoch_id`: the terminal's outbox epoch as an integer key (`telemetry_epochs`), instead of the terminal id and
 *   epoch text in the row and in both indexes. The table is clustered on (epoch_id, ts, seq) (WITHOUT ROWID), so one
 *   terminal's chart reads one range; `telemetry_once` (epoch_id, seq) keeps every sample stored once.
 * - host figures in REAL columns, scaled so that the usual values are whole numbers, which SQLite writes as 1-4 byte
 *   integers: cpu × 100, temperature × 10, memory and disk in KiB (a power-of-two division, exact).
 * - peripheral statuses as one integer, 3 bits per peripheral of PERIPHERAL_CODES (0 = not in the sample); the ID
 *   card reader's read counters as two integer columns; anything else a peripheral carried (code, message, other
 *   counters, a peripheral the catalog does not know) as a short JSON array, NULL when there is none.
 * - the app's flags as one integer, its counters as integers, services as a bitmask over SERVICE_CODES.
 *
 * Measured with `pnpm bench storage` (the protocol's example sample, a degraded printer with code and message in
 * every sample): see the commit that introduced this file.
 *
 * PERIPHERAL_CODES and SERVICE_CODES are the on-disk encoding: append new ids, never reorder or remove (a test
 * pins them). An id missing from them still round-trips (peripherals through the JSON note; services are the
 * catalog's, and the test requires each to be listed).
 */
import { PERIPHERAL_STATUSES, type PeripheralSample, type PeripheralStatus, type Telemetry } from '@kiosk-fleet/protocol';

export const PERIPHERAL_CODES = [
  'idCardReader',
  'fingerprintScanner',
  'camera',
  'receiptPrinter',
  'a4Printer',
  'touchscreen',
  'documentScanner',
  'paymentTerminal',
  'qrScanner',
  'travelDocReader',
  'visionTester',
] as const;

export const SERVICE_CODES = [
  'id-card-application',
  'id-card-collection',
  'exit-entry-endorsement',
  'driving-licence-renewal',
  'household-certificate',
  'residence-permit',
  'traffic-fine-payment',
  'document-submission',
  'progress-inquiry',
  'appointment-check-in',
] as const;

/** Status code 1-5 in PERIPHERAL_STATUSES order (ok, degraded, fault, absent, unknown); 0 = absent from the sample. */
const STATUS_CODE = new Map<string, number>(PERIPHERAL_STATUSES.map((s, i) => [s, i + 1]));
const PERIPHERAL_INDEX = new Map<string, number>(PERIPHERAL_CODES.map((p, i) => [p, i]));
const SERVICE_INDEX = new Map<string, number>(SERVICE_CODES.map((s, i) => [s, i]));
/** The card reader's counters have their own columns (every agent sample carries them). */
const CARD_READER = 0;

export const CPU_SCALE = 100;
export const TEMP_SCALE = 10;
export const BYTES_SCALE = 1 / 1024;

/**
 * `v × k`, snapped to the whole number it is meant to be (12.34 × 100 is 1233.9999999999998 in binary floating
 * point): stored as an integer then, and `stored / k` gives back the same double. Other values stay as they are,
 * and read back within one unit in the last place.
 */
export function scaled(v: number, k: number): number {
  const x = v * k;
  const r = Math.round(x);
  return Math.abs(x - r) <= 1e-9 * Math.max(1, Math.abs(x)) ? r : x;
}

/** The column values of one sample after the key columns (epoch_id, ts, seq, recv_delay, skewed), in INSERT order. */
export const SAMPLE_COLUMNS =
  'cpu, mem_used, mem_total, disk_used, disk_total, temp, uptime, pstat, reads, failed_reads, pnote, app, tx_ok, tx_failed, app_version, services';

type Note = [string | number, ...(string | number | null)[]];

export function encodeSample(t: Telemetry, services: readonly string[] | null): unknown[] {
  const h = t.host;
  let pstat = 0;
  let reads: number | null = null;
  let failedReads: number | null = null;
  let notes: Note[] | null = null;
  for (const [id, p] of Object.entries(t.peripherals)) {
    const i = PERIPHERAL_INDEX.get(id);
    if (i === undefined) {
      (notes ??= []).push(note(id, p, p.reads, p.failedReads, p.status));
      continue;
    }
    pstat += STATUS_CODE.get(p.status)! * 8 ** i;
    if (i === CARD_READER) {
      reads = p.reads ?? null;
      failedReads = p.failedReads ?? null;
      if (p.code !== undefined || p.message !== undefined) (notes ??= []).push(note(i, p));
    } else if (p.code !== undefined || p.message !== undefined || p.reads !== undefined || p.failedReads !== undefined) {
      (notes ??= []).push(note(i, p, p.reads, p.failedReads));
    }
  }
  const a = t.app;
  return [
    scaled(h.cpu, CPU_SCALE),
    h.memUsed * BYTES_SCALE,
    h.memTotal * BYTES_SCALE,
    h.diskUsed * BYTES_SCALE,
    h.diskTotal * BYTES_SCALE,
    h.tempC === null ? null : scaled(h.tempC, TEMP_SCALE),
    h.uptime,
    pstat,
    reads,
    failedReads,
    notes ? JSON.stringify(notes) : null,
    a ? (a.up ? 1 : 0) + (a.sessionActive ? 2 : 0) : null,
    a ? a.transactionsOk : null,
    a ? a.transactionsFailed : null,
    a?.version ?? null,
    services === null ? null : serviceMask(services),
  ];
}

/** [peripheral (catalog index, or the id when the catalog has none), code, message, reads, failedReads, status] with trailing nulls cut. */
function note(p: string | number, s: PeripheralSample, reads?: number, failedReads?: number, status?: string): Note {
  const out: Note = [p, s.code ?? null, s.message ?? null, reads ?? null, failedReads ?? null, status ?? null];
  while (out.length > 1 && out[out.length - 1] === null) out.pop();
  return out;
}

export function serviceMask(services: readonly string[]): number {
  let m = 0;
  for (const s of services) {
    const i = SERVICE_INDEX.get(s);
    if (i !== undefined && Math.floor(m / 2 ** i) % 2 === 0) m += 2 ** i;
  }
  return m;
}

export function servicesOf(mask: number | null): string[] | null {
  if (mask === null) return null;
  const out: string[] = [];
  for (let i = 0; i < SERVICE_CODES.length; i++) if (Math.floor(mask / 2 ** i) % 2 === 1) out.push(SERVICE_CODES[i]!);
  return out;
}

export interface StoredPeripheral {
  status: PeripheralStatus;
  code?: string;
  message?: string;
  reads?: number;
  failedReads?: number;
}

/** Statuses only (rollups): peripheral id → status, from the status integer and the unknown peripherals in the note. */
export function statusesOf(pstat: number, pnote: string | null): Record<string, PeripheralStatus> {
  const out: Record<string, PeripheralStatus> = {};
  for (let i = 0, rest = pstat; rest > 0; i++, rest = Math.floor(rest / 8)) {
    const c = rest % 8;
    if (c !== 0) out[PERIPHERAL_CODES[i] ?? `#${i}`] = PERIPHERAL_STATUSES[c - 1]!;
  }
  if (pnote !== null) for (const n of JSON.parse(pnote) as Note[]) if (typeof n[0] === 'string') out[n[0]] = n[5] as PeripheralStatus;
  return out;
}

/** The sample's `peripherals` as the terminal sent them (key order: the catalog's, then unknown ids). */
export function peripheralsOf(pstat: number, reads: number | null, failedReads: number | null, pnote: string | null): Record<string, StoredPeripheral> {
  const out: Record<string, StoredPeripheral> = {};
  for (let i = 0, rest = pstat; rest > 0; i++, rest = Math.floor(rest / 8)) {
    const c = rest % 8;
    if (c === 0) continue;
    const p: StoredPeripheral = { status: PERIPHERAL_STATUSES[c - 1]! };
    if (i === CARD_READER) {
      if (reads !== null) p.reads = reads;
      if (failedReads !== null) p.failedReads = failedReads;
    }
    out[PERIPHERAL_CODES[i] ?? `#${i}`] = p;
  }
  if (pnote !== null) {
    for (const [k, code, message, r, f, status] of JSON.parse(pnote) as Note[]) {
      const id = typeof k === 'number' ? (PERIPHERAL_CODES[k] ?? `#${k}`) : k;
      const p = (out[id] ??= { status: (status ?? 'unknown') as PeripheralStatus });
      if (typeof code === 'string') p.code = code;
      if (typeof message === 'string') p.message = message;
      if (typeof r === 'number') p.reads = r;
      if (typeof f === 'number') p.failedReads = f;
    }
  }
  return out;
}

export interface StoredApp {
  up: boolean;
  version?: string;
  sessionActive: boolean;
  transactionsOk: number;
  transactionsFailed: number;
}

export function appOf(flags: number | null, ok: number | null, failed: number | null, version: string | null): StoredApp | null {
  if (flags === null) return null;
  return {
    up: flags % 2 === 1,
    ...(version !== null ? { version } : {}),
    sessionActive: Math.floor(flags / 2) % 2 === 1,
    transactionsOk: ok ?? 0,
    transactionsFailed: failed ?? 0,
  };
}

/** A stored row's columns (as `SELECT t.*` names them) the readers decode. */
export interface SampleRow {
  ts: number;
  seq: number;
  recv_delay: number;
  skewed: number;
  cpu: number;
  mem_used: number;
  mem_total: number;
  disk_used: number;
  disk_total: number;
  temp: number | null;
  uptime: number;
  pstat: number;
  reads: number | null;
  failed_reads: number | null;
  pnote: string | null;
  app: number | null;
  tx_ok: number | null;
  tx_failed: number | null;
  app_version: string | null;
  services: number | null;
}

export function hostOf(r: SampleRow) {
  return {
    cpu: r.cpu / CPU_SCALE,
    memUsed: r.mem_used / BYTES_SCALE,
    memTotal: r.mem_total / BYTES_SCALE,
    diskUsed: r.disk_used / BYTES_SCALE,
    diskTotal: r.disk_total / BYTES_SCALE,
    tempC: r.temp === null ? null : r.temp / TEMP_SCALE,
    uptime: r.uptime,
  };
}
