/**
 * ReleaseStore on the hub's SQLite file (drizzle + better-sqlite3; synchronous underneath, so each method finishes
 * within its call and the one connection's transactions never span an await).
 *
 * Chunks are 256 KiB: a download reads one chunk per pull of its stream (an HTTP Range starting mid-artifact reads
 * from the chunk holding its first byte), an upload holds at most one chunk in memory, and a 512 MiB artifact is
 * 2,048 rows. Each chunk is written in its own short transaction as the upload streams in, so ingest's batches
 * (same connection) run between them; only the final commit (artifact row + release row) is one transaction.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { and, desc, eq, lt, notInArray, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import type { Db } from '../store/db.ts';
import { meta } from '../store/schema.ts';
import type { ReleaseRecord } from './artifact-store.ts';
import { releaseArtifactChunks as chunks, releaseArtifacts as artifacts, releases } from './schema.ts';
import { CHUNK_BYTES, ChunkedUpload, releaseRecord as toRecord, releaseRow as toRow, TOKEN_KEY } from './chunked-upload.ts';
import type { ArtifactUpload, ByteRange, ReleaseStore } from './store.ts';

export { CHUNK_BYTES } from './chunked-upload.ts';

export class SqliteReleaseStore implements ReleaseStore {
  /** One process writes the file (the data dir's lock): every unreferenced chunk at start is a crashed upload's. */
  readonly incompleteUploadGraceMs = 0;
  readonly #orm;
  readonly #chunkBytes: number;
  readonly #q;

  /** `chunkBytes` only for tests that want many chunks from a small artifact. */
  constructor(db: Db, o: { chunkBytes?: number } = {}) {
    this.#orm = drizzle(db, { schema: { releases, artifacts, chunks, meta } });
    this.#chunkBytes = o.chunkBytes ?? CHUNK_BYTES;
    const orm = this.#orm;
    this.#q = {
      release: orm.select().from(releases).where(eq(releases.id, sql.placeholder('id'))).prepare(),
      artifact: orm.select().from(artifacts).where(eq(artifacts.sha256, sql.placeholder('sha256'))).prepare(),
      chunk: orm
        .select({ data: chunks.data })
        .from(chunks)
        .where(and(eq(chunks.contentId, sql.placeholder('contentId')), eq(chunks.n, sql.placeholder('n'))))
        .prepare(),
      insertChunk: orm
        .insert(chunks)
        .values({ contentId: sql.placeholder('contentId'), n: sql.placeholder('n'), data: sql.placeholder('data'), writtenAt: sql.placeholder('writtenAt') })
        .prepare(),
    };
  }

  async get(id: string): Promise<ReleaseRecord | undefined> {
    const row = this.#q.release.get({ id });
    return row ? toRecord(row) : undefined;
  }

  async list(): Promise<ReleaseRecord[]> {
    return this.#orm.select().from(releases).orderBy(desc(releases.uploadedAt), desc(releases.id)).all().map(toRecord);
  }

  async hasArtifact(sha256: string): Promise<boolean> {
    return this.#q.artifact.get({ sha256 }) !== undefined;
  }

  async beginArtifact(sha256: string, size: number): Promise<ArtifactUpload> {
    const contentId = randomUUID();
    const chunkBytes = this.#chunkBytes;
    return new ChunkedUpload(sha256, size, chunkBytes, {
      writeChunk: async (n, data) => this.writeChunk(contentId, n, data),
      commit: async (chunkCount, record) => this.commitUpload(contentId, chunkCount, chunkBytes, record),
      abort: async () => this.abortUpload(contentId),
    });
  }

  async put(record: ReleaseRecord): Promise<{ record: ReleaseRecord; created: boolean }> {
    return this.#orm.transaction(
      (tx) => {
        const existing = tx.select().from(releases).where(eq(releases.id, record.id)).get();
        if (existing) return { record: toRecord(existing), created: false };
        if (!tx.select({ sha256: artifacts.sha256 }).from(artifacts).where(eq(artifacts.sha256, record.sha256)).get()) {
          throw new Error(`artifact ${record.sha256} is not stored`);
        }
        tx.insert(releases).values(toRow(record)).run();
        return { record, created: true };
      },
      { behavior: 'immediate' },
    );
  }

  async openArtifact(sha256: string, range: ByteRange): Promise<ReadableStream<Uint8Array> | null> {
    const a = this.#q.artifact.get({ sha256 });
    if (!a) return null;
    const { start, end } = range;
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end < a.size)) {
      throw new RangeError(`bytes ${start}-${end} outside artifact ${sha256} of ${a.size} bytes`);
    }
    const last = Math.floor(end / a.chunkSize);
    let n = Math.floor(start / a.chunkSize);
    const chunk = this.#q.chunk;
    return new ReadableStream<Uint8Array>(
      {
        pull(ctl) {
          const row = chunk.get({ contentId: a.contentId, n });
          if (!row) {
            ctl.error(new Error(`artifact ${sha256}: chunk ${n} of ${a.chunks} missing`));
            return;
          }
          const base = n * a.chunkSize;
          ctl.enqueue(row.data.subarray(Math.max(start - base, 0), Math.min(end - base + 1, row.data.length)));
          if (++n > last) ctl.close();
        },
      },
      // Read a chunk only when the client took the previous one: a slow terminal holds one chunk, not the artifact.
      { highWaterMark: 0 },
    );
  }

  async dropIncompleteUploads(before: number): Promise<{ chunks: number }> {
    const r = this.#orm
      .delete(chunks)
      .where(and(lt(chunks.writtenAt, before), notInArray(chunks.contentId, this.#orm.select({ c: artifacts.contentId }).from(artifacts))))
      .run();
    return { chunks: r.changes };
  }

  async tokenKey(candidate?: Buffer): Promise<Buffer> {
    const key = candidate && candidate.length >= 32 ? candidate : randomBytes(32);
    // First writer wins, so every hub on this database signs with the same key.
    this.#orm.insert(meta).values({ key: TOKEN_KEY, value: key.toString('base64') }).onConflictDoNothing().run();
    const row = this.#orm.select({ value: meta.value }).from(meta).where(eq(meta.key, TOKEN_KEY)).get();
    return Buffer.from(row!.value, 'base64');
  }

  // ------------------------------------------------------------------ for its uploads

  writeChunk(contentId: string, n: number, data: Buffer): void {
    this.#q.insertChunk.run({ contentId, n, data, writtenAt: Date.now() });
  }

  commitUpload(contentId: string, chunkCount: number, chunkBytes: number, record: ReleaseRecord): { record: ReleaseRecord; created: boolean } {
    return this.#orm.transaction(
      (tx) => {
        const have = tx.select({ n: sql<number>`count(*)` }).from(chunks).where(eq(chunks.contentId, contentId)).get()!.n;
        if (have !== chunkCount) throw new Error(`upload of ${record.sha256}: ${have} of ${chunkCount} chunks stored (dropped as stale meanwhile?)`);
        const existing = tx.select().from(releases).where(eq(releases.id, record.id)).get();
        if (existing) {
          tx.delete(chunks).where(eq(chunks.contentId, contentId)).run();
          return { record: toRecord(existing), created: false };
        }
        const stored = tx.select({ sha256: artifacts.sha256 }).from(artifacts).where(eq(artifacts.sha256, record.sha256)).get();
        if (stored) {
          // Same bytes uploaded under another id meanwhile: one copy is enough.
          tx.delete(chunks).where(eq(chunks.contentId, contentId)).run();
        } else {
          tx.insert(artifacts)
            .values({ sha256: record.sha256, size: record.size, chunkSize: chunkBytes, chunks: chunkCount, contentId, storedAt: Date.now() })
            .run();
        }
        tx.insert(releases).values(toRow(record)).run();
        return { record, created: true };
      },
      { behavior: 'immediate' },
    );
  }

  abortUpload(contentId: string): void {
    // Never the chunks of a stored artifact, whatever the caller believes about its commit.
    this.#orm
      .delete(chunks)
      .where(and(eq(chunks.contentId, contentId), notInArray(chunks.contentId, this.#orm.select({ c: artifacts.contentId }).from(artifacts))))
      .run();
  }
}
