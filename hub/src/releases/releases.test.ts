import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Hono } from 'hono';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from './artifact-store.ts';
import { releaseCommand } from './cli.ts';
import { parseTrustedKeys, ReleaseKeyError } from './keys.ts';
import { parseRange } from './range.ts';
import { releasesRoutes } from './routes.ts';
import { openDatabase, type Db } from '../store/db.ts';
import { SqliteReleaseStore } from './store.sqlite.ts';
import { issueDownloadToken, verifyDownloadToken } from './tokens.ts';

const logger = pino({ level: 'silent' });
let tmp: string;
const out: string[] = [];
const io = { stdout: (s: string) => void out.push(s), stderr: (s: string) => void out.push(s) };

interface Packed { artifact: Buffer; manifest: string; signature: string; id: string }

async function pack(keyDir: string, version: string, content: string): Promise<Packed> {
  const bundle = path.join(tmp, `bundle-${version}-${Math.random()}`);
  fs.mkdirSync(path.join(bundle, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(bundle, 'app.js'), content);
  fs.writeFileSync(path.join(bundle, 'bin', 'health'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const outDir = path.join(tmp, 'out');
  const code = await releaseCommand(
    ['pack', '--dir', bundle, '--version', version, '--type', 'id-card,endorsement', '--kind', 'app', '--key', path.join(keyDir, 'release-private.pem'), '--out', outDir],
    io,
  );
  expect(code).toBe(0);
  const id = `app-${version}`;
  return {
    id,
    artifact: fs.readFileSync(path.join(outDir, `${id}.tar.gz`)),
    manifest: fs.readFileSync(path.join(outDir, `${id}.manifest.json`)).toString('base64'),
    signature: fs.readFileSync(path.join(outDir, `${id}.sig`), 'utf8'),
  };
}

let app: Hono;
let store: ArtifactStore;
let releaseStore: SqliteReleaseStore;
const dbs: Db[] = [];
/** A store on the database in `dataDir` (another connection to the same file, as a restarted hub has). */
function dbStore(dataDir: string, chunkBytes?: number): SqliteReleaseStore {
  const { db } = openDatabase(dataDir);
  dbs.push(db);
  return new SqliteReleaseStore(db, chunkBytes === undefined ? {} : { chunkBytes });
}
async function artifactBytes(s: SqliteReleaseStore, sha256: string, size: number): Promise<Buffer> {
  const body = await s.openArtifact(sha256, { start: 0, end: size - 1 });
  return Buffer.from(await new Response(body).arrayBuffer());
}
let tokenKey: Buffer;
let good: Packed;
const ADMIN = 'Bearer admin-token-for-tests';
const blocked = new Set<string>();

function upload(p: Packed, body: Buffer = p.artifact, headers: Record<string, string> = {}): Promise<Response> {
  return Promise.resolve(
    app.request('/api/v1/releases', {
      method: 'POST',
      body,
      headers: { authorization: ADMIN, 'x-kf-manifest': p.manifest, 'x-kf-signature': p.signature, 'content-type': 'application/gzip', ...headers },
    }),
  );
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-releases-'));
  expect(await releaseCommand(['keygen', '--out', path.join(tmp, 'keys')], io)).toBe(0);
  expect(await releaseCommand(['keygen', '--out', path.join(tmp, 'rogue')], io)).toBe(0);
  const dataDir = path.join(tmp, 'data');
  // Chunks of 100 bytes: the test artifacts (a few hundred bytes) span several, so ranges cross chunk boundaries.
  releaseStore = dbStore(dataDir, 100);
  store = await new ArtifactStore({
    store: releaseStore,
    trustedKeys: parseTrustedKeys(path.join(tmp, 'keys', 'release-public.pem')),
    maxUploadBytes: 64 * 1024,
    logger,
  }).init();
  tokenKey = await releaseStore.tokenKey();
  app = new Hono();
  app.route(
    '/api/v1/releases',
    releasesRoutes({
      store,
      tokenKey,
      logger,
      requireAdmin: async (c, next) => (c.req.header('authorization') === ADMIN ? next() : c.json({ error: { code: 'unauthorized', message: 'no' } }, 401)),
      isTerminalAllowed: (t) => !blocked.has(t),
    }),
  );
  good = await pack(path.join(tmp, 'keys'), '3.3.0', 'console.log("hello 3.3.0")');
});

afterAll(() => {
  for (const db of dbs) db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('release CLI', () => {
  it('keygen refuses to overwrite an existing signing key', async () => {
    expect(await releaseCommand(['keygen', '--out', path.join(tmp, 'keys')], io)).toBe(1);
    expect(out.at(-1)).toMatch(/refusing to overwrite/);
  });
  it('pack refuses a non-semver version, an unknown terminal type and a missing flag, with usage', async () => {
    const key = path.join(tmp, 'keys', 'release-private.pem');
    expect(await releaseCommand(['pack', '--dir', tmp, '--version', 'v1', '--type', 'id-card', '--key', key, '--out', tmp], io)).toBe(64);
    expect(out.at(-2)).toMatch(/not semver/);
    expect(await releaseCommand(['pack', '--dir', tmp, '--version', '1.0.0', '--type', 'toaster', '--key', key, '--out', tmp], io)).toBe(64);
    expect(out.at(-2)).toMatch(/toaster/);
    expect(await releaseCommand(['pack', '--version', '1.0.0'], io)).toBe(64);
    expect(out.at(-1)).toMatch(/usage:/);
  });
  it('packs the same bundle to the same bytes', async () => {
    const bundle = path.join(tmp, 'same');
    fs.mkdirSync(bundle);
    fs.writeFileSync(path.join(bundle, 'a.txt'), 'x');
    const key = path.join(tmp, 'keys', 'release-private.pem');
    await releaseCommand(['pack', '--dir', bundle, '--version', '9.0.0', '--type', 'id-card', '--key', key, '--out', path.join(tmp, 's1')], io);
    await releaseCommand(['pack', '--dir', bundle, '--version', '9.0.0', '--type', 'id-card', '--key', key, '--out', path.join(tmp, 's2')], io);
    expect(fs.readFileSync(path.join(tmp, 's1', 'app-9.0.0.tar.gz'))).toEqual(fs.readFileSync(path.join(tmp, 's2', 'app-9.0.0.tar.gz')));
  });
});

describe('KF_RELEASE_KEYS', () => {
  it('accepts paths and inline PEM (with literal \\n), refuses private keys and garbage', () => {
    const pubFile = path.join(tmp, 'keys', 'release-public.pem');
    const inline = fs.readFileSync(path.join(tmp, 'rogue', 'release-public.pem'), 'utf8').trim().replaceAll('\n', '\\n');
    expect(parseTrustedKeys(`${pubFile}, ${inline}`)).toHaveLength(2);
    expect(parseTrustedKeys(undefined)).toEqual([]);
    expect(() => parseTrustedKeys(path.join(tmp, 'keys', 'release-private.pem'))).toThrow(/private key/);
    expect(() => parseTrustedKeys('/nonexistent.pem')).toThrow(ReleaseKeyError);
    expect(() => parseTrustedKeys('-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----')).toThrow(/item 1/);
  });
});

describe('upload', () => {
  it('stores a signed artifact content-addressed, lists it, and treats a re-upload as a no-op', async () => {
    const res = await upload(good);
    expect(res.status).toBe(201);
    const rec = (await res.json()) as { id: string; sha256: string; size: number };
    expect(rec).toMatchObject({ id: 'app-3.3.0', size: good.artifact.length });
    expect(await artifactBytes(releaseStore, rec.sha256, rec.size)).toEqual(good.artifact);
    expect((await upload(good)).status).toBe(200);
    const list = (await (await app.request('/api/v1/releases', { headers: { authorization: ADMIN } })).json()) as { items: unknown[]; nextCursor: null };
    expect(list).toMatchObject({ items: [{ id: 'app-3.3.0' }], nextCursor: null });
    // a restarted hub sees the same releases
    const again = await new ArtifactStore({ store: dbStore(path.join(tmp, 'data')), trustedKeys: [], maxUploadBytes: 1, logger }).init();
    expect((await again.get('app-3.3.0'))?.sha256).toBe(rec.sha256);
  });

  it('refuses without admin auth', async () => {
    expect((await upload(good, good.artifact, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await app.request('/api/v1/releases')).status).toBe(401);
  });

  it('refuses a tampered artifact (one byte changed) and keeps nothing of it', async () => {
    const p = await pack(path.join(tmp, 'keys'), '3.4.0', 'v3.4.0');
    const tampered = Buffer.from(p.artifact);
    tampered[tampered.length - 10]! ^= 0xff;
    const res = await upload(p, tampered);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'sha256-mismatch' } });
    expect(await store.get('app-3.4.0')).toBeUndefined();
    expect(await releaseStore.hasArtifact(createHash('sha256').update(p.artifact).digest('hex'))).toBe(false);
    // and no chunk of it is left behind (nothing for the start-up sweep to drop)
    expect(await releaseStore.dropIncompleteUploads(Date.now() + 1)).toEqual({ chunks: 0 });
    expect(store.refusals.get('sha256-mismatch')).toBe(1);
  });

  it('refuses a bad signature, a key it does not trust, and a manifest edited after signing', async () => {
    const p = await pack(path.join(tmp, 'keys'), '3.5.0', 'v3.5.0');
    const other = await pack(path.join(tmp, 'keys'), '3.5.1', 'v3.5.1');
    const swapped = await upload({ ...p, signature: other.signature });
    expect(swapped.status).toBe(400);
    expect(await swapped.json()).toMatchObject({ error: { code: 'bad-signature' } });

    const rogue = await pack(path.join(tmp, 'rogue'), '3.5.2', 'evil');
    expect(await (await upload(rogue)).json()).toMatchObject({ error: { code: 'bad-signature', message: /trusted/ } });

    const edited = Buffer.from(p.manifest, 'base64').toString().replace('"3.5.0"', '"3.5.9"');
    const res = await upload({ ...p, manifest: Buffer.from(edited).toString('base64') });
    expect(await res.json()).toMatchObject({ error: { code: 'bad-signature' } });
    expect((await upload({ ...p, manifest: 'not base64!!' })).status).toBe(400);
    expect((await upload(p, p.artifact, { 'x-kf-signature': '' })).status).toBe(400);
    expect(await store.get('app-3.5.0')).toBeUndefined();
  });

  it('refuses a body longer or shorter than signed, and an artifact over the size limit', async () => {
    const p = await pack(path.join(tmp, 'keys'), '3.6.0', 'v3.6.0');
    expect(await (await upload(p, Buffer.concat([p.artifact, Buffer.from('x')]))).json()).toMatchObject({ error: { code: 'size-mismatch' } });
    expect(await (await upload(p, p.artifact.subarray(1))).json()).toMatchObject({ error: { code: 'size-mismatch' } });
    const bundle = path.join(tmp, 'big');
    fs.mkdirSync(bundle);
    fs.writeFileSync(path.join(bundle, 'blob'), (await import('node:crypto')).randomBytes(100 * 1024));
    await releaseCommand(['pack', '--dir', bundle, '--version', '4.0.0', '--type', 'id-card', '--key', path.join(tmp, 'keys', 'release-private.pem'), '--out', path.join(tmp, 'big-out')], io);
    const big: Packed = {
      id: 'app-4.0.0',
      artifact: fs.readFileSync(path.join(tmp, 'big-out', 'app-4.0.0.tar.gz')),
      manifest: fs.readFileSync(path.join(tmp, 'big-out', 'app-4.0.0.manifest.json')).toString('base64'),
      signature: fs.readFileSync(path.join(tmp, 'big-out', 'app-4.0.0.sig'), 'utf8'),
    };
    const res = await upload(big);
    expect(res.status).toBe(413);
  });

  it('refuses other content under an existing release id', async () => {
    const p = await pack(path.join(tmp, 'keys'), '3.3.0', 'different content, same version');
    const res = await upload(p);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: { code: 'release-exists' } });
  });
});

