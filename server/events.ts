// The account's events (GET /v1/me/events): what each type's row holds, made here and nowhere else for the events
// the server builds in TypeScript. The store writes each one in the transaction of the change it reports; the
// charge path's events (credits.low, credits.depleted, budget.exhausted) are built by the store's batch writers,
// whose payloads the conformance tests compare with these types.
import type { Selectable } from 'kysely';
import type { components } from '../generated/openapi.d.ts';
import type { IdGenerator } from './ids.ts';
import type { AccountEventsTable } from './store/schema.ts';
import type { CredentialRow } from './store/types.ts';

export type AccountEvent = components['schemas']['AccountEvent'];
export type EventType = components['schemas']['EventType'];
export type EventRow = Selectable<AccountEventsTable>;
type KeyChangedEvent = components['schemas']['KeyChangedEvent'];
type KeyExpiryEvent = components['schemas']['KeyExpiryEvent'];
type EventKey = components['schemas']['EventKey'];
export type KeyChange = KeyChangedEvent['data']['changed'][number];
export type CreditsGrantedData = components['schemas']['CreditsGrantedEvent']['data'];
export type CreditsLowData = components['schemas']['CreditsLowEvent']['data'];
export type CreditsDepletedData = components['schemas']['CreditsDepletedEvent']['data'];
export type BudgetExhaustedData = components['schemas']['BudgetExhaustedEvent']['data'];

/** `key.expiring` is written once a key's expiry is closer than this. */
export const EXPIRING_WITHIN_MS = 7 * 86_400_000;

/** The key as an event shows it: never its secret, nor its hash. */
export function eventKey(row: Pick<CredentialRow, 'id' | 'name' | 'prefix' | 'project_id' | 'expires_at'>): EventKey {
  return { id: row.id, name: row.name, prefix: row.prefix, project_id: row.project_id, expires_at: row.expires_at };
}

/** key.created, key.updated (with the fields the change set), key.rotated or key.revoked, of the key as it now is. */
export function keyChangedEvent(
  ids: IdGenerator,
  type: KeyChangedEvent['type'],
  row: CredentialRow,
  at: string,
  changed: KeyChange[] = [],
): EventRow {
  const data: KeyChangedEvent['data'] = { api_key: eventKey(row), changed };
  return { id: ids('evt'), account_id: row.account_id, type, api_key_id: row.id, created_at: at, data: JSON.stringify(data), dedupe_key: null };
}

/**
 * key.expiring or key.expired: once per key, type and expiry instant (a key whose expiry is moved gets new ones),
 * however many instances run the maintenance.
 */
export function keyExpiryEvent(id: string, type: KeyExpiryEvent['type'], row: CredentialRow, at: string): EventRow {
  const data: KeyExpiryEvent['data'] = { api_key: eventKey(row) };
  return { id, account_id: row.account_id, type, api_key_id: row.id, created_at: at, data: JSON.stringify(data), dedupe_key: `${type}:${row.id}:${row.expires_at}` };
}

/** The event as the contract shows it. */
export function toAccountEvent(row: EventRow): AccountEvent {
  return { id: row.id, type: row.type, created_at: row.created_at, credential_id: row.api_key_id, data: JSON.parse(row.data) } as AccountEvent;
}
