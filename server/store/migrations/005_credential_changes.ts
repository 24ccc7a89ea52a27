import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../dialect.ts';

/**
 * The credential columns whose change must reach every cached copy of a key: all of them but last_used_at, which
 * the usage writer updates (at most once a minute per key) and which authentication does not read.
 * test/store/sqlite-credential-cache.test.ts checks that this list and the table's columns agree.
 */
export const WATCHED_CREDENTIAL_COLUMNS = [
  'id', 'account_id', 'name', 'prefix', 'fingerprint', 'key_hash', 'created_at', 'expires_at', 'revoked_at', 'disabled_at',
  'owner_type', 'owner_user_id', 'project_id', 'permission_mode', 'access', 'budget_period', 'budget_amount',
  'budget_token_limit', 'rate_limit_rpm', 'created_by_id', 'updated_by_id', 'updated_at', 'previous_key_hash',
  'previous_key_expires_at', 'legacy_token_family', 'legacy_key_id',
] as const;

// SQLite: a counter that every change to the credentials table moves, whoever makes it (this server, the operator
// CLI in another process). The server keeps the keys it has looked up in memory and reads only this counter on each
// request; a key revoked, disabled, rotated or changed anywhere is read afresh on its very next request. (A
// PostgreSQL store is shared by many instances and reads the key on every request: nothing to add there.)
export async function up(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) return;
  await sql`create table credential_changes (id integer primary key check (id = 1), version integer not null)`.execute(db);
  await sql`insert into credential_changes (id, version) values (1, 0)`.execute(db);
  const bump = sql.raw('begin update credential_changes set version = version + 1 where id = 1; end');
  await sql`create trigger credentials_inserted after insert on credentials ${bump}`.execute(db);
  await sql`create trigger credentials_deleted after delete on credentials ${bump}`.execute(db);
  await sql`create trigger credentials_updated after update of ${sql.raw(WATCHED_CREDENTIAL_COLUMNS.join(', '))} on credentials ${bump}`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) return;
  for (const trigger of ['credentials_inserted', 'credentials_deleted', 'credentials_updated']) await sql`drop trigger ${sql.raw(trigger)}`.execute(db);
  await sql`drop table credential_changes`.execute(db);
}
