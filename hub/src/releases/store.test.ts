/**
 * The ReleaseStore contract on both engines, under the ArtifactStore's checks: artifacts in chunks, ranges across
 * chunk boundaries, complete or absent (a refused, cut-off or crashed upload leaves nothing a reader sees, and its
 * chunks go), one copy per content, an upload that never holds the artifact in memory, and one token key for every
 * hub on the database.
 */
import { createHash } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalManifestBytes } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, publicKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { silentLogger } from '../rollouts/testing.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { ArtifactStore, ReleaseRefused } from './artifact-store.ts';
import { CHUNK_BYTES } from './chunked-upload.ts';
import { createReleaseStore, type ReleaseStore } from './store.ts';

// What a store holds, not the garbage its driver leaves for the next GC (postgres.js sends a bytea chunk as hex text,
// three short-lived copies of each chunk): the memory check collects before it measures.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const keys = generateReleaseKeyPair();
const priv = privateKeyFromPem(keys.privateKeyPem);

function signed(version: string, bytes: { size: number; sha256: string }): { manifestB64: string; signatureB64: string } {
  const m = canonicalManifestBytes({ v: 1, kind: 'app', version, size: bytes.size, sha256: bytes.sha256, terminalTypes: ['id-card'], createdAt: new Date().toISOString() });
  return { manifestB64: Buffer.from(m).toString('base64'), signatureB64: signManifest(m, priv) };
}

function describeBytes(b: Buffer): { size: number; sha256: string } {
  return { size: b.length, sha256: createHash('sha256').update(b).digest('hex') };
}

