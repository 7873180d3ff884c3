/**
 * A request body is read to its end, or the connection is closed, before the answer goes out.
 *
 * Why: an answer can come before the body was read (a body limit's 413, a refusal by headers, an identical release
 * re-upload). node-server then tries to drain the rest for 500 ms and destroys the socket if it cannot; and once
 * anything opened the body stream (Hono's bodyLimit looks at `c.req.raw.body`, the upload route streams it),
 * `Readable.toWeb`'s listener pauses the request again at every chunk, so that drain stalls for any body of some
 * size. Meanwhile the client, holding a complete answer, had put the keep-alive connection back in its pool and sent
 * its next request on it: that request died with "other side closed" 500 ms later (a 4 MiB POST /nodes then any
 * request: 4 in 10 with fetch; with one keep-alive socket, every time).
 *
 * A body is drained up to DRAIN_LIMIT, so the client reads our answer after sending everything (as from any HTTP
 * server), and the connection stays usable. Past that, or when the handler holds the stream, the answer carries
 * `Connection: close` so that no client reuses the connection. (Closing is the fallback only: a client still sending
 * a large body to a closing socket mostly sees EPIPE instead of the answer.)
 */
import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';

/** As much as node-server's own drain would read (MAX_DRAIN_BYTES); beyond it a sender pays with its connection. */
export const DRAIN_LIMIT = 64 * 1024 * 1024;

/** Read and discard what is left of `body`, up to `limit` bytes; false when more was left (then it is cancelled). */
export async function drainBody(body: ReadableStream<Uint8Array>, limit = DRAIN_LIMIT): Promise<boolean> {
  const reader = body.getReader();
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return true;
      n += value.byteLength;
      if (n > limit) {
        await reader.cancel().catch(() => undefined);
        return false;
      }
    }
  } catch {
    return false;
  } finally {
    reader.releaseLock();
  }
}

/** Middleware for the whole HTTP app (outside every route and body limit); a no-op outside node-server. */
export function settleRequestBody(limit = DRAIN_LIMIT): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
    if (!incoming || incoming.readableEnded || c.req.method === 'GET' || c.req.method === 'HEAD') return;
    const body = c.req.raw.body;
    if (!body) return;
    // Not held by the handler: read the rest here (a stream the handler cancelled ends at once, and stays unsettled).
    if (!body.locked && !(Number(c.req.header('content-length') ?? 0) > limit)) await drainBody(body, limit);
    if (incoming.readableEnded) return;
    const res = new Response(c.res.body, c.res);
    res.headers.set('connection', 'close');
    c.res = res;
  };
}
