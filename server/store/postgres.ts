import { type DatabaseIntrospector, type DatabaseMetadata, Kysely, PostgresDialect, type SchemaMetadata, sql, type TableMetadata } from 'kysely';
import pg from 'pg';
import { RateLimiterPostgres } from 'rate-limiter-flexible';
import type { Database } from './schema.ts';
import { BudgetExceededError, IdempotencyConflictError, InsufficientCreditsError, isConnectionError } from './errors.ts';
import { type DialectHooks, KyselyStore } from './kysely-store.ts';
import { GroupCommit, type GroupCommitOptions, type ItemOutcome, type UsageItem } from './group-commit.ts';
import type { CredentialRow, EventRow, RecordUsageOptions, UsageRow } from './types.ts';
import type { BudgetExhaustedData, CreditsDepletedData, CreditsLowData } from '../events.ts';
import { rollupUpsert } from './usage-rollups.ts';

const MONTHS_AHEAD = 3;

export interface PostgresOptions {
  /** Connections in this instance's pool. */
  poolSize?: number;
  /** Use this schema (created if missing) instead of the connection's default. Tests give each server its own. */
  schema?: string;
  /** How usage records are grouped into transactions (see group-commit.ts). */
  groupCommit?: GroupCommitOptions;
}

function monthStart(year: number, month: number): string {
  return new Date(Date.UTC(year, month, 1)).toISOString().slice(0, 10);
}

/** Makes the usage partitions of last month, this month and the next few, if missing. */
async function ensureUsagePartitions(db: Kysely<Database>, now: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // One instance at a time: two creating the same partition would collide.
    await sql`select pg_advisory_xact_lock(hashtext('openrush.usage_partitions'))`.execute(trx);
    for (let offset = -1; offset <= MONTHS_AHEAD; offset++) {
      const year = now.getUTCFullYear();
      const month = now.getUTCMonth() + offset;
      const from = monthStart(year, month);
      const to = monthStart(year, month + 1);
      const name = `usage_records_${from.slice(0, 7).replace('-', '_')}`;
      const exists = await sql<{ found: string | null }>`select to_regclass(${name}) as found`.execute(trx);
      if (exists.rows[0]?.found) continue;
      await sql`create table ${sql.id(name)} partition of usage_records for values from (${sql.lit(from)}) to (${sql.lit(to)})`.execute(trx);
    }
  });
}

/**
 * A store on PostgreSQL, for any number of stateless server instances: credits, idempotency, budgets and rate
 * limits all live in the database. Connection errors surface as errors the server answers with 503; the pool
 * reconnects by itself once the database is back.
 */
