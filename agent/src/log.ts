/**
 * Logging: pino to stdout, plus a ring of the last lines for `collect-logs`.
 * Secrets never reach a log line: the secret is read in config.ts and handed only to the MQTT client.
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export type { Logger };

/** The last `capacity` log lines, for the `collect-logs` command. */
export class LogRing extends Writable {
  #lines: string[] = [];
  constructor(private readonly capacity = 2000) {
    super();
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      this.#lines.push(line);
      if (this.#lines.length > this.capacity) this.#lines.splice(0, this.#lines.length - this.capacity);
    }
    cb();
  }
  tail(n: number): string[] {
    return this.#lines.slice(-n);
  }
}

export function createLogger(opts: { level: string; base?: Record<string, unknown>; ring?: LogRing; destination?: NodeJS.WritableStream }): Logger {
  const streams: pino.StreamEntry[] = [{ level: 'trace', stream: opts.destination ?? pino.destination(1) }];
  if (opts.ring) streams.push({ level: 'trace', stream: opts.ring });
  return pino(
    { level: opts.level, base: { service: 'kiosk-fleet-agent', ...opts.base }, serializers: { err: pino.stdSerializers.err } },
    pino.multistream(streams),
  );
}
