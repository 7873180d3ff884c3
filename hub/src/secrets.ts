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

/**
 * The per-hub key (`meta.secret_key`, 256 random bits): made on the first start, kept in the database so that a
 * backup restores working terminal credentials and every hub process on one database shares it. On either engine:
 * `createSecurityStore(engine).hubKey(newKey())` (security/store.ts); this synchronous SQLite form stays for the
 * stores not yet ported to the async interfaces (issue 18).
 */
export function hubKey(db: { prepare(sql: string): { get(...a: unknown[]): unknown; run(...a: unknown[]): unknown } }): string {
  db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('secret_key', ?)").run(newKey());
  return (db.prepare("SELECT value FROM meta WHERE key = 'secret_key'").get() as { value: string }).value;
}

const SEALED = 'kfenc1:';

/**
 * Secrets the hub must be able to read back (webhook signing secrets), sealed with AES-256-GCM under a key derived from
 * the hub key (HKDF-SHA256, one key per purpose, so it is never the terminal-secret HMAC key itself). Stored form:
 * `kfenc1:` + base64url(12-byte IV | 16-byte tag | ciphertext). A row, a table dump or a log of it shows no secret;
 * whoever holds the whole database holds the hub key too, which is what the 0600 data files are for.
 */
export class SecretBox {
  private readonly key: crypto.KeyObject;

  constructor(hubKeyValue: string, private readonly purpose: string) {
    const derived = crypto.hkdfSync('sha256', Buffer.from(hubKeyValue, 'utf8'), Buffer.alloc(0), `kiosk-fleet ${purpose}`, 32);
    this.key = crypto.createSecretKey(Buffer.from(derived));
  }

  static isSealed(stored: string): boolean {
    return stored.startsWith(SEALED);
  }

  seal(plain: string): string {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(this.purpose, 'utf8'));
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return SEALED + Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url');
  }

  /** The plaintext of a sealed value; a value stored before sealing existed is returned as it is. Throws when tampered. */
  open(stored: string): string {
    if (!SecretBox.isSealed(stored)) return stored;
    const raw = Buffer.from(stored.slice(SEALED.length), 'base64url');
    const d = crypto.createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    d.setAAD(Buffer.from(this.purpose, 'utf8'));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
  }
}
