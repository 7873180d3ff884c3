/**
 * The content-addressed artifact store: `<dataDir>/artifacts/<sha256>` holds each artifact once, whatever release
 * names it; `<dataDir>/artifacts/index.json` holds the release records (until the hub's store has a releases table,
 * see schema.ts); `<dataDir>/artifacts/tmp/` holds uploads in flight.
 *
 * Invariants:
 * - Nothing lands under `artifacts/` unless its manifest carries a signature by a trusted key AND the bytes received
 *   have exactly the manifest's size and sha256. The signature is checked before a single body byte is read.
 * - An artifact file is complete or absent: it is written under tmp/, fsynced, then renamed into place.
 * - index.json is replaced atomically (write tmp, fsync, rename, fsync dir); writes are serialised in-process.
 * - A release id (`kind-version`) names one content forever: re-uploading identical bytes is a no-op, different
 *   bytes under the same id are refused (409), so a terminal never sees a version change under its feet.
 */
import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { releaseId, type ReleaseManifest } from '@kiosk-fleet/protocol';
import { verifyManifest } from '@kiosk-fleet/protocol/release-signing';
import { PRIVATE_FILE_MODE, privateDir } from '../data-dir.ts';

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
  dataDir: string;
  trustedKeys: readonly KeyObject[];
  /** Largest artifact accepted, bytes. */
  maxUploadBytes: number;
  logger: Logger;
}

export interface IngestInput {
  manifestB64: string | undefined;
  signatureB64: string | undefined;
  /** Declared Content-Length, if any: refused early when it cannot match. */
  contentLength?: number | undefined;
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | null;
}

const INDEX_VERSION = 1;

