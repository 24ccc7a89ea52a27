// The store: everything the server keeps, behind one async interface. It knows nothing of HTTP, and nothing
// outside server/store/ knows which database is behind it.
import type { Selectable } from 'kysely';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type {
  AccountEventsTable,
  AccountsTable,
  CreditLedgerTable,
  CredentialsTable,
  DashboardSessionsTable,
  IdempotencyRecordsTable,
  OAuthAuthorizationsTable,
  OAuthClientsTable,
  OAuthCodesTable,
  OAuthGrantsTable,
  OAuthTokensTable,
  SignInLinksTable,
  UsageRecordsTable,
} from './schema.ts';

/** An account as the server sees it (its ledger counter is the store's own business). */
export type AccountRow = Omit<Selectable<AccountsTable>, 'ledger_seq' | 'low_balance_threshold' | 'depleted_at'>;
/** An event as stored (server/events.ts makes and reads them). */
export type EventRow = Selectable<AccountEventsTable>;
export type CredentialRow = Selectable<CredentialsTable>;
export type UsageRow = Selectable<UsageRecordsTable>;
export type IdempotencyRow = Selectable<IdempotencyRecordsTable>;
export type SignInLinkRow = Selectable<SignInLinksTable>;
export type DashboardSessionRow = Selectable<DashboardSessionsTable>;

export type OAuthClientRow = Selectable<OAuthClientsTable>;
export type OAuthAuthorizationRow = Selectable<OAuthAuthorizationsTable>;
export type OAuthCodeRow = Selectable<OAuthCodesTable>;
export type OAuthGrantRow = Selectable<OAuthGrantsTable>;
export type OAuthTokenRow = Selectable<OAuthTokensTable>;

/** An OAuth access token as /mcp authenticates it: the token's expiry, its grant, and the grant's key. */
export interface OAuthAccessTokenLookup {
  expires_at: string;
  client_id: string;
  /** Space-separated granted scopes. */
  scopes: string;
  resource: string;
  credential: CredentialRow;
}

/** A token (access or refresh) with its grant and the grant's key. */
export interface OAuthTokenLookup {
  token: OAuthTokenRow;
  grant: OAuthGrantRow;
  credential: CredentialRow;
}

/** Why a sign-in link was not redeemed. */
export type SignInLinkRefusal = 'unknown' | 'used' | 'expired';

export type LedgerRow = Selectable<CreditLedgerTable>;

export interface LedgerPage {
  limit: number;
  /** Only entries applied before this one (an entry of the account's, looked up by the caller). */
  startingAfter?: Pick<LedgerRow, 'seq'>;
}

/** A ledger entry as listed: for a charge, the request id of its usage record. */
export type LedgerListing = LedgerRow & { request_id: string | null };

export interface Charge {
  /** Id of the ledger entry to write. */
  ledgerId: string;
  /** Credits to take, > 0. */
  amount: number;
  /**
   * Id for the event this charge may write in its transaction: credits.low (it took the balance below the account's
   * threshold), credits.depleted (refused for want of credits, the first since the last grant) or budget.exhausted
   * (refused by the key's budget, the first in the period at this amount). At most one of them per charge.
   */
  eventId: string;
}

export interface BudgetCharge {
  credentialId: string;
  /** ISO start of the key's current budget period. */
  periodStart: string;
  /** The most the key may spend in that period. */
  amount: number;
}

export interface ApiKeyPage {
  limit: number;
  /** Keys older than this one (newest first). */
  startingAfter?: string;
  /** Keys newer than this one (still returned newest first). */
  endingBefore?: string;
  projectId?: string;
  /** 1 active, 2 disabled, 3 revoked, 4 expired, as of `now`. */
  status?: number;
  now: string;
}

export interface RecordUsageOptions {
  /** Take these credits in the same transaction; throws InsufficientCreditsError (and writes nothing) if the balance is short. */
  charge?: Charge;
  /** Count the charge against the key's budget too; throws BudgetExceededError (and writes nothing) past it. */
  budget?: BudgetCharge;
  /** Set the credential's last_used_at to the record's time when it is older than this instant (or never set). */
  touchCredentialIfUsedBefore?: string;
  /**
   * Keep this answer under its Idempotency-Key in the same transaction (an expired record under the key makes room);
   * throws IdempotencyConflictError (and writes nothing) when a live one is there, another request's.
   */
  idempotency?: IdempotencyRow;
}

