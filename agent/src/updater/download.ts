/**
 * Resumable artifact download: append to `<sha256>.part`, and after a cut continue with `Range: bytes=<have>-`
 * guarded by `If-Range: "<sha256>"` (the hub's ETag), so a changed artifact restarts from zero instead of
 * splicing two files. Never writes past the signed size. Verification is the caller's (verify.ts): nothing here is
 * trusted.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';

export class DownloadError extends Error {
  override name = 'DownloadError';
  constructor(
    /** unauthorized: the token is refused or expired (wait for a fresh update/target); not-found: gone from the hub;
     *  http: other status; network: the connection failed or was cut (retry, resuming). */
    readonly code: 'unauthorized' | 'not-found' | 'http' | 'network' | 'too-large',
    message: string,
  ) {
    super(message);
  }
  get retryable(): boolean {
    return this.code === 'network' || this.code === 'http';
  }
}

export interface DownloadOptions {
  url: string;
  token?: string | undefined;
  partFile: string;
  size: number;
  sha256: string;
  signal: AbortSignal;
  /** Bytes on disk so far, after each chunk. */
  onProgress?: (have: number) => void;
  fetch?: typeof fetch;
}

function sizeOf(file: string): number {
  return fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
}

/** Download until the part file holds `size` bytes. Throws DownloadError (or the signal's reason). */
export async function downloadArtifact(o: DownloadOptions): Promise<void> {
  const doFetch = o.fetch ?? fetch;
  let have = sizeOf(o.partFile);
  if (have > o.size) {
    await fsp.truncate(o.partFile, 0);
    have = 0;
  }
  if (have === o.size) return;

  const headers: Record<string, string> = { accept: 'application/gzip' };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (have > 0) {
    headers.range = `bytes=${have}-`;
    headers['if-range'] = `"${o.sha256}"`;
  }
  let res: Response;
  try {
    res = await doFetch(o.url, { headers, signal: o.signal });
  } catch (err) {
    if (o.signal.aborted) throw o.signal.reason;
    throw new DownloadError('network', `GET ${o.url}: ${(err as Error).message}`);
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    throw new DownloadError('unauthorized', `hub refused the download token (${res.status})`);
  }
  if (res.status === 404) {
    await res.body?.cancel();
    throw new DownloadError('not-found', 'the release is not on the hub');
  }
  if (res.status === 416) {
    // What we hold is not a prefix the hub can continue: start over.
    await res.body?.cancel();
    await fsp.truncate(o.partFile, 0);
    throw new DownloadError('http', 'range not satisfiable; restarting the download');
  }
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel();
    throw new DownloadError('http', `GET ${o.url}: HTTP ${res.status}`);
  }
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== have) {
      await res.body?.cancel();
      await fsp.truncate(o.partFile, 0);
      throw new DownloadError('http', `unexpected Content-Range ${res.headers.get('content-range')}; restarting the download`);
    }
  } else if (have > 0) {
    have = 0; // a 200 is the whole body: the server ignored or refused our range
  }
  if (!res.body) throw new DownloadError('http', 'empty response body');

  const fh = await fsp.open(o.partFile, have === 0 ? 'w' : 'a');
  try {
    const body = Readable.fromWeb(res.body as unknown as NodeWebStream<Uint8Array>);
    try {
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        if (have + chunk.byteLength > o.size) {
          throw new DownloadError('too-large', `the hub sent more than the signed ${o.size} bytes`);
        }
        await fh.write(chunk);
        have += chunk.byteLength;
        o.onProgress?.(have);
      }
    } catch (err) {
      if (err instanceof DownloadError) {
        await fh.truncate(0);
        throw err;
      }
      if (o.signal.aborted) throw o.signal.reason;
      // A cut mid-body: keep what arrived (flushed below) and resume from there next time.
      throw new DownloadError('network', `download cut after ${have} of ${o.size} bytes: ${(err as Error).message}`);
    } finally {
      body.destroy();
    }
    if (have !== o.size) throw new DownloadError('network', `download ended after ${have} of ${o.size} bytes`);
  } finally {
    await fh.sync().catch(() => undefined);
    await fh.close();
  }
}
