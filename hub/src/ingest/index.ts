/**
 * Ingest: a validated terminal → hub message becomes a job of the batch writer. The returned promise settles when
 * the batch holding it committed; the broker's authorizePublish waits for it, so a PUBACK means committed.
 */
import type { PayloadOf, StreamKind, TopicKind } from '@kiosk-fleet/protocol';
import type { Metrics } from '../metrics.ts';
import type { PresenceService } from '../presence/service.ts';
import type { IngestStore, StreamRef } from './store.sqlite.ts';
import { ingestCommandResult } from './command-result.ts';
import { ingestConfigReported } from './config-reported.ts';
import { ingestEvent } from './events.ts';
import type { IngestQuota } from './quota.ts';
import { ingestTelemetry } from './telemetry.ts';
import { ingestUpdateStatus } from './update-status.ts';
import type { BatchWriter } from './writer.ts';

/** A terminal clock ahead of the hub's by more than this is flagged. */
export const CLOCK_SKEW_MS = 60_000;
/**
 * Behind is normal for an outbox replay after an outage, but not by this much: the agent's outbox is bounded and a
 * month-long outage replayed in full is implausible, while a dead RTC (1970, the firmware's build date) is common.
 */
export const CLOCK_BEHIND_MS = 30 * 86_400_000;

export type UpKind = 'presence' | StreamKind;

export class Ingest {
  constructor(
    private readonly store: IngestStore,
    private readonly writer: BatchWriter,
    private readonly presence: PresenceService,
    private readonly metrics: Metrics,
    /** Per-terminal quotas (the daily event cap is checked here; the rate limits in the broker). */
    private readonly quota?: IngestQuota,
  ) {}

  handle<K extends UpKind>(terminalId: string, kind: K, value: PayloadOf<K & TopicKind>, receivedAt = Date.now()): Promise<void> {
    return this.writer.enqueue((tx) => {
      const st = this.store.ensureState(terminalId);
      if (kind === 'presence') {
        this.presence.presenceMessage(tx, terminalId, value as PayloadOf<'presence'>, receivedAt);
        this.metrics.messagesIn.inc({ kind });
        return;
      }
      const v = value as { epoch: string; seq: number; ts: string };
      const ts = Date.parse(v.ts);
      const r: StreamRef = { terminalId, epoch: v.epoch, seq: v.seq, ts, receivedAt, skewed: ts > receivedAt + CLOCK_SKEW_MS || ts < receivedAt - CLOCK_BEHIND_MS };
      let fresh: boolean;
      switch (kind as StreamKind) {
        case 'telemetry':
          fresh = ingestTelemetry(this.store, tx, r, value as PayloadOf<'telemetry'>, st);
          break;
        case 'events':
          if (this.quota && !this.quota.eventRoom(terminalId, receivedAt, (since) => this.store.s.eventsReceivedSince.get(terminalId, since) as number)) {
            // over today's cap: acknowledged, not stored (counted by the quota); still a sign of life
            this.presence.activity(tx, terminalId, st, receivedAt);
            return;
          }
          fresh = ingestEvent(this.store, tx, r, value as PayloadOf<'events'>);
          if (fresh) this.quota?.eventStored(terminalId, receivedAt);
          break;
        case 'config/reported':
          fresh = ingestConfigReported(this.store, tx, r, value as PayloadOf<'config/reported'>);
          break;
        case 'commands/result':
          fresh = ingestCommandResult(this.store, tx, r, value as PayloadOf<'commands/result'>);
          break;
        case 'update/status':
          fresh = ingestUpdateStatus(this.store, tx, r, value as PayloadOf<'update/status'>);
          break;
      }
      this.presence.activity(tx, terminalId, st, receivedAt);
      if (fresh) this.metrics.messagesIn.inc({ kind });
      else this.metrics.duplicates.inc({ kind });
    });
  }
}
