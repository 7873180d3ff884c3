/**
 * A minimal MQTT 3.1.1 client for load generation: CONNECT (with will and credentials), PUBLISH QoS 0/1,
 * SUBSCRIBE, PUBACK, PINGREQ, DISCONNECT, and just enough of a parser to read what a broker sends back.
 *
 * Why not mqtt.js: the load side has one core for thousands of terminals, and mqtt.js spends tens of
 * microseconds per QoS 1 publish (stores, callbacks, packet objects), so at 30,000 msg/s the load generator, not the
 * hub, would be the bottleneck. Here a publish is one Buffer and a PUBACK is a 4-byte match.
 */
import net from 'node:net';

export interface Will {
  topic: string;
  payload: string | Buffer;
  qos: 0 | 1;
  retain: boolean;
}

export interface ConnectOptions {
  host: string;
  port: number;
  localAddress?: string;
  clientId: string;
  username?: string;
  password?: string;
  keepalive: number;
  clean?: boolean;
  will?: Will;
  connectTimeoutMs?: number;
  /** Give the attempt up when the TCP handshake is not answered within this (a SYN the server's kernel dropped). */
  handshakeTimeoutMs?: number;
}

export interface IncomingPublish {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
}

function encodeLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    bytes.push(b);
  } while (n > 0);
  return Buffer.from(bytes);
}

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function packet(header: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([header]), encodeLength(body.length), body]);
}

export function connectPacket(o: ConnectOptions): Buffer {
  let flags = o.clean === false ? 0 : 0x02;
  const parts: Buffer[] = [str(o.clientId)];
  if (o.will) {
    flags |= 0x04 | (o.will.qos << 3) | (o.will.retain ? 0x20 : 0);
    parts.push(str(o.will.topic), str(o.will.payload));
  }
  if (o.username !== undefined) {
    flags |= 0x80;
    parts.push(str(o.username));
  }
  if (o.password !== undefined) {
    flags |= 0x40;
    parts.push(str(o.password));
  }
  const ka = Buffer.alloc(2);
  ka.writeUInt16BE(o.keepalive);
  const variable = Buffer.concat([str('MQTT'), Buffer.from([4, flags]), ka]);
  return packet(0x10, Buffer.concat([variable, ...parts]));
}

/** A PUBLISH packet, built in one allocation (this is the load generator's hot path). */
export function publishPacket(topic: string, payload: Buffer | string, qos: 0 | 1, retain: boolean, id = 0): Buffer {
  const tlen = Buffer.byteLength(topic);
  const plen = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const rem = 2 + tlen + (qos > 0 ? 2 : 0) + plen;
  const lenBytes = rem < 128 ? 1 : rem < 16384 ? 2 : rem < 2097152 ? 3 : 4;
  const b = Buffer.allocUnsafe(1 + lenBytes + rem);
  b[0] = 0x30 | (qos << 1) | (retain ? 1 : 0);
  let o = 1;
  let n = rem;
  do {
    let x = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) x |= 0x80;
    b[o++] = x;
  } while (n > 0);
  b.writeUInt16BE(tlen, o);
  o += 2;
  o += b.write(topic, o, 'utf8');
  if (qos > 0) {
    b.writeUInt16BE(id, o);
    o += 2;
  }
  if (typeof payload === 'string') b.write(payload, o, 'utf8');
  else payload.copy(b, o);
  return b;
}

export class LiteClient {
  readonly socket: net.Socket;
  connected = false;
  closed = false;
  /** CONNACK return code (0 = accepted). */
  returnCode = -1;
  private buf: Buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly acks = new Map<number, () => void>();
  private pingTimer: NodeJS.Timeout | null = null;
  onPublish: ((p: IncomingPublish) => void) | null = null;
  onClose: (() => void) | null = null;
  private connackWaiter: ((code: number) => void) | null = null;
  private corked = false;

