/**
 * Release keys: `release keygen` writes an Ed25519 pair; the hub trusts the public keys listed in KF_RELEASE_KEYS.
 *
 * KF_RELEASE_KEYS is a comma-separated list whose items are each either a path to a PEM file or a PEM string
 * itself (an item containing `-----BEGIN` is taken as PEM; `\n` written literally in an env file is accepted as a
 * line break). Base64 has no commas, so a comma never splits a PEM. Each item must be an Ed25519 public key (a
 * private key is refused: the hub must never hold a signing key).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { generateReleaseKeyPair, publicKeyFromPem } from '@kiosk-fleet/protocol/release-signing';

export class ReleaseKeyError extends Error {
  override name = 'ReleaseKeyError';
}

export function parseTrustedKeys(spec: string | undefined, baseDir = process.cwd()): KeyObject[] {
  if (spec === undefined || spec.trim() === '') return [];
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((item, i) => {
      const isPem = item.includes('-----BEGIN');
      if (isPem && item.includes('PRIVATE KEY')) {
        throw new ReleaseKeyError(`KF_RELEASE_KEYS item ${i + 1}: is a private key; give the hub only public keys`);
      }
      let pem: string;
      if (isPem) {
        pem = item.replaceAll('\\n', '\n');
      } else {
        const file = path.resolve(baseDir, item);
        try {
          pem = fs.readFileSync(file, 'utf8');
        } catch (err) {
          throw new ReleaseKeyError(`KF_RELEASE_KEYS item ${i + 1}: cannot read ${file}: ${(err as Error).message}`);
        }
        if (pem.includes('PRIVATE KEY')) {
          throw new ReleaseKeyError(`KF_RELEASE_KEYS item ${i + 1}: ${file} holds a private key; give the hub only public keys`);
        }
      }
      try {
        return publicKeyFromPem(pem);
      } catch (err) {
        throw new ReleaseKeyError(`KF_RELEASE_KEYS item ${i + 1}: not an Ed25519 public key PEM (${(err as Error).message})`);
      }
    });
}

export const PRIVATE_KEY_FILE = 'release-private.pem';
export const PUBLIC_KEY_FILE = 'release-public.pem';

/** Write a new key pair into `outDir`; refuses to overwrite an existing private key. */
export function writeKeyPair(outDir: string): { privateKeyPath: string; publicKeyPath: string } {
  fs.mkdirSync(outDir, { recursive: true });
  const privateKeyPath = path.join(outDir, PRIVATE_KEY_FILE);
  const publicKeyPath = path.join(outDir, PUBLIC_KEY_FILE);
  const pair = generateReleaseKeyPair();
  // 'wx': never clobber a signing key that releases in the field may already depend on.
  try {
    fs.writeFileSync(privateKeyPath, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ReleaseKeyError(`${privateKeyPath} exists; refusing to overwrite a signing key`);
    throw err;
  }
  fs.writeFileSync(publicKeyPath, pair.publicKeyPem, { mode: 0o644 });
  return { privateKeyPath, publicKeyPath };
}
