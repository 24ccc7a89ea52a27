import { type Kysely, sql } from 'kysely';

// The Dashboard's sign-in: one-time sign-in links and the sessions they (or a Supabase sign-in) start. Both are
// found by the SHA-256 hash of their token (the primary key): the raw token is never stored.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('sign_in_links')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .execute();
  await db.schema
    .createTable('dashboard_sessions')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('sign_in_method', 'text', (c) => c.notNull().check(sql`sign_in_method in ('sign_in_link', 'supabase')`))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('ended_at', 'text')
    .execute();
  // Maintenance removes links and sessions long past their expiry.
  await db.schema.createIndex('sign_in_links_expires').on('sign_in_links').column('expires_at').execute();
  await db.schema.createIndex('dashboard_sessions_expires').on('dashboard_sessions').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('dashboard_sessions').execute();
  await db.schema.dropTable('sign_in_links').execute();
}