export function openPostgresStore(connectionString: string, options: PostgresOptions = {}): PostgresStore {
  const pool = new pg.Pool({
    connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
    options: options.schema ? `-c search_path=${options.schema}` : undefined,
    // int8 (sums, bigint columns) as numbers: credit amounts stay far below 2^53.
    types: { getTypeParser: (oid: number, format?: string) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text')) } as never,
  });
  // A connection dropped by the server (a restart, a failover) must not crash the process: idle ones report on the
  // pool, busy ones on their client. The query in flight still fails (and is answered 503); the pool drops the
  // dead client on release and connects anew.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new SearchPathDialect({ pool }) });
  return new PostgresStore(db, pool, options, {
    kind: 'postgres',
    async migrationSchema(kysely) {
      if (options.schema) return options.schema;
      const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(kysely);
      return rows[0]!.schema;
    },
    isUniqueViolation: (error) => (error as { code?: unknown } | null)?.code === '23505',
    rateLimiter: (limiter) =>
      new RateLimiterPostgres({
        ...limiter,
        storeClient: pool,
        storeType: 'pool',
        tableName: 'rate_limits',
        schemaName: options.schema,
        tableCreated: true, // made by migration 003
        clearExpiredByTimeout: false, // expired rows are cleared by maintain()
      }),
    async beforeMigrate(kysely) {
      if (!options.schema) return;
      // "if not exists" is not safe when several instances start at once: one at a time.
      await kysely.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(hashtext('openrush.schema'))`.execute(trx);
        await sql`create schema if not exists ${sql.id(options.schema!)}`.execute(trx);
      });
    },
    afterMigrate: ensureUsagePartitions,
    async expireUsage(kysely, cutoff) {
      const partitions = await sql<{ name: string; upper: string }>`
        select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as upper
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'usage_records'::regclass and c.relname <> 'usage_records_default'`.execute(kysely);
      const droppedPartitions: string[] = [];
      for (const { name, upper } of partitions.rows) {
        const end = /TO \('([^']+)'\)/.exec(upper)?.[1];
        // Only whole months entirely before the cutoff go; the rest waits for a later run.
        if (end && end <= cutoff) {
          await sql`drop table if exists ${sql.id(name)}`.execute(kysely);
          droppedPartitions.push(name);
        }
      }
      const stray = await kysely.deleteFrom('usage_records').where('created_at', '<', cutoff).executeTakeFirst();
      await sql`delete from rate_limits where expire is not null and expire < ${Date.now()}`.execute(kysely);
      return { deletedRecords: Number(stray.numDeletedRows), droppedPartitions };
    },
  });
}

/**
 * What Kysely's migrator asks the database: which tables exist. Kysely's own PostgreSQL introspector reads every
 * schema of the database and calls pg_get_serial_sequence on each column by name, which fails ("relation … does not
 * exist") when another schema's table is dropped meanwhile: another instance's retention dropping a usage partition,
 * or another tenant's schema going away. This one lists the tables of the connection's search path only, by the
 * catalog alone; it leaves their columns out, which nothing here reads.
 */
class SearchPathIntrospector implements DatabaseIntrospector {
  constructor(private readonly db: Kysely<any>) {}

  async getSchemas(): Promise<SchemaMetadata[]> {
    const { rows } = await sql<{ name: string }>`select nspname as name from pg_catalog.pg_namespace`.execute(this.db);
    return rows;
  }

  async getTables(): Promise<TableMetadata[]> {
    const { rows } = await sql<{ name: string; schema: string; kind: string }>`
      select c.relname as name, ns.nspname as schema, c.relkind as kind
      from pg_catalog.pg_class c join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
      where c.relkind in ('r', 'v', 'p') and ns.nspname = any(current_schemas(false))
      order by ns.nspname, c.relname`.execute(this.db);
    return rows.map((row) => ({ name: row.name, schema: row.schema, isView: row.kind === 'v', columns: [] }));
  }

  async getMetadata(): Promise<DatabaseMetadata> {
    return { tables: await this.getTables() };
  }
}

class SearchPathDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SearchPathIntrospector(db);
  }
}

// The hot path's statements, as named (server-side prepared, once per connection) pg queries.
const CREDENTIAL_BY_HASH = {
  name: 'openrush_credential_by_hash',
  text: 'select * from credentials where key_hash = $1 union all select * from credentials where previous_key_hash = $1 limit 1',
};
const BALANCE = { name: 'openrush_balance', text: 'select balance from accounts where id = $1' };
const USAGE_COLUMNS = [
  ['id', 'text'],
  ['account_id', 'text'],
  ['credential_id', 'text'],
  ['auth_source', 'text'],
  ['endpoint', 'text'],
  ['method', 'text'],
  ['status_code', 'int4'],
  ['response_time_ms', 'int4'],
  ['request_bytes', 'int4'],
  ['response_bytes', 'int4'],
  ['dataforseo_cost_usd', 'float8'],
  ['credits_charged', 'int4'],
  ['error_type', 'text'],
  ['error_message', 'text'],
  ['created_at', 'text'],
  ['channel', 'text'],
  ['tool', 'text'],
  ['rpc_method', 'text'],
  ['request_id', 'text'],
  ['oauth_client_id', 'text'],
] as const satisfies ReadonlyArray<readonly [keyof UsageRow, string]>;
// One statement for the whole batch's records, whatever their number: one array per column; the same statement adds
// them to their hourly rollups (a data-modifying CTE: one statement, so one transaction even on the fast path).
const INSERT_USAGE = {
  name: 'openrush_insert_usage',
  text:
    `with inserted as (insert into usage_records (${USAGE_COLUMNS.map(([column]) => column).join(', ')}) ` +
    `select * from unnest(${USAGE_COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')}) ` +
    'returning account_id, created_at, channel, tool, credential_id, status_code, credits_charged), ' +
    `by_key as (${rollupUpsert('usage_rollups', 'inserted')}) ` +
    rollupUpsert('usage_rollups_all_keys', 'inserted'),
};
const CREATE_SPEND = {
  name: 'openrush_create_spend',
  text: 'insert into key_spend (credential_id, period_start, spent) select c, p, 0 from unnest($1::text[], $2::text[]) as v(c, p) on conflict do nothing',
};
// Locks taken in one order (key_spend, then accounts, each by key), so that batches of two instances never deadlock.
const LOCK_SPEND = {
  name: 'openrush_lock_spend',
  text:
    'select credential_id, period_start, spent from key_spend where (credential_id, period_start) in ' +
    '(select * from unnest($1::text[], $2::text[])) order by credential_id, period_start for update',
};
const LOCK_ACCOUNTS = {
  name: 'openrush_lock_accounts',
  text: 'select id, balance, ledger_seq, low_balance_threshold, depleted_at from accounts where id = any($1::text[]) order by id for update',
};
// The charge path's events (server/events.ts), one statement for the batch; a dedupe key already there is skipped.
const INSERT_EVENTS = {
  name: 'openrush_insert_events',
  text:
    'insert into account_events (id, account_id, type, api_key_id, created_at, data, dedupe_key) ' +
    'select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) on conflict (dedupe_key) do nothing',
};
// The accounts whose first refusal for want of credits since their last grant is in this batch.
const DEPLETE_ACCOUNTS = {
  name: 'openrush_deplete_accounts',
  text: 'update accounts set depleted_at = v.at from unnest($1::text[], $2::text[]) as v(id, at) where accounts.id = v.id and accounts.depleted_at is null',
};
const ADD_SPEND = {
  name: 'openrush_add_spend',
  text:
    'update key_spend set spent = key_spend.spent + v.amount from unnest($1::text[], $2::text[], $3::int8[]) as v(c, p, amount) ' +
    'where key_spend.credential_id = v.c and key_spend.period_start = v.p',
};
// Still guarded, though the rows are locked and the arithmetic was done on them: belt and braces.
const CHARGE_ACCOUNTS = {
  name: 'openrush_charge_accounts',
  text:
    'update accounts set balance = accounts.balance - v.amount, ledger_seq = accounts.ledger_seq + v.entries ' +
    'from unnest($1::text[], $2::int8[], $3::int8[]) as v(id, amount, entries) where accounts.id = v.id and accounts.balance >= v.amount',
};
const INSERT_LEDGER = {
  name: 'openrush_insert_ledger',
  text:
    "insert into credit_ledger (id, account_id, amount, kind, usage_id, note, created_at, balance_after, seq) select id, a, amount, 'charge', u, null, at, b, n " +
    'from unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::int8[], $7::int8[]) as v(id, a, amount, u, at, b, n)',
};
// An answer kept under its Idempotency-Key (an expired record under the key makes room; a live one refuses), and
// given back when the item's charge is refused.
const EXPIRED_IDEMPOTENCY = {
  name: 'openrush_expired_idempotency',
  text: 'delete from idempotency_records where account_id = $1 and key_hash = $2 and expires_at <= $3',
};
const CLAIM_IDEMPOTENCY = {
  name: 'openrush_claim_idempotency',
  text:
    'insert into idempotency_records (account_id, key_hash, request_hash, status_code, response_ciphertext, created_at, expires_at) ' +
    'values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing returning 1',
};
const RELEASE_IDEMPOTENCY = {
  name: 'openrush_release_idempotency',
  text: 'delete from idempotency_records where account_id = $1 and key_hash = $2',
};
const TOUCH = {
  name: 'openrush_touch_credential',
  text: 'update credentials set last_used_at = $1 where id = $2 and (last_used_at is null or last_used_at < $3)',
};

/**
 * The PostgreSQL store: Kysely for everything but the hot path, which runs named prepared statements, and usage
 * records group-committed. A batch is one transaction: the charged items' accounts (and budgets) are locked, the
 * batch's charges are decided in order by arithmetic on the locked balances (refused ones leave nothing), then
 * one multi-row statement each writes the charges, the ledger entries and the usage records. A batch of uncharged
 * records is a single multi-row INSERT, atomic by itself.
 */
export class PostgresStore extends KyselyStore {
  private readonly writer: GroupCommit;

  constructor(
    db: Kysely<Database>,
    private readonly pool: pg.Pool,
    options: PostgresOptions,
    hooks: DialectHooks,
  ) {
    super(db, hooks);
    // A few batches at once (of the pool's connections): one waiting on a row lock must not hold up the instance.
    this.writer = new GroupCommit((items) => this.commitBatch(items), { maxInFlight: 3, ...options.groupCommit });
  }

  override async durability(): Promise<Record<string, string>> {
    const { rows } = await this.pool.query<{ name: string; setting: string }>(
      "select name, setting from pg_settings where name in ('fsync', 'synchronous_commit', 'full_page_writes')",
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
  }

  override async findCredentialByHash(keyHash: string): Promise<CredentialRow | undefined> {
    const { rows } = await this.pool.query<CredentialRow>({ ...CREDENTIAL_BY_HASH, values: [keyHash] });
    return rows[0];
  }

  override async getBalance(accountId: string): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ balance: number }>({ ...BALANCE, values: [accountId] });
    return rows[0]?.balance;
  }

  override recordUsage(record: UsageRow, options: RecordUsageOptions = {}): Promise<void> {
    return this.writer.submit(record, options);
  }

  /** How many batches the writer has written, holding how many records (the bench reports the mean batch). */
  groupCommitStats(): { batches: number; records: number; writeMs: number } {
    return { ...this.writer.stats };
  }

  override async close(): Promise<void> {
    await this.writer.drain();
    await super.close();
  }

  private async commitBatch(items: UsageItem[]): Promise<ItemOutcome[]> {
    const charged = items.some((item) => item.options.charge);
    const touches = items.some((item) => item.options.touchCredentialIfUsedBefore && item.record.credential_id);
    const claims = items.some((item) => item.options.idempotency);
    if (!charged && !touches && !claims) {
      await this.pool.query({ ...INSERT_USAGE, values: usageColumns(items.map((item) => item.record)) });
      return items.map(() => undefined);
    }
    const client = await this.pool.connect();
    let broken: unknown;
    try {
      await client.query('begin');
      try {
        const claimed = claims ? await this.claim(client, items) : items.map(() => undefined);
        const outcomes = charged ? await this.charge(client, items, claimed) : claimed;
        // An item whose charge was refused gives its Idempotency-Key back: a retry runs again.
        for (const [index, { options }] of items.entries()) {
          const row = options.idempotency;
          if (row && claimed[index] === undefined && outcomes[index] !== undefined) await client.query({ ...RELEASE_IDEMPOTENCY, values: [row.account_id, row.key_hash] });
        }
        const written = items.filter((_, index) => outcomes[index] === undefined);
        if (written.length > 0) await client.query({ ...INSERT_USAGE, values: usageColumns(written.map((item) => item.record)) });
        // At most one write per key per minute (lastUsedGranularityMs), one row at a time in id order.
        const touch = new Map<string, [string, string]>();
        for (const { record, options } of written) {
          const before = options.touchCredentialIfUsedBefore;
          if (before && record.credential_id) touch.set(record.credential_id, [record.created_at, before]);
        }
        for (const id of [...touch.keys()].sort()) {
          const [at, before] = touch.get(id)!;
          await client.query({ ...TOUCH, values: [at, id, before] });
        }
        await client.query('commit');
        return outcomes;
      } catch (error) {
        await client.query('rollback').catch((rollbackError: unknown) => {
          broken = rollbackError;
        });
        throw error;
      }
    } catch (error) {
      broken ??= isConnectionError(error) ? error : undefined;
      throw error;
    } finally {
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  /**
   * Keeps each answer under its Idempotency-Key, in (account, key) order so that two batches never wait on each
   * other in a cycle; returns each item's refusal (IdempotencyConflictError: a live record holds the key, written
   * by an earlier request or by an earlier item of this batch) or undefined.
   */
  private async claim(client: pg.PoolClient, items: UsageItem[]): Promise<ItemOutcome[]> {
    const outcomes: ItemOutcome[] = items.map(() => undefined);
    const order = items
      .map((item, index) => ({ row: item.options.idempotency, index }))
      .filter((entry): entry is { row: NonNullable<RecordUsageOptions['idempotency']>; index: number } => entry.row !== undefined)
      .sort((a, b) => (a.row.account_id + a.row.key_hash < b.row.account_id + b.row.key_hash ? -1 : 1));
    for (const { row, index } of order) {
      await client.query({ ...EXPIRED_IDEMPOTENCY, values: [row.account_id, row.key_hash, row.created_at] });
      const { rowCount } = await client.query({
        ...CLAIM_IDEMPOTENCY,
        values: [row.account_id, row.key_hash, row.request_hash, row.status_code, row.response_ciphertext, row.created_at, row.expires_at],
      });
      if (rowCount !== 1) outcomes[index] = new IdempotencyConflictError();
    }
    return outcomes;
  }

  /**
   * Decides and writes the batch's charges; returns each item's refusal (or undefined: charged, or nothing to
   * charge). Items `refused` already (by their Idempotency-Key) keep that refusal and are not charged.
   */
  private async charge(client: pg.PoolClient, items: UsageItem[], refused: ItemOutcome[]): Promise<ItemOutcome[]> {
    const spendKey = (budget: NonNullable<RecordUsageOptions['budget']>) => `${budget.credentialId}\u0000${budget.periodStart}`;
    const budgeted = items.filter((item) => item.options.charge && item.options.budget);
    const spent = new Map<string, number>();
    if (budgeted.length > 0) {
      const credentials = budgeted.map((item) => item.options.budget!.credentialId);
      const periods = budgeted.map((item) => item.options.budget!.periodStart);
      await client.query({ ...CREATE_SPEND, values: [credentials, periods] });
      const { rows } = await client.query<{ credential_id: string; period_start: string; spent: number }>({
        ...LOCK_SPEND,
        values: [credentials, periods],
      });
      for (const row of rows) spent.set(`${row.credential_id}\u0000${row.period_start}`, Number(row.spent));
    }
    const accountIds = [...new Set(items.filter((item) => item.options.charge).map((item) => item.record.account_id))];
    const { rows } = await client.query<{ id: string; balance: number; ledger_seq: number; low_balance_threshold: number | null; depleted_at: string | null }>({
      ...LOCK_ACCOUNTS,
      values: [accountIds],
    });
    const balances = new Map(rows.map((row) => [row.id, Number(row.balance)]));
    const thresholds = new Map(rows.map((row) => [row.id, row.low_balance_threshold === null ? null : Number(row.low_balance_threshold)]));
    // Accounts already depleted (before this batch, or by an earlier item of it): a refusal there is no news.
    const depleted = new Set(rows.filter((row) => row.depleted_at !== null).map((row) => row.id));
    const newlyDepleted = new Map<string, string>();
    const events: EventRow[] = [];
    const event = (record: UsageRow, id: string, type: string, data: object, dedupeKey: string | null = null) =>
      events.push({ id, account_id: record.account_id, type, api_key_id: record.credential_id, created_at: record.created_at, data: JSON.stringify(data), dedupe_key: dedupeKey });
    // The number of each account's last ledger entry: the batch's entries follow it, in the order they are decided.
    const seqs = new Map(rows.map((row) => [row.id, Number(row.ledger_seq)]));

    const outcomes: ItemOutcome[] = [];
    const accountTotals = new Map<string, number>();
    const spendTotals = new Map<string, { budget: NonNullable<RecordUsageOptions['budget']>; amount: number }>();
    const accountEntries = new Map<string, number>();
    const ledger: Array<[string, string, number, string, string, number, number]> = [];
    for (const [index, { record, options }] of items.entries()) {
      const { charge, budget } = options;
      if (refused[index] !== undefined || !charge) {
        outcomes.push(refused[index]);
        continue;
      }
      // The same order of checks as one transaction per record: the budget first, then the balance.
      if (budget) {
        const key = spendKey(budget);
        const used = spent.get(key) ?? 0;
        if (charge.amount > budget.amount || used + charge.amount > budget.amount) {
          outcomes.push(new BudgetExceededError(budget.amount, budget.periodStart));
          const data: BudgetExhaustedData = { budget_amount: budget.amount, period_start: budget.periodStart, required: charge.amount };
          event(record, charge.eventId, 'budget.exhausted', data, `budget.exhausted:${budget.credentialId}:${budget.periodStart}:${budget.amount}`);
          continue;
        }
      }
      const balance = balances.get(record.account_id) ?? 0;
      if (balance < charge.amount) {
        outcomes.push(new InsufficientCreditsError(balance, charge.amount));
        if (!depleted.has(record.account_id)) {
          depleted.add(record.account_id);
          newlyDepleted.set(record.account_id, record.created_at);
          const data: CreditsDepletedData = { balance, required: charge.amount };
          event(record, charge.eventId, 'credits.depleted', data);
        }
        continue;
      }
      balances.set(record.account_id, balance - charge.amount);
      const seq = (seqs.get(record.account_id) ?? 0) + 1;
      seqs.set(record.account_id, seq);
      accountTotals.set(record.account_id, (accountTotals.get(record.account_id) ?? 0) + charge.amount);
      accountEntries.set(record.account_id, (accountEntries.get(record.account_id) ?? 0) + 1);
      if (budget) {
        const key = spendKey(budget);
        spent.set(key, (spent.get(key) ?? 0) + charge.amount);
        const total = spendTotals.get(key);
        spendTotals.set(key, { budget, amount: (total?.amount ?? 0) + charge.amount });
      }
      ledger.push([charge.ledgerId, record.account_id, -charge.amount, record.id, record.created_at, balance - charge.amount, seq]);
      const threshold = thresholds.get(record.account_id) ?? null;
      if (threshold !== null && balance >= threshold && balance - charge.amount < threshold) {
        const data: CreditsLowData = { ledger_entry_id: charge.ledgerId, balance_after: balance - charge.amount, threshold };
        event(record, charge.eventId, 'credits.low', data);
      }
      outcomes.push(undefined);
    }
    if (newlyDepleted.size > 0) await client.query({ ...DEPLETE_ACCOUNTS, values: [[...newlyDepleted.keys()], [...newlyDepleted.values()]] });
    if (spendTotals.size > 0) {
      const totals = [...spendTotals.values()];
      await client.query({
        ...ADD_SPEND,
        values: [totals.map((t) => t.budget.credentialId), totals.map((t) => t.budget.periodStart), totals.map((t) => t.amount)],
      });
    }
    if (accountTotals.size > 0) {
      const ids = [...accountTotals.keys()];
      const result = await client.query({ ...CHARGE_ACCOUNTS, values: [ids, ids.map((id) => accountTotals.get(id)), ids.map((id) => accountEntries.get(id))] });
      if (result.rowCount !== accountTotals.size) throw new Error('a charge decided on a locked balance did not apply');
      await client.query({ ...INSERT_LEDGER, values: [0, 1, 2, 3, 4, 5, 6].map((column) => ledger.map((entry) => entry[column])) });
    }
    if (events.length > 0) {
      const columns = ['id', 'account_id', 'type', 'api_key_id', 'created_at', 'data', 'dedupe_key'] as const;
      await client.query({ ...INSERT_EVENTS, values: columns.map((column) => events.map((row) => row[column])) });
    }
    return outcomes;
  }
}

function usageColumns(records: UsageRow[]): unknown[][] {
  return USAGE_COLUMNS.map(([column]) => records.map((record) => record[column]));
}
