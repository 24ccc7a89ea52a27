import type { Kysely } from 'kysely';
import { isPostgres } from '../dialect.ts';

// Rate-limit counters shared by every instance (PostgreSQL only; a SQLite file has one instance, which counts in
// memory). The layout is rate-limiter-flexible's RateLimiterPostgres table.
export async function up(db: Kysely<any>): Promise<void> {
  if (!isPostgres(db)) return;
  await db.schema
    .createTable('rate_limits')
    .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
    .addColumn('points', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expire', 'bigint')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) await db.schema.dropTable('rate_limits').execute();
}