describe('artifact download', () => {
  const get = (id: string, headers: Record<string, string> = {}, query = ''): Promise<Response> =>
    Promise.resolve(app.request(`/api/v1/releases/${id}/artifact${query}`, { headers }));
  const bearer = (terminalId = 'GZ-TH-0001', releaseId = 'app-3.3.0', ttlSeconds = 60): string =>
    `Bearer ${issueDownloadToken(tokenKey, { releaseId, terminalId, ttlSeconds }).token}`;

  it('serves the whole artifact and byte ranges to a token holder', async () => {
    const full = await get('app-3.3.0', { authorization: bearer() });
    expect(full.status).toBe(200);
    expect(full.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await full.arrayBuffer())).toEqual(good.artifact);

    const part = await get('app-3.3.0', { authorization: bearer(), range: 'bytes=10-' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-${good.artifact.length - 1}/${good.artifact.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(good.artifact.subarray(10));

    const suffix = await get('app-3.3.0', { authorization: bearer(), range: 'bytes=-5' });
    expect(Buffer.from(await suffix.arrayBuffer())).toEqual(good.artifact.subarray(-5));

    const tok = issueDownloadToken(tokenKey, { releaseId: 'app-3.3.0', terminalId: 'GZ-TH-0001' }).token;
    const viaQuery = await get('app-3.3.0', { range: 'bytes=0-3' }, `?token=${tok}`);
    expect(Buffer.from(await viaQuery.arrayBuffer())).toEqual(good.artifact.subarray(0, 4));
  });

  it('answers 416 past the end, and the whole body when If-Range names other content', async () => {
    const r = await get('app-3.3.0', { authorization: bearer(), range: `bytes=${good.artifact.length}-` });
    expect(r.status).toBe(416);
    expect(r.headers.get('content-range')).toBe(`bytes */${good.artifact.length}`);
    const stale = await get('app-3.3.0', { authorization: bearer(), range: 'bytes=10-', 'if-range': '"0000"' });
    expect(stale.status).toBe(200);
    const etag = stale.headers.get('etag')!;
    const fresh = await get('app-3.3.0', { authorization: bearer(), range: 'bytes=10-', 'if-range': etag });
    expect(fresh.status).toBe(206);
  });

  it('refuses no token, an expired token, a token for another release, a forged token and a blocked terminal', async () => {
    expect((await get('app-3.3.0')).status).toBe(401);
    const expired = issueDownloadToken(tokenKey, { releaseId: 'app-3.3.0', terminalId: 't', ttlSeconds: 60, now: new Date(Date.now() - 3600_000) });
    expect((await get('app-3.3.0', { authorization: `Bearer ${expired.token}` })).status).toBe(401);
    expect(await (await get('app-3.3.0', { authorization: bearer('t', 'app-9.9.9') })).json()).toMatchObject({ error: { message: /wrong-release/ } });
    const forged = issueDownloadToken(Buffer.alloc(32, 7), { releaseId: 'app-3.3.0', terminalId: 't' }).token;
    expect((await get('app-3.3.0', { authorization: `Bearer ${forged}` })).status).toBe(401);
    blocked.add('GZ-TH-0666');
    expect((await get('app-3.3.0', { authorization: bearer('GZ-TH-0666') })).status).toBe(403);
    expect((await get('app-0.0.1', { authorization: bearer('t', 'app-0.0.1') })).status).toBe(404);
  });

  it('token key survives a restart and tokens check their claims', async () => {
    expect(await dbStore(path.join(tmp, 'data')).tokenKey()).toEqual(tokenKey);
    const t = issueDownloadToken(tokenKey, { releaseId: 'r', terminalId: 'T1', ttlSeconds: 10, now: new Date(0) });
    expect(verifyDownloadToken(tokenKey, t.token, 'r', new Date(5000))).toEqual({ ok: true, terminalId: 'T1' });
    expect(verifyDownloadToken(tokenKey, t.token, 'r', new Date(10_000))).toEqual({ ok: false, reason: 'expired' });
    expect(verifyDownloadToken(tokenKey, 'garbage', 'r')).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('parseRange', () => {
  it('follows RFC 9110 for single ranges', () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=0-99', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(parseRange('bytes=50-500', 100)).toEqual({ kind: 'partial', start: 50, end: 99 });
    expect(parseRange('bytes=-500', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(parseRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-1,5-6', 100)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=9-3', 100)).toEqual({ kind: 'full' });
    expect(parseRange('items=0-1', 100)).toEqual({ kind: 'full' });
  });
});

describe('createReleases (the one-call wiring)', () => {
  it('mounted before an admin-only /api/v1 app, serves artifacts to terminals and builds valid update/targets', async () => {
    const { createReleases } = await import('./index.ts');
    const { updateTargetSchema } = await import('@kiosk-fleet/protocol');
    const dataDir = path.join(tmp, 'wired');
    const releases = await createReleases({
      store: dbStore(dataDir),
      releaseKeys: path.join(tmp, 'keys', 'release-public.pem'),
      logger,
      isAdminToken: (t) => t === 'admin-token-for-tests',
    });
    const hub = new Hono();
    hub.route('/api/v1/releases', releases.routes);
    const api = new Hono();
    api.use('*', async (c, next) => (c.req.header('authorization') === ADMIN ? next() : c.json({ error: { code: 'unauthorized' } }, 401)));
    api.get('/anything', (c) => c.json({}));
    hub.route('/api/v1', api);

    const res = await hub.request('/api/v1/releases', {
      method: 'POST',
      body: good.artifact,
      headers: { authorization: ADMIN, 'x-kf-manifest': good.manifest, 'x-kf-signature': good.signature },
    });
    expect(res.status).toBe(201);
    const rec = (await releases.store.get('app-3.3.0'))!;
    const target = releases.updateTarget(rec, 'GZ-TH-0001', { baseUrl: 'http://127.0.0.1:8080/', rolloutId: 'r-1' });
    expect(updateTargetSchema.safeParse(target).success).toBe(true);
    const dl = await hub.request(new URL(target.release!.url).pathname, { headers: { authorization: `Bearer ${target.token}` } });
    expect(dl.status).toBe(200);
    expect(Buffer.from(await dl.arrayBuffer())).toEqual(good.artifact);
    expect((await hub.request('/api/v1/releases', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await hub.request('/api/v1/anything')).status).toBe(401);
  });
});
