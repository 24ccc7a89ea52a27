// API keys: `or_` + 32 random base62 characters + a 6-character base62 CRC-32 of them (GitHub-token style), so
// a mistyped or truncated key is refused before the database is asked, and leaked keys are easy to scan for.
import { createHash, randomInt } from 'node:crypto';
import { crc32 } from 'node:zlib';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
export const KEY_PREFIX = 'or_';
const KEY_PATTERN = /^or_[0-9A-Za-z]{38}$/;

function base62(value: number, width: number): string {
  let out = '';
  for (let n = value; n > 0; n = Math.floor(n / 62)) out = BASE62[n % 62] + out;
  return out.padStart(width, '0');
}

function checksum(random: string): string {
  return base62(crc32(random), CHECKSUM_LENGTH);
}

export interface NewKey {
  /** The raw key: returned once, never stored. */
  key: string;
  hash: string;
  prefix: string;
  fingerprint: string;
}

export function generateKey(): NewKey {
  let random = '';
  for (let i = 0; i < RANDOM_LENGTH; i++) random += BASE62[randomInt(62)];
  const key = KEY_PREFIX + random + checksum(random);
  return { key, hash: hashKey(key), prefix: displayPrefix(key), fingerprint: key.slice(-4) };
}

/** True when the text has the shape of a key and its checksum matches. No database work. */
export function isWellFormedKey(text: string): boolean {
  if (!KEY_PATTERN.test(text)) return false;
  const random = text.slice(KEY_PREFIX.length, KEY_PREFIX.length + RANDOM_LENGTH);
  return checksum(random) === text.slice(KEY_PREFIX.length + RANDOM_LENGTH);
}

/** Keys carry ~190 random bits, so a fast hash is enough: nobody can brute-force the preimage. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function displayPrefix(key: string): string {
  return `${key.slice(0, KEY_PREFIX.length + 6)}...`;
}
