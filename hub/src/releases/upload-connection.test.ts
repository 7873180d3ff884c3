import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleRequestBody } from '../api/request-body.ts';
import { Conn } from '../api/test-connection.ts';
import { ArtifactStore } from './artifact-store.ts';
import { releaseCommand } from './cli.ts';
import { parseTrustedKeys } from './keys.ts';
import { releasesRoutes } from './routes.ts';
import { openDatabase, type Db } from '../store/db.ts';
import { SqliteReleaseStore } from './store.sqlite.ts';

// Uploads over one keep-alive connection, as an admin's client (undici) reuses it: whatever the hub answers to an
// upload (stored, identical re-upload, refused by headers or by bytes), the next request on it is answered.
const ADMIN = 'Bearer admin-token-for-tests';
const io = { stdout: () => undefined, stderr: () => undefined };
let tmp: string;
let server: http.Server;
let port: number;
let db: Db;

interface Packed {
  artifact: Buffer;
  manifest: string;
  signature: string;
}

async function pack(keyDir: string, version: string): Promise<Packed> {
  const bundle = path.join(tmp, `bundle-${version}`);
  fs.mkdirSync(bundle, { recursive: true });
  // incompressible, so the artifact is a few MiB: more than a socket buffer holds, as real releases are
  fs.writeFileSync(path.join(bundle, 'blob.bin'), randomBytes(3 * 1024 * 1024));
  const out = path.join(tmp, 'out', path.basename(keyDir));
  const key = path.join(keyDir, 'release-private.pem');
  expect(await releaseCommand(['pack', '--dir', bundle, '--version', version, '--type', 'id-card', '--kind', 'app', '--key', key, '--out', out], io)).toBe(0);
  return {
    artifact: fs.readFileSync(path.join(out, `app-${version}.tar.gz`)),
    manifest: fs.readFileSync(path.join(out, `app-${version}.manifest.json`)).toString('base64'),
    signature: fs.readFileSync(path.join(out, `app-${version}.sig`), 'utf8'),
  };
}

function upload(conn: Conn, p: Packed, body = p.artifact, auth = ADMIN): ReturnType<Conn['request']> {
  return conn.request('POST', '/api/v1/releases', body, { authorization: auth, 'x-kf-manifest': p.manifest, 'x-kf-signature': p.signature });
}

let good: Packed;
let rogue: Packed;
let fresh: Packed;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-upload-conn-'));
  expect(await releaseCommand(['keygen', '--out', path.join(tmp, 'keys')], io)).toBe(0);
  expect(await releaseCommand(['keygen', '--out', path.join(tmp, 'rogue')], io)).toBe(0);
  good = await pack(path.join(tmp, 'keys'), '1.0.0');
  fresh = await pack(path.join(tmp, 'keys'), '1.1.0');
  rogue = await pack(path.join(tmp, 'rogue'), '2.0.0');
  const logger = pino({ level: 'silent' });
  const dataDir = path.join(tmp, 'data');
  ({ db } = openDatabase(dataDir));
  const releaseStore = new SqliteReleaseStore(db);
  const store = await new ArtifactStore({ store: releaseStore, trustedKeys: parseTrustedKeys(path.join(tmp, 'keys', 'release-public.pem')), maxUploadBytes: 64 * 1024 * 1024, logger }).init();
  // As createHttpApp mounts them: settleRequestBody outside the releases routes.
  const app = new Hono();
  app.use('/api/*', settleRequestBody());
  app.route(
    '/api/v1/releases',
    releasesRoutes({
      store,
      tokenKey: await releaseStore.tokenKey(),
      logger,
      requireAdmin: async (c, next) => (c.req.header('authorization') === ADMIN ? next() : c.json({ error: { code: 'unauthorized', message: 'no' } }, 401)),
    }),
  );
  server = http.createServer(getRequestListener(app.fetch));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('release upload over one keep-alive connection', () => {
  it('answers the next request after each kind of answer to an upload', async () => {
    const tampered = Buffer.from(fresh.artifact);
    tampered[tampered.length >> 1]! ^= 0x01;
    const conn = new Conn(port);
    try {
      const steps: [string, () => ReturnType<Conn['request']>, number, string | undefined][] = [
        ['stored', () => upload(conn, good), 201, undefined],
        // answered from the signed manifest alone: the body was never read (before: the next request died)
        ['identical re-upload', () => upload(conn, good), 200, undefined],
        ['bad signature (refused by headers)', () => upload(conn, rogue), 400, 'bad-signature'],
        ['tampered (refused after every byte)', () => upload(conn, fresh, tampered), 400, 'sha256-mismatch'],
        ['body longer than signed (refused by Content-Length)', () => upload(conn, fresh, Buffer.concat([fresh.artifact, Buffer.alloc(1)])), 400, 'size-mismatch'],
        ['no admin token', () => upload(conn, fresh, fresh.artifact, 'Bearer nope'), 401, 'unauthorized'],
      ];
      for (const [what, send, status, code] of steps) {
        const r = await send();
        expect({ what, status: r.status, connection: r.headers.connection }).toEqual({ what, status, connection: 'keep-alive' });
        if (code) expect(JSON.parse(r.body)).toMatchObject({ error: { code } });
        const list = await conn.request('GET', '/api/v1/releases', undefined, { authorization: ADMIN }).catch((err: Error) => {
          throw new Error(`after ${what}: ${err.message}`);
        });
        expect({ what, status: list.status }).toEqual({ what, status: 200 });
      }
    } finally {
      conn.close();
    }
  });
});
