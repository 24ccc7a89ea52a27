// Row types of the database, shared by every store implementation. Timestamps are ISO 8601 strings in UTC
// (millisecond precision), so that both databases sort and compare them the same way.
import type { Generated } from 'kysely';

export interface AccountsTable {
  id: string;
  name: string;
  /** Cached sum of the account's ledger entries, kept in the same transaction as each entry; never negative. */
  balance: number;
  session_subject: string | null;
  created_at: string;
  /** The `seq` of the account's newest ledger entry (0: none), moved with the balance (migration 008). */
  ledger_seq: Generated<number>;
  /** credits.low is written when a charge takes the balance from at or above this to below it (migration 012). */
  low_balance_threshold: Generated<number | null>;
  /** Set by the first charge refused for want of credits since the last grant (credits.depleted); cleared by a grant. */
  depleted_at: Generated<string | null>;
}

export interface CreditLedgerTable {
  id: string;
  account_id: string;
  /** Positive for grants, negative for charges. */
  amount: number;
  kind: 'grant' | 'charge';
  usage_id: string | null;
  note: string | null;
  created_at: string;
  /** The balance right after this entry was applied. */
  balance_after: number;
  /** 1, 2, 3… per account, in the order the entries were applied: the ledger's order. */
  seq: number;
}

export interface CredentialsTable {
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  fingerprint: string;
  key_hash: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  /** Set when the key is disabled (v2 status 2); cleared when it is activated again. */
  disabled_at: string | null;
  owner_type: 'user' | 'service_account';
  owner_user_id: string | null;
  /** Null for a key of all projects. */
  project_id: string | null;
  /** 1 full access, 2 read-only, 3 restricted (see `access`). */
  permission_mode: number;
  /** JSON text of the v2 `access` object. */
  access: string;
  budget_period: number | null;
  budget_amount: number | null;
  budget_token_limit: string | null;
  rate_limit_rpm: number | null;
  created_by_id: string;
  updated_by_id: string;
  updated_at: string;
  /** The secret before the last rotation, alive until previous_key_expires_at. */
  previous_key_hash: string | null;
  previous_key_expires_at: string | null;
  /** For a key imported from an older token system: its token family there; null for keys made here. */
  legacy_token_family: number | null;
  /** For a key imported from an older token system: its id there; null for keys made here. */
  legacy_key_id: string | null;
}

export interface KeySpendTable {
  credential_id: string;
  /** ISO start of the budget period (UTC day, ISO week or month). */
  period_start: string;
  spent: number;
}

export interface UsageRecordsTable {
  id: string;
  account_id: string;
  credential_id: string | null;
  auth_source: 'api_key' | 'session';
  endpoint: string;
  method: string;
  status_code: number;
  response_time_ms: number;
  request_bytes: number;
  response_bytes: number;
  dataforseo_cost_usd: number;
  credits_charged: number;
  error_type: string | null;
  error_message: string | null;
  created_at: string;
  /** How the request came in: an HTTP call of the API, or a message to the MCP endpoint. */
  channel: 'api' | 'mcp';
  /** The metered tool the request called, if any. */
  tool: string | null;
  /** The JSON-RPC method of an MCP message (`tools/call`, `initialize`…), null for any other request. */
  rpc_method: string | null;
  /** The request's X-Request-Id; null for records made before migration 008. */
  request_id: string | null;
  /** The OAuth client whose access token made the request (migration 011); null for any other credential. */
  oauth_client_id: string | null;
}

/** Usage totals per account, UTC hour, channel, tool, key and failed-or-not (migration 007, usage-rollups.ts); usage_rollups_all_keys without the key. */
export interface UsageRollupsTable {
  account_id: string;
  /** The hour's start, ISO (`2026-06-26T12:00:00.000Z`). */
  hour: string;
  channel: 'api' | 'mcp';
  /** '' for requests that called no tool. */
  tool: string;
  /** '' for requests made with no key (Dashboard sessions). */
  credential_id: string;
  /** 1 for statuses of 400 and above. */
  failed: number;
  requests: number;
  errors: number;
  credits: number;
}

export interface IdempotencyRecordsTable {
  account_id: string;
  key_hash: string;
  request_hash: string;
  status_code: number;
  /** The response, AES-256-GCM encrypted with a key derived from the idempotency key the client holds. */
  response_ciphertext: string;
  created_at: string;
  expires_at: string;
}

