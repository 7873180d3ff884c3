/**
 * Guards a connection's declared packet length before Aedes reads the packet.
 *
 * mqtt-packet (Aedes' parser) has no maximum packet length: a client declaring a 256 MB PUBLISH makes the broker
 * buffer whatever arrives until the length is reached. This stream sits between the socket and Aedes, follows the
 * MQTT framing (fixed header byte, remaining-length varint, body) across chunks without copying, and destroys the
 * connection as soon as a declared remaining length exceeds the limit, before the body is read.
 */
import { Duplex } from 'node:stream';

/** Room for the variable header of a PUBLISH (topic up to our ids' length, message id) on top of the payload. */
export const HEADER_ALLOWANCE = 1024;

export class PacketLengthGuard {
  private state: 'type' | 'length' | 'body' = 'type';
  private remaining = 0;
  private multiplier = 1;
  private lengthBytes = 0;

  constructor(private readonly maxRemaining: number) {}

  /** Scans a chunk; returns the offending declared length, or -1 when the chunk is fine. */
  scan(chunk: Buffer): number {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'type') {
        i++;
        this.state = 'length';
        this.remaining = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.state === 'length') {
        const b = chunk[i++]!;
        this.remaining += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (this.remaining > this.maxRemaining) return this.remaining;
        if ((b & 0x80) === 0) {
          this.state = this.remaining === 0 ? 'type' : 'body';
        } else if (this.lengthBytes >= 4) {
          return this.remaining; // malformed varint; let it be refused like an oversize one
        }
      } else {
        const take = Math.min(this.remaining, chunk.length - i);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'type';
      }
    }
    return -1;
  }
}

/** A duplex in front of `inner` whose readable side only ever carries packets within the limit. */
export function guardStream(
  inner: Duplex,
  maxPayload: number,
  onOversize: (declared: number) => void,
): Duplex {
  const guard = new PacketLengthGuard(maxPayload + HEADER_ALLOWANCE);
  // Completed as soon as the inner stream accepted the bytes (or drained): Aedes destroys the stream right after its
  // last write (CONNACK 5), and anything still in this Duplex's own buffer would be dropped with it.
  const pass = (chunk: Buffer, cb: (err?: Error | null) => void): void => {
    if (inner.destroyed) return cb();
    if (inner.write(chunk)) cb();
    else inner.once('drain', () => cb());
  };
  const outer = new Duplex({
    read() {
      inner.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      pass(chunk, cb);
    },
    // mqtt-packet corks this stream while it writes a packet (a PUBACK is three writes) and uncorks it on the next
    // tick; a committed batch releases all of a connection's PUBACKs in one tick. What was written meanwhile arrives
    // here at once and goes to the socket as one buffer: one write syscall per connection and batch, without a
    // second cork on the socket (and the inner stream's own writev bookkeeping) per packet.
    writev(chunks, cb) {
      pass(chunks.length === 1 ? (chunks[0]!.chunk as Buffer) : Buffer.concat(chunks.map((c) => c.chunk as Buffer)), cb);
    },
    final(cb) {
      inner.end();
      cb();
    },
    destroy(err, cb) {
      // Aedes destroys the stream right after writing a refusal (CONNACK 5) or on close: end gracefully so that
      // last packet reaches the client (a WebSocket would otherwise be terminated with it still queued); a client
      // that does not read gets 1 s.
      if (!inner.destroyed && !inner.writableEnded) {
        // Not destroy() after end(): over TLS the last packet may still sit in the TLS layer; the transport closes
        // itself once the peer has it (TCP FIN / WebSocket close handshake).
        const timer = setTimeout(() => inner.destroy(), 1000);
        timer.unref();
        inner.once('close', () => clearTimeout(timer));
        inner.end();
      } else inner.destroy();
      cb(err);
    },
  });
  inner.on('data', (chunk: Buffer) => {
    const bad = guard.scan(chunk);
    if (bad >= 0) {
      onOversize(bad);
      // At once, not gracefully: the peer is sending what we refuse to read.
      inner.destroy();
      outer.destroy();
      return;
    }
    if (!outer.push(chunk)) inner.pause();
  });
  inner.on('end', () => outer.push(null));
  inner.on('error', (err) => outer.destroy(err));
  inner.on('close', () => outer.destroy());
  return outer;
}
