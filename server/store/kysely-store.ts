// One set of queries for every database Kysely speaks to. Dialect-specific set-up (connections, pragmas,
// error codes) lives in the files that construct this class.
import { type Kysely, Migrator, type Migration, sql } from 'kysely';
import type { Database } from './schema.ts';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type {
  AccountRow,
  ApiKeyPage,
  MaintenanceResult,
  RateLimiterOptions,
  CredentialRow,
  DashboardSessionRow,
  EventPage,
  EventRow,
  IdempotencyRow,
  OAuthAccessTokenLookup,
  OAuthAuthorizationRow,
  OAuthClientRow,
  OAuthCodeRow,
  OAuthGrantRow,
  OAuthTokenLookup,
  OAuthTokenRow,
  SignInLinkRefusal,
  SignInLinkRow,
  LedgerListing,
  LedgerPage,
  LedgerRow,
  RecordUsageOptions,
  Store,
  UsageAggregateQuery,
  UsageAggregateRow,
  UsagePage,
  UsageRow,
} from './types.ts';
import { BalanceLimitError, IdempotencyConflictError } from './errors.ts';
import { balanceBounds } from '../credit-bounds.ts';
import * as m001 from './migrations/001_initial.ts';
import * as m002 from './migrations/002_api_key_administration.ts';
import * as m003 from './migrations/003_shared_counters.ts';
import * as m004 from './migrations/004_usage_channel_and_legacy_keys.ts';
import * as m005 from './migrations/005_credential_changes.ts';
import * as m006 from './migrations/006_usage_rpc_method.ts';
import * as m007 from './migrations/007_usage_rollups.ts';
import * as m008 from './migrations/008_ledger_balance_and_request_ids.ts';
import * as m009 from './migrations/009_dashboard_sessions.ts';
import * as m010 from './migrations/010_oauth.ts';
import * as m011 from './migrations/011_usage_oauth_client.ts';
import * as m012 from './migrations/012_events.ts';
import { type CreditsGrantedData, EXPIRING_WITHIN_MS, keyExpiryEvent } from '../events.ts';

const migrations: Record<string, Migration> = {
  '001_initial': m001,
  '002_api_key_administration': m002,
  '003_shared_counters': m003,
  '004_usage_channel_and_legacy_keys': m004,
  '005_credential_changes': m005,
  '006_usage_rpc_method': m006,
  '007_usage_rollups': m007,
  '008_ledger_balance_and_request_ids': m008,
  '009_dashboard_sessions': m009,
  '010_oauth': m010,
  '011_usage_oauth_client': m011,
  '012_events': m012,
};

/** An account's columns but its ledger counter, which only the store's own updates use. */
const ACCOUNT_COLUMNS = ['id', 'name', 'balance', 'session_subject', 'created_at'] as const;

/** What differs between the databases; everything else is the shared queries below. */
export interface DialectHooks {
  kind: Store['kind'];
  /**
   * The schema the migration tables live in (PostgreSQL). Kysely otherwise finds them in any schema of the
   * database, and would skip creating this one's.
   */
  migrationSchema?(db: Kysely<Database>): Promise<string>;
  isUniqueViolation(error: unknown): boolean;
  rateLimiter(options: RateLimiterOptions): RateLimiterAbstract;
  /** Runs before the migrations (PostgreSQL: creates the configured schema). */
  beforeMigrate?(db: Kysely<Database>): Promise<void>;
  /**
   * Runs `migrate` holding the database's write lock, for databases whose migrator lock is a no-op (SQLite); it
   * is given a connection to migrate on, already inside the transaction.
   */
  exclusively?(db: Kysely<Database>, migrate: (connection: Kysely<Database>) => Promise<void>): Promise<void>;
  /** Runs after the migrations (PostgreSQL: makes the coming months' usage partitions). */
  afterMigrate?(db: Kysely<Database>, now: Date): Promise<void>;
  /** Removes usage records created before `cutoff` (ISO); returns what it removed. */
  expireUsage(db: Kysely<Database>, cutoff: string): Promise<MaintenanceResult>;
  close?(): Promise<void>;
}

export abstract class KyselyStore implements Store {
  readonly kind: Store['kind'];

  constructor(
    protected readonly db: Kysely<Database>,
    private readonly hooks: DialectHooks,
  ) {
    this.kind = hooks.kind;
  }

