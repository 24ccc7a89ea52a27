// The usage rollups (migration 007), written in the same transaction as the usage records they count (every
// store's batch writer runs ROLLUP_UPSERTS over the records it has just inserted), and backfilled by migration 007
// from the records already there with the very same statements, so they are exact. Two levels:
//   usage_rollups            per account, UTC hour, channel, tool, key and failed (status >= 400): requests,
//                            errors and credits. Answers the aggregates split by key.
//   usage_rollups_all_keys   the same without the key: at most a few rows per account and hour however many keys
//                            the account uses, so the 30-day aggregates (by channel, by tool, or totals) sum a few
//                            thousand rows, not one per key and hour.
// Retention (`maintain`) deletes old usage records but keeps their rollups: the aggregates outlive the records.
//
// Text columns, not NULLs, for "no tool" and "no key" (''): they are part of the primary key, and a NULL there
// would never conflict, so the upsert would add a row each time instead of adding to one.

export const ROLLUP_TABLES = {
  usage_rollups: ['account_id', 'hour', 'channel', 'tool', 'credential_id', 'failed'],
  usage_rollups_all_keys: ['account_id', 'hour', 'channel', 'tool', 'failed'],
} as const;
export type RollupTable = keyof typeof ROLLUP_TABLES;

/** Each key column of a rollup, as SQL over the usage records aliased `u`: the same on SQLite and PostgreSQL. */
const KEY_OF_RECORD: Record<string, string> = {
  account_id: 'u.account_id',
  hour: "substr(u.created_at, 1, 13) || ':00:00.000Z'",
  channel: 'u.channel',
  tool: "coalesce(u.tool, '')",
  credential_id: "coalesce(u.credential_id, '')",
  failed: 'case when u.status_code >= 400 then 1 else 0 end',
};

/**
 * `insert into TABLE … select <the rollups of the records of SOURCE> … on conflict add`: SOURCE is a table
 * expression whose rows are usage records (the whole table for the backfill; the batch just written otherwise).
 * Grouped, so one statement never touches a rollup row twice; ordered by the key, so that concurrent batches
 * (PostgreSQL writes a few at once) lock the rows they share in the same order and never deadlock.
 */
export function rollupUpsert(table: RollupTable, source: string, where = 'true'): string {
  const key = ROLLUP_TABLES[table];
  const positions = key.map((_, i) => i + 1).join(', ');
  return (
    `insert into ${table} (${key.join(', ')}, requests, errors, credits) ` +
    `select ${key.map((column) => KEY_OF_RECORD[column]).join(', ')}, count(*), ` +
    `sum(case when u.status_code >= 400 then 1 else 0 end), sum(u.credits_charged) from ${source} u where ${where} ` +
    `group by ${positions} order by ${positions} ` +
    `on conflict (${key.join(', ')}) do update set requests = ${table}.requests + excluded.requests, ` +
    `errors = ${table}.errors + excluded.errors, credits = ${table}.credits + excluded.credits`
  );
}

/** The upserts of every rollup table, over SOURCE's records. */
export function rollupUpserts(source: string, where?: string): string[] {
  return (Object.keys(ROLLUP_TABLES) as RollupTable[]).map((table) => rollupUpsert(table, source, where));
}

/** The backfill of migration 007 (and of the bench's seed, which writes records straight into the file). */
export const BACKFILL_ROLLUPS = rollupUpserts('usage_records');
