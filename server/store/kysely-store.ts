// One set of queries for every database Kysely speaks to. Dialect-specific set-up (connections, pragmas,
// error codes) lives in the files that construct this class.
import { type Kysely, Migrator, type Migration, sql } from 'kysely';
import type { Database } from './schema.ts';
import type {
  AccountRow,
  CredentialRow,
  IdempotencyRow,
  RecordUsageOptions,
  Store,
  UsagePage,
  UsageRow,
} from './types.ts';
import { IdempotencyConflictError, InsufficientCreditsError } from './errors.ts';
import * as m001 from './migrations/001_initial.ts';

const migrations: Record<string, Migration> = { '001_initial': m001 };

export class KyselyStore implements Store {
  constructor(
    protected readonly db: Kysely<Database>,
    private readonly isUniqueViolation: (error: unknown) => boolean,
  ) {}

  async migrate(): Promise<void> {
    const migrator = new Migrator({
      db: this.db,
      provider: { getMigrations: async () => migrations },
      migrationTableName: 'schema_migrations',
      migrationLockTableName: 'schema_migrations_lock',
    });
    const { error } = await migrator.migrateToLatest();
    if (error) throw error;
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
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
    const row = await this.db.selectFrom('accounts').selectAll().where('id', '=', accountId).executeTakeFirst();
    return row && { ...row, balance: Number(row.balance) };
  }

  async sessionAccount(subject: string, create?: AccountRow): Promise<AccountRow | undefined> {
    const find = () => this.db.selectFrom('accounts').selectAll().where('session_subject', '=', subject).executeTakeFirst();
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

  async grantCredits(grant: { ledgerId: string; accountId: string; amount: number; note: string | null; createdAt: string }): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('accounts')
        .set((eb) => ({ balance: eb('balance', '+', grant.amount) }))
        .where('id', '=', grant.accountId)
        .returning('balance')
        .executeTakeFirst();
      if (!updated) throw new Error(`no account ${grant.accountId}`);
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
        })
        .execute();
      return Number(updated.balance);
    });
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

  async createCredential(credential: CredentialRow, idempotency?: IdempotencyRow): Promise<void> {
    if (!idempotency) {
      await this.db.insertInto('credentials').values(credential).execute();
      return;
    }
    try {
      await this.db.transaction().execute(async (trx) => {
        // An expired record under the same key is dead: make room for the new one.
        await trx
          .deleteFrom('idempotency_records')
          .where('account_id', '=', idempotency.account_id)
          .where('key_hash', '=', idempotency.key_hash)
          .where('expires_at', '<=', idempotency.created_at)
          .execute();
        await trx.insertInto('idempotency_records').values(idempotency).execute();
        await trx.insertInto('credentials').values(credential).execute();
      });
    } catch (error) {
      if (this.isUniqueViolation(error)) throw new IdempotencyConflictError();
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
    return this.db.selectFrom('credentials').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
  }

  async getCredential(accountId: string, credentialId: string): Promise<CredentialRow | undefined> {
    return this.db
      .selectFrom('credentials')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('id', '=', credentialId)
      .executeTakeFirst();
  }

  async listCredentials(accountId: string): Promise<CredentialRow[]> {
    return this.db
      .selectFrom('credentials')
      .selectAll()
      .where('account_id', '=', accountId)
      .orderBy('id', 'desc')
      .execute();
  }

  async revokeCredential(accountId: string, credentialId: string, now: string): Promise<CredentialRow | undefined> {
    await this.db
      .updateTable('credentials')
      .set({ revoked_at: now })
      .where('account_id', '=', accountId)
      .where('id', '=', credentialId)
      .where('revoked_at', 'is', null)
      .execute();
    return this.getCredential(accountId, credentialId);
  }

  async recordUsage(record: UsageRow, options: RecordUsageOptions = {}): Promise<void> {
    const { charge, touchCredentialIfUsedBefore } = options;
    await this.db.transaction().execute(async (trx) => {
      if (charge) {
        // The conditional update is the whole concurrency story: it never takes the balance below zero.
        const charged = await trx
          .updateTable('accounts')
          .set((eb) => ({ balance: eb('balance', '-', charge.amount) }))
          .where('id', '=', record.account_id)
          .where('balance', '>=', charge.amount)
          .executeTakeFirst();
        if (Number(charged.numUpdatedRows) !== 1) {
          const row = await trx.selectFrom('accounts').select('balance').where('id', '=', record.account_id).executeTakeFirst();
          throw new InsufficientCreditsError(Number(row?.balance ?? 0), charge.amount);
        }
        await trx
          .insertInto('credit_ledger')
          .values({
            id: charge.ledgerId,
            account_id: record.account_id,
            amount: -charge.amount,
            kind: 'charge',
            usage_id: record.id,
            note: null,
            created_at: record.created_at,
          })
          .execute();
      }
      await trx.insertInto('usage_records').values(record).execute();
      if (touchCredentialIfUsedBefore && record.credential_id) {
        await trx
          .updateTable('credentials')
          .set({ last_used_at: record.created_at })
          .where('id', '=', record.credential_id)
          .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', touchCredentialIfUsedBefore)]))
          .execute();
      }
    });
  }

  async listUsage(accountId: string, page: UsagePage): Promise<UsageRow[]> {
    let query = this.db.selectFrom('usage_records').selectAll().where('account_id', '=', accountId);
    if (page.credentialId) query = query.where('credential_id', '=', page.credentialId);
    if (page.startingAfter) query = query.where('id', '<', page.startingAfter);
    const rows = await query.orderBy('id', 'desc').limit(page.limit).execute();
    return rows.map((row) => ({ ...row, dataforseo_cost_usd: Number(row.dataforseo_cost_usd) }));
  }

  async getUsageRecord(accountId: string, usageId: string): Promise<UsageRow | undefined> {
    return this.db
      .selectFrom('usage_records')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('id', '=', usageId)
      .executeTakeFirst();
  }
}
