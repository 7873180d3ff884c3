/**
 * Ingest: a validated terminal → hub message becomes a job of the batch writer. The returned promise settles when
 * the batch holding it committed; the broker's authorizePublish waits for it, so a PUBACK means committed.
 */
import type { PayloadOf, StreamKind, TopicKind } from '@kiosk-fleet/protocol';
import type { Metrics } from '../metrics.ts';
import type { PresenceService } from '../presence/service.ts';
import type { IngestStore, StreamRef } from './store.ts';
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
    if (kind === 'events' && this.quota) {
      // the terminal's first event today (here): how many it stored today is read before its job, once
      const day = this.quota.dayToCount(terminalId, receivedAt);
      if (day !== null) return this.store.eventsReceivedSince(terminalId, day).then((n) => this.write(terminalId, kind, value, receivedAt, n));
    }
    return this.write(terminalId, kind, value, receivedAt, 0);
  }

  private write<K extends UpKind>(terminalId: string, kind: K, value: PayloadOf<K & TopicKind>, receivedAt: number, storedToday: number): Promise<void> {
    return this.writer.enqueue({
      terminalId,
      run: (tx) => {
        const st = this.store.ensureState(terminalId);
        if (kind === 'presence') {
          this.presence.presenceMessage(tx, terminalId, value as PayloadOf<'presence'>, receivedAt);
          this.metrics.messagesIn.inc({ kind });
          return;
        }
        const v = value as { epoch: string; seq: number; ts: string };
        const ts = Date.parse(v.ts);
        const r: StreamRef = { terminalId, epoch: v.epoch, seq: v.seq, ts, receivedAt, skewed: ts > receivedAt + CLOCK_SKEW_MS || ts < receivedAt - CLOCK_BEHIND_MS };
        const done = (fresh: boolean) => {
          if (fresh) this.metrics.messagesIn.inc({ kind });
          else this.metrics.duplicates.inc({ kind });
        };
        switch (kind as StreamKind) {
          case 'telemetry':
            ingestTelemetry(this.store, tx, r, value as PayloadOf<'telemetry'>, st, done);
            break;
          case 'events':
            if (this.quota && !this.quota.eventRoom(terminalId, receivedAt, () => storedToday)) {
              // over today's cap: acknowledged, not stored (counted by the quota); still a sign of life
              this.presence.activity(tx, terminalId, st, receivedAt);
              return;
            }
            ingestEvent(this.store, tx, r, value as PayloadOf<'events'>, (fresh) => {
              if (fresh) this.quota?.eventStored(terminalId, receivedAt);
              done(fresh);
            });
            break;
          case 'config/reported':
            ingestConfigReported(this.store, tx, r, value as PayloadOf<'config/reported'>, done);
            break;
          case 'commands/result':
            ingestCommandResult(this.store, tx, r, value as PayloadOf<'commands/result'>, done);
            break;
          case 'update/status':
            ingestUpdateStatus(this.store, tx, r, value as PayloadOf<'update/status'>, done);
            break;
        }
        this.presence.activity(tx, terminalId, st, receivedAt);
      },
    });
  }
}