  async migrate(): Promise<void> {
    // Kysely's migrator takes a lock (a row lock on PostgreSQL), so instances starting together wait their turn.
    await this.hooks.beforeMigrate?.(this.db);
    const migrationTableSchema = await this.hooks.migrationSchema?.(this.db);
    const migrate = async (db: Kysely<Database>, disableTransactions = false) => {
      const migrator = new Migrator({
        db,
        provider: { getMigrations: async () => migrations },
        migrationTableName: 'schema_migrations',
        migrationLockTableName: 'schema_migrations_lock',
        disableTransactions,
        ...(migrationTableSchema ? { migrationTableSchema } : {}),
      });
      const { error } = await migrator.migrateToLatest();
      if (error) throw error;
    };
    if (this.hooks.exclusively) await this.hooks.exclusively(this.db, (connection) => migrate(connection, true));
    else await migrate(this.db);
    await this.hooks.afterMigrate?.(this.db, new Date());
  }

  async maintain(now: Date, options: { retentionDays?: number; eventIds?: () => string }): Promise<MaintenanceResult> {
    await this.hooks.afterMigrate?.(this.db, now);
    const expiry = options.eventIds ? { expiryEvents: await this.writeExpiryEvents(now, options.eventIds) } : {};
    // Sign-in links and Dashboard sessions a day past their expiry serve nobody (the day lets a late click still be
    // told "expired" rather than "not valid"); the expires_at indexes make this a range delete.
    const dayAgo = new Date(now.getTime() - 86_400_000).toISOString();
    await this.db.deleteFrom('sign_in_links').where('expires_at', '<', dayAgo).execute();
    await this.db.deleteFrom('dashboard_sessions').where('expires_at', '<', dayAgo).execute();
    // OAuth's pending authorizations, codes and tokens likewise. A used code or refresh token is kept until it
    // expires, so that presenting it again is recognised as a replay (and revokes the grant) until then.
    await this.db.deleteFrom('oauth_authorizations').where('expires_at', '<', dayAgo).execute();
    await this.db.deleteFrom('oauth_codes').where('expires_at', '<', dayAgo).execute();
    await this.db.deleteFrom('oauth_tokens').where('expires_at', '<', dayAgo).execute();
    if (!options.retentionDays) return { deletedRecords: 0, droppedPartitions: [], ...expiry };
    const cutoff = new Date(now.getTime() - options.retentionDays * 86_400_000).toISOString();
    return { ...(await this.hooks.expireUsage(this.db, cutoff)), ...expiry };
  }

  /**
   * key.expiring for each unrevoked key expiring within EXPIRING_WITHIN_MS, key.expired for each whose expiry has
   * passed: once per key, type and expiry instant (the events' dedupe keys), whichever instance runs this, however
   * often. A key that expired long before this ran gets only key.expired.
   */
  private async writeExpiryEvents(now: Date, eventIds: () => string): Promise<number> {
    const at = now.toISOString();
    const horizon = new Date(now.getTime() + EXPIRING_WITHIN_MS).toISOString();
    const keys = await this.db
      .selectFrom('credentials')
      .selectAll()
      .where('revoked_at', 'is', null)
      .where('expires_at', 'is not', null)
      .where('expires_at', '<=', horizon)
      .execute();
    let written = 0;
    for (const key of keys) {
      const event = keyExpiryEvent(eventIds(), key.expires_at! <= at ? 'key.expired' : 'key.expiring', key, at);
      const inserted = await this.db.insertInto('account_events').values(event).onConflict((oc) => oc.column('dedupe_key').doNothing()).executeTakeFirst();
      written += Number(inserted.numInsertedOrUpdatedRows ?? 0n);
    }
    return written;
  }

