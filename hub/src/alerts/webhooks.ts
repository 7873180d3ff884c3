/**
 * Outbound webhooks: every alert change becomes one JSON POST per webhook, signed with the webhook's secret and
 * retried with capped exponential backoff (with jitter) until a 2xx or `maxAttempts`; what failed stays visible
 * (`GET /webhooks`, `GET /webhooks/{id}/deliveries`, and a metric).
 *
 * Signature: `X-KF-Signature: sha256=<hex HMAC-SHA256(secret, "<X-KF-Timestamp>.<body>")>`. The timestamp is in
 * the signed text so a receiver can refuse replays of an old body.
 *
 * Deliveries are rows in the database, written in the same transaction as the alert change: a hub that stops
 * mid-retry resumes after its restart, and several hub processes share one queue (each attempt claims its row).
 */
import crypto from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { Tx } from '../db/engine.ts';
import type { Logger } from '../log.ts';
import type { AlertStore, DeliveryAttempt, DeliveryRow, NewDelivery } from './store.ts';

export interface WebhookOptions {
  /** First retry after this, doubling each attempt (default 1 s). */
  backoffMs: number;
  maxBackoffMs: number;
  maxAttempts: number;
  timeoutMs: number;
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookOptions = { backoffMs: 1000, maxBackoffMs: 10 * 60_000, maxAttempts: 8, timeoutMs: 10_000 };

/** A claimed delivery's attempt is recorded within its timeout; this much more covers a slow database. */
const LEASE_MARGIN_MS = 30_000;

export function sign(secret: string, timestamp: string, body: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export class WebhookDispatcher {
  readonly opts: WebhookOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #closed = false;
  readonly #abort = new AbortController();
  readonly #delivered: Counter;

  constructor(
    private readonly store: AlertStore,
    private readonly log: Logger,
    registry: Registry | null,
    opts: Partial<WebhookOptions> = {},
    private readonly now: () => number = Date.now,
    /** Whether this hub delivers now (job leadership 'webhooks'); others only queue, the leader sends. */
    private readonly leads: () => boolean = () => true,
  ) {
    this.opts = { ...DEFAULT_WEBHOOK_OPTIONS, ...opts };
    this.#delivered = new Counter({
      name: 'kf_alert_webhook_attempts_total',
      help: 'Alert webhook POST attempts by outcome (delivered, retry, failed: out of attempts)',
      labelNames: ['outcome'],
      registers: registry ? [registry] : [],
    });
  }

  /**
   * Queues one delivery per enabled webhook and change (inside the caller's transaction `tx`, one insert), due now on
   * the dispatcher's clock. A body is made only when a webhook wants it: 19,000 alerts opening at once (a city-wide
   * outage, the first reports after a start) built 19,000 public views for nothing on a hub without webhooks.
   */
  async enqueue(changes: readonly { alertId: number; event: string; payload: () => unknown }[], tx?: Tx): Promise<number> {
    if (changes.length === 0) return 0;
    const hooks = (await this.store.webhooks(tx)).filter((w) => w.enabled === 1);
    if (hooks.length === 0) return 0;
    const now = this.now();
    const rows: NewDelivery[] = [];
    for (const ch of changes) {
      const payload = JSON.stringify(ch.payload());
      for (const w of hooks) rows.push({ webhookId: w.id, alertId: ch.alertId, event: ch.event, payload, at: now });
    }
    await this.store.queueDeliveries(rows, tx);
    return rows.length;
  }

  /** Runs due deliveries now and then again when the next one is due. */
  kick(): void {
    if (this.#closed || !this.leads()) return;
    if (this.#running) {
      void this.#running.then(() => this.kick());
      return;
    }
    this.#running = this.runDue().then(
      () => undefined,
      (err: unknown) => this.log.error({ err }, 'alert webhook run failed'),
    ).finally(() => {
      this.#running = null;
      this.#schedule().catch((err: unknown) => this.log.error({ err }, 'alert webhook schedule failed'));
    });
  }

