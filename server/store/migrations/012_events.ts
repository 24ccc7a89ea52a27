import type { Kysely } from 'kysely';

// The account's events (GET /v1/me/events): an append-only log of the state changes that matter to its owner,
// each written in the transaction of the change it reports, so an event exists if and only if its change committed.
//
// `data` is the event's JSON payload as the contract declares it for its type. `api_key_id` is the key the event is
// about (or whose call caused it), for filtering. `dedupe_key` makes an event that must be said once per
// situation (a key's budget spent in one period, a key about to expire at one instant) an insert that does nothing
// the second time, on any instance: unique, and null for every other event.
//
// `accounts.low_balance_threshold`: credits.low is written when a charge takes the balance from at or above it to
// below it. `accounts.depleted_at`: set by the first charge refused for want of credits (credits.depleted is written
// then), cleared by the next grant, so a run of refused calls writes one event.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('account_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('api_key_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('dedupe_key', 'text', (c) => c.unique())
    .execute();
  // Newest-first pages, whole or of one type or one key, are index range scans.
  await db.schema.createIndex('account_events_account_time').on('account_events').columns(['account_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('account_events_account_type_time').on('account_events').columns(['account_id', 'type', 'created_at', 'id']).execute();
  await db.schema.createIndex('account_events_account_key_time').on('account_events').columns(['account_id', 'api_key_id', 'created_at', 'id']).execute();
  await db.schema.alterTable('accounts').addColumn('low_balance_threshold', 'bigint').execute();
  await db.schema.alterTable('accounts').addColumn('depleted_at', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('accounts').dropColumn('depleted_at').execute();
  await db.schema.alterTable('accounts').dropColumn('low_balance_threshold').execute();
  await db.schema.dropTable('account_events').execute();
}
