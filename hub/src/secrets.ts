/**
 * Terminal secrets: 256 random bits, shown once, stored as HMAC-SHA256 under a per-hub key.
 *
 * Not a password hash on purpose: after a hub restart the whole fleet reconnects within seconds, and a keyed
 * SHA-256 of a high-entropy secret costs about a microsecond where scrypt/argon2 would cost tens of milliseconds
 * each. With 256 random bits there is nothing to brute-force, so the slow hash would buy nothing.
 */
import crypto from 'node:crypto';

export function newSecret(): string {
  return crypto.randomBytes(32).toString('base64url');
}

export function newKey(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * Hashes and checks terminal secrets under one hub key. Holds the key as a KeyObject, made once: createHmac with a
 * string key imports it again on every call, and after a hub restart the whole fleet authenticates at once.
 */
export class SecretHasher {
  private readonly key: crypto.KeyObject;

  constructor(key: string) {
    this.key = crypto.createSecretKey(Buffer.from(key, 'utf8'));
  }

  /** The stored form (base64url of the HMAC). */
  hash(secret: string): string {
    return this.digest(secret).toString('base64url');
  }

  /** True when `secret` hashes to `stored`, the raw digest (see `decode`); constant-time. */
  matches(secret: string, stored: Buffer): boolean {
    const a = this.digest(secret);
    return a.length === stored.length && crypto.timingSafeEqual(a, stored);
  }

  /** The raw digest of a stored hash, for `matches`. */
  static decode(storedHash: string): Buffer {
    return Buffer.from(storedHash, 'base64url');
  }

  private digest(secret: string): Buffer {
    return crypto.createHmac('sha256', this.key).update(secret, 'utf8').digest();
  }
}

export function hashSecret(key: string, secret: string): string {
  return crypto.createHmac('sha256', key).update(secret).digest('base64url');
}

export function secretMatches(key: string, secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(key, secret));
  const b = Buffer.from(storedHash);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** Constant-time string comparison for the admin token. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}
