/**
 * The in-memory outbox of simulated terminals: same contract as the SQLite one (see outbox.ts), without the disk,
 * since one process cannot hold thousands of SQLite files. Kept across a simulated power loss, as a disk would be.
 */
import type { StreamKind } from '@kiosk-fleet/protocol';
import {
  buildPayload,
  COMMAND_MEMORY_MS,
  countDropped,
  DROP_ORDER,
  newEpoch,
  type DroppedCounts,
  type Outbox,
  type OutboxEntry,
  type OutboxLimits,
  type StreamBody,
} from './outbox.ts';

export class MemoryOutbox implements Outbox {
  readonly epoch = newEpoch();
  #entries: OutboxEntry[] = [];
  #bytes = 0;
  #nextId = 1;
  #seq = new Map<StreamKind, number>();
  #dropped: DroppedCounts = { telemetry: 0, events: 0 };
  #commands = new Map<string, number>();

  constructor(private readonly limits: OutboxLimits) {}

  append<K extends StreamKind>(kind: K, body: StreamBody<K>, now = new Date()): OutboxEntry {
    const seq = (this.#seq.get(kind) ?? 0) + 1;
    const payload = buildPayload(kind, body, this.epoch, seq, now);
    this.#seq.set(kind, seq);
    const entry: OutboxEntry = { id: this.#nextId++, kind, seq, payload, createdAt: now.getTime() };
    this.#entries.push(entry);
    this.#bytes += Buffer.byteLength(payload);
    this.#enforce(now.getTime());
    return entry;
  }

  pending(afterId: number, limit: number): OutboxEntry[] {
    const out: OutboxEntry[] = [];
    for (const e of this.#entries) {
      if (e.id <= afterId) continue;
      out.push(e);
      if (out.length >= limit) break;
    }
    return out;
  }

  ack(id: number): void {
    const i = this.#entries.findIndex((e) => e.id === id);
    if (i < 0) return;
    const [e] = this.#entries.splice(i, 1);
    if (e) this.#bytes -= Buffer.byteLength(e.payload);
  }

  stats(): { count: number; bytes: number } {
    return { count: this.#entries.length, bytes: this.#bytes };
  }

  takeDropped(): DroppedCounts {
    const d = this.#dropped;
    this.#dropped = { telemetry: 0, events: 0 };
    return d;
  }

  markCommandSeen(id: string, now = Date.now()): boolean {
    for (const [k, at] of this.#commands) {
      if (at >= now - COMMAND_MEMORY_MS) break;
      this.#commands.delete(k);
    }
    if (this.#commands.has(id)) return false;
    this.#commands.set(id, now);
    return true;
  }

  close(): void {}

  #enforce(now: number): void {
    const cutoff = now - this.limits.maxAgeMs;
    while (this.#entries[0] && this.#entries[0].createdAt < cutoff) this.#drop(0);
    for (const kinds of DROP_ORDER) {
      while (this.#bytes > this.limits.maxBytes) {
        const i = this.#entries.findIndex((e) => kinds.includes(e.kind));
        if (i < 0) break;
        this.#drop(i);
      }
    }
  }

  #drop(i: number): void {
    const [e] = this.#entries.splice(i, 1);
    if (!e) return;
    this.#bytes -= Buffer.byteLength(e.payload);
    countDropped(this.#dropped, e.kind);
  }
}
