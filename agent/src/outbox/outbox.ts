/**
 * The outbox: every terminal → hub message that must not be lost is written here first, with its stream's seq and
 * the outbox epoch, and deleted only when the broker acknowledged it (PUBACK).
 *
 * Invariants every implementation keeps:
 * - seq is per stream, contiguous from 1 within an epoch; a message that fails its protocol schema is refused
 *   before it takes a seq, so the agent never sends what the hub would reject and never leaves a gap itself.
 * - `pending()` returns messages in the order they were appended (across streams), so replay keeps order.
 * - The outbox stays within its bound (bytes and age): it drops the oldest telemetry first, then other streams,
 *   events last, and counts what it dropped until `takeDropped()` reports it.
 */
import { randomBytes } from 'node:crypto';
import { payloadSchemas, SCHEMA_VERSION, type PayloadOf, type StreamKind } from '@kiosk-fleet/protocol';
import * as z from 'zod';

export interface OutboxEntry {
  /** Append order; unique within the outbox. */
  id: number;
  kind: StreamKind;
  seq: number;
  payload: string;
  createdAt: number;
}

export interface DroppedCounts {
  telemetry: number;
  /** Events and the other discrete streams (results, config reports, update status). */
  events: number;
}

/** What the caller supplies; the outbox adds v, epoch, seq and ts. */
export type StreamBody<K extends StreamKind> = Omit<PayloadOf<K>, 'v' | 'epoch' | 'seq' | 'ts'>;

export interface OutboxLimits {
  maxBytes: number;
  maxAgeMs: number;
}

export interface Outbox {
  readonly epoch: string;
  /** Validate, number and store a message; throws OutboxRejectError when it fails its schema. */
  append<K extends StreamKind>(kind: K, body: StreamBody<K>, now?: Date): OutboxEntry;
  /** Up to `limit` messages after `afterId`, in append order. */
  pending(afterId: number, limit: number): OutboxEntry[];
  /** The broker acknowledged it: forget it. Unknown ids are ignored (an ack can arrive after a drop). */
  ack(id: number): void;
  stats(): { count: number; bytes: number };
  /** Dropped since the last call, and reset to zero. */
  takeDropped(): DroppedCounts;
  /** Record a command id; false when it was seen already (a redelivery must not run twice). */
  markCommandSeen(id: string, now?: number): boolean;
  close(): void;
}

export class OutboxRejectError extends Error {
  override name = 'OutboxRejectError';
  constructor(
    readonly kind: StreamKind,
    message: string,
  ) {
    super(`outbox refused a ${kind} message: ${message}`);
  }
}

export function newEpoch(): string {
  return randomBytes(12).toString('base64url');
}

/** The full payload as JSON, or OutboxRejectError; runs before a seq is taken. */
export function buildPayload<K extends StreamKind>(kind: K, body: StreamBody<K>, epoch: string, seq: number, now: Date): string {
  const full = { ...body, v: SCHEMA_VERSION, epoch, seq, ts: now.toISOString() };
  const result = payloadSchemas[kind].safeParse(full);
  if (!result.success) throw new OutboxRejectError(kind, z.prettifyError(result.error));
  return JSON.stringify(result.data);
}

/** Drop order when over the bound: telemetry first, events last. */
export const DROP_ORDER: readonly (readonly StreamKind[])[] = [
  ['telemetry'],
  ['update/status', 'config/reported', 'commands/result'],
  ['events'],
];

export function countDropped(counts: DroppedCounts, kind: StreamKind, n = 1): void {
  if (kind === 'telemetry') counts.telemetry += n;
  else counts.events += n;
}

/** How long a seen command id is remembered: longer than any command lives before it expires. */
export const COMMAND_MEMORY_MS = 7 * 24 * 3600 * 1000;
