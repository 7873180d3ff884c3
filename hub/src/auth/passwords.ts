/**
 * Operator passwords: scrypt (Node's crypto, maintained with Node itself), N=2^17, r=8, p=1 (OWASP's password storage
 * cheat sheet: at least N=2^17 with r=8, p=1), 16-byte salt, 64-byte key, encoded `scrypt$N$r$p$salt$key`: every hash
 * carries its own parameters, so hashes made at the former N=2^15 keep verifying and are replaced at the next
 * successful login (`needsRehash`). Measured ~1 s per hash at N=2^17 on the idle 2-core build machine (270 ms at 2^15
 * under load 13): cheap for a login, expensive for a guesser. Async (libuv thread pool), so a login never blocks
 * ingest.
 *
 * Memory: one scrypt takes 128 * N * r bytes = 128 MiB at N=2^17 (Node refuses above its default maxmem of 32 MiB,
 * hence MAXMEM). At most SCRYPT_PARALLEL run at once, so a burst of logins costs 256 MiB at most, not one 128 MiB
 * block per libuv thread plus whatever else queues behind them.
 *
 * The policy (passwordProblem) counts Unicode code points, not UTF-16 units (five emoji are five characters), refuses
 * control characters and all-whitespace, and refuses what zxcvbn-ts (with its common-password list of ~49,000
 * entries, keyboard patterns, repeats and sequences) scores below 3 of 4 (hub/README.md, "Passwords", says why).
 */
import crypto from 'node:crypto';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as zxcvbnCommon from '@zxcvbn-ts/language-common';

export const SCRYPT_N = 2 ** 17;
const R = 8;
const P = 1;
const KEYLEN = 64;
/** Highest N a stored hash may ask for (a hash is data: a crafted one must not make us allocate gigabytes). */
const MAX_N = 2 ** 20;
const SCRYPT_PARALLEL = 2;

export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 256;
/** zxcvbn's 3: "safely unguessable: moderate protection from an offline slow-hash scenario" (< 10^10 guesses is 2). */
export const MIN_PASSWORD_SCORE = 3;

let running = 0;
const waiting: (() => void)[] = [];

async function scrypt(password: string, salt: Buffer, n: number, r: number, p: number, keylen: number): Promise<Buffer> {
  if (running < SCRYPT_PARALLEL) running++;
  else await new Promise<void>((resolve) => waiting.push(resolve)); // the slot is handed over by the one leaving
  try {
    return await new Promise((resolve, reject) =>
      // 128 * N * r for the working array plus headroom for the rest scrypt allocates.
      crypto.scrypt(password.normalize('NFC'), salt, keylen, { N: n, r, p, maxmem: 129 * n * r * p + 16 * 1024 * 1024 }, (err, key) =>
        err ? reject(err) : resolve(key),
      ),
    );
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

export async function hashPassword(password: string, n = SCRYPT_N): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password, salt, n, R, P, KEYLEN);
  return `scrypt$${n}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

function parseHash(stored: string): { n: number; r: number; p: number; salt: Buffer; key: Buffer } | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (!Number.isSafeInteger(n) || n < 2 || n > MAX_N || (n & (n - 1)) !== 0 || r !== R || p !== P) return null;
  return { n, r, p, salt: Buffer.from(parts[4]!, 'base64url'), key: Buffer.from(parts[5]!, 'base64url') };
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  if (!h) return false;
  const key = await scrypt(password, h.salt, h.n, h.r, h.p, h.key.length);
  return crypto.timingSafeEqual(key, h.key);
}

/** True when `stored` was made at a lower cost than `n` (then it is replaced at the next successful login). */
export function needsRehash(stored: string, n = SCRYPT_N): boolean {
  const h = parseHash(stored);
  return h !== null && h.n < n;
}

/** A password an admin hands over once (reset, first start): 20 characters from an unambiguous alphabet. */
export function generatePassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = crypto.randomBytes(20);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

/** zxcvbn's warning keys in words (the language packages would add a megabyte of dictionaries for these lines). */
const WARNINGS: Record<string, string> = {
  straightRow: 'it is a straight row of keys',
  keyPattern: 'it is a short keyboard pattern',
  simpleRepeat: 'it repeats a character',
  extendedRepeat: 'it repeats a short pattern',
  sequences: 'it is a common sequence such as abc or 123',
  recentYears: 'it is a recent year',
  dates: 'it is a date',
  topTen: 'it is one of the ten most used passwords',
  topHundred: 'it is one of the hundred most used passwords',
  common: 'it is a commonly used password',
  similarToCommon: 'it is close to a commonly used password',
  wordByItself: 'it is a single word',
  namesByThemselves: 'it is a name',
  commonNames: 'it is a common name',
  userInputs: 'it contains the user name or the product name',
};

let estimator: ZxcvbnFactory | null = null;
function strength(password: string, inputs: string[]) {
  // Built on first use (~120 ms for the dictionaries), not at import time.
  estimator ??= new ZxcvbnFactory({ dictionary: { ...zxcvbnCommon.dictionary }, graphs: zxcvbnCommon.adjacencyGraphs });
  return estimator.check(password, inputs);
}

/** The rule a refused password broke (`error.weak-password`'s `rule`, rendered in the reader's language). */
export type PasswordRule = 'too-short' | 'too-long' | 'control-characters' | 'only-spaces' | 'contains-username' | 'easy-to-guess' | 'unchanged';

/** Why a new password is refused (one rule, named, and its English sentence), or null. */
export function passwordProblem(password: string, username?: string): { rule: PasswordRule; message: string } | null {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) return { rule: 'too-short', message: `at least ${MIN_PASSWORD_LENGTH} characters (got ${length})` };
  if (length > MAX_PASSWORD_LENGTH) return { rule: 'too-long', message: `at most ${MAX_PASSWORD_LENGTH} characters (got ${length})` };
  // Cc: NUL, tabs, line breaks and the rest (unreadable, and lost or cut short by many forms); Cs: a lone surrogate.
  if (/[\p{Cc}\p{Cs}]/u.test(password)) return { rule: 'control-characters', message: 'must not contain control characters (such as NUL, tab or line breaks)' };
  if (/^[\p{White_Space}\p{Cf}]+$/u.test(password)) return { rule: 'only-spaces', message: 'must not be only spaces' };
  if (username !== undefined && password.toLowerCase().includes(username.toLowerCase())) return { rule: 'contains-username', message: 'must not contain the username' };
  const s = strength(password, [...(username !== undefined ? [username] : []), 'kiosk', 'fleet', 'kioskfleet']);
  if (s.score < MIN_PASSWORD_SCORE) {
    const why = (s.feedback.warning !== null ? WARNINGS[s.feedback.warning] : undefined) ?? 'it follows a pattern guessers try early';
    return { rule: 'easy-to-guess', message: `too easy to guess: ${why}; use a longer phrase of unrelated words` };
  }
  return null;
}

/** A hash to verify against when the user does not exist, so the answer takes as long either way. */
const dummies = new Map<number, Promise<string>>();
export function dummyHash(n = SCRYPT_N): Promise<string> {
  let d = dummies.get(n);
  if (!d) {
    d = hashPassword(crypto.randomBytes(16).toString('hex'), n);
    dummies.set(n, d);
  }
  return d;
}
