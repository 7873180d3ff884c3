/**
 * Short-lived download tokens: a terminal gets one with its `update/target` and presents it to fetch that one
 * artifact. `base64url(JSON {r: releaseId, t: terminalId, e: expiry unix seconds}) . base64url(HMAC-SHA256)`, keyed
 * by a random hub key kept in `<dataDir>/release-token.key` (so every hub process on that data dir, and a
 * restarted hub, accepts the tokens it issued). Stateless: nothing to store per token.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PRIVATE_FILE_MODE, privateDir } from '../data-dir.ts';

export const TOKEN_KEY_FILE = 'release-token.key';
/** Long enough for a slow terminal link to fetch a large bundle with resumes; short enough to be useless if leaked. */
export const DEFAULT_TOKEN_TTL_SECONDS = 6 * 3600;

export function loadOrCreateTokenKey(dataDir: string): Buffer {
  const file = path.join(dataDir, TOKEN_KEY_FILE);
  try {
    const key = fs.readFileSync(file);
    if (key.length >= 32) return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  privateDir(dataDir);
  const key = randomBytes(32);
  try {
    fs.writeFileSync(file, key, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    fs.chmodSync(file, PRIVATE_FILE_MODE);
    return key;
  } catch (err) {
    // Another hub process made it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFileSync(file);
    throw err;
  }
}

function mac(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(body).digest('base64url');
}

export interface DownloadToken {
  token: string;
  expiresAt: Date;
}

export function issueDownloadToken(
  key: Buffer,
  o: { releaseId: string; terminalId: string; ttlSeconds?: number; now?: Date },
): DownloadToken {
  const now = o.now ?? new Date();
  const exp = Math.floor(now.getTime() / 1000) + (o.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS);
  const body = Buffer.from(JSON.stringify({ r: o.releaseId, t: o.terminalId, e: exp })).toString('base64url');
  return { token: `${body}.${mac(key, body)}`, expiresAt: new Date(exp * 1000) };
}

export type TokenCheck = { ok: true; terminalId: string } | { ok: false; reason: 'malformed' | 'bad-mac' | 'expired' | 'wrong-release' };

export function verifyDownloadToken(key: Buffer, token: string, releaseId: string, now = new Date()): TokenCheck {
  const parts = token.split('.');
  if (parts.length !== 2 || !parts[0] || !parts[1] || token.length > 512) return { ok: false, reason: 'malformed' };
  const [body, sig] = parts as [string, string];
  const expected = Buffer.from(mac(key, body));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-mac' };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const c = claims as { r?: unknown; t?: unknown; e?: unknown };
  if (typeof c.r !== 'string' || typeof c.t !== 'string' || typeof c.e !== 'number') return { ok: false, reason: 'malformed' };
  if (c.e * 1000 <= now.getTime()) return { ok: false, reason: 'expired' };
  if (c.r !== releaseId) return { ok: false, reason: 'wrong-release' };
  return { ok: true, terminalId: c.t };
}
