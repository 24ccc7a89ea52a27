import { type Kysely, sql } from 'kysely';

// OAuth for /mcp (server/oauth/): clients, pending authorizations, codes, grants and tokens. Codes and tokens are
// found by the SHA-256 hash of their value (the primary key): the raw value is never stored. A grant is an API key
// (credentials row); oauth_grants says which client it was made for, and every token points at the key, so that
// revoking or disabling the key stops its tokens at the next request.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('oauth_clients')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('client_uri', 'text')
    .addColumn('redirect_uris', 'text', (c) => c.notNull()) // JSON array
    .addColumn('software_id', 'text')
    .addColumn('software_version', 'text')
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('registered', 'metadata_document')`))
    .addColumn('metadata_expires_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('oauth_authorizations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('code_challenge', 'text', (c) => c.notNull())
    .addColumn('state', 'text')
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('session_hash', 'text')
    .addColumn('csrf_hash', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('decided_at', 'text')
    .execute();
  await db.schema
    .createTable('oauth_grants')
    .addColumn('credential_id', 'text', (c) => c.primaryKey().references('credentials.id'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('client_name', 'text', (c) => c.notNull())
    .addColumn('redirect_host', 'text', (c) => c.notNull())
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('oauth_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('credential_id', 'text', (c) => c.notNull().references('credentials.id'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('code_challenge', 'text', (c) => c.notNull())
    .addColumn('resource', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .execute();
  await db.schema
    .createTable('oauth_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('access', 'refresh')`))
    .addColumn('credential_id', 'text', (c) => c.notNull().references('credentials.id'))
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oauth_tokens_credential').on('oauth_tokens').column('credential_id').execute();
  // Maintenance removes what has expired (store.maintain): range deletes on these.
  await db.schema.createIndex('oauth_tokens_expires').on('oauth_tokens').column('expires_at').execute();
  await db.schema.createIndex('oauth_codes_expires').on('oauth_codes').column('expires_at').execute();
  await db.schema.createIndex('oauth_authorizations_expires').on('oauth_authorizations').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['oauth_tokens', 'oauth_codes', 'oauth_grants', 'oauth_authorizations', 'oauth_clients']) {
    await db.schema.dropTable(table).execute();
  }
}
