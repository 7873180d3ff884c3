/**
 * Is the database answering? `GET /api/v1/health` says `degraded` while it is not (issue 18: PostgreSQL restarted or
 * unreachable for 30 s while terminals report). A ping every `intervalMs` (`select 1`, given `timeoutMs` to answer)
 * and the batch writer's outcomes both count: the latest one wins. The hub keeps serving meanwhile; the writer
 * acknowledges nothing it has not committed, and postgres.js reconnects by itself.
 */
import type { Engine } from './engine.ts';
import type { Logger } from '../log.ts';

export class DatabaseHealth {
  #ok = true;
  #lastError: string | null = null;
  #since = Date.now();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly log: Logger,
    private readonly opts: { intervalMs: number; timeoutMs: number } = { intervalMs: 2000, timeoutMs: 2000 },
  ) {}

  get status(): 'ok' | 'degraded' {
    return this.#ok ? 'ok' : 'degraded';
  }

  /** Why it is degraded (the driver's words, never the URL), or null. */
  get lastError(): string | null {
    return this.#ok ? null : this.#lastError;
  }

  /** Since when the current status holds (ms). */
  get since(): number {
    return this.#since;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.ping(), this.opts.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** A write or read reached the database. */
  succeeded(): void {
    if (this.#ok) return;
    this.#ok = true;
    this.log.info({ downMs: Date.now() - this.#since }, 'database reachable again');
    this.#since = Date.now();
  }

  /** A write or read failed on the database itself (not on bad input). */
  failed(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
    if (!this.#ok) return;
    this.#ok = false;
    this.#since = Date.now();
    this.log.warn({ err: this.#lastError }, 'database unreachable; acknowledging nothing until it answers again');
  }

  async ping(): Promise<void> {
    const e = this.engine;
    try {
      if (e.kind === 'sqlite') e.db.prepare('SELECT 1').get();
      else {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
        });
        try {
          await Promise.race([e.pg.sql`select 1`, timeout]);
        } finally {
          clearTimeout(timer);
        }
      }
      this.succeeded();
    } catch (err) {
      this.failed(err);
    }
  }
}