/** A one-time sign-in link to the Dashboard (`orsl_…`), known by its token's SHA-256 hash only. */
export interface SignInLinksTable {
  token_hash: string;
  account_id: string;
  created_at: string;
  expires_at: string;
  /** Set once, by the request that redeemed it. */
  used_at: string | null;
}

/** A Dashboard session (`orss_…`, the `openrush_session` cookie), known by its token's SHA-256 hash only. */
export interface DashboardSessionsTable {
  token_hash: string;
  account_id: string;
  sign_in_method: 'sign_in_link' | 'supabase';
  created_at: string;
  expires_at: string;
  /** Set at sign-out: the session is refused from then on. */
  ended_at: string | null;
}

/** An OAuth client of /mcp: registered (RFC 7591, `orc_…`) or a client ID metadata document's, cached (migration 010). */
export interface OAuthClientsTable {
  id: string;
  name: string;
  client_uri: string | null;
  /** JSON text: an array of redirect URIs, matched exactly. */
  redirect_uris: string;
  software_id: string | null;
  software_version: string | null;
  source: 'registered' | 'metadata_document';
  /** For a metadata document: when the cached copy must be fetched again. */
  metadata_expires_at: string | null;
  created_at: string;
}

/** A pending authorization request (GET /oauth/authorize), until the person decides it on the consent page. */
export interface OAuthAuthorizationsTable {
  /** 32 random bytes, base64url: the consent page's handle on it. */
  id: string;
  client_id: string;
  redirect_uri: string;
  /** PKCE S256 challenge. */
  code_challenge: string;
  state: string | null;
  /** Space-separated scopes asked for. */
  scopes: string;
  resource: string;
  /** SHA-256 hex of the Dashboard session token that first read it: only that session may decide it. */
  session_hash: string | null;
  /** SHA-256 hex of the csrf token last handed to that session. */
  csrf_hash: string | null;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
}

/** An authorization code (`orac_…`), known by its hash; single-use (used_at), 60 seconds. */
export interface OAuthCodesTable {
  code_hash: string;
  /** The grant's API key. */
  credential_id: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  resource: string;
  scopes: string;
  expires_at: string;
  used_at: string | null;
}

/** A grant: the API key made when a person approved a client, and what it was approved for. */
export interface OAuthGrantsTable {
  credential_id: string;
  client_id: string;
  client_name: string;
  redirect_host: string;
  resource: string;
  /** Space-separated granted scopes. */
  scopes: string;
  created_at: string;
}

/** An access (`orat_…`) or refresh (`orrt_…`) token, known by its hash, pointing at the grant's key. */
export interface OAuthTokensTable {
  token_hash: string;
  kind: 'access' | 'refresh';
  credential_id: string;
  expires_at: string;
  /** A refresh token's rotation: set once, by the request that used it. */
  used_at: string | null;
  created_at: string;
}

/** An event of the account's (GET /v1/me/events), written in the transaction of the change it reports (migration 012). */
export interface AccountEventsTable {
  /** `evt_…`, a ULID: sortable by creation time. */
  id: string;
  account_id: string;
  type: string;
  /** The key the event is about, or whose call caused it; null for account-wide events. */
  api_key_id: string | null;
  created_at: string;
  /** JSON text: the event's `data` as the contract declares it for its type. */
  data: string;
  /** Unique when set: a second insert of the same situation's event does nothing. */
  dedupe_key: string | null;
}

export interface Database {
  account_events: AccountEventsTable;
  accounts: AccountsTable;
  credit_ledger: CreditLedgerTable;
  credentials: CredentialsTable;
  usage_records: UsageRecordsTable;
  usage_rollups: UsageRollupsTable;
  usage_rollups_all_keys: Omit<UsageRollupsTable, 'credential_id'>;
  idempotency_records: IdempotencyRecordsTable;
  key_spend: KeySpendTable;
  sign_in_links: SignInLinksTable;
  dashboard_sessions: DashboardSessionsTable;
  oauth_clients: OAuthClientsTable;
  oauth_authorizations: OAuthAuthorizationsTable;
  oauth_codes: OAuthCodesTable;
  oauth_grants: OAuthGrantsTable;
  oauth_tokens: OAuthTokensTable;
}

export type { Generated };
