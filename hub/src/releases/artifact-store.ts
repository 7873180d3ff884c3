/**
 * The artifact store: verifies uploads and keeps releases with their artifacts in the hub's database through a
 * ReleaseStore (store.ts; `store.sqlite.ts` for SQLite). Each artifact is stored once, content-addressed by sha256,
 * whatever releases name it, as chunks written while the upload streams in.
 *
 * Invariants:
 * - Nothing becomes visible unless its manifest carries a signature by a trusted key AND the bytes received have
 *   exactly the manifest's size and sha256. The signature is checked before a single body byte is read.
 * - An artifact is complete or absent: its chunks are written as the body streams in, and one transaction commits
 *   the artifact row and the release only after the last chunk and the hash check. A refused or cut-off upload
 *   leaves no release; its chunks are dropped at once, or at the next start after a crash.
 * - A release id (`kind-version`) names one content forever: re-uploading identical bytes is a no-op, different
 *   bytes under the same id are refused (409), so a terminal never sees a version change under its feet.
 * - The whole artifact is never in memory: the upload holds one chunk, a download reads one chunk at a time.
 */
import { createHash, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { releaseId, type ReleaseManifest } from '@kiosk-fleet/protocol';
import { verifyManifest } from '@kiosk-fleet/protocol/release-signing';
import type { ArtifactUpload, ByteRange, ReleaseStore } from './store.ts';

export interface ReleaseRecord {
  id: string;
  kind: ReleaseManifest['kind'];
  version: string;
  size: number;
  sha256: string;
  terminalTypes: string[];
  minAgentVersion: string | null;
  createdAt: string;
  uploadedAt: string;
  /** Which trusted key signed it (first 16 hex of the key's sha256). */
  keyId: string;
  /** The manifest's signed bytes, base64, passed on untouched in `update/target`. */
  manifest: string;
  signature: string;
}

export type RefusalCode =
  | 'bad-request'
  | 'bad-signature'
  | 'bad-manifest'
  | 'too-large'
  | 'size-mismatch'
  | 'sha256-mismatch'
  | 'release-exists';

export class ReleaseRefused extends Error {
  override name = 'ReleaseRefused';
  constructor(
    readonly code: RefusalCode,
    readonly status: 400 | 409 | 413,
    message: string,
  ) {
    super(message);
  }
}

export interface ArtifactStoreOptions {
  store: ReleaseStore;
  trustedKeys: readonly KeyObject[];
  /** Largest artifact accepted, bytes. */
  maxUploadBytes: number;
  logger: Logger;
  /**
   * `init` drops chunks of unfinished uploads written this long ago or earlier. Default: the store's
   * `incompleteUploadGraceMs` (0 on SQLite, hours on PostgreSQL, where other hubs' uploads may be in flight).
   */
  staleUploadMs?: number;
}

export interface IngestInput {
  manifestB64: string | undefined;
  signatureB64: string | undefined;
  /** Declared Content-Length, if any: refused early when it cannot match. */
  contentLength?: number | undefined;
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | null;
  /** Keep this upload time (an import of an older hub's release) instead of now. */
  uploadedAt?: string;
  /** Who uploads, for the log lines. */
  actor?: string | undefined;
}

function decodeBase64Strict(s: string): Buffer | null {
  const t = s.trim();
  if (t === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(t)) return null;
  const buf = Buffer.from(t, 'base64');
  return buf.toString('base64') === t ? buf : null;
}

export class ArtifactStore {
  private readonly opts: ArtifactStoreOptions;
  private readonly store: ReleaseStore;
  /** Refused uploads by code, for /metrics. */
  readonly refusals = new Map<RefusalCode, number>();

  constructor(opts: ArtifactStoreOptions) {
    this.opts = { ...opts, trustedKeys: [...opts.trustedKeys] };
    this.store = opts.store;
  }

  /** Drop what uploads cut short by a crash left behind. Call once before use. */
  async init(): Promise<this> {
    const { chunks } = await this.store.dropIncompleteUploads(Date.now() - (this.opts.staleUploadMs ?? this.store.incompleteUploadGraceMs));
    if (chunks > 0) this.opts.logger.warn({ chunks }, 'chunks of unfinished release uploads dropped');
    return this;
  }

  list(): Promise<ReleaseRecord[]> {
    return this.store.list();
  }

  get(id: string): Promise<ReleaseRecord | undefined> {
    return this.store.get(id);
  }

  /** The bytes `range` (inclusive) of a stored artifact as a stream, or null when it is not stored. */
  openArtifact(sha256: string, range: ByteRange): Promise<ReadableStream<Uint8Array> | null> {
    return this.store.openArtifact(sha256, range);
  }

  private refuse(who: { actor: string | null }, code: RefusalCode, status: 400 | 409 | 413, message: string): never {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
    this.opts.logger.warn({ code, ...who }, `release upload refused: ${message}`);
    throw new ReleaseRefused(code, status, message);
  }

  /** Verify and store an upload. Returns the record and whether it was new. Throws ReleaseRefused. */
  async ingest(input: IngestInput): Promise<{ record: ReleaseRecord; created: boolean }> {
    const who = { actor: input.actor ?? null };
    if (input.manifestB64 === undefined || input.signatureB64 === undefined) {
      this.refuse(who, 'bad-request', 400, 'X-KF-Manifest and X-KF-Signature headers are required');
    }
    const manifestBytes = decodeBase64Strict(input.manifestB64);
    if (!manifestBytes) this.refuse(who, 'bad-request', 400, 'X-KF-Manifest is not base64');
    const check = verifyManifest(manifestBytes, input.signatureB64, this.opts.trustedKeys);
    if (!check.ok) this.refuse(who, check.code, 400, check.reason);
    const m = check.manifest;
    const id = releaseId(m);

    const existing = await this.store.get(id);
    if (existing) {
      if (existing.sha256 === m.sha256) return { record: existing, created: false };
      this.refuse(who, 'release-exists', 409, `${id} exists with other content (sha256 ${existing.sha256.slice(0, 12)}…); publish a new version`);
    }
    if (m.size > this.opts.maxUploadBytes) {
      this.refuse(who, 'too-large', 413, `artifact of ${m.size} bytes exceeds the limit of ${this.opts.maxUploadBytes}`);
    }
    if (input.contentLength !== undefined && input.contentLength !== m.size) {
      this.refuse(who, 'size-mismatch', 400, `body is ${input.contentLength} bytes, manifest says ${m.size}`);
    }
    if (!input.body) this.refuse(who, 'size-mismatch', 400, `empty body, manifest says ${m.size} bytes`);

    // Content-addressed: bytes stored already (under another release id) are checked but not written again.
    const upload: ArtifactUpload | null = (await this.store.hasArtifact(m.sha256)) ? null : await this.store.beginArtifact(m.sha256, m.size);
    const hash = createHash('sha256');
    let received = 0;
    let finished = false;
    try {
      for await (const chunk of input.body) {
        received += chunk.byteLength;
        // Stop reading at the first byte beyond the signed size: a sender cannot make us store more than was signed.
        if (received > m.size) this.refuse(who, 'size-mismatch', 400, `body exceeds the manifest size of ${m.size} bytes`);
        hash.update(chunk);
        if (upload) await upload.write(chunk);
      }
      if (received !== m.size) this.refuse(who, 'size-mismatch', 400, `body is ${received} bytes, manifest says ${m.size}`);
      const digest = hash.digest('hex');
      if (digest !== m.sha256) this.refuse(who, 'sha256-mismatch', 400, `body sha256 ${digest} does not match the signed ${m.sha256}`);

      const record: ReleaseRecord = {
        id,
        kind: m.kind,
        version: m.version,
        size: m.size,
        sha256: m.sha256,
        terminalTypes: [...m.terminalTypes],
        minAgentVersion: m.minAgentVersion ?? null,
        createdAt: m.createdAt,
        uploadedAt: input.uploadedAt ?? new Date().toISOString(),
        keyId: check.keyId,
        manifest: manifestBytes.toString('base64'),
        signature: input.signatureB64.trim(),
      };
      const stored = upload ? await upload.commit(record) : await this.store.put(record);
      finished = true;
      if (!stored.created) {
        // Two uploads of one id racing: the first to commit wins, the second is judged against it.
        if (stored.record.sha256 === record.sha256) return { record: stored.record, created: false };
        this.refuse(who, 'release-exists', 409, `${id} was stored meanwhile with other content`);
      }
      this.opts.logger.info({ releaseId: id, sha256: m.sha256, size: m.size, keyId: check.keyId, ...who }, 'release stored');
      return { record: stored.record, created: true };
    } finally {
      if (upload && !finished) {
        await upload.abort().catch((err: unknown) => this.opts.logger.error({ err, releaseId: id }, 'dropping a refused upload failed'));
      }
    }
  }
}
