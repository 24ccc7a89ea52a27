// OAuth's secrets: authorization codes (`orac_…`), access tokens (`orat_…`) and refresh tokens (`orrt_…`), each 32
// random bytes in base64url after its prefix, stored as the SHA-256 hex of the whole string only; the handles that
// are not credentials but must be unguessable (authorization ids, csrf tokens); and the PKCE S256 check.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const CODE_PREFIX = 'orac_';
export const ACCESS_TOKEN_PREFIX = 'orat_';
export const REFRESH_TOKEN_PREFIX = 'orrt_';

const RANDOM = /^[A-Za-z0-9_-]{43}$/;

/** 32 random bytes, base64url (43 characters). */
export function randomHandle(): string {
  return randomBytes(32).toString('base64url');
}

/** SHA-256 hex: how every code, token, csrf token and session token is kept. 256 random bits need no slow hash. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export interface NewSecret {
  /** The raw value: handed out once, never stored or logged. */
  value: string;
  hash: string;
}

function newSecret(prefix: string): NewSecret {
  const value = prefix + randomHandle();
  return { value, hash: hashSecret(value) };
}

export const newCode = (): NewSecret => newSecret(CODE_PREFIX);
export const newAccessToken = (): NewSecret => newSecret(ACCESS_TOKEN_PREFIX);
export const newRefreshToken = (): NewSecret => newSecret(REFRESH_TOKEN_PREFIX);

/** True when the text has the shape of a secret with this prefix (no database work for anything else). */
export function hasShape(text: string, prefix: string): boolean {
  return text.startsWith(prefix) && RANDOM.test(text.slice(prefix.length));
}

/** RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~". */
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
/** BASE64URL(SHA-256(verifier)) without padding: 43 characters. */
export const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** PKCE S256 (RFC 7636 §4.6): BASE64URL(SHA-256(verifier)) equals the challenge, compared in constant time. */
export function verifiesChallenge(verifier: string, challenge: string): boolean {
  if (!VERIFIER.test(verifier) || !CHALLENGE.test(challenge)) return false;
  const computed = Buffer.from(createHash('sha256').update(verifier).digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}
