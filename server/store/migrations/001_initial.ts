import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../dialect.ts';

// Portable schema: the same statements run on SQLite and PostgreSQL, but for the partitioning of the usage table.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('accounts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('balance', 'bigint', (c) => c.notNull().defaultTo(0).check(sql`balance >= 0`))
    .addColumn('session_subject', 'text', (c) => c.unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('credit_ledger')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('amount', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('grant', 'charge')`))
    .addColumn('usage_id', 'text')
    .addColumn('note', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('credit_ledger_account').on('credit_ledger').columns(['account_id', 'id']).execute();

  await db.schema
    .createTable('credentials')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'text')
    .addColumn('expires_at', 'text')
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('credentials_account').on('credentials').columns(['account_id', 'id']).execute();

  // PostgreSQL partitions usage by month, so that retention drops whole partitions (made ahead of time by the
  // store's maintenance; a default partition catches the rest). The partition key must be in the primary key, and
  // ids and timestamps compare bytewise (COLLATE "C") whatever the database's locale.
  const postgres = isPostgres(db);
  const sortable = postgres ? sql`text collate "C"` : sql`text`;
  let usage = db.schema
    .createTable('usage_records')
    .addColumn('id', sortable, (c) => (postgres ? c.notNull() : c.primaryKey()))
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('credential_id', 'text')
    .addColumn('auth_source', 'text', (c) => c.notNull())
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer', (c) => c.notNull())
    .addColumn('response_time_ms', 'integer', (c) => c.notNull())
    .addColumn('request_bytes', 'integer', (c) => c.notNull())
    .addColumn('response_bytes', 'integer', (c) => c.notNull())
    .addColumn('dataforseo_cost_usd', 'double precision', (c) => c.notNull().defaultTo(0))
    .addColumn('credits_charged', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error_type', 'text')
    .addColumn('error_message', 'text')
    .addColumn('created_at', sortable, (c) => c.notNull());
  if (postgres) {
    usage = usage.addPrimaryKeyConstraint('usage_records_pk', ['id', 'created_at']).modifyEnd(sql`partition by range (created_at)`);
  }
  await usage.execute();
  if (postgres) await sql`create table usage_records_default partition of usage_records default`.execute(db);
  // Newest-first pages per account, and per credential, are index range scans.
  await db.schema
    .createIndex('usage_records_account')
    .on('usage_records')
    .columns(['account_id', 'created_at', 'id'])
    .execute();
  await db.schema
    .createIndex('usage_records_credential')
    .on('usage_records')
    .columns(['account_id', 'credential_id', 'created_at', 'id'])
    .execute();

  await db.schema
    .createTable('idempotency_records')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer', (c) => c.notNull())
    .addColumn('response_ciphertext', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_records_pk', ['account_id', 'key_hash'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['idempotency_records', 'usage_records', 'credentials', 'credit_ledger', 'accounts']) {
    await db.schema.dropTable(table).execute();
  }
}
