import { type Kysely, sql } from 'kysely';

// The credit ledger says the balance after each entry, in the order the entries were applied; usage records keep
// the request's id (X-Request-Id), so a charge in the ledger leads to the request that caused it.
//
// `accounts.ledger_seq` counts the account's ledger entries; each grant or charge takes the next number as its
// `credit_ledger.seq` in the same guarded update of `accounts` that moves the balance (the account's row is locked
// there), so `seq` is the order the entries were applied in, whichever instance or connection wrote them, and
// `balance_after` is the balance that update left. The ledger is listed newest first by `seq`.
//
// Existing entries are backfilled exactly, with window functions over each account's entries in (created_at, id)
// order: the running sum of `amount` and the row number. Old usage records keep a null request_id.
/**
 * Numbers every ledger entry and sets its balance_after from the entries before it, per account in (created_at, id)
 * order, and each account's ledger_seq to its number of entries (all of them, whatever numbers they had). Plain SQL that both databases run (UPDATE … FROM:
 * SQLite ≥ 3.33; window functions: SQLite ≥ 3.25); the bench's seeding runs it too.
 */
export const LEDGER_BACKFILL = [
  // Numbers already given are cleared first, so renumbering never collides with the (account_id, seq) index (a
  // no-op in the migration, where there are none).
  'update credit_ledger set seq = null where seq is not null',
  `update credit_ledger set balance_after = ordered.balance_after, seq = ordered.seq
   from (
     select id,
       sum(amount) over (partition by account_id order by created_at, id rows between unbounded preceding and current row) as balance_after,
       row_number() over (partition by account_id order by created_at, id) as seq
     from credit_ledger
   ) as ordered
   where credit_ledger.id = ordered.id`,
  'update accounts set ledger_seq = (select count(*) from credit_ledger where credit_ledger.account_id = accounts.id)',
] as const;

export async function up(db: Kysely<any>): Promise<void> {
  // One column per statement: SQLite's ALTER TABLE adds one at a time. On PostgreSQL, adding a column to the
  // partitioned usage table adds it to every partition.
  await db.schema.alterTable('usage_records').addColumn('request_id', 'text').execute();
  await db.schema.alterTable('accounts').addColumn('ledger_seq', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('credit_ledger').addColumn('balance_after', 'bigint').execute();
  await db.schema.alterTable('credit_ledger').addColumn('seq', 'bigint').execute();
  for (const statement of LEDGER_BACKFILL) await sql.raw(statement).execute(db);
  // Newest-first pages of one account's ledger are index range scans; one number per entry per account.
  await db.schema.createIndex('credit_ledger_account_seq').on('credit_ledger').columns(['account_id', 'seq']).unique().execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('credit_ledger_account_seq').execute();
  for (const column of ['seq', 'balance_after']) await db.schema.alterTable('credit_ledger').dropColumn(column).execute();
  await db.schema.alterTable('accounts').dropColumn('ledger_seq').execute();
  await db.schema.alterTable('usage_records').dropColumn('request_id').execute();
}