/** Which usage records: every field given must hold (all of them unset: all the account's records). */
export interface UsageFilter {
  credentialId?: string;
  /** Only records of requests that came in this way. */
  channel?: UsageRow['channel'];
  /** ISO instants: created_at in [from, to). */
  from?: string;
  to?: string;
  tool?: string;
  /** 2 for 2xx … 5 for 5xx. */
  statusClass?: number;
}

export interface UsagePage extends UsageFilter {
  limit: number;
  /** Only records older than this one (a record of the account's, looked up by the caller). */
  startingAfter?: Pick<UsageRow, 'id' | 'created_at'>;
}

export interface UsageAggregateQuery {
  /** ISO instants on the interval's boundaries: rollup hours in [from, to). */
  from: string;
  to: string;
  interval: 'hour' | 'day';
  groupBy?: 'channel' | 'tool' | 'credential';
  /** The most rows to return (the caller refuses an answer that would hold more). */
  limit: number;
}

export interface UsageAggregateRow {
  /** The interval's start, ISO. */
  start: string;
  /** The channel, tool or key id; null when not grouped, or for no tool / no key. */
  group: string | null;
  requests: number;
  errors: number;
  credits: number;
}

/** Which events: every field given must hold. */
export interface EventPage {
  limit: number;
  type?: string;
  credentialId?: string;
  /** ISO instants: created_at in [from, to). */
  from?: string;
  to?: string;
  /** Only events older than this one (an event of the account's, looked up by the caller). */
  startingAfter?: Pick<EventRow, 'id' | 'created_at'>;
}

export interface RateLimiterOptions {
  /** Separates this limiter's counters from the others'. */
  keyPrefix: string;
  points: number;
  /** Window, in seconds. */
  duration: number;
  /** Once past the points, refuse for this many seconds. */
  blockDuration?: number;
}

export interface MaintenanceResult {
  /** Usage records deleted past the retention period (SQLite, in bounded batches). */
  deletedRecords: number;
  /** Whole monthly partitions dropped past the retention period (PostgreSQL). */
  droppedPartitions: string[];
  /** key.expiring and key.expired events written by this run (with `eventIds`). */
  expiryEvents?: number;
}

export interface Store {
  /** `sqlite` or `postgres`. */
  readonly kind: 'sqlite' | 'postgres';
  /** Applies the numbered migrations that have not run yet; safe when several instances start at once. */
  migrate(): Promise<void>;
  /**
   * Housekeeping, run at start-up and periodically: makes the coming months' usage partitions (PostgreSQL) and
   * drops or deletes usage records older than `retentionDays`.
   */
  maintain(now: Date, options: { retentionDays?: number; eventIds?: () => string }): Promise<MaintenanceResult>;
  /** A rate limiter whose counters live where every instance sees them (in memory for SQLite: one instance). */
  rateLimiter(options: RateLimiterOptions): RateLimiterAbstract;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  /**
   * The database settings that decide what an acknowledged write survives, read from the running database:
   * SQLite `{ journal_mode: 'wal', synchronous: 'FULL' }`, PostgreSQL `{ fsync, synchronous_commit, full_page_writes }`.
   */
  durability(): Promise<Record<string, string>>;
  close(): Promise<void>;

