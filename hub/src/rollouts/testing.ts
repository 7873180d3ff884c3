/** Test support (not used by the hub at run time): serve Hono sub-apps on an ephemeral 127.0.0.1 port. */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Mount each [path, app] in order on one app and listen on 127.0.0.1, port 0. */
export async function serveApps(mounts: [string, Hono][]): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Hono();
  for (const [p, sub] of mounts) app.route(p, sub);
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}
