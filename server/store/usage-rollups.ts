// The usage rollups (migration 007): per account, UTC hour, channel, tool, key and "failed" (status >= 400), the
// counts of requests, errors and credits charged. They are written in the same transaction as the usage records
// they count (every store's batch writer runs ROLLUP_UPSERT over the records it has just inserted), and migration
// 007 backfills them from the records already there with the very same statement, so they are exact. Retention
// (`maintain`) deletes old usage records but keeps their rollups: the aggregates outlive the records.
//
// Text columns, not NULLs, for "no tool" and "no key" (''): they are part of the primary key, and a NULL there
// would never conflict, so the upsert would add a row each time instead of adding to one.

/** The rollup row of a usage record, as SQL over a table (or subquery) aliased `u`: the same on SQLite and PostgreSQL. */
const ROLLUP_OF_RECORDS =
  "select u.account_id, substr(u.created_at, 1, 13) || ':00:00.000Z', u.channel, coalesce(u.tool, ''), " +
  "coalesce(u.credential_id, ''), case when u.status_code >= 400 then 1 else 0 end, count(*), " +
  'sum(case when u.status_code >= 400 then 1 else 0 end), sum(u.credits_charged)';

const ROLLUP_KEY = ['account_id', 'hour', 'channel', 'tool', 'credential_id', 'failed'] as const;
const ROLLUP_COLUMNS = [...ROLLUP_KEY, 'requests', 'errors', 'credits'].join(', ');

/**
 * `insert into usage_rollups … select <the rollups of the records of SOURCE> … on conflict add`: SOURCE is a table
 * expression whose rows are usage records (the whole table for the backfill; the batch just written otherwise).
 * Grouped, so one statement never touches a rollup row twice; ordered by the key, so that concurrent batches
 * (PostgreSQL runs a few at once) lock the rows they share in the same order and never deadlock.
 */
export function rollupUpsert(source: string, where = 'true'): string {
  return (
    `insert into usage_rollups (${ROLLUP_COLUMNS}) ${ROLLUP_OF_RECORDS} from ${source} u where ${where} ` +
    'group by 1, 2, 3, 4, 5, 6 order by 1, 2, 3, 4, 5, 6 ' +
    `on conflict (${ROLLUP_KEY.join(', ')}) do update set requests = usage_rollups.requests + excluded.requests, ` +
    'errors = usage_rollups.errors + excluded.errors, credits = usage_rollups.credits + excluded.credits'
  );
}

/** The backfill of migration 007 (and of the bench's seed, which writes records straight into the file). */
export const BACKFILL_ROLLUPS = rollupUpsert('usage_records');
