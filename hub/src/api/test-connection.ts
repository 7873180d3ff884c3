/**
 * For tests: one keep-alive HTTP/1.1 connection used as undici uses it, where the next request goes out as soon as an
 * answer is in, behind whatever is left of the previous body. (node:http's Agent waits for the body to be written, so
 * it does not show a connection an early answer left stuck.)
 */
import net from 'node:net';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export class Conn {
  private readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private ended = false;
  readonly opened: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.opened = new Promise((r) => this.socket.once('connect', () => r()));
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    const end = (): void => {
      this.ended = true;
      this.wake?.();
    };
    this.socket.on('close', end);
    this.socket.on('error', end); // EPIPE/ECONNRESET: seen as the connection ending
  }

  /** Send a request (the body is queued, not awaited) and read one answer; rejects when the connection ends first. */
  async request(method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Reply> {
    await this.opened;
    const lines = Object.entries({ host: '127.0.0.1', 'content-length': String(body?.length ?? 0), ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
    this.socket.write(`${method} ${path} HTTP/1.1\r\n${lines.join('')}\r\n`);
    if (body) this.socket.write(body);
    for (;;) {
      const head = this.buf.indexOf('\r\n\r\n');
      if (head >= 0) {
        const [statusLine, ...lines] = this.buf.subarray(0, head).toString('latin1').split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        const len = Number(headers['content-length'] ?? 0);
        if (this.buf.length >= head + 4 + len) {
          const text = this.buf.subarray(head + 4, head + 4 + len).toString('utf8');
          this.buf = this.buf.subarray(head + 4 + len);
          return { status: Number(statusLine!.split(' ')[1]), headers, body: text };
        }
      }
      if (this.ended) throw new Error(`connection closed before the answer to ${method} ${path}`);
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
