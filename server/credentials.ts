// API credentials: issuing, presenting and revoking keys.
import type { components } from '../generated/openapi.d.ts';
import type { Clock } from './clock.ts';
import type { IdGenerator } from './ids.ts';
import { generateKey } from './keys.ts';
import type { CredentialRow, IdempotencyRow, Store } from './store/types.ts';

export type ApiCredential = components['schemas']['ApiCredential'];

export function toApiCredential(row: CredentialRow, now: Date): ApiCredential {
  const expired = row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime();
  return {
    id: row.id,
    account_id: row.account_id,
    name: row.name,
    prefix: row.prefix,
    is_active: row.revoked_at === null && !expired,
    created_at: row.created_at,
    last_used_at: row.last_used_at,
    expires_at: row.expires_at,
  };
}

export interface IssuedCredential {
  /** The raw key: hand it to the caller once, never store or log it. */
  key: string;
  row: CredentialRow;
}

/** Makes a new key and its credential row (not yet stored). */
export function newCredential(
  ids: IdGenerator,
  clock: Clock,
  input: { accountId: string; name: string; expiresAt?: string | null },
): IssuedCredential {
  const { key, hash, prefix, fingerprint } = generateKey();
  return {
    key,
    row: {
      id: ids('cred'),
      account_id: input.accountId,
      name: input.name,
      prefix,
      fingerprint,
      key_hash: hash,
      created_at: clock.now().toISOString(),
      last_used_at: null,
      expires_at: input.expiresAt ? new Date(input.expiresAt).toISOString() : null,
      revoked_at: null,
    },
  };
}

export async function issueCredential(
  store: Store,
  ids: IdGenerator,
  clock: Clock,
  input: { accountId: string; name: string; expiresAt?: string | null },
  idempotency?: (issued: IssuedCredential) => IdempotencyRow,
): Promise<IssuedCredential> {
  const issued = newCredential(ids, clock, input);
  await store.createCredential(issued.row, idempotency?.(issued));
  return issued;
}
