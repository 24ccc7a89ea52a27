import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../dialect.ts';
import { BACKFILL_ROLLUPS, ROLLUP_TABLES } from '../usage-rollups.ts';

// The Dashboard's Activity: usage filtered by tool and by status class stays an index range scan, newest first,
// however many records the account has; and the usage rollups (see usage-rollups.ts) that answer the aggregates,
// backfilled here from the records already written.
export async function up(db: Kysely<any>): Promise<void> {
  const postgres = isPostgres(db);
  // Hours compare bytewise, as the usage table's timestamps do (COLLATE "C" on PostgreSQL).
  const sortable = postgres ? sql`text collate "C"` : sql`text`;
  for (const [table, key] of Object.entries(ROLLUP_TABLES)) {
    let rollups = db.schema.createTable(table);
    for (const column of key) {
      rollups = rollups.addColumn(column, column === 'failed' ? 'integer' : column === 'hour' ? sortable : 'text', (c) => c.notNull());
    }
    for (const column of ['requests', 'errors', 'credits']) rollups = rollups.addColumn(column, 'bigint', (c) => c.notNull());
    rollups = rollups.addPrimaryKeyConstraint(`${table}_pk`, [...key] as string[] as never[]);
    // SQLite: the rows kept in primary-key order (no rowid table beside the key's index), so summing an account's
    // range reads the rows themselves, in order, instead of looking each one up from the index.
    if (!postgres) rollups = rollups.modifyEnd(sql`without rowid`);
    await rollups.execute();
  }
  await db.schema.createIndex('usage_records_tool').on('usage_records').columns(['account_id', 'tool', 'created_at', 'id']).execute();
  // The status class as the queries spell it (`status_code / 100`, integer division on both databases).
  await sql`create index usage_records_status_class on usage_records (account_id, (status_code / 100), created_at, id)`.execute(db);
  for (const statement of BACKFILL_ROLLUPS) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('usage_records_status_class').execute();
  await db.schema.dropIndex('usage_records_tool').execute();
  for (const table of Object.keys(ROLLUP_TABLES)) await db.schema.dropTable(table).execute();
}