  private constructor(readonly opts: ConnectOptions) {
    this.socket = net.connect({ host: opts.host, port: opts.port, localAddress: opts.localAddress, noDelay: true });
    this.socket.on('data', (d) => this.onData(d));
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.connected = false;
      this.closed = true;
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.connackWaiter?.(-1);
      for (const cb of this.acks.values()) cb();
      this.acks.clear();
      this.onClose?.();
    });
  }

  /** Connects and resolves with the client once CONNACK accepted it; rejects on refusal, close or timeout. */
  static connect(opts: ConnectOptions): Promise<LiteClient> {
    const c = new LiteClient(opts);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        c.destroy();
        reject(new Error(`${opts.clientId}: no CONNACK within ${opts.connectTimeoutMs ?? 30000} ms`));
      }, opts.connectTimeoutMs ?? 30000);
      const handshake = opts.handshakeTimeoutMs
        ? setTimeout(() => {
            clearTimeout(timer);
            c.connackWaiter = null;
            c.destroy();
            reject(new Error(`${opts.clientId}: no TCP handshake within ${opts.handshakeTimeoutMs} ms`));
          }, opts.handshakeTimeoutMs)
        : null;
      if (handshake) c.socket.once('close', () => clearTimeout(handshake));
      c.connackWaiter = (code) => {
        clearTimeout(timer);
        c.connackWaiter = null;
        if (code === 0) {
          c.connected = true;
          if (opts.keepalive > 0) {
            c.pingTimer = setInterval(() => c.socket.write(Buffer.from([0xc0, 0])), opts.keepalive * 500);
            c.pingTimer.unref();
          }
          resolve(c);
        } else {
          c.destroy();
          reject(new Error(`${opts.clientId}: CONNACK ${code === -1 ? 'connection closed' : `refused (${code})`}`));
        }
      };
      c.socket.once('connect', () => {
        if (handshake) clearTimeout(handshake);
        c.socket.write(connectPacket(opts));
      });
    });
  }

  private takeId(): number {
    // Skip ids still waiting for their PUBACK; 0 is not a valid packet id.
    for (let i = 0; i < 65535; i++) {
      const id = this.nextId;
      this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
      if (!this.acks.has(id)) return id;
    }
    throw new Error('no free packet id');
  }

  /**
   * Coalesces everything written in this tick into one write: acks arrive in bursts and each triggers the next
   * publish, and one syscall per 300-byte packet would make the load generator the bottleneck.
   */
  private write(b: Buffer): boolean {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    return this.socket.write(b);
  }

  /** Publishes; for QoS 1 `onAck` runs on PUBACK (or when the connection closes without one). */
  publish(topic: string, payload: Buffer | string, qos: 0 | 1, retain: boolean, onAck?: () => void): boolean {
    if (!this.connected) return false;
    if (qos === 1) {
      const id = this.takeId();
      this.acks.set(id, onAck ?? (() => {}));
      return this.write(publishPacket(topic, payload, 1, retain, id));
    }
    return this.write(publishPacket(topic, payload, 0, retain));
  }

  subscribe(filters: string[], qos: 0 | 1, onSuback?: () => void): void {
    const id = this.takeId();
    this.acks.set(id, onSuback ?? (() => {}));
    const body = Buffer.concat([Buffer.from([id >> 8, id & 0xff]), ...filters.map((f) => Buffer.concat([str(f), Buffer.from([qos])]))]);
    this.socket.write(packet(0x82, body));
  }

  get inflight(): number {
    return this.acks.size;
  }

  /** A clean close: DISCONNECT then FIN (the broker discards the will). */
  end(): void {
    if (this.closed) return;
    if (this.connected) this.socket.write(Buffer.from([0xe0, 0]));
    this.socket.end();
  }

  /** Drops the connection without DISCONNECT (the broker publishes the will). */
  destroy(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    let off = 0;
    const b = this.buf;
    while (b.length - off >= 2) {
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let complete = false;
      for (; i < b.length && i < off + 5; i++) {
        len += (b[i]! & 0x7f) * mul;
        mul *= 128;
        if ((b[i]! & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
      }
      if (!complete || b.length - i < len) break;
      this.handle(b[off]!, b.subarray(i, i + len));
      off = i + len;
    }
    this.buf = off === b.length ? Buffer.alloc(0) : b.subarray(off);
  }

  private handle(header: number, body: Buffer): void {
    switch (header >> 4) {
      case 2: // CONNACK
        this.connackWaiter?.(body[1] ?? -1);
        break;
      case 4: // PUBACK
      case 9: {
        // SUBACK
        const id = body.readUInt16BE(0);
        const cb = this.acks.get(id);
        if (cb) {
          this.acks.delete(id);
          cb();
        }
        break;
      }
      case 3: {
        // PUBLISH
        const qos = (header >> 1) & 3;
        const tlen = body.readUInt16BE(0);
        const topic = body.toString('utf8', 2, 2 + tlen);
        let p = 2 + tlen;
        if (qos > 0) {
          const id = body.readUInt16BE(p);
          p += 2;
          this.write(Buffer.from([0x40, 2, id >> 8, id & 0xff]));
        }
        this.onPublish?.({ topic, payload: body.subarray(p), qos, retain: (header & 1) === 1 });
        break;
      }
      default:
        break; // PINGRESP, UNSUBACK
    }
  }
}