  rateLimiter(options: RateLimiterOptions): RateLimiterAbstract {
    return this.hooks.rateLimiter(options);
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async durability(): Promise<Record<string, string>> {
    return {};
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.hooks.close?.();
  }

  async countAccounts(): Promise<number> {
    const row = await this.db.selectFrom('accounts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async createAccount(account: AccountRow): Promise<AccountRow> {
    await this.db.insertInto('accounts').values(account).execute();
    return account;
  }

  async getAccount(accountId: string): Promise<AccountRow | undefined> {
    const row = await this.db.selectFrom('accounts').select(ACCOUNT_COLUMNS).where('id', '=', accountId).executeTakeFirst();
    return row && { ...row, balance: Number(row.balance) };
  }

  async sessionAccount(subject: string, create?: AccountRow): Promise<AccountRow | undefined> {
    const find = () => this.db.selectFrom('accounts').select(ACCOUNT_COLUMNS).where('session_subject', '=', subject).executeTakeFirst();
    const found = await find();
    if (found || !create) return found && { ...found, balance: Number(found.balance) };
    await this.db
      .insertInto('accounts')
      .values({ ...create, session_subject: subject })
      .onConflict((oc) => oc.column('session_subject').doNothing())
      .execute();
    const row = await find();
    return row && { ...row, balance: Number(row.balance) };
  }

  async grantCredits(grant: { ledgerId: string; eventId: string; accountId: string; amount: number; note: string | null; createdAt: string }): Promise<number> {
    const { maximum } = balanceBounds();
    if (!Number.isSafeInteger(grant.amount) || grant.amount <= 0) {
      throw new RangeError(`a grant is a positive whole number of credits, not ${grant.amount}`);
    }
    return this.db.transaction().execute(async (trx) => {
      // Guarded in the update itself, so concurrent grants cannot together pass the bound.
      const updated = await trx
        .updateTable('accounts')
        // A grant ends the depleted state: the next refusal for want of credits is news again.
        .set((eb) => ({ balance: eb('balance', '+', grant.amount), ledger_seq: eb('ledger_seq', '+', 1), depleted_at: null }))
        .where('id', '=', grant.accountId)
        .where('balance', '<=', maximum - grant.amount)
        .returning(['balance', 'ledger_seq'])
        .executeTakeFirst();
      if (!updated) {
        const account = await trx.selectFrom('accounts').select('balance').where('id', '=', grant.accountId).executeTakeFirst();
        if (!account) throw new Error(`no account ${grant.accountId}`);
        throw new BalanceLimitError(grant.accountId, Number(account.balance), grant.amount, maximum);
      }
      await trx
        .insertInto('credit_ledger')
        .values({
          id: grant.ledgerId,
          account_id: grant.accountId,
          amount: grant.amount,
          kind: 'grant',
          usage_id: null,
          note: grant.note,
          created_at: grant.createdAt,
          balance_after: Number(updated.balance),
          seq: Number(updated.ledger_seq),
        })
        .execute();
      const data: CreditsGrantedData = { ledger_entry_id: grant.ledgerId, amount: grant.amount, balance_after: Number(updated.balance), note: grant.note };
      await trx
        .insertInto('account_events')
        .values({ id: grant.eventId, account_id: grant.accountId, type: 'credits.granted', api_key_id: null, created_at: grant.createdAt, data: JSON.stringify(data), dedupe_key: null })
        .execute();
      return Number(updated.balance);
    });
  }

  async markDepleted(event: EventRow): Promise<boolean> {
    // Read first: a storm of refused calls on a depleted account then takes no write lock at all.
    const account = await this.db.selectFrom('accounts').select('depleted_at').where('id', '=', event.account_id).executeTakeFirst();
    if (!account || account.depleted_at !== null) return false;
    return this.db.transaction().execute(async (trx) => {
      const marked = await trx
        .updateTable('accounts')
        .set({ depleted_at: event.created_at })
        .where('id', '=', event.account_id)
        .where('depleted_at', 'is', null)
        .executeTakeFirst();
      if (Number(marked.numUpdatedRows) !== 1) return false;
      await trx.insertInto('account_events').values(event).execute();
      return true;
    });
  }

  async getLowBalanceThreshold(accountId: string): Promise<number | null | undefined> {
    const row = await this.db.selectFrom('accounts').select('low_balance_threshold').where('id', '=', accountId).executeTakeFirst();
    return row && (row.low_balance_threshold === null ? null : Number(row.low_balance_threshold));
  }

  async setLowBalanceThreshold(accountId: string, threshold: number | null): Promise<void> {
    await this.db.updateTable('accounts').set({ low_balance_threshold: threshold }).where('id', '=', accountId).execute();
  }

  async listEvents(accountId: string, page: EventPage): Promise<EventRow[]> {
    let query = this.db.selectFrom('account_events').selectAll().where('account_id', '=', accountId);
    if (page.type !== undefined) query = query.where('type', '=', page.type);
    if (page.credentialId !== undefined) query = query.where('api_key_id', '=', page.credentialId);
    if (page.from !== undefined) query = query.where('created_at', '>=', page.from);
    if (page.to !== undefined) query = query.where('created_at', '<', page.to);
    const after = page.startingAfter;
    if (after) {
      query = query.where((eb) =>
        eb.or([eb('created_at', '<', after.created_at), eb.and([eb('created_at', '=', after.created_at), eb('id', '<', after.id)])]),
      );
    }
    return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit).execute();
  }

  async getEvent(accountId: string, eventId: string): Promise<EventRow | undefined> {
    return this.db.selectFrom('account_events').selectAll().where('account_id', '=', accountId).where('id', '=', eventId).executeTakeFirst();
  }

  async getBalance(accountId: string): Promise<number | undefined> {
    const row = await this.db.selectFrom('accounts').select('balance').where('id', '=', accountId).executeTakeFirst();
    return row && Number(row.balance);
  }

  async sumLedger(accountId: string): Promise<number> {
    const row = await this.db
      .selectFrom('credit_ledger')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount'), sql<number>`0`).as('total'))
      .where('account_id', '=', accountId)
      .executeTakeFirstOrThrow();
    return Number(row.total);
  }

  async listLedger(accountId: string, page: LedgerPage): Promise<LedgerListing[]> {
    let query = this.db
      .selectFrom('credit_ledger')
      // A charge's usage record has the charge's id as usage_id and its created_at (PostgreSQL: one partition).
      .leftJoin('usage_records', (join) =>
        join
          .onRef('usage_records.id', '=', 'credit_ledger.usage_id')
          .onRef('usage_records.created_at', '=', 'credit_ledger.created_at')
          .onRef('usage_records.account_id', '=', 'credit_ledger.account_id'),
      )
      .selectAll('credit_ledger')
      .select('usage_records.request_id')
      .where('credit_ledger.account_id', '=', accountId);
    if (page.startingAfter) query = query.where('credit_ledger.seq', '<', page.startingAfter.seq);
    const rows = await query.orderBy('credit_ledger.seq', 'desc').limit(page.limit).execute();
    return rows.map((row) => ({ ...row, amount: Number(row.amount), balance_after: Number(row.balance_after), seq: Number(row.seq) }));
  }

  async getLedgerEntry(accountId: string, ledgerId: string): Promise<LedgerRow | undefined> {
    const row = await this.db.selectFrom('credit_ledger').selectAll().where('account_id', '=', accountId).where('id', '=', ledgerId).executeTakeFirst();
    return row && { ...row, amount: Number(row.amount), balance_after: Number(row.balance_after), seq: Number(row.seq) };
  }

  async getKeySpend(credentialId: string, periodStart: string): Promise<number> {
    const row = await this.db
      .selectFrom('key_spend')
      .select('spent')
      .where('credential_id', '=', credentialId)
      .where('period_start', '=', periodStart)
      .executeTakeFirst();
    return Number(row?.spent ?? 0);
  }

  async createCredential(credential: CredentialRow, idempotency?: IdempotencyRow, event?: EventRow): Promise<void> {
    if (!idempotency && !event) {
      await this.db.insertInto('credentials').values(credential).execute();
      return;
    }
    try {
      await this.db.transaction().execute(async (trx) => {
        if (idempotency) await keepAnswer(trx, idempotency);
        await trx.insertInto('credentials').values(credential).execute();
        if (event) await trx.insertInto('account_events').values(event).execute();
      });
    } catch (error) {
      if (this.hooks.isUniqueViolation(error)) throw new IdempotencyConflictError();
      throw error;
    }
  }

  async findIdempotencyRecord(accountId: string, keyHash: string, now: string): Promise<IdempotencyRow | undefined> {
    return this.db
      .selectFrom('idempotency_records')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('key_hash', '=', keyHash)
      .where('expires_at', '>', now)
      .executeTakeFirst();
  }

  async findCredentialByHash(keyHash: string): Promise<CredentialRow | undefined> {
    return this.db
      .selectFrom('credentials')
      .selectAll()
      .where((eb) => eb.or([eb('key_hash', '=', keyHash), eb('previous_key_hash', '=', keyHash)]))
      .executeTakeFirst();
  }

  async getCredential(accountId: string, credentialId: string): Promise<CredentialRow | undefined> {
    return this.db
      .selectFrom('credentials')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('id', '=', credentialId)
      .executeTakeFirst();
  }

  async listCredentials(accountId: string, projectId?: string): Promise<CredentialRow[]> {
    let query = this.db.selectFrom('credentials').selectAll().where('account_id', '=', accountId);
    if (projectId !== undefined) query = query.where('project_id', '=', projectId);
    return query.orderBy('id', 'desc').execute();
  }

  async listApiKeys(accountId: string, page: ApiKeyPage): Promise<{ rows: CredentialRow[]; hasMore: boolean }> {
    const backwards = page.endingBefore !== undefined;
    let query = this.db.selectFrom('credentials').selectAll().where('account_id', '=', accountId);
    if (page.projectId !== undefined) query = query.where('project_id', '=', page.projectId);
    if (page.status !== undefined) {
      const { now } = page;
      query = query.where((eb) => {
        const live = eb.and([eb('revoked_at', 'is', null), eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)])]);
        switch (page.status) {
          case 1:
            return eb.and([live, eb('disabled_at', 'is', null)]);
          case 2:
            return eb.and([live, eb('disabled_at', 'is not', null)]);
          case 3:
            return eb('revoked_at', 'is not', null);
          default:
            return eb.and([eb('revoked_at', 'is', null), eb('expires_at', '<=', now)]);
        }
      });
    }
    // Keyset pagination on the (account_id, id) index: any page costs what the first does, however deep.
    if (page.startingAfter !== undefined) query = query.where('id', '<', page.startingAfter);
    if (backwards) query = query.where('id', '>', page.endingBefore!);
    const rows = await query.orderBy('id', backwards ? 'asc' : 'desc').limit(page.limit + 1).execute();
    const hasMore = rows.length > page.limit;
    const pageRows = rows.slice(0, page.limit);
    return { rows: backwards ? pageRows.reverse() : pageRows, hasMore };
  }

  async revokeCredential(
    accountId: string,
    credentialId: string,
    now: string,
    by: string,
    answer?: (row: CredentialRow) => IdempotencyRow,
    event?: (row: CredentialRow) => EventRow,
  ): Promise<CredentialRow | undefined> {
    return this.changeCredential(accountId, credentialId, answer, event, (db) =>
      db
        .updateTable('credentials')
        .set({ revoked_at: now, updated_at: now, updated_by_id: by, previous_key_hash: null, previous_key_expires_at: null })
        .where('account_id', '=', accountId)
        .where('id', '=', credentialId)
        .where('revoked_at', 'is', null)
        .execute(),
    );
  }

  async updateCredential(
    accountId: string,
    credentialId: string,
    changes: Partial<Omit<CredentialRow, 'id' | 'account_id'>>,
    answer?: (row: CredentialRow) => IdempotencyRow,
    event?: (row: CredentialRow) => EventRow,
  ): Promise<CredentialRow | undefined> {
    return this.changeCredential(accountId, credentialId, answer, event, (db) =>
      db.updateTable('credentials').set(changes).where('account_id', '=', accountId).where('id', '=', credentialId).execute(),
    );
  }

  /**
   * A change of a credential, with (given `answer`) the answer kept under its Idempotency-Key and (given `event`,
   * when the change changed a row) its event, in one transaction.
   */
  private async changeCredential(
    accountId: string,
    credentialId: string,
    answer: ((row: CredentialRow) => IdempotencyRow) | undefined,
    event: ((row: CredentialRow) => EventRow) | undefined,
    change: (db: Kysely<Database>) => Promise<Array<{ numUpdatedRows: bigint }>>,
  ): Promise<CredentialRow | undefined> {
    if (!answer && !event) {
      await change(this.db);
      return this.getCredential(accountId, credentialId);
    }
    try {
      return await this.db.transaction().execute(async (trx) => {
        const [result] = await change(trx);
        const row = await trx.selectFrom('credentials').selectAll().where('account_id', '=', accountId).where('id', '=', credentialId).executeTakeFirst();
        if (!row) return undefined;
        if (event && Number(result?.numUpdatedRows ?? 0n) > 0) await trx.insertInto('account_events').values(event(row)).execute();
        if (answer) await keepAnswer(trx, answer(row));
        return row;
      });
    } catch (error) {
      if (this.hooks.isUniqueViolation(error)) throw new IdempotencyConflictError();
      throw error;
    }
  }

  /** Group-committed by each database's own writer (sqlite-writer.ts, postgres.ts): the charging rules live there. */
  abstract recordUsage(record: UsageRow, options?: RecordUsageOptions): Promise<void>;

  async listUsage(accountId: string, page: UsagePage): Promise<UsageRow[]> {
    let query = this.db.selectFrom('usage_records').selectAll().where('account_id', '=', accountId);
    // Each filter has an index that starts (account_id, <filter>, created_at, id), so a page of one filter is a
    // range scan of it, newest first (migrations 001, 004, 007); with several, the planner takes one and checks the rest.
    if (page.credentialId) query = query.where('credential_id', '=', page.credentialId);
    if (page.channel) query = query.where('channel', '=', page.channel);
    if (page.tool) query = query.where('tool', '=', page.tool);
    // As migration 007's index spells it.
    if (page.statusClass !== undefined) query = query.where(sql`status_code / 100`, '=', page.statusClass);
    if (page.from) query = query.where('created_at', '>=', page.from);
    if (page.to) query = query.where('created_at', '<', page.to);
    const after = page.startingAfter;
    if (after) query = query.where((eb) => eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(after.created_at, after.id)));
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit).execute();
    return rows.map((row) => ({ ...row, dataforseo_cost_usd: Number(row.dataforseo_cost_usd) }));
  }

  async usageAggregates(accountId: string, query: UsageAggregateQuery): Promise<UsageAggregateRow[]> {
    const start = query.interval === 'hour' ? sql<string>`hour` : sql<string>`substr(hour, 1, 10) || 'T00:00:00.000Z'`;
    const group =
      query.groupBy === 'channel' ? sql<string>`channel` : query.groupBy === 'tool' ? sql<string>`tool` : query.groupBy === 'credential' ? sql<string>`credential_id` : sql<string>`''`;
    // The primary key (account_id, hour, …) bounds the scan to the account's rollups of the range; only a split by
    // key needs the rollups per key (usage-rollups.ts).
    const { rows } = await sql<{ start: string; grp: string; requests: number; errors: number; credits: number }>`
      select ${start} as start, ${group} as grp, sum(requests) as requests, sum(errors) as errors, sum(credits) as credits
      from ${sql.table(query.groupBy === 'credential' ? 'usage_rollups' : 'usage_rollups_all_keys')} where account_id = ${accountId} and hour >= ${query.from} and hour < ${query.to}
      group by 1, 2 order by 1, 2 limit ${query.limit}`.execute(this.db);
    // '' (no tool, no key) sorts first, as null should.
    return rows.map((row) => ({
      start: row.start,
      group: row.grp === '' ? null : row.grp,
      requests: Number(row.requests),
      errors: Number(row.errors),
      credits: Number(row.credits),
    }));
  }

  async getUsageRecord(accountId: string, usageId: string): Promise<UsageRow | undefined> {
    return this.db
      .selectFrom('usage_records')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('id', '=', usageId)
      .executeTakeFirst();
  }

  async listAccounts(limit: number): Promise<AccountRow[]> {
    const rows = await this.db.selectFrom('accounts').selectAll().orderBy('id').limit(limit).execute();
    return rows.map((row) => ({ ...row, balance: Number(row.balance) }));
  }

  async createSignInLink(link: SignInLinkRow): Promise<void> {
    await this.db.insertInto('sign_in_links').values(link).execute();
  }

  async redeemSignInLink(
    tokenHash: string,
    now: string,
    session: Omit<DashboardSessionRow, 'account_id'>,
  ): Promise<{ session: DashboardSessionRow } | { refused: SignInLinkRefusal }> {
    return this.db.transaction().execute(async (trx) => {
      // The guard is in the update itself: a second request with the same link finds used_at set and changes nothing.
      const redeemed = await trx
        .updateTable('sign_in_links')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .returning('account_id')
        .executeTakeFirst();
      if (!redeemed) {
        const link = await trx.selectFrom('sign_in_links').select(['used_at']).where('token_hash', '=', tokenHash).executeTakeFirst();
        return { refused: !link ? 'unknown' : link.used_at !== null ? 'used' : 'expired' };
      }
      const row: DashboardSessionRow = { ...session, account_id: redeemed.account_id };
      await trx.insertInto('dashboard_sessions').values(row).execute();
      return { session: row };
    });
  }

  async createDashboardSession(session: DashboardSessionRow): Promise<void> {
    await this.db.insertInto('dashboard_sessions').values(session).execute();
  }

  async findDashboardSession(tokenHash: string): Promise<DashboardSessionRow | undefined> {
    return this.db.selectFrom('dashboard_sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  async endDashboardSession(tokenHash: string, now: string): Promise<void> {
    await this.db.updateTable('dashboard_sessions').set({ ended_at: now }).where('token_hash', '=', tokenHash).where('ended_at', 'is', null).execute();
  }

  async insertOAuthClient(client: OAuthClientRow): Promise<void> {
    await this.db.insertInto('oauth_clients').values(client).execute();
  }

  async saveOAuthClientMetadata(client: OAuthClientRow): Promise<void> {
    // A fetched metadata document replaces its cached copy (never a registered client's row: those ids are orc_…).
    await this.db
      .insertInto('oauth_clients')
      .values(client)
      .onConflict((oc) =>
        oc
          .column('id')
          .doUpdateSet((eb) => ({
            name: eb.ref('excluded.name'),
            client_uri: eb.ref('excluded.client_uri'),
            redirect_uris: eb.ref('excluded.redirect_uris'),
            software_id: eb.ref('excluded.software_id'),
            software_version: eb.ref('excluded.software_version'),
            metadata_expires_at: eb.ref('excluded.metadata_expires_at'),
          }))
          .where('oauth_clients.source', '=', 'metadata_document'),
      )
      .execute();
  }

  async findOAuthClient(clientId: string): Promise<OAuthClientRow | undefined> {
    return this.db.selectFrom('oauth_clients').selectAll().where('id', '=', clientId).executeTakeFirst();
  }

  async createOAuthAuthorization(authorization: OAuthAuthorizationRow): Promise<void> {
    await this.db.insertInto('oauth_authorizations').values(authorization).execute();
  }

  async getOAuthAuthorization(id: string): Promise<OAuthAuthorizationRow | undefined> {
    return this.db.selectFrom('oauth_authorizations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async bindOAuthAuthorization(id: string, sessionHash: string, csrfHash: string, now: string): Promise<OAuthAuthorizationRow | undefined> {
    // The guard is the update's: of two sessions reading at once, one binds it and the other changes nothing.
    return this.db
      .updateTable('oauth_authorizations')
      .set({ session_hash: sessionHash, csrf_hash: csrfHash })
      .where('id', '=', id)
      .where('decided_at', 'is', null)
      .where('expires_at', '>', now)
      .where((eb) => eb.or([eb('session_hash', 'is', null), eb('session_hash', '=', sessionHash)]))
      .returningAll()
      .executeTakeFirst();
  }

  async decideOAuthAuthorization(
    id: string,
    guard: { sessionHash: string; csrfHash: string; now: string },
    approval?: { credential: CredentialRow; grant: OAuthGrantRow; code: OAuthCodeRow; event: EventRow },
  ): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const decided = await trx
        .updateTable('oauth_authorizations')
        .set({ decided_at: guard.now })
        .where('id', '=', id)
        .where('decided_at', 'is', null)
        .where('expires_at', '>', guard.now)
        .where('session_hash', '=', guard.sessionHash)
        .where('csrf_hash', '=', guard.csrfHash)
        .executeTakeFirst();
      if (Number(decided.numUpdatedRows) !== 1) return false;
      if (approval) {
        await trx.insertInto('credentials').values(approval.credential).execute();
        await trx.insertInto('oauth_grants').values(approval.grant).execute();
        await trx.insertInto('oauth_codes').values(approval.code).execute();
        await trx.insertInto('account_events').values(approval.event).execute();
      }
      return true;
    });
  }

  async findOAuthCode(codeHash: string): Promise<{ code: OAuthCodeRow; credential: CredentialRow } | undefined> {
    const code = await this.db.selectFrom('oauth_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
    if (!code) return undefined;
    const credential = await this.db.selectFrom('credentials').selectAll().where('id', '=', code.credential_id).executeTakeFirst();
    return credential && { code, credential };
  }

  async redeemOAuthCode(codeHash: string, now: string, tokens: OAuthTokenRow[]): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      // One guarded update: a second request with the same code, on any instance, finds used_at set.
      const used = await trx
        .updateTable('oauth_codes')
        .set({ used_at: now })
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .returning('code_hash')
        .executeTakeFirst();
      if (!used) return false;
      if (tokens.length > 0) await trx.insertInto('oauth_tokens').values(tokens).execute();
      return true;
    });
  }

  async findOAuthToken(tokenHash: string): Promise<OAuthTokenLookup | undefined> {
    const token = await this.db.selectFrom('oauth_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    if (!token) return undefined;
    const grant = await this.db.selectFrom('oauth_grants').selectAll().where('credential_id', '=', token.credential_id).executeTakeFirst();
    const credential = await this.db.selectFrom('credentials').selectAll().where('id', '=', token.credential_id).executeTakeFirst();
    return grant && credential ? { token, grant, credential } : undefined;
  }

  async findOAuthAccessToken(tokenHash: string): Promise<OAuthAccessTokenLookup | undefined> {
    // One query on three primary keys: the token, its grant, the grant's key.
    const row = await this.db
      .selectFrom('oauth_tokens')
      .innerJoin('oauth_grants', 'oauth_grants.credential_id', 'oauth_tokens.credential_id')
      .innerJoin('credentials', 'credentials.id', 'oauth_tokens.credential_id')
      .selectAll('credentials')
      .select([
        'oauth_tokens.expires_at as token_expires_at',
        'oauth_grants.client_id as grant_client_id',
        'oauth_grants.scopes as grant_scopes',
        'oauth_grants.resource as grant_resource',
      ])
      .where('oauth_tokens.token_hash', '=', tokenHash)
      .where('oauth_tokens.kind', '=', 'access')
      .executeTakeFirst();
    if (!row) return undefined;
    const { token_expires_at, grant_client_id, grant_scopes, grant_resource, ...credential } = row;
    return { expires_at: token_expires_at, client_id: grant_client_id, scopes: grant_scopes, resource: grant_resource, credential };
  }

  async rotateOAuthRefreshToken(tokenHash: string, now: string, tokens: OAuthTokenRow[]): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const used = await trx
        .updateTable('oauth_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('kind', '=', 'refresh')
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .returning('token_hash')
        .executeTakeFirst();
      if (!used) return false;
      if (tokens.length > 0) await trx.insertInto('oauth_tokens').values(tokens).execute();
      return true;
    });
  }

  async revokeOAuthGrant(credentialId: string, now: string, event: (row: CredentialRow) => EventRow): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const revoked = await trx
        .updateTable('credentials')
        .set({ revoked_at: now, updated_at: now, previous_key_hash: null, previous_key_expires_at: null })
        .where('id', '=', credentialId)
        .where('revoked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (revoked) await trx.insertInto('account_events').values(event(revoked)).execute();
    });
  }

  async deleteOAuthToken(tokenHash: string): Promise<void> {
    await this.db.deleteFrom('oauth_tokens').where('token_hash', '=', tokenHash).execute();
  }

  async oauthGrants(credentialIds: string[]): Promise<Map<string, OAuthGrantRow>> {
    if (credentialIds.length === 0) return new Map();
    const rows = await this.db.selectFrom('oauth_grants').selectAll().where('credential_id', 'in', credentialIds).execute();
    return new Map(rows.map((row) => [row.credential_id, row]));
  }
}

/**
 * Keeps an answer under its Idempotency-Key, in the caller's transaction: an expired record under the key is dead
 * and makes room; a live one (another request's) is IdempotencyConflictError, and the transaction writes nothing.
 */
async function keepAnswer(trx: Kysely<Database>, idempotency: IdempotencyRow): Promise<void> {
  await trx
    .deleteFrom('idempotency_records')
    .where('account_id', '=', idempotency.account_id)
    .where('key_hash', '=', idempotency.key_hash)
    .where('expires_at', '<=', idempotency.created_at)
    .execute();
  const kept = await trx.insertInto('idempotency_records').values(idempotency).onConflict((oc) => oc.doNothing()).executeTakeFirst();
  if (Number(kept.numInsertedOrUpdatedRows ?? 0n) !== 1) throw new IdempotencyConflictError();
}