  /**
   * A look at the queue now unless a run is on: the leader polls so that deliveries other hubs queued (an alert
   * acknowledged through their API) go out within seconds, without a cross-hub signal.
   */
  poll(): void {
    if (!this.#running) this.kick();
  }

  async #schedule(): Promise<void> {
    if (this.#closed) return;
    const next = await this.store.nextDeliveryAt();
    // (a kick or close while we asked has its own say)
    if (this.#closed || this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    if (next === null) return;
    this.#timer = setTimeout(() => this.kick(), Math.max(0, Math.min(next - this.now(), 60_000)));
    this.#timer.unref();
  }

  /**
   * Sends every delivery that is due (in order), one at a time per run. Each is claimed just before its attempt,
   * for longer than the attempt may take: hubs sharing one database never POST the same delivery at once.
   */
  async runDue(): Promise<number> {
    let sent = 0;
    for (;;) {
      // a hub that lost the leadership stops between attempts (the one in flight keeps its claim)
      if (this.#closed || !this.leads()) return sent;
      const now = this.now();
      const [d] = await this.store.claimDue(now, 1, now + this.opts.timeoutMs + LEASE_MARGIN_MS);
      if (!d) return sent;
      await this.#attempt(d);
      sent++;
    }
  }

  async #attempt(d: DeliveryRow): Promise<void> {
    const hook = await this.store.webhook(d.webhookId);
    if (!hook) {
      await this.#record(d.id, { status: 'failed', nextAt: d.nextAt, lastStatus: null, lastError: 'webhook removed', deliveredAt: null });
      return;
    }
    const secret = await this.store.openSecret(hook.secret);
    const ts = String(this.now());
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'kiosk-fleet-hub',
          'x-kf-event': d.event,
          'x-kf-delivery': String(d.id),
          // The same on every attempt of this delivery, whichever hub makes it: a receiver that saw it drops the
          // repeat (a hub that died after the POST but before recording it leaves the delivery to be sent again).
          'idempotency-key': String(d.id),
          'x-kf-timestamp': ts,
          'x-kf-signature': sign(secret, ts, d.payload),
        },
        body: d.payload,
        redirect: 'manual',
        // a hub shutting down does not wait out a slow receiver: the attempt counts as failed and resumes after restart
        signal: AbortSignal.any([AbortSignal.timeout(this.opts.timeoutMs), this.#abort.signal]),
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (err) {
      error = err instanceof Error ? `${err.name}: ${(err.cause as Error | undefined)?.message ?? err.message}` : String(err);
    }
    const now = this.now();
    if (error === null) {
      await this.#record(d.id, { status: 'delivered', nextAt: d.nextAt, lastStatus: status, lastError: null, deliveredAt: now });
      this.#delivered.inc({ outcome: 'delivered' });
      return;
    }
    const attempts = d.attempts + 1;
    if (attempts >= this.opts.maxAttempts) {
      await this.#record(d.id, { status: 'failed', nextAt: d.nextAt, lastStatus: status, lastError: error, deliveredAt: null });
      this.#delivered.inc({ outcome: 'failed' });
      this.log.warn({ webhookId: hook.id, deliveryId: d.id, attempts, error }, 'alert webhook delivery failed for good');
      return;
    }
    // Exponential with a cap and ±20 % jitter, so many failed deliveries do not retry in the same instant.
    const base = Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** (attempts - 1));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    await this.#record(d.id, { status: 'pending', nextAt: now + delay, lastStatus: status, lastError: error, deliveredAt: null });
    this.#delivered.inc({ outcome: 'retry' });
    this.log.info({ webhookId: hook.id, deliveryId: d.id, attempts, error, retryInMs: delay }, 'alert webhook delivery will be retried');
  }

  #record(id: number, a: DeliveryAttempt): Promise<void> {
    return this.store.recordAttempt(id, a);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#running?.catch(() => undefined);
  }
}
