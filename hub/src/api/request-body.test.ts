import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleRequestBody } from './request-body.ts';
import { Conn } from './test-connection.ts';

// Over a real socket, since the connection is the point.
function makeApp(limit?: number): Hono {
  const app = new Hono();
  app.use('*', settleRequestBody(limit));
  app.use('/limited', bodyLimit({ maxSize: 1024 * 1024, onError: (c) => c.json({ error: 'too large' }, 413) }));
  app.post('/limited', async (c) => c.json({ got: (await c.req.arrayBuffer()).byteLength }));
  // Opens the body and answers without reading it, as the release upload does for an identical re-upload.
  app.post('/early', async (c) => {
    const body = c.req.raw.body;
    await new Promise((r) => setTimeout(r, 20));
    return c.json({ early: body !== null });
  });
  // Reads a little, then gives up on the stream (a refusal in the middle of an upload).
  app.post('/gives-up', async (c) => {
    const reader = c.req.raw.body!.getReader();
    await reader.read();
    await reader.cancel();
    return c.json({ refused: true }, 400);
  });
  app.get('/ping', (c) => c.json({ ok: true }));
  return app;
}

interface Served {
  port: number;
  close: () => Promise<void>;
}

async function serve(app: Hono): Promise<Served> {
  const server = http.createServer(getRequestListener(app.fetch));
  server.keepAliveTimeout = 65_000; // as the hub's
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const BIG = Buffer.alloc(4 * 1024 * 1024, 0x20);

describe('an answer that comes before the request body was read', () => {
  let s: Served;
  beforeAll(async () => {
    s = await serve(makeApp());
  });
  afterAll(() => s.close());

  it.each([
    ['a body limit (413 by Content-Length)', '/limited', 413],
    ['a handler that opened the body and answered', '/early', 200],
  ])('%s leaves the keep-alive connection usable: the rest is drained first', async (_what, path, status) => {
    const conn = new Conn(s.port);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await conn.request('POST', path, BIG);
        expect(r.status).toBe(status);
        expect(r.headers.connection).toBe('keep-alive');
        // Without the middleware this request sat behind the unread body until node-server destroyed the socket (500 ms).
        expect((await conn.request('GET', '/ping')).status).toBe(200);
      }
    } finally {
      conn.close();
    }
  });

  it('a stream the handler gave up on: the answer says Connection: close', async () => {
    const conn = new Conn(s.port);
    try {
      const r = await conn.request('POST', '/gives-up', Buffer.alloc(256 * 1024));
      expect(r.status).toBe(400);
      expect(r.headers.connection).toBe('close');
    } finally {
      conn.close();
    }
  });

  it('leaves alone a body the handler read', async () => {
    const conn = new Conn(s.port);
    try {
      const r = await conn.request('POST', '/limited', Buffer.alloc(1000));
      expect(JSON.parse(r.body)).toEqual({ got: 1000 });
      expect(r.headers.connection).toBe('keep-alive');
      expect((await conn.request('GET', '/ping')).status).toBe(200);
    } finally {
      conn.close();
    }
  });
});

describe('a body beyond the drain limit', () => {
  it('is not read: the answer says Connection: close', async () => {
    const s = await serve(makeApp(512 * 1024));
    const conn = new Conn(s.port);
    try {
      expect((await conn.request('POST', '/early', Buffer.alloc(256 * 1024))).headers.connection).toBe('keep-alive');
      expect((await conn.request('POST', '/early', Buffer.alloc(600 * 1024))).headers.connection).toBe('close');
    } finally {
      conn.close();
      await s.close();
    }
  });
});
