/** /events: server-sent events of changes under a node (`?node=GZ-YX`), with a heartbeat. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { principalOf, visible } from '../auth/guard.ts';
import { inScope } from '../auth/permissions.ts';
import { notFound } from '../errors.ts';
import type { Change } from '../ingest/writer.ts';
import { errorResponses, type ApiEnv, type Services } from './common.ts';

export const SSE_HEARTBEAT_MS = 15_000;
/** How often a waiting stream checks that its caller may still read it (two primary-key lookups). */
export const SSE_REVALIDATE_MS = 1000;

const sseRoute = createRoute({
  method: 'get',
  path: '/events',
  summary: 'Server-sent events: `change` events ({type, terminalId, station, at, data}) and `heartbeat` every 15 s',
  request: { query: z.object({ node: z.string().optional() }) },
  responses: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: z.string() } } }, ...errorResponses },
});

export function eventRoutes(s: Services) {
  return new OpenAPIHono<ApiEnv>().openapi(sseRoute, async (c) => {
    const { node } = c.req.valid('query');
    if (node !== undefined && (!(await s.registry.node(node)) || !visible(c, node))) throw notFound('node', node);
    // The stream carries only changes of terminals under the caller's node (and under ?node= within it).
    const scope = node ?? principalOf(c).nodeId;
    return streamSSE(c, async (stream) => {
      const queue: Change[] = [];
      let wake: (() => void) | null = null;
      // Batches are admitted one after the other (a station is read from the registry), so they keep their order.
      let admitted = Promise.resolve();
      const listener = (changes: Change[]) => {
        admitted = admitted.then(() => admit(changes)).catch((err: unknown) => s.log.error({ err }, 'event stream: a change could not be placed'));
      };
      const admit = async (changes: Change[]) => {
        const before = queue.length;
        for (const ch of changes) {
          if (scope === null) queue.push(ch);
          else {
            const station = ch.nodeId ?? (await s.registry.terminal(ch.terminalId))?.stationId;
            if (station !== undefined && inScope(scope, station)) queue.push(ch);
          }
        }
        // A batch with nothing for this stream must not wake it: the wake-up wrote a heartbeat, so a stream scoped to
        // one station heard every batch of the whole fleet (35 heartbeats in 3 s while another district was busy).
        if (queue.length === before) return;
        // A slow reader gets the newest changes, not an unbounded backlog.
        if (queue.length > 1000) queue.splice(0, queue.length - 1000);
        wake?.();
      };
      s.bus.on('changes', listener);
      stream.onAbort(() => {
        s.bus.off('changes', listener);
        wake?.();
      });
      await stream.writeSSE({ event: 'hello', data: JSON.stringify({ node: node ?? null, at: new Date().toISOString() }) });
      const caller = principalOf(c);
      // A stream outlives neither its session nor its token: disabling a user or revoking a token ends it too.
      while (!stream.aborted && !stream.closed && (await s.auth.stillValid(caller))) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              clearInterval(recheck);
              resolve();
            };
            const timer = setTimeout(done, SSE_HEARTBEAT_MS).unref();
            // Only this stream's own changes wake it now, so a revoked token, an ended session or a disabled user is
            // also looked for on a timer: the stream ends within a second however quiet its node is.
            const recheck = setInterval(() => {
              s.auth.stillValid(caller).then((ok) => ok || done(), done);
            }, SSE_REVALIDATE_MS).unref();
            wake = done;
          });
          wake = null;
          if (queue.length === 0 && !stream.aborted && (await s.auth.stillValid(caller))) {
            await stream.writeSSE({ event: 'heartbeat', data: new Date().toISOString() });
            continue;
          }
        }
        // Checked again after the wait: a change that arrives after the user was disabled is not theirs to see.
        if (!(await s.auth.stillValid(caller))) break;
        for (const ch of queue.splice(0)) {
          const station = ch.nodeId ?? (await s.registry.terminal(ch.terminalId))?.stationId ?? null;
          await stream.writeSSE({
            event: 'change',
            data: JSON.stringify({ type: ch.type, terminalId: ch.terminalId, station, at: new Date(ch.at).toISOString(), data: ch.data ?? null }),
          });
        }
      }
      s.bus.off('changes', listener);
    });
  });
}
