/**
 * Ed25519 signing and verification of release manifests, with Node's crypto (no hand-written crypto). Node only:
 * import it as `@kiosk-fleet/protocol/release-signing`, never from the package index, which the dashboard bundles
 * for the browser.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { parseManifestBytes, type ReleaseManifest } from './release.ts';

export interface ReleaseKeyPair {
  /** PKCS#8 PEM. */
  privateKeyPem: string;
  /** SPKI PEM. */
  publicKeyPem: string;
}

export function generateReleaseKeyPair(): ReleaseKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function assertEd25519(key: KeyObject): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`expected an Ed25519 key, got ${key.asymmetricKeyType ?? key.type}`);
  return key;
}

export function privateKeyFromPem(pem: string | Buffer): KeyObject {
  return assertEd25519(createPrivateKey(pem));
}

/** Accepts an SPKI public key PEM, or a private key PEM (its public half is taken). */
export function publicKeyFromPem(pem: string | Buffer): KeyObject {
  return assertEd25519(createPublicKey(pem));
}

/** A short stable id of a public key (first 16 hex of sha256 over its DER), for logs and the release index. */
export function keyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHashHex(der).slice(0, 16);
}

function createHashHex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Sign manifest bytes; returns the base64 signature. */
export function signManifest(manifestBytes: Uint8Array, privateKey: KeyObject): string {
  return sign(null, manifestBytes, assertEd25519(privateKey)).toString('base64');
}

export type SignatureCheck =
  | { ok: true; manifest: ReleaseManifest; keyId: string }
  | { ok: false; code: 'bad-manifest' | 'bad-signature'; reason: string };

/**
 * Verify `signatureB64` over `manifestBytes` against any of `trusted`, then parse the manifest. The signature is
 * checked first: nothing in an unsigned manifest is looked at.
 */
export function verifyManifest(manifestBytes: Uint8Array, signatureB64: string, trusted: readonly KeyObject[]): SignatureCheck {
  if (trusted.length === 0) return { ok: false, code: 'bad-signature', reason: 'no trusted public key configured' };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureB64.trim())) {
    return { ok: false, code: 'bad-signature', reason: 'signature is not base64' };
  }
  const sig = Buffer.from(signatureB64.trim(), 'base64');
  // Ed25519 signatures are exactly 64 bytes; anything else cannot verify.
  if (sig.length !== 64) return { ok: false, code: 'bad-signature', reason: `signature is ${sig.length} bytes, expected 64` };
  const signer = trusted.find((k) => verify(null, manifestBytes, k, sig));
  if (!signer) return { ok: false, code: 'bad-signature', reason: 'signature does not match any trusted key' };
  const parsed = parseManifestBytes(manifestBytes);
  if (!parsed.ok) return { ok: false, code: 'bad-manifest', reason: parsed.reason };
  return { ok: true, manifest: parsed.manifest, keyId: keyId(signer) };
}
