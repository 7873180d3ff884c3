import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalManifestBytes, compareSemver, isSemver, parseManifestBytes, releaseId, type ReleaseManifest } from './release.ts';
import { generateReleaseKeyPair, keyId, privateKeyFromPem, publicKeyFromPem, signManifest, verifyManifest } from './release-signing.ts';

const manifest: ReleaseManifest = {
  v: 1,
  kind: 'app',
  version: '3.3.0',
  size: 1024,
  sha256: 'b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c',
  terminalTypes: ['id-card', 'endorsement'],
  minAgentVersion: '1.0.0',
  createdAt: '2026-11-26T02:00:00.000Z',
};

describe('semver', () => {
  it('orders versions by precedence, pre-releases below the release', () => {
    const sorted = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.2.0', '1.10.0', '2.0.0'];
    const shuffled = [...sorted].reverse();
    expect(shuffled.sort(compareSemver)).toEqual(sorted);
    expect(compareSemver('1.0.0+build.1', '1.0.0+build.2')).toBe(0);
  });
  it('refuses what is not semver', () => {
    expect(isSemver('v1.0.0')).toBe(false);
    expect(isSemver('1.0')).toBe(false);
    expect(isSemver('01.0.0')).toBe(false);
    expect(() => compareSemver('1.0', '1.0.0')).toThrow(/not a semver/);
  });
});

describe('manifest', () => {
  it('serialises canonically: sorted keys, no whitespace, same bytes whatever the key order', () => {
    const reordered = Object.fromEntries(Object.entries(manifest).reverse()) as ReleaseManifest;
    expect(Buffer.from(canonicalManifestBytes(reordered))).toEqual(Buffer.from(canonicalManifestBytes(manifest)));
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    expect(releaseId(manifest)).toBe('app-3.3.0');
  });
  it('names the bad field of a bad manifest', () => {
    const bad = new TextEncoder().encode(JSON.stringify({ ...manifest, terminalTypes: ['toaster'] }));
    const r = parseManifestBytes(bad);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/terminalTypes/);
    expect(parseManifestBytes(new TextEncoder().encode('{not json')).ok).toBe(false);
    expect(parseManifestBytes(new TextEncoder().encode(JSON.stringify({ ...manifest, extra: 1 }))).ok).toBe(false);
    expect(parseManifestBytes(new Uint8Array(5000)).ok).toBe(false);
  });
});

describe('Ed25519 signing', () => {
  const pair = generateReleaseKeyPair();
  const other = generateReleaseKeyPair();
  const bytes = canonicalManifestBytes(manifest);
  const sig = signManifest(bytes, privateKeyFromPem(pair.privateKeyPem));
  const trusted = [publicKeyFromPem(other.publicKeyPem), publicKeyFromPem(pair.publicKeyPem)];

  it('verifies against the trusted key that signed it', () => {
    const r = verifyManifest(bytes, sig, trusted);
    expect(r).toEqual({ ok: true, manifest, keyId: keyId(publicKeyFromPem(pair.publicKeyPem)) });
  });
  it('refuses a manifest changed after signing', () => {
    const tampered = new TextEncoder().encode(new TextDecoder().decode(bytes).replace('"size":1024', '"size":1025'));
    expect(verifyManifest(tampered, sig, trusted)).toMatchObject({ ok: false, code: 'bad-signature' });
  });
  it('refuses a signature by an untrusted key, garbage and an empty trust list', () => {
    expect(verifyManifest(bytes, sig, [publicKeyFromPem(other.publicKeyPem)])).toMatchObject({ ok: false, code: 'bad-signature' });
    expect(verifyManifest(bytes, 'not base64!', trusted)).toMatchObject({ ok: false, code: 'bad-signature' });
    expect(verifyManifest(bytes, Buffer.alloc(10).toString('base64'), trusted)).toMatchObject({ ok: false, reason: /64/ });
    expect(verifyManifest(bytes, sig, [])).toMatchObject({ ok: false, reason: /no trusted/ });
  });
  it('refuses a key that is not Ed25519', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' });
    expect(() => publicKeyFromPem(rsa)).toThrow(/Ed25519/);
  });
});
