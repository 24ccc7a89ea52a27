import { type Kysely, PostgresAdapter } from 'kysely';

/** Migrations that differ per database ask this. */
export function isPostgres(db: Kysely<any>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
