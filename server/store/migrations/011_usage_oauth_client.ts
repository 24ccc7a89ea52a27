import type { Kysely } from 'kysely';

// A usage record of a request made with an OAuth access token names the client the token was issued to (the
// grant's key is its credential_id, as for any key); null for every other request and for records made before.
// Usage rollups are untouched: they count by key, and a grant is a key.
export async function up(db: Kysely<any>): Promise<void> {
  // On PostgreSQL, adding a column to the partitioned usage table adds it to every partition.
  await db.schema.alterTable('usage_records').addColumn('oauth_client_id', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('usage_records').dropColumn('oauth_client_id').execute();
}
