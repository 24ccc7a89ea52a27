import type { Kysely } from 'kysely';

// MCP access: every usage record says which way the request came in (`api` or `mcp`) and which metered tool it
// called; keys can carry the identifiers of a key imported from an older token system (the v2 list item's
// legacy_token_family / legacy_key_id), null for keys made here.
export async function up(db: Kysely<any>): Promise<void> {
  // One column per statement: SQLite's ALTER TABLE adds one at a time. On PostgreSQL, adding a column to the
  // partitioned usage table adds it to every partition.
  await db.schema.alterTable('usage_records').addColumn('channel', 'text', (c) => c.notNull().defaultTo('api')).execute();
  await db.schema.alterTable('usage_records').addColumn('tool', 'text').execute();
  await db.schema.alterTable('credentials').addColumn('legacy_token_family', 'integer').execute();
  await db.schema.alterTable('credentials').addColumn('legacy_key_id', 'text').execute();
  // Newest-first pages of one channel (Activity's "MCP" filter) stay index range scans.
  await db.schema
    .createIndex('usage_records_channel')
    .on('usage_records')
    .columns(['account_id', 'channel', 'created_at', 'id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('usage_records_channel').execute();
  for (const column of ['legacy_key_id', 'legacy_token_family']) await db.schema.alterTable('credentials').dropColumn(column).execute();
  for (const column of ['tool', 'channel']) await db.schema.alterTable('usage_records').dropColumn(column).execute();
}