  countAccounts(): Promise<number>;
  createAccount(account: AccountRow): Promise<AccountRow>;
  getAccount(accountId: string): Promise<AccountRow | undefined>;
  /**
   * The account linked to a Dashboard session subject. When there is none and `create` is given, inserts it
   * (concurrent first sessions of one subject end up with the same single account).
   */
  sessionAccount(subject: string, create?: AccountRow): Promise<AccountRow | undefined>;
  /**
   * Appends a grant to the ledger and returns the new balance; its credits.granted event (id `eventId`) is written
   * in the same transaction, and the account's depleted state is cleared.
   */
  grantCredits(grant: { ledgerId: string; eventId: string; accountId: string; amount: number; note: string | null; createdAt: string }): Promise<number>;
  /**
   * Marks the account depleted (a call refused for want of credits) unless it is already, and then writes its
   * credits.depleted event in the same transaction; false when it was depleted already (nothing written).
   */
  markDepleted(event: EventRow): Promise<boolean>;
  /** The account's low-balance threshold (null: none); undefined when there is no such account. */
  getLowBalanceThreshold(accountId: string): Promise<number | null | undefined>;
  setLowBalanceThreshold(accountId: string, threshold: number | null): Promise<void>;
  /** The account's events, newest first (created_at, then id). */
  listEvents(accountId: string, page: EventPage): Promise<EventRow[]>;
  getEvent(accountId: string, eventId: string): Promise<EventRow | undefined>;
  getBalance(accountId: string): Promise<number | undefined>;
  /** Sum of the account's ledger entries: equals getBalance, always. */
  sumLedger(accountId: string): Promise<number>;
  /** The account's ledger, newest (last applied) first, each charge with its usage record's request id. */
  listLedger(accountId: string, page: LedgerPage): Promise<LedgerListing[]>;
  getLedgerEntry(accountId: string, ledgerId: string): Promise<LedgerRow | undefined>;
  /** Credits charged through a key in the budget period that starts at `periodStart` (0 when none). */
  getKeySpend(credentialId: string, periodStart: string): Promise<number>;

  /**
   * Inserts a credential. With an idempotency record, both are written in one transaction; if another request
   * already stored a record for the same (account, key hash), nothing is written and IdempotencyConflictError is thrown.
   * Its key.created event, when given, is written in the same transaction.
   */
  createCredential(credential: CredentialRow, idempotency?: IdempotencyRow, event?: EventRow): Promise<void>;
  /** The live (unexpired at `now`) idempotency record, if any. */
  findIdempotencyRecord(accountId: string, keyHash: string, now: string): Promise<IdempotencyRow | undefined>;
  /** The credential whose current secret, or whose previous (rotated) secret, has this hash. */
  findCredentialByHash(keyHash: string): Promise<CredentialRow | undefined>;
  getCredential(accountId: string, credentialId: string): Promise<CredentialRow | undefined>;
  /** Newest first; only one project's keys when projectId is given. */
  listCredentials(accountId: string, projectId?: string): Promise<CredentialRow[]>;
  /** A page of keys, newest first, by keyset on the id; hasMore is about the direction asked for. */
  listApiKeys(accountId: string, page: ApiKeyPage): Promise<{ rows: CredentialRow[]; hasMore: boolean }>;
  /**
   * Sets revoked_at unless already set, and ends any rotated secret; undefined when the account has no such
   * credential. With `answer`, the answer made of the row as it then is is kept under its Idempotency-Key in the
   * same transaction (IdempotencyConflictError, nothing changed, when another request's answer is kept there).
   * `event`: the event made of the row as it then is, written in the same transaction when the key was not
   * revoked already (a second revoke writes none).
   */
  revokeCredential(
    accountId: string,
    credentialId: string,
    now: string,
    by: string,
    answer?: (row: CredentialRow) => IdempotencyRow,
    event?: (row: CredentialRow) => EventRow,
  ): Promise<CredentialRow | undefined>;
  /** Changes the given columns; undefined when the account has no such credential. `answer`, `event`: as for revokeCredential. */
  updateCredential(
    accountId: string,
    credentialId: string,
    changes: Partial<Omit<CredentialRow, 'id' | 'account_id'>>,
    answer?: (row: CredentialRow) => IdempotencyRow,
    event?: (row: CredentialRow) => EventRow,
  ): Promise<CredentialRow | undefined>;

  /**
   * Writes one usage record, with its charge and last-used update, atomically. Records are group-committed (many
   * in one transaction); the promise settles only once the transaction holding this one has committed, or rejects
   * with InsufficientCreditsError / BudgetExceededError (this record refused, nothing of it written) or with the
   * error that made the whole batch fail (nothing of the batch written).
   */
  recordUsage(record: UsageRow, options?: RecordUsageOptions): Promise<void>;
  /** Newest first. */
  listUsage(accountId: string, page: UsagePage): Promise<UsageRow[]>;
  /** Sums of the usage rollups per interval (and group), oldest first, then by group (null first). */
  usageAggregates(accountId: string, query: UsageAggregateQuery): Promise<UsageAggregateRow[]>;
  getUsageRecord(accountId: string, usageId: string): Promise<UsageRow | undefined>;

