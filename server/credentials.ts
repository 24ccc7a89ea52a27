// API keys, as both surfaces see them: v1 "API credentials" and v2 "API keys" are views of the same rows.
import type { components } from '../generated/openapi.d.ts';
import type { Clock } from './clock.ts';
import type { IdGenerator } from './ids.ts';
import { keyChangedEvent } from './events.ts';
import { generateKey } from './keys.ts';
import type { CredentialRow, IdempotencyRow, OAuthGrantRow, Store } from './store/types.ts';

export type ApiCredential = components['schemas']['ApiCredential'];
export type ApiKey = components['schemas']['ApiKey'];
export type ApiKeyAccess = components['schemas']['ApiKeyAccess'];
export type ApiKeyBudget = components['schemas']['ApiKeyBudget'];

export const KeyStatus = { ACTIVE: 1, DISABLED: 2, REVOKED: 3, EXPIRED: 4 } as const;
export const PermissionMode = { FULL_ACCESS: 1, READ_ONLY: 2, RESTRICTED: 3 } as const;

export function isExpired(row: Pick<CredentialRow, 'expires_at'>, now: Date): boolean {
  return row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime();
}

export function keyStatus(row: CredentialRow, now: Date): ApiKey['status'] {
  if (row.revoked_at !== null) return KeyStatus.REVOKED;
  if (isExpired(row, now)) return KeyStatus.EXPIRED;
  if (row.disabled_at !== null) return KeyStatus.DISABLED;
  return KeyStatus.ACTIVE;
}

export function toApiCredential(row: CredentialRow, now: Date): ApiCredential {
  return {
    id: row.id,
    account_id: row.account_id,
    name: row.name,
    prefix: row.prefix,
    is_active: keyStatus(row, now) === KeyStatus.ACTIVE,
    created_at: row.created_at,
    last_used_at: row.last_used_at,
    expires_at: row.expires_at,
  };
}

export function budgetOf(row: CredentialRow): ApiKeyBudget | null {
  if (row.budget_period === null || row.budget_amount === null) return null;
  return { period: row.budget_period as ApiKeyBudget['period'], amount: Number(row.budget_amount), token_limit: row.budget_token_limit };
}

/**
 * The v2 view of a key. `grant` is the key's OAuth grant (store.oauthGrants), if it is one: every representation
 * of a key passes it, so that a connected agent's key always says which client it was approved for.
 */
export function toApiKey(row: CredentialRow, now: Date, grant: Pick<OAuthGrantRow, 'client_id' | 'client_name' | 'redirect_host'> | undefined): ApiKey {
  return {
    api_key_id: row.id,
    name: row.name,
    owner: row.owner_type === 'service_account' ? { service_account: {} } : { user: { user_id: row.owner_user_id ?? row.account_id } },
    project_scope: row.project_id === null ? { all: {} } : { single: { project_id: row.project_id } },
    permission_mode: row.permission_mode as ApiKey['permission_mode'],
    access: JSON.parse(row.access) as ApiKeyAccess,
    token_prefix: row.prefix,
    status: keyStatus(row, now),
    constraints: {
      expires_at: row.expires_at,
      budget: budgetOf(row),
      rate_limit: row.rate_limit_rpm === null ? null : { requests_per_minute: row.rate_limit_rpm },
    },
    created_by_id: row.created_by_id,
    updated_by_id: row.updated_by_id,
    created_at: row.created_at,
    updated_at: row.updated_at,
    last_used_at: row.last_used_at,
    legacy_token_family: row.legacy_token_family,
    legacy_key_id: row.legacy_key_id,
    oauth_client: grant ? { client_id: grant.client_id, client_name: grant.client_name, redirect_host: grant.redirect_host } : null,
  };
}

/** Everything a new key can be given; all but name and `by` have defaults (a full-access key of all projects). */
export interface KeySettings {
  accountId: string;
  name: string;
  /** Who is creating it: the key used (`cred_…`) or the account (`acct_…`). */
  by: string;
  expiresAt?: string | null;
  owner?: ApiKey['owner'];
  projectId?: string | null;
  permissionMode?: ApiKey['permission_mode'];
  access?: ApiKeyAccess;
  budget?: ApiKeyBudget | null;
  rateLimitRpm?: number | null;
}

/** KeySettings fields from confined powers (see permissions.ts confineToCaller). */
export function settingsFromPowers(powers: {
  permissionMode?: number;
  access?: ApiKeyAccess;
  budget?: { period: number; amount: number; token_limit?: string | null } | null;
  rateLimitRpm?: number | null;
  expiresAt?: string | null;
}): Partial<KeySettings> {
  return {
    permissionMode: powers.permissionMode as ApiKey['permission_mode'] | undefined,
    access: powers.access,
    budget: powers.budget ? { token_limit: null, ...powers.budget, period: powers.budget.period as ApiKeyBudget['period'] } : null,
    rateLimitRpm: powers.rateLimitRpm ?? null,
    expiresAt: powers.expiresAt ?? null,
  };
}

export interface IssuedCredential {
  /** The raw key: hand it to the caller once, never store or log it. */
  key: string;
  row: CredentialRow;
}

/** Makes a new key and its credential row (not yet stored). */
export function newCredential(ids: IdGenerator, clock: Clock, settings: KeySettings): IssuedCredential {
  const { key, hash, prefix, fingerprint } = generateKey();
  const now = clock.now().toISOString();
  const serviceAccount = settings.owner !== undefined && 'service_account' in settings.owner;
  return {
    key,
    row: {
      id: ids('cred'),
      account_id: settings.accountId,
      name: settings.name,
      prefix,
      fingerprint,
      key_hash: hash,
      created_at: now,
      last_used_at: null,
      expires_at: settings.expiresAt ? new Date(settings.expiresAt).toISOString() : null,
      revoked_at: null,
      disabled_at: null,
      owner_type: serviceAccount ? 'service_account' : 'user',
      owner_user_id: serviceAccount ? null : (settings.owner?.user?.user_id ?? settings.accountId),
      project_id: settings.projectId ?? null,
      permission_mode: settings.permissionMode ?? PermissionMode.FULL_ACCESS,
      access: JSON.stringify(settings.access ?? {}),
      budget_period: settings.budget?.period ?? null,
      budget_amount: settings.budget?.amount ?? null,
      budget_token_limit: settings.budget?.token_limit ?? null,
      rate_limit_rpm: settings.rateLimitRpm ?? null,
      created_by_id: settings.by,
      updated_by_id: settings.by,
      updated_at: now,
      previous_key_hash: null,
      previous_key_expires_at: null,
      // Only a key imported from an older token system has these.
      legacy_token_family: null,
      legacy_key_id: null,
    },
  };
}

export async function issueCredential(
  store: Store,
  ids: IdGenerator,
  clock: Clock,
  settings: KeySettings,
  idempotency?: (issued: IssuedCredential) => IdempotencyRow,
): Promise<IssuedCredential> {
  const issued = newCredential(ids, clock, settings);
  await store.createCredential(issued.row, idempotency?.(issued), keyChangedEvent(ids, 'key.created', issued.row, issued.row.created_at));
  return issued;
}
