/** Building blocks shared by the payload schemas. */
import * as z from 'zod';
import { PERIPHERAL_STATUSES } from '../catalog.ts';

/**
 * The payload schema version this protocol package writes. The hub accepts every version in
 * `SUPPORTED_SCHEMA_VERSIONS` (the current one and, once there is one, the one before), so agents in the field keep
 * working against a newer hub for at least one version. See protocol/README.md, "Evolving the schema".
 */
export const SCHEMA_VERSION = 1;
export const SUPPORTED_SCHEMA_VERSIONS = [1] as const;
export const schemaVersion = z.literal(SUPPORTED_SCHEMA_VERSIONS);

/** Free text that reaches a person (messages, reasons): bounded so one terminal cannot bloat the database. */
export const MAX_TEXT = 512;
export const text = z.string().max(MAX_TEXT);
/** Short machine codes: error codes, versions, reasons. */
export const code = z.string().min(1).max(64);
export const version = z.string().min(1).max(64);

/** ISO 8601 with a zone (`Z` or an offset). Terminal clocks are accepted whatever they say (flagged, not rejected). */
export const isoTime = z.iso.datetime({ offset: true });

/** A random id of the on-disk outbox; a new outbox (re-imaged terminal, wiped data) gets a new epoch. */
export const epoch = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'epoch: 8-64 of A-Z a-z 0-9 _ -');
/** Contiguous from 1 within an epoch, one counter per stream. */
export const seq = z.int().min(1).max(Number.MAX_SAFE_INTEGER);

/** The fields every sequenced terminal → hub message carries. */
export const streamHeader = {
  v: schemaVersion,
  epoch,
  seq,
  /** The terminal's clock when the message was made. */
  ts: isoTime,
};

export const peripheralStatus = z.enum(PERIPHERAL_STATUSES);

/** A command or request id (UUID or similar). */
export const requestId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'id: 1-64 of A-Z a-z 0-9 _ -');

/** How deep a free-form JSON bag may nest. Size is bounded by KF_MAX_PAYLOAD at the broker, depth is not: a
 * 40 KB payload nested 20,000 levels passed the schema and then overflowed the stack when re-serialised, so the
 * hub could neither store nor acknowledge it and the agent resent it forever (finding F11-9). */
export const MAX_JSON_DEPTH = 16;

/** The nesting depth of a JSON value, counted without recursion (a hostile value must not blow the stack here). */
export function jsonDepth(value: unknown, limit = Infinity): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const depth = d + 1;
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth]);
  }
  return deepest;
}

/** Bounded JSON bag for arguments, results and event data: string keys, at most MAX_JSON_DEPTH levels. */
export const jsonRecord = z
  .record(z.string().max(64), z.unknown())
  .refine((v) => jsonDepth(v, MAX_JSON_DEPTH) <= MAX_JSON_DEPTH, { message: `nested deeper than ${MAX_JSON_DEPTH} levels` });
