/**
 * Test support for the updater (used by agent/src/updater/*.test.ts and tests/src/updates/): build real signed
 * release artifacts, lay out an installed version as provisioning would, and a small artifact HTTP server with
 * Range support that can cut a download mid-body. Not used by the agent at run time.
 */
import { createHash, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as tar from 'tar';
import { canonicalManifestBytes, releaseId, type ReleaseManifest, type UpdateTarget } from '@kiosk-fleet/protocol';
import { signManifest } from '@kiosk-fleet/protocol/release-signing';

export interface BuiltRelease {
  id: string;
  version: string;
  kind: ReleaseManifest['kind'];
  artifact: Buffer;
  size: number;
  sha256: string;
  manifestB64: string;
  signature: string;
}

export type BundleFiles = Record<string, string>;

/** A bundle whose `health.mjs` exits 0 (healthy) or 1, and whose `version.txt` names it. */
export function appBundle(version: string, healthy: boolean): BundleFiles {
  return {
    'version.txt': version,
    'health.mjs': `process.exit(${healthy ? 0 : 1});\n`,
    'app.mjs': `console.log(${JSON.stringify(`kiosk app ${version}`)});\n`,
  };
}

function writeFiles(dir: string, files: BundleFiles): void {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
}

export async function buildRelease(o: {
  workDir: string;
  version: string;
  kind?: ReleaseManifest['kind'];
  files: BundleFiles;
  privateKey: KeyObject;
  terminalTypes?: string[];
  minAgentVersion?: string;
}): Promise<BuiltRelease> {
  const kind = o.kind ?? 'app';
  const bundle = path.join(o.workDir, `bundle-${kind}-${o.version}`);
  fs.rmSync(bundle, { recursive: true, force: true });
  writeFiles(bundle, o.files);
  const file = path.join(o.workDir, `${kind}-${o.version}.tar.gz`);
  await tar.c({ gzip: true, cwd: bundle, file, portable: true }, Object.keys(o.files).map((f) => f.split('/')[0]!).filter((v, i, a) => a.indexOf(v) === i));
  const artifact = fs.readFileSync(file);
  const sha256 = createHash('sha256').update(artifact).digest('hex');
  const manifest: ReleaseManifest = {
    v: 1,
    kind,
    version: o.version,
    size: artifact.length,
    sha256,
    terminalTypes: o.terminalTypes ?? ['id-card'],
    ...(o.minAgentVersion ? { minAgentVersion: o.minAgentVersion } : {}),
    createdAt: new Date().toISOString(),
  };
  const bytes = canonicalManifestBytes(manifest);
  return {
    id: releaseId(manifest),
    version: o.version,
    kind,
    artifact,
    size: artifact.length,
    sha256,
    manifestB64: Buffer.from(bytes).toString('base64'),
    signature: signManifest(bytes, o.privateKey),
  };
}

export function targetFor(r: BuiltRelease, url: string, extra: Partial<UpdateTarget> = {}): UpdateTarget {
  return {
    v: 1,
    release: { id: r.id, kind: r.kind, version: r.version, url, size: r.size, sha256: r.sha256, manifest: r.manifestB64, signature: r.signature },
    urgent: false,
    ...extra,
  };
}

/** What provisioning leaves on a terminal: releases/<version>/ and `current` pointing at it. */
export function installInitial(root: string, version: string, files: BundleFiles): void {
  const dir = path.join(root, 'releases', version);
  fs.mkdirSync(dir, { recursive: true });
  writeFiles(dir, files);
  fs.symlinkSync(path.join('releases', version), path.join(root, 'current'));
}

export interface ArtifactServer {
  url(name: string): string;
  /** Range header of each request, in order (undefined: none). */
  requests: { path: string; range: string | undefined; authorization: string | undefined }[];
  close(): Promise<void>;
}

/**
 * Serves `files` (name → bytes) with single-range support and ETag `"<sha256>"`. `cutAfter[name] = n` makes the
 * first full-body response for that name send n bytes and then destroy the socket (a cut link).
 * `requireToken`: Bearer token every request must carry (401 otherwise).
 */
export async function serveArtifacts(
  files: Record<string, Buffer>,
  opts: { cutAfter?: Record<string, number>; requireToken?: string } = {},
): Promise<ArtifactServer> {
  const requests: ArtifactServer['requests'] = [];
  const cut = new Map(Object.entries(opts.cutAfter ?? {}));
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1).split('?')[0] ?? '');
    requests.push({ path: name, range: req.headers.range, authorization: req.headers.authorization });
    if (opts.requireToken && req.headers.authorization !== `Bearer ${opts.requireToken}`) {
      res.writeHead(401).end();
      return;
    }
    const body = files[name];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRangeOk = req.headers['if-range'] === undefined || req.headers['if-range'] === etag;
    if (m && ifRangeOk) {
      const start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'content-length': body.length - start, etag });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': body.length, etag, 'accept-ranges': 'bytes' });
    const n = cut.get(name);
    if (n !== undefined) {
      cut.delete(name);
      res.write(body.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (name) => `http://127.0.0.1:${port}/${encodeURIComponent(name)}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
