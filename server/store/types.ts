// The store: everything the server keeps, behind one async interface. It knows nothing of HTTP, and nothing
// outside server/store/ knows which database is behind it.
import type { Selectable } from 'kysely';
import type {
  AccountsTable,
  CredentialsTable,
  IdempotencyRecordsTable,
  UsageRecordsTable,
} from './schema.ts';

export type AccountRow = Selectable<AccountsTable>;
export type CredentialRow = Selectable<CredentialsTable>;
export type UsageRow = Selectable<UsageRecordsTable>;
export type IdempotencyRow = Selectable<IdempotencyRecordsTable>;

export interface Charge {
  /** Id of the ledger entry to write. */
  ledgerId: string;
  /** Credits to take, > 0. */
  amount: number;
}

export interface RecordUsageOptions {
  /** Take these credits in the same transaction; throws InsufficientCreditsError (and writes nothing) if the balance is short. */
  charge?: Charge;
  /** Set the credential's last_used_at to the record's time when it is older than this instant (or never set). */
  touchCredentialIfUsedBefore?: string;
}

export interface UsagePage {
  limit: number;
  /** Only records older than this one (a record of the account's, checked by the caller). */
  startingAfter?: string;
  credentialId?: string;
}

export interface Store {
  /** Applies the numbered migrations that have not run yet. */
  migrate(): Promise<void>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;

  countAccounts(): Promise<number>;
  createAccount(account: AccountRow): Promise<AccountRow>;
  getAccount(accountId: string): Promise<AccountRow | undefined>;
  /**
   * The account linked to a Dashboard session subject. When there is none and `create` is given, inserts it
   * (concurrent first sessions of one subject end up with the same single account).
   */
  sessionAccount(subject: string, create?: AccountRow): Promise<AccountRow | undefined>;
  /** Appends a grant to the ledger and returns the new balance. */
  grantCredits(grant: { ledgerId: string; accountId: string; amount: number; note: string | null; createdAt: string }): Promise<number>;
  getBalance(accountId: string): Promise<number | undefined>;
  /** Sum of the account's ledger entries: equals getBalance, always. */
  sumLedger(accountId: string): Promise<number>;

  /**
   * Inserts a credential. With an idempotency record, both are written in one transaction; if another request
   * already stored a record for the same (account, key hash), nothing is written and IdempotencyConflictError is thrown.
   */
  createCredential(credential: CredentialRow, idempotency?: IdempotencyRow): Promise<void>;
  /** The live (unexpired at `now`) idempotency record, if any. */
  findIdempotencyRecord(accountId: string, keyHash: string, now: string): Promise<IdempotencyRow | undefined>;
  findCredentialByHash(keyHash: string): Promise<CredentialRow | undefined>;
  getCredential(accountId: string, credentialId: string): Promise<CredentialRow | undefined>;
  /** Newest first. */
  listCredentials(accountId: string): Promise<CredentialRow[]>;
  /** Sets revoked_at unless already set; undefined when the account has no such credential. */
  revokeCredential(accountId: string, credentialId: string, now: string): Promise<CredentialRow | undefined>;

  /** Writes one usage record, with its charge and last-used update, atomically. */
  recordUsage(record: UsageRow, options?: RecordUsageOptions): Promise<void>;
  /** Newest first. */
  listUsage(accountId: string, page: UsagePage): Promise<UsageRow[]>;
  getUsageRecord(accountId: string, usageId: string): Promise<UsageRow | undefined>;
}
