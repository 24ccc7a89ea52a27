// Idempotency-Key support. The stored response of a key-creating request contains the raw key, so it is kept
// encrypted with a key derived from the Idempotency-Key, which only the client holds: the database alone
// cannot reveal it. Lookups go by a hash of the Idempotency-Key, never by the key itself.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

function derive(purpose: string, accountId: string, idempotencyKey: string): Buffer {
  return createHash('sha256').update(`openrush:${purpose}:${accountId}:${idempotencyKey}`).digest();
}

export function idempotencyKeyHash(accountId: string, idempotencyKey: string): string {
  return derive('lookup', accountId, idempotencyKey).toString('hex');
}

/** A stable hash of a JSON request body: same fields, same values, same hash, whatever the key order. */
export function requestHash(body: unknown): string {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])]))
        : value;
  return createHash('sha256').update(JSON.stringify(canonical(body ?? null))).digest('hex');
}

export function sealResponse(accountId: string, idempotencyKey: string, response: unknown): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', derive('seal', accountId, idempotencyKey), iv);
  const sealed = Buffer.concat([cipher.update(JSON.stringify(response), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64');
}

export function openResponse(accountId: string, idempotencyKey: string, ciphertext: string): unknown {
  const raw = Buffer.from(ciphertext, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', derive('seal', accountId, idempotencyKey), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8'));
}