  /** Up to `limit` accounts, oldest first (the operator CLI names them when it must be told which). */
  listAccounts(limit: number): Promise<AccountRow[]>;
  createSignInLink(link: SignInLinkRow): Promise<void>;
  /**
   * Redeems a sign-in link and starts its session, in one transaction: one guarded update (unused and unexpired at
   * `now`), so of two requests racing with one link exactly one gets a session.
   */
  redeemSignInLink(
    tokenHash: string,
    now: string,
    session: Omit<DashboardSessionRow, 'account_id'>,
  ): Promise<{ session: DashboardSessionRow } | { refused: SignInLinkRefusal }>;
  createDashboardSession(session: DashboardSessionRow): Promise<void>;
  findDashboardSession(tokenHash: string): Promise<DashboardSessionRow | undefined>;
  /** Sets ended_at unless already set. */
  endDashboardSession(tokenHash: string, now: string): Promise<void>;

  // OAuth for /mcp (server/oauth/). Every code and token is known by its SHA-256 hash only.
  insertOAuthClient(client: OAuthClientRow): Promise<void>;
  findOAuthClient(clientId: string): Promise<OAuthClientRow | undefined>;
  /** Inserts or replaces the cached copy of a client ID metadata document (source 'metadata_document'). */
  saveOAuthClientMetadata(client: OAuthClientRow): Promise<void>;
  createOAuthAuthorization(authorization: OAuthAuthorizationRow): Promise<void>;
  getOAuthAuthorization(id: string): Promise<OAuthAuthorizationRow | undefined>;
  /**
   * Binds a pending (undecided, unexpired at `now`) authorization to a Dashboard session and sets its csrf hash, in
   * one guarded update: the first session to read it gets it, a later read by the same session gets a new csrf
   * token, any other session gets undefined.
   */
  bindOAuthAuthorization(id: string, sessionHash: string, csrfHash: string, now: string): Promise<OAuthAuthorizationRow | undefined>;
  /**
   * Decides an authorization once: one guarded update (undecided, unexpired, this session, this csrf hash) sets
   * decided_at; with `approval`, the grant's key, the grant and the code are written in the same transaction.
   * False when the guard refused (nothing written).
   */
  decideOAuthAuthorization(
    id: string,
    guard: { sessionHash: string; csrfHash: string; now: string },
    approval?: { credential: CredentialRow; grant: OAuthGrantRow; code: OAuthCodeRow; event: EventRow },
  ): Promise<boolean>;
  /** The code by its hash, with the grant's key. */
  findOAuthCode(codeHash: string): Promise<{ code: OAuthCodeRow; credential: CredentialRow } | undefined>;
  /**
   * Uses a code and stores the tokens it is exchanged for, in one transaction: one guarded update (unused,
   * unexpired at `now`), so of two requests racing with one code (on any instances) exactly one gets true.
   */
  redeemOAuthCode(codeHash: string, now: string, tokens: OAuthTokenRow[]): Promise<boolean>;
  /** The token by its hash, with its grant and the grant's key. */
  findOAuthToken(tokenHash: string): Promise<OAuthTokenLookup | undefined>;
  /** The access token by its hash joined with its grant and key: one indexed query (the /mcp hot path). */
  findOAuthAccessToken(tokenHash: string): Promise<OAuthAccessTokenLookup | undefined>;
  /** Rotates a refresh token: one guarded update (unused, unexpired) and the new tokens, in one transaction. */
  rotateOAuthRefreshToken(tokenHash: string, now: string, tokens: OAuthTokenRow[]): Promise<boolean>;
  /**
   * Revokes a grant: sets its key's revoked_at (unless set), so every token of it stops; its key.revoked event is
   * written in the same transaction when this revoked it.
   */
  revokeOAuthGrant(credentialId: string, now: string, event: (row: CredentialRow) => EventRow): Promise<void>;
  /** Deletes one token (RFC 7009 for an access token). */
  deleteOAuthToken(tokenHash: string): Promise<void>;
  /** The grants of these keys (those that are grants), by key id. */
  oauthGrants(credentialIds: string[]): Promise<Map<string, OAuthGrantRow>>;
}