function decodeBase64Strict(s: string): Buffer | null {
  const t = s.trim();
  if (t === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(t)) return null;
  const buf = Buffer.from(t, 'base64');
  return buf.toString('base64') === t ? buf : null;
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export class ArtifactStore {
  readonly dir: string;
  private readonly tmpDir: string;
  private readonly indexFile: string;
  private readonly opts: ArtifactStoreOptions;
  private releases = new Map<string, ReleaseRecord>();
  private indexWrite: Promise<void> = Promise.resolve();
  /** Refused uploads by code, for /metrics. */
  readonly refusals = new Map<RefusalCode, number>();

  constructor(opts: ArtifactStoreOptions) {
    this.opts = { ...opts, trustedKeys: [...opts.trustedKeys] };
    this.dir = path.join(opts.dataDir, 'artifacts');
    this.tmpDir = path.join(this.dir, 'tmp');
    this.indexFile = path.join(this.dir, 'index.json');
  }

  /** Create the directories, drop uploads a crash left half-way, load the index. Call once before use. */
  init(): this {
    privateDir(this.tmpDir);
    for (const f of fs.readdirSync(this.tmpDir)) fs.rmSync(path.join(this.tmpDir, f), { force: true, recursive: true });
    try {
      const raw = JSON.parse(fs.readFileSync(this.indexFile, 'utf8')) as { v: number; releases: ReleaseRecord[] };
      if (raw.v !== INDEX_VERSION || !Array.isArray(raw.releases)) throw new Error(`unknown index version ${raw.v}`);
      this.releases = new Map(raw.releases.map((r) => [r.id, r]));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${this.indexFile}: ${(err as Error).message}`);
    }
    return this;
  }

  list(): ReleaseRecord[] {
    return [...this.releases.values()].sort((a, b) => (a.uploadedAt < b.uploadedAt ? 1 : a.uploadedAt > b.uploadedAt ? -1 : 0));
  }

  get(id: string): ReleaseRecord | undefined {
    return this.releases.get(id);
  }

  artifactPath(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('not a sha256');
    return path.join(this.dir, sha256);
  }

  private refuse(code: RefusalCode, status: 400 | 409 | 413, message: string): never {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
    this.opts.logger.warn({ code }, `release upload refused: ${message}`);
    throw new ReleaseRefused(code, status, message);
  }

  /** Verify and store an upload. Returns the record and whether it was new. Throws ReleaseRefused. */
  async ingest(input: IngestInput): Promise<{ record: ReleaseRecord; created: boolean }> {
    if (input.manifestB64 === undefined || input.signatureB64 === undefined) {
      this.refuse('bad-request', 400, 'X-KF-Manifest and X-KF-Signature headers are required');
    }
    const manifestBytes = decodeBase64Strict(input.manifestB64);
    if (!manifestBytes) this.refuse('bad-request', 400, 'X-KF-Manifest is not base64');
    const check = verifyManifest(manifestBytes, input.signatureB64, this.opts.trustedKeys);
    if (!check.ok) this.refuse(check.code, 400, check.reason);
    const m = check.manifest;
    const id = releaseId(m);

    const existing = this.releases.get(id);
    if (existing) {
      if (existing.sha256 === m.sha256) return { record: existing, created: false };
      this.refuse('release-exists', 409, `${id} exists with other content (sha256 ${existing.sha256.slice(0, 12)}…); publish a new version`);
    }
    if (m.size > this.opts.maxUploadBytes) {
      this.refuse('too-large', 413, `artifact of ${m.size} bytes exceeds the limit of ${this.opts.maxUploadBytes}`);
    }
    if (input.contentLength !== undefined && input.contentLength !== m.size) {
      this.refuse('size-mismatch', 400, `body is ${input.contentLength} bytes, manifest says ${m.size}`);
    }
    if (!input.body) this.refuse('size-mismatch', 400, `empty body, manifest says ${m.size} bytes`);

    const tmp = path.join(this.tmpDir, randomUUID());
    const hash = createHash('sha256');
    let received = 0;
    const fh = await fsp.open(tmp, 'wx', PRIVATE_FILE_MODE);
    let ok = false;
    try {
      await fh.chmod(PRIVATE_FILE_MODE);
      for await (const chunk of input.body) {
        received += chunk.byteLength;
        // Stop reading at the first byte beyond the signed size: a sender cannot make us store more than was signed.
        if (received > m.size) this.refuse('size-mismatch', 400, `body exceeds the manifest size of ${m.size} bytes`);
        hash.update(chunk);
        await fh.write(chunk);
      }
      if (received !== m.size) this.refuse('size-mismatch', 400, `body is ${received} bytes, manifest says ${m.size}`);
      const digest = hash.digest('hex');
      if (digest !== m.sha256) this.refuse('sha256-mismatch', 400, `body sha256 ${digest} does not match the signed ${m.sha256}`);
      await fh.sync();
      ok = true;
    } finally {
      await fh.close();
      if (!ok) await fsp.rm(tmp, { force: true });
    }

    const dest = this.artifactPath(m.sha256);
    // Content-addressed: if the same bytes are already here (another release id), keep the existing file.
    if (fs.existsSync(dest)) await fsp.rm(tmp, { force: true });
    else await fsp.rename(tmp, dest);
    await fsyncDir(this.dir);

    const record: ReleaseRecord = {
      id,
      kind: m.kind,
      version: m.version,
      size: m.size,
      sha256: m.sha256,
      terminalTypes: [...m.terminalTypes],
      minAgentVersion: m.minAgentVersion ?? null,
      createdAt: m.createdAt,
      uploadedAt: new Date().toISOString(),
      keyId: check.keyId,
      manifest: manifestBytes.toString('base64'),
      signature: input.signatureB64.trim(),
    };
    // Two uploads of one id racing: the first to reach here wins, the second is judged against it.
    const raced = this.releases.get(id);
    if (raced) {
      if (raced.sha256 === record.sha256) return { record: raced, created: false };
      this.refuse('release-exists', 409, `${id} was stored meanwhile with other content`);
    }
    this.releases.set(id, record);
    await this.persistIndex();
    this.opts.logger.info({ releaseId: id, sha256: m.sha256, size: m.size, keyId: check.keyId }, 'release stored');
    return { record, created: true };
  }

  private persistIndex(): Promise<void> {
    const body = JSON.stringify({ v: INDEX_VERSION, releases: [...this.releases.values()] }, null, 1);
    const write = async (): Promise<void> => {
      const tmp = `${this.indexFile}.${randomUUID()}.tmp`;
      const fh = await fsp.open(tmp, 'w', PRIVATE_FILE_MODE);
      try {
        await fh.chmod(PRIVATE_FILE_MODE);
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, this.indexFile);
      await fsyncDir(this.dir);
    };
    this.indexWrite = this.indexWrite.then(write, write);
    return this.indexWrite;
  }
}
