// Idempotency-Key support. The stored response of a key-creating request contains the raw key, so it is kept
// encrypted with a key derived from the Idempotency-Key, which only the client holds: the database alone
// cannot reveal it. Lookups go by a hash of the Idempotency-Key, never by the key itself.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Clock } from './clock.ts';
import { MAX_JSON_DEPTH } from './json-walk.ts';
import { Problem } from './problem.ts';
import { IdempotencyConflictError } from './store/errors.ts';
import type { IdempotencyRow, Store } from './store/types.ts';

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

function derive(purpose: string, accountId: string, idempotencyKey: string): Buffer {
  return createHash('sha256').update(`openrush:${purpose}:${accountId}:${idempotencyKey}`).digest();
}

export function idempotencyKeyHash(accountId: string, idempotencyKey: string): string {
  return derive('lookup', accountId, idempotencyKey).toString('hex');
}

/** A stable hash of a JSON request body: same fields, same values, same hash, whatever the key order. */
export function requestHash(body: unknown): string {
  // Recursive, but bounded: bodies nested deeper than MAX_JSON_DEPTH are refused before any handler runs.
  const canonical = (value: unknown, depth: number): unknown => {
    if (depth > MAX_JSON_DEPTH + 1) throw new RangeError(`requestHash: nested deeper than ${MAX_JSON_DEPTH} levels`);
    return Array.isArray(value)
      ? value.map((item) => canonical(item, depth + 1))
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k], depth + 1)]))
        : value;
  };
  return createHash('sha256').update(JSON.stringify(canonical(body ?? null, 0))).digest('hex');
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

/** One request made under an Idempotency-Key: how to find the answer kept for it, and how to keep this one's. */
export interface IdempotentRequest<T> {
  /**
   * The answer kept for this request (the same operation and body under the same key, within 24 hours), or
   * undefined. The key kept for another request is the 409 problem `idempotency_key_reused`.
   */
  earlier(): Promise<T | undefined>;
  /** The record that keeps `response` (encrypted) under the key: written in the transaction of what it answers. */
  seal(response: T, status: number): IdempotencyRow;
}

export function idempotentRequest<T>(
  deps: { store: Store; clock: Clock },
  request: { accountId: string; idempotencyKey: string; operation: string; body: unknown },
): IdempotentRequest<T> {
  const { store, clock } = deps;
  const { accountId, idempotencyKey } = request;
  const keyHash = idempotencyKeyHash(accountId, idempotencyKey);
  // The operation is part of the request: the same Idempotency-Key on another endpoint is a different request (409).
  const bodyHash = requestHash({ operation: request.operation, body: request.body });
  return {
    async earlier() {
      const stored = await store.findIdempotencyRecord(accountId, keyHash, clock.now().toISOString());
      if (!stored) return undefined;
      if (stored.request_hash !== bodyHash) throw new Problem('idempotency_key_reused', 'This Idempotency-Key was used with a different request.');
      return openResponse(accountId, idempotencyKey, stored.response_ciphertext) as T;
    },
    seal(response, status) {
      const now = clock.now();
      return {
        account_id: accountId,
        key_hash: keyHash,
        request_hash: bodyHash,
        status_code: status,
        response_ciphertext: sealResponse(accountId, idempotencyKey, response),
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + IDEMPOTENCY_TTL_MS).toISOString(),
      };
    },
  };
}

/**
 * Runs a request that creates or changes something at most once per Idempotency-Key: a retry with the same body
 * gets the first response back (flagged `Idempotent-Replayed: true`), another body is a 409, and of two concurrent
 * requests one runs while the other replays. `run` writes `seal(response)` in the transaction of its change.
 * Without an Idempotency-Key, `run` simply runs. `status`: the answer's (201 for a create, the default).
 */
export async function oncePerIdempotencyKey<T>(
  deps: { store: Store; clock: Clock },
  request: { accountId: string; idempotencyKey: string | undefined; operation: string; body: unknown; status?: number },
  create: (seal?: (response: T) => IdempotencyRow) => Promise<T>,
): Promise<{ response: T; replayed: boolean }> {
  const { idempotencyKey } = request;
  if (idempotencyKey === undefined) return { response: await create(), replayed: false };
  const once = idempotentRequest<T>(deps, { ...request, idempotencyKey });
  const previous = await once.earlier();
  if (previous !== undefined) return { response: previous, replayed: true };
  try {
    return { response: await create((response) => once.seal(response, request.status ?? 201)), replayed: false };
  } catch (error) {
    // A concurrent request with the same Idempotency-Key won the race: answer with its response.
    if (error instanceof IdempotencyConflictError) {
      const winner = await once.earlier();
      if (winner !== undefined) return { response: winner, replayed: true };
    }
    throw error;
  }
}
