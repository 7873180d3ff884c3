/**
 * The SQLite ReleaseStore under the ArtifactStore's checks: artifacts in chunks, ranges across chunk boundaries,
 * complete or absent (a refused, cut-off or crashed upload leaves nothing a reader sees, and its chunks go), one copy
 * per content, and an upload that never holds the artifact in memory.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalManifestBytes } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, publicKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { silentLogger } from '../rollouts/testing.ts';
import { openDatabase, type Db } from '../store/db.ts';
import { ArtifactStore, ReleaseRefused } from './artifact-store.ts';
import { CHUNK_BYTES, SqliteReleaseStore } from './store.sqlite.ts';

const keys = generateReleaseKeyPair();
const priv = privateKeyFromPem(keys.privateKeyPem);
let tmp: string;
let db: Db;
let store: SqliteReleaseStore;
let artifacts: ArtifactStore;

function signed(version: string, bytes: { size: number; sha256: string }): { manifestB64: string; signatureB64: string } {
  const m = canonicalManifestBytes({ v: 1, kind: 'app', version, size: bytes.size, sha256: bytes.sha256, terminalTypes: ['id-card'], createdAt: new Date().toISOString() });
  return { manifestB64: Buffer.from(m).toString('base64'), signatureB64: signManifest(m, priv) };
}

function describeBytes(b: Buffer): { size: number; sha256: string } {
  return { size: b.length, sha256: createHash('sha256').update(b).digest('hex') };
}

async function read(sha256: string, start: number, end: number): Promise<Buffer> {
  const body = await store.openArtifact(sha256, { start, end });
  if (!body) throw new Error('not stored');
  return Buffer.from(await new Response(body).arrayBuffer());
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-release-store-'));
  ({ db } = openDatabase(tmp));
  store = new SqliteReleaseStore(db, { chunkBytes: 1000 });
  artifacts = await new ArtifactStore({ store, trustedKeys: [publicKeyFromPem(keys.publicKeyPem)], maxUploadBytes: 1 << 30, logger: silentLogger() }).init();
});

afterAll(() => {
  db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('SqliteReleaseStore', () => {
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
    const [first, second] = await Promise.allSettled([
      artifacts.ingest({ ...signed('7.0.0', describeBytes(a)), body: slow(a) }),
      artifacts.ingest({ ...signed('7.0.0', describeBytes(b)), body: slow(b) }),
    ]);
    const won = [first, second].filter((r) => r.status === 'fulfilled');
    const lost = [first, second].filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((r) => (r as PromiseRejectedResult).reason)).toEqual([expect.objectContaining({ code: 'release-exists', status: 409 })]);
    const stored = (await store.get('app-7.0.0'))!;
    expect(await read(stored.sha256, 0, 2499)).toEqual(stored.sha256 === describeBytes(a).sha256 ? a : b);

    const c = Buffer.alloc(2500, 13);
    const same = await Promise.all([0, 1].map(() => artifacts.ingest({ ...signed('7.1.0', describeBytes(c)), body: slow(c) })));
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
    const restarted = new SqliteReleaseStore(db, { chunkBytes: 1000 });
    await new ArtifactStore({ store: restarted, trustedKeys: [], maxUploadBytes: 1, logger: silentLogger() }).init();
    expect(await restarted.dropIncompleteUploads(Date.now() + 1)).toEqual({ chunks: 0 });
  });

  it('streams a large upload through one chunk of memory, never the whole artifact', async () => {
    const big = new SqliteReleaseStore(db); // the hub's chunk size
    const bigArtifacts = await new ArtifactStore({ store: big, trustedKeys: [publicKeyFromPem(keys.publicKeyPem)], maxUploadBytes: 1 << 30, logger: silentLogger() }).init();
    const piece = Buffer.alloc(64 * 1024);
    for (let i = 0; i < piece.length; i++) piece[i] = (i * 31) % 256;
    const pieces = 2048; // 128 MiB
    const size = piece.length * pieces;
    const hash = createHash('sha256');
    for (let i = 0; i < pieces; i++) hash.update(piece);
    const sha256 = hash.digest('hex');
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < pieces; i++) {
        if (i % 64 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
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
