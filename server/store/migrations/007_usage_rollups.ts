import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../dialect.ts';
import { BACKFILL_ROLLUPS } from '../usage-rollups.ts';

// The Dashboard's Activity: usage filtered by tool and by status class stays an index range scan, newest first,
// however many records the account has; and the usage rollups (see usage-rollups.ts) that answer the aggregates,
// backfilled here from the records already written.
export async function up(db: Kysely<any>): Promise<void> {
  const postgres = isPostgres(db);
  // Hours compare bytewise, as the usage table's timestamps do (COLLATE "C" on PostgreSQL).
  const sortable = postgres ? sql`text collate "C"` : sql`text`;
  await db.schema
    .createTable('usage_rollups')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('hour', sortable, (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('tool', 'text', (c) => c.notNull())
    .addColumn('credential_id', 'text', (c) => c.notNull())
    .addColumn('failed', 'integer', (c) => c.notNull())
    .addColumn('requests', 'bigint', (c) => c.notNull())
    .addColumn('errors', 'bigint', (c) => c.notNull())
    .addColumn('credits', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_rollups_pk', ['account_id', 'hour', 'channel', 'tool', 'credential_id', 'failed'])
    .execute();
  await db.schema.createIndex('usage_records_tool').on('usage_records').columns(['account_id', 'tool', 'created_at', 'id']).execute();
  // The status class as the queries spell it (`status_code / 100`, integer division on both databases).
  await sql`create index usage_records_status_class on usage_records (account_id, (status_code / 100), created_at, id)`.execute(db);
  await sql.raw(BACKFILL_ROLLUPS).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('usage_records_status_class').execute();
  await db.schema.dropIndex('usage_records_tool').execute();
  await db.schema.dropTable('usage_rollups').execute();
}
