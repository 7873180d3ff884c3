/**
 * What both ReleaseStores share: the release row's encoding (times in ms, terminal types as JSON text, on both
 * engines) and the upload that cuts a streamed body into the store's chunks.
 */
import type { ReleaseRecord } from './artifact-store.ts';
import type { releases } from './schema.ts';
import type { ArtifactUpload } from './store.ts';

/** 256 KiB: see README "Measured" (50 terminals downloading at once hold ~13 MiB). */
export const CHUNK_BYTES = 256 * 1024;
/** The `meta` key of the download-token key. */
export const TOKEN_KEY = 'release_token_key';

export type ReleaseRow = typeof releases.$inferSelect;

export function releaseRow(r: ReleaseRecord): ReleaseRow {
  return {
    id: r.id,
    kind: r.kind,
    version: r.version,
    size: r.size,
    sha256: r.sha256,
    terminalTypes: JSON.stringify(r.terminalTypes),
    minAgentVersion: r.minAgentVersion,
    createdAt: Date.parse(r.createdAt),
    uploadedAt: Date.parse(r.uploadedAt),
    keyId: r.keyId,
    manifest: r.manifest,
    signature: r.signature,
  };
}

export function releaseRecord(r: ReleaseRow): ReleaseRecord {
  return {
    id: r.id,
    kind: r.kind,
    version: r.version,
    size: r.size,
    sha256: r.sha256,
    terminalTypes: JSON.parse(r.terminalTypes) as string[],
    minAgentVersion: r.minAgentVersion,
    createdAt: new Date(r.createdAt).toISOString(),
    uploadedAt: new Date(r.uploadedAt).toISOString(),
    keyId: r.keyId,
    manifest: r.manifest,
    signature: r.signature,
  };
}

/** The engine's half of an upload. */
export interface ChunkSink {
  /** Chunk `n`; `data` is reused for the next chunk once the promise settles. */
  writeChunk(n: number, data: Buffer): Promise<void>;
  commit(chunkCount: number, record: ReleaseRecord): Promise<{ record: ReleaseRecord; created: boolean }>;
  abort(): Promise<void>;
}

export class ChunkedUpload implements ArtifactUpload {
  /** The chunk being filled: one buffer for the whole upload (each chunk's write settles before it is refilled). */
  #buf: Buffer | null = null;
  #pendingBytes = 0;
  #n = 0;
  #written = 0;
  #finished = false;

  constructor(
    private readonly sha256: string,
    private readonly size: number,
    private readonly chunkBytes: number,
    private readonly sink: ChunkSink,
  ) {}

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#finished) throw new Error('upload already finished');
    let b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#written += b.length;
    if (this.#written > this.size) throw new Error(`upload of ${this.sha256}: more than ${this.size} bytes written`);
    while (b.length > 0) {
      const take = Math.min(this.chunkBytes - this.#pendingBytes, b.length);
      this.#buf ??= Buffer.allocUnsafe(this.chunkBytes);
      b.copy(this.#buf, this.#pendingBytes, 0, take);
      this.#pendingBytes += take;
      b = b.subarray(take);
      if (this.#pendingBytes === this.chunkBytes) await this.#flush();
    }
  }

  async commit(record: ReleaseRecord): Promise<{ record: ReleaseRecord; created: boolean }> {
    if (this.#finished) throw new Error('upload already finished');
    if (record.sha256 !== this.sha256 || record.size !== this.size || this.#written !== this.size) {
      throw new Error(`upload of ${this.sha256}: ${this.#written} of ${this.size} bytes written, record says ${record.sha256} ${record.size}`);
    }
    await this.#flush();
    this.#finished = true;
    return this.sink.commit(this.#n, record);
  }

  async abort(): Promise<void> {
    this.#finished = true;
    this.#buf = null;
    await this.sink.abort();
  }

  async #flush(): Promise<void> {
    if (this.#pendingBytes === 0 || !this.#buf) return;
    const data = this.#buf.subarray(0, this.#pendingBytes);
    this.#pendingBytes = 0;
    await this.sink.writeChunk(this.#n++, data);
  }
}
