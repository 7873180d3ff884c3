import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout; secrets are never passed to the logger (and `secret`/`password` are redacted anyway). */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'kiosk-fleet-hub' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['secret', 'password', '*.secret', '*.password', 'token', '*.token'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** Logs at most `perInterval` lines per key per interval; returns how many were suppressed when it logs again. */
export class RateLimitedLog {
  private readonly windows = new Map<string, { start: number; n: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = 60_000,
    private readonly perInterval = 5,
  ) {}

  /** null: suppress this one; a number: log it, mentioning that many suppressed since. */
  admit(key: string, now = Date.now()): number | null {
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.intervalMs) {
      const suppressed = w?.suppressed ?? 0;
      if (this.windows.size > 10_000) this.windows.clear();
      w = { start: now, n: 0, suppressed: 0 };
      this.windows.set(key, w);
      w.n++;
      return suppressed;
    }
    if (w.n < this.perInterval) {
      w.n++;
      return 0;
    }
    w.suppressed++;
    return null;
  }
}
