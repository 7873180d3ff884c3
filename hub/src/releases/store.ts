/**
 * What releases need from the database, engine-neutral: release records, artifacts stored in chunks, the download
 * token key. `store.sqlite.ts` implements it on the hub's SQLite file, `store.postgres.ts` on PostgreSQL;
 * `createReleaseStore(engine)` picks one.
 *
 * The store keeps the storage half of artifact-store.ts's invariants; the checks (signature, size, sha256) are the
 * caller's, done on the bytes while they stream through `ArtifactUpload.write`:
 * - An artifact is complete or absent: its chunks are invisible until `commit` writes, in one transaction, its
 *   `release_artifacts` row together with the release. A crash, a refusal or `abort` leaves only unreferenced
 *   chunks, which `dropIncompleteUploads` removes.
 * - Content-addressed: a commit whose sha256 is stored already keeps the stored copy and drops its own chunks.
 * - A release id names one content forever: `commit` and `put` never replace a release; they return the stored one
 *   for the caller to compare.
 */
import type { Engine } from '../db/engine.ts';
import type { ReleaseRecord } from './artifact-store.ts';
import { PostgresReleaseStore } from './store.postgres.ts';
import { SqliteReleaseStore } from './store.sqlite.ts';

export interface ArtifactUpload {
  /** Append bytes, in order, any size: the store cuts them into its chunks (never holding more than one). */
  write(bytes: Uint8Array): Promise<void>;
  /**
   * After every byte was written and checked: in one transaction, the artifact (unless its sha256 is stored
   * already) and the release. When the release id exists already nothing is written and the stored release comes
   * back with `created: false`; the upload is finished either way.
   */
  commit(record: ReleaseRecord): Promise<{ record: ReleaseRecord; created: boolean }>;
  /** Drop what was written (refused, or the client went away). */
  abort(): Promise<void>;
}

/** Inclusive byte offsets, as in HTTP Range. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ReleaseStore {
  /**
   * How old unreferenced chunks must be before a start drops them as a crashed upload's: 0 where only this process
   * writes (SQLite), longer than any upload takes where several hubs share the database (another hub's upload in
   * flight has unreferenced chunks too).
   */
  readonly incompleteUploadGraceMs: number;
  get(id: string): Promise<ReleaseRecord | undefined>;
  /** Newest upload first. */
  list(): Promise<ReleaseRecord[]>;
  hasArtifact(sha256: string): Promise<boolean>;
  /** Start writing the bytes of the artifact `sha256` (`size` bytes, as signed). */
  beginArtifact(sha256: string, size: number): Promise<ArtifactUpload>;
  /** A release whose artifact is stored already (same bytes under another id): same answer as `commit`. */
  put(record: ReleaseRecord): Promise<{ record: ReleaseRecord; created: boolean }>;
  /** The bytes `range` of a stored artifact, read chunk by chunk as the stream is pulled; null when not stored. */
  openArtifact(sha256: string, range: ByteRange): Promise<ReadableStream<Uint8Array> | null>;
  /** Remove chunks no artifact points at that were written before `before` (ms): uploads a crash cut short. */
  dropIncompleteUploads(before: number): Promise<{ chunks: number }>;
  /**
   * The key of download tokens (tokens.ts), the same for every hub on this database: made once, from `candidate`
   * when given (a key an older hub kept in a file, so its tokens stay valid) or random.
   */
  tokenKey(candidate?: Buffer): Promise<Buffer>;
}

/** The release store on the hub's database. `chunkBytes` only for tests that want many chunks from a small artifact. */
export function createReleaseStore(engine: Engine, o: { chunkBytes?: number } = {}): ReleaseStore {
  return engine.kind === 'sqlite' ? new SqliteReleaseStore(engine.db, o) : new PostgresReleaseStore(engine.pg, o);
}
