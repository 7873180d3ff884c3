/**
 * Ingest: a validated terminal → hub message becomes a job of the batch writer. The returned promise settles when
 * the batch holding it committed; the broker's authorizePublish waits for it, so a PUBACK means committed.
 */
import type { PayloadOf, ServiceId, StreamKind, TopicKind } from '@kiosk-fleet/protocol';
import type { Metrics } from '../metrics.ts';
import type { PresenceService } from '../presence/service.ts';
import type { IngestStore, StateRow, Stored, StreamRef } from './store.ts';
import { commandResultStored, ingestCommandResult } from './command-result.ts';
import { configReportedStored, ingestConfigReported } from './config-reported.ts';
import { eventStored, ingestEvent } from './events.ts';
import type { IngestQuota } from './quota.ts';
import { ingestTelemetry, telemetryServices, telemetryStored } from './telemetry.ts';
import { ingestUpdateStatus, updateStatusStored } from './update-status.ts';
import type { BatchWriter, JobSpec, TxContext } from './writer.ts';

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
    readonly store: IngestStore,
    private readonly writer: BatchWriter,
    readonly presence: PresenceService,
    readonly metrics: Metrics,
    /** Per-terminal quotas (the daily event cap is checked here; the rate limits in the broker). */
    readonly quota?: IngestQuota,
  ) {}

  handle<K extends UpKind>(terminalId: string, kind: K, value: PayloadOf<K & TopicKind>, receivedAt = Date.now()): Promise<void> {
    if (kind === 'events' && this.quota) {
      // the terminal's first event today (here): how many it stored today is read before its job, once
      const day = this.quota.dayToCount(terminalId, receivedAt);
      if (day !== null) return this.store.eventsReceivedSince(terminalId, day).then((n) => this.writer.enqueue(new Message(this, terminalId, kind, value, receivedAt, n)));
    }
    return this.writer.enqueue(new Message(this, terminalId, kind, value, receivedAt, 0));
  }
}

/**
 * One message's writer job and the follow-up of its row (`stored`, once the store knows whether it was new): one
 * object per message rather than a closure for each step.
 */
class Message implements JobSpec, Stored {
  private tx: TxContext | null = null;
  private r: StreamRef | null = null;
  private st: StateRow | null = null;
  private services: readonly ServiceId[] = [];

  constructor(
    private readonly d: Ingest,
    readonly terminalId: string,
    private readonly kind: UpKind,
    private readonly value: unknown,
    private readonly receivedAt: number,
    /** Events the terminal stored today, read before the job when the quota asked for it. */
    private readonly storedToday: number,
  ) {}

  run(tx: TxContext): void {
    const { d, terminalId, kind, receivedAt } = this;
    const st = d.store.ensureState(terminalId);
    if (kind === 'presence') {
      d.presence.presenceMessage(tx, terminalId, this.value as PayloadOf<'presence'>, receivedAt);
      d.metrics.messagesIn.inc({ kind });
      return;
    }
    const v = this.value as { epoch: string; seq: number; ts: string };
    const ts = Date.parse(v.ts);
    const r: StreamRef = { terminalId, epoch: v.epoch, seq: v.seq, ts, receivedAt, skewed: ts > receivedAt + CLOCK_SKEW_MS || ts < receivedAt - CLOCK_BEHIND_MS };
    this.tx = tx;
    this.r = r;
    this.st = st;
    switch (kind) {
      case 'telemetry':
        // before the insert: on SQLite `stored` runs inside it
        this.services = telemetryServices(d.store, r, this.value as PayloadOf<'telemetry'>, st);
        ingestTelemetry(d.store, tx, r, this.value as PayloadOf<'telemetry'>, this.services, this);
        break;
      case 'events':
        if (d.quota && !d.quota.eventRoom(terminalId, receivedAt, () => this.storedToday)) {
          // over today's cap: acknowledged, not stored (counted by the quota); still a sign of life
          d.presence.activity(tx, terminalId, st, receivedAt);
          return;
        }
        ingestEvent(d.store, r, this.value as PayloadOf<'events'>, this);
        break;
      case 'config/reported':
        ingestConfigReported(d.store, r, this.value as PayloadOf<'config/reported'>, this);
        break;
      case 'commands/result':
        ingestCommandResult(d.store, r, this.value as PayloadOf<'commands/result'>, this);
        break;
      case 'update/status':
        ingestUpdateStatus(d.store, r, this.value as PayloadOf<'update/status'>, this);
        break;
    }
    d.presence.activity(tx, terminalId, st, receivedAt);
  }

  stored(fresh: boolean): void {
    const { d, kind, tx, r } = this;
    if (!fresh) {
      d.metrics.duplicates.inc({ kind });
      if (kind === 'events') d.quota?.eventDuplicate(this.terminalId, this.receivedAt);
      return;
    }
    switch (kind) {
      case 'telemetry':
        telemetryStored(d.store, tx!, r!, this.value as PayloadOf<'telemetry'>, this.st!, this.services);
        break;
      case 'events':
        eventStored(d.store, tx!, r!, this.value as PayloadOf<'events'>);
        break;
      case 'config/reported':
        configReportedStored(d.store, tx!, r!, this.value as PayloadOf<'config/reported'>);
        break;
      case 'commands/result':
        commandResultStored(d.store, tx!, r!, this.value as PayloadOf<'commands/result'>);
        break;
      case 'update/status':
        updateStatusStored(d.store, tx!, r!, this.value as PayloadOf<'update/status'>);
        break;
    }
    d.metrics.messagesIn.inc({ kind });
  }
}
