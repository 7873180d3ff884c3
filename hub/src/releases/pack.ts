/**
 * `release pack`: a bundle directory → `<kind>-<version>.tar.gz` (the artifact), `<kind>-<version>.manifest.json`
 * (the exact bytes that are signed) and `<kind>-<version>.sig` (base64 Ed25519 signature over those bytes).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import * as tar from 'tar';
import { canonicalManifestBytes, releaseId, type ReleaseManifest } from '@kiosk-fleet/protocol';
import { privateKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';

export interface PackOptions {
  dir: string;
  version: string;
  kind: ReleaseManifest['kind'];
  terminalTypes: string[];
  minAgentVersion?: string | undefined;
  /** Private key PEM file. */
  keyPath: string;
  outDir: string;
  now?: Date;
  /** Bytes read so far of each phase (packing the bundle, hashing the artifact), for a progress line. */
  onProgress?: (phase: 'pack' | 'hash', done: number, total: number) => void;
}

export interface PackResult {
  id: string;
  manifest: ReleaseManifest;
  artifactPath: string;
  manifestPath: string;
  signaturePath: string;
}

async function sha256File(file: string, onBytes?: (done: number, total: number) => void): Promise<string> {
  const h = createHash('sha256');
  const total = fs.statSync(file).size;
  let done = 0;
  const input = fs.createReadStream(file);
  if (onBytes) input.on('data', (chunk) => onBytes((done += chunk.length), total));
  await pipeline(input, h);
  return h.digest('hex');
}

/** Total size of the regular files under dir: the denominator of the packing progress. */
function treeBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  return n;
}

export async function packRelease(o: PackOptions): Promise<PackResult> {
  const st = fs.statSync(o.dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new Error(`--dir ${o.dir}: not a directory`);
  if (fs.readdirSync(o.dir).length === 0) throw new Error(`--dir ${o.dir}: empty bundle`);
  // Read the key before doing any work: a wrong key path should fail fast.
  const key = privateKeyFromPem(fs.readFileSync(o.keyPath));
  fs.mkdirSync(o.outDir, { recursive: true });
  const id = releaseId({ kind: o.kind, version: o.version });
  const artifactPath = path.join(o.outDir, `${id}.tar.gz`);
  const tmp = `${artifactPath}.tmp`;
  const total = o.onProgress ? treeBytes(o.dir) : 0;
  let packed = 0;
  // portable + fixed mtime: the same bundle packs to the same bytes (and the same sha256) on any machine. gzip is
  // a separate stage so that the uncompressed tar bytes can be counted for the progress line.
  await pipeline(
    tar.c({ cwd: o.dir, portable: true, mtime: new Date(0) }, fs.readdirSync(o.dir).sort()),
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        o.onProgress?.('pack', Math.min((packed += chunk.length), total), total);
        cb(null, chunk);
      },
    }),
    zlib.createGzip(),
    fs.createWriteStream(tmp),
  );
  fs.renameSync(tmp, artifactPath);
  const manifest: ReleaseManifest = {
    v: 1,
    kind: o.kind,
    version: o.version,
    size: fs.statSync(artifactPath).size,
    sha256: await sha256File(artifactPath, o.onProgress && ((d, t) => o.onProgress!('hash', d, t))),
    terminalTypes: o.terminalTypes,
    ...(o.minAgentVersion !== undefined ? { minAgentVersion: o.minAgentVersion } : {}),
    createdAt: (o.now ?? new Date()).toISOString(),
  };
  // canonicalManifestBytes validates (semver, known terminal types) and throws naming the bad field.
  const bytes = canonicalManifestBytes(manifest);
  const manifestPath = path.join(o.outDir, `${id}.manifest.json`);
  const signaturePath = path.join(o.outDir, `${id}.sig`);
  fs.writeFileSync(manifestPath, bytes);
  fs.writeFileSync(signaturePath, signManifest(bytes, key));
  return { id, manifest, artifactPath, manifestPath, signaturePath };
}