describe.each(TEST_ENGINES)('ReleaseStore on %s', (kind) => {
  let t: TestEngine;
  let store: ReleaseStore;
  let artifacts: ArtifactStore;

  async function read(sha256: string, start: number, end: number): Promise<Buffer> {
    const body = await store.openArtifact(sha256, { start, end });
    if (!body) throw new Error('not stored');
    return Buffer.from(await new Response(body).arrayBuffer());
  }

  /** Chunks no artifact points at, counted without dropping them. */
  async function countChunks(): Promise<number> {
    const e = t.engine;
    if (e.kind === 'sqlite') {
      return (e.db.prepare('SELECT count(*) AS n FROM release_artifact_chunks WHERE content_id NOT IN (SELECT content_id FROM release_artifacts)').get() as { n: number }).n;
    }
    const [row] = await e.pg.sql<{ n: number }[]>`select count(*)::int as n from release_artifact_chunks where content_id not in (select content_id from release_artifacts)`;
    return row!.n;
  }

  beforeAll(async () => {
    t = await openTestEngine(kind);
    store = createReleaseStore(t.engine, { chunkBytes: 1000 });
    artifacts = await new ArtifactStore({ store, trustedKeys: [publicKeyFromPem(keys.publicKeyPem)], maxUploadBytes: 1 << 30, logger: silentLogger() }).init();
  });

  afterAll(async () => {
    await t.close();
  });

  const bytes = Buffer.from(Array.from({ length: 3500 }, (_, i) => (i * 7) % 251));

  it('serves any byte range of an artifact stored in chunks, whatever the pieces the upload came in', async () => {
    // pieces of odd sizes, so chunk boundaries fall inside them
    const pieces = [bytes.subarray(0, 1), bytes.subarray(1, 999), bytes.subarray(999, 2001), bytes.subarray(2001)];
    const { record, created } = await artifacts.ingest({ ...signed('1.0.0', describeBytes(bytes)), body: pieces });
    expect(created).toBe(true);
    for (const [a, b] of [[0, 3499], [0, 0], [999, 1000], [1000, 1999], [1500, 3100], [3499, 3499], [2999, 3000]] as const) {
      expect(await read(record.sha256, a, b), `${a}-${b}`).toEqual(bytes.subarray(a, b + 1));
    }
    await expect(store.openArtifact(record.sha256, { start: 10, end: 3500 })).rejects.toThrow(RangeError);
    expect(await store.openArtifact('0'.repeat(64), { start: 0, end: 0 })).toBeNull();
  });

  it('keeps one copy of content that two releases name, and a re-upload changes nothing', async () => {
    const again = await artifacts.ingest({ ...signed('1.0.0', describeBytes(bytes)), body: [bytes] });
    expect(again.created).toBe(false);
    const twin = await artifacts.ingest({ ...signed('1.0.1', describeBytes(bytes)), body: [bytes] });
    expect(twin.created).toBe(true);
    expect((await store.list()).map((r) => r.id)).toEqual(['app-1.0.1', 'app-1.0.0']);
    // nothing was left behind by the second copy either
    expect(await store.dropIncompleteUploads(Date.now() + 1)).toEqual({ chunks: 0 });
    expect(await read(twin.record.sha256, 0, bytes.length - 1)).toEqual(bytes);
  });

  it('two uploads racing for one release id: the first to commit wins, other bytes get 409, the same bytes 200', async () => {
    const a = Buffer.alloc(2500, 11);
    const b = Buffer.alloc(2500, 12);
    // bodies that yield between pieces, so both uploads are in flight together
    async function* slow(x: Buffer): AsyncGenerator<Buffer> {
      for (let i = 0; i < x.length; i += 500) {
        await new Promise((r) => setImmediate(r));
        yield x.subarray(i, i + 500);
      }
    }
    // the second upload reaches another hub on the same database
    const otherHub = await new ArtifactStore({ store: createReleaseStore(t.engine, { chunkBytes: 1000 }), trustedKeys: [publicKeyFromPem(keys.publicKeyPem)], maxUploadBytes: 1 << 30, logger: silentLogger() }).init();
    const [first, second] = await Promise.allSettled([
      otherHub.ingest({ ...signed('7.0.0', describeBytes(a)), body: slow(a) }),
      artifacts.ingest({ ...signed('7.0.0', describeBytes(b)), body: slow(b) }),
    ]);
    const won = [first, second].filter((r) => r.status === 'fulfilled');
    const lost = [first, second].filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((r) => (r as PromiseRejectedResult).reason)).toEqual([expect.objectContaining({ code: 'release-exists', status: 409 })]);
    const stored = (await store.get('app-7.0.0'))!;
    expect(await read(stored.sha256, 0, 2499)).toEqual(stored.sha256 === describeBytes(a).sha256 ? a : b);

    const c = Buffer.alloc(2500, 13);
    const same = await Promise.all([artifacts, otherHub].map((hub) => hub.ingest({ ...signed('7.1.0', describeBytes(c)), body: slow(c) })));
    expect(same.map((r) => r.created).sort()).toEqual([false, true]);
    expect(await store.dropIncompleteUploads(Date.now() + 1)).toEqual({ chunks: 0 });
  });

  it('an upload cut off by its client, or refused after its last byte, leaves no release and no chunk', async () => {
    const other = Buffer.alloc(2500, 3);
    async function* cut(): AsyncGenerator<Buffer> {
      yield other.subarray(0, 2000);
      throw new Error('client went away');
    }
    await expect(artifacts.ingest({ ...signed('2.0.0', describeBytes(other)), body: cut() })).rejects.toThrow(/went away/);
    const tampered = Buffer.from(other);
    tampered[2400] = 4;
    await expect(artifacts.ingest({ ...signed('2.0.0', describeBytes(other)), body: [tampered] })).rejects.toBeInstanceOf(ReleaseRefused);
    expect(await store.get('app-2.0.0')).toBeUndefined();
    expect(await store.hasArtifact(describeBytes(other).sha256)).toBe(false);
    expect(await store.dropIncompleteUploads(Date.now() + 1)).toEqual({ chunks: 0 });
  });

  it('after a crash mid-upload, the next start drops the chunks and nothing of it was ever visible', async () => {
    const other = Buffer.alloc(2500, 5);
    const { sha256 } = describeBytes(other);
    const upload = await store.beginArtifact(sha256, other.length);
    await upload.write(other.subarray(0, 2100)); // two chunks written, then the process dies
    expect(await store.hasArtifact(sha256)).toBe(false);
    await new Promise((r) => setTimeout(r, 5)); // the restart comes later than the last chunk's write time
    const restarted = createReleaseStore(t.engine, { chunkBytes: 1000 });
    // A start right away keeps them where other hubs share the database (they could be another hub's upload)...
    await new ArtifactStore({ store: restarted, trustedKeys: [], maxUploadBytes: 1, logger: silentLogger() }).init();
    const left = await countChunks();
    expect(left).toBe(kind === 'sqlite' ? 0 : 2);
    // ...and a start past the grace drops them (staleUploadMs: 0 stands for "hours later")
    await new ArtifactStore({ store: restarted, trustedKeys: [], maxUploadBytes: 1, logger: silentLogger(), staleUploadMs: 0 }).init();
    expect(await countChunks()).toBe(0);
    expect(await restarted.hasArtifact(sha256)).toBe(false);
  });

  it('an upload whose first chunks were dropped as stale meanwhile is refused at commit, never stored with a hole', async () => {
    const other = Buffer.alloc(2500, 6);
    const { sha256 } = describeBytes(other);
    const upload = await store.beginArtifact(sha256, other.length);
    await upload.write(other.subarray(0, 2100));
    expect(await store.dropIncompleteUploads(Date.now() + 1)).toEqual({ chunks: 2 });
    await upload.write(other.subarray(2100));
    const like = (await store.get('app-1.0.0'))!;
    await expect(upload.commit({ ...like, id: 'app-6.0.0', version: '6.0.0', size: other.length, sha256 })).rejects.toThrow(/1 of 3 chunks/);
    expect(await store.get('app-6.0.0')).toBeUndefined();
    expect(await store.hasArtifact(sha256)).toBe(false);
    await upload.abort();
    expect(await countChunks()).toBe(0);
  });

  it('keeps a release record as it was given: every field, in the same shape on both engines', async () => {
    const b = Buffer.alloc(1200, 21);
    const m = canonicalManifestBytes({
      v: 1, kind: 'agent', version: '4.0.0-rc.1', size: b.length, sha256: describeBytes(b).sha256,
      terminalTypes: ['id-card', 'endorsement'], minAgentVersion: '1.2.0', createdAt: '2026-11-30T08:00:00.000Z',
    });
    const { record } = await artifacts.ingest({ manifestB64: Buffer.from(m).toString('base64'), signatureB64: signManifest(m, priv), body: [b], uploadedAt: '2026-12-01T09:30:00.123Z' });
    expect(await store.get('agent-4.0.0-rc.1')).toEqual({
      id: 'agent-4.0.0-rc.1',
      kind: 'agent',
      version: '4.0.0-rc.1',
      size: 1200,
      sha256: describeBytes(b).sha256,
      terminalTypes: ['id-card', 'endorsement'],
      minAgentVersion: '1.2.0',
      createdAt: '2026-11-30T08:00:00.000Z',
      uploadedAt: '2026-12-01T09:30:00.123Z',
      keyId: record.keyId,
      manifest: Buffer.from(m).toString('base64'),
      signature: record.signature,
    });
    expect(await store.get('agent-9.9.9')).toBeUndefined();
    expect(await store.hasArtifact(record.sha256)).toBe(true);
  });

  it('put: a release over stored bytes is created once; over bytes never stored it is refused', async () => {
    const b = Buffer.alloc(1500, 22);
    const { record } = await artifacts.ingest({ ...signed('5.0.0', describeBytes(b)), body: [b] });
    const twin = { ...record, id: 'app-5.0.1', version: '5.0.1' };
    expect(await store.put(twin)).toEqual({ record: twin, created: true });
    expect(await store.put({ ...twin, uploadedAt: new Date().toISOString() })).toEqual({ record: twin, created: false });
    await expect(store.put({ ...twin, id: 'app-5.0.2', version: '5.0.2', sha256: 'f'.repeat(64) })).rejects.toThrow(/not stored/);
    expect(await store.get('app-5.0.2')).toBeUndefined();
    expect(await read(twin.sha256, 0, b.length - 1)).toEqual(b);
  });

  it('drops only unfinished uploads older than the cut: another hub\'s upload in flight keeps its chunks', async () => {
    const b = Buffer.alloc(2500, 23);
    const { sha256 } = describeBytes(b);
    const before = Date.now() - 1;
    const inFlight = await store.beginArtifact(sha256, b.length);
    await inFlight.write(b.subarray(0, 2000)); // two chunks
    expect(await store.dropIncompleteUploads(before)).toEqual({ chunks: 0 });
    await inFlight.write(b.subarray(2000));
    const record = (await store.list()).find((r) => r.id === 'app-1.0.0')!;
    expect((await inFlight.commit({ ...record, id: 'app-8.0.0', version: '8.0.0', size: b.length, sha256 })).created).toBe(true);
    expect(await read(sha256, 0, b.length - 1)).toEqual(b);
    expect(await store.dropIncompleteUploads(Date.now() + 1)).toEqual({ chunks: 0 });
  });

  it('every hub on the database signs download tokens with one key: the first one made, or an older hub\'s file', async () => {
    const older = Buffer.alloc(32, 7);
    const fresh = await openTestEngine(kind);
    const other = await openTestEngine(kind);
    try {
      const [a, b] = [createReleaseStore(fresh.engine), createReleaseStore(fresh.engine)];
      expect(await a.tokenKey(older)).toEqual(older);
      expect(await b.tokenKey()).toEqual(older);
      expect(await b.tokenKey(Buffer.alloc(32, 8))).toEqual(older);
      // two hubs starting together on an empty database agree; a candidate too short to be a key is not taken
      const [c, d] = [createReleaseStore(other.engine), createReleaseStore(other.engine)];
      const [kc, kd] = await Promise.all([c.tokenKey(Buffer.alloc(8, 1)), d.tokenKey()]);
      expect(kc).toEqual(kd);
      expect(kc.length).toBe(32);
    } finally {
      await fresh.close();
      await other.close();
    }
  });

  it('streams a large upload through one chunk of memory, never the whole artifact', async () => {
    const big = createReleaseStore(t.engine); // the hub's chunk size
    const bigArtifacts = await new ArtifactStore({ store: big, trustedKeys: [publicKeyFromPem(keys.publicKeyPem)], maxUploadBytes: 1 << 30, logger: silentLogger() }).init();
    const piece = Buffer.alloc(64 * 1024);
    for (let i = 0; i < piece.length; i++) piece[i] = (i * 31) % 256;
    const pieces = 2048; // 128 MiB
    const size = piece.length * pieces;
    const hash = createHash('sha256');
    for (let i = 0; i < pieces; i++) hash.update(piece);
    const sha256 = hash.digest('hex');
    gc();
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < pieces; i++) {
        if (i % 64 === 0) {
          gc();
          peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
        }
        yield piece; // the same buffer each time, as a source that reuses its buffer does
      }
    }
    const { record } = await bigArtifacts.ingest({ ...signed('3.0.0', { size, sha256 }), body: body() });
    expect(record.size).toBe(size);
    // a buffered upload would hold 128 MiB here; the store holds one 256 KiB chunk
    expect(peak).toBeLessThan(32 * 1024 * 1024);
    // and reads it back, across its chunks, to the same sha256
    const tail = await big.openArtifact(sha256, { start: CHUNK_BYTES - 10, end: size - 1 });
    const check = createHash('sha256');
    for (let i = 0; i < Math.floor((CHUNK_BYTES - 10) / piece.length); i++) check.update(piece);
    check.update(piece.subarray(0, (CHUNK_BYTES - 10) % piece.length));
    for await (const b of tail!) check.update(b);
    expect(check.digest('hex')).toBe(sha256);
  }, 120_000);
});
