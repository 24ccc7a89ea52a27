import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Database } from './schema.ts';
import { BudgetExceededError, InsufficientCreditsError } from './errors.ts';
import { type DialectHooks, KyselyStore } from './kysely-store.ts';
import { GroupCommit, type GroupCommitOptions, type ItemOutcome, type UsageItem } from './group-commit.ts';
import type { CredentialRow, RecordUsageOptions, UsageRow } from './types.ts';

const RETENTION_BATCH = 1000;

export interface SqliteOptions {
  /** How usage records are grouped into transactions (see group-commit.ts). */
  groupCommit?: GroupCommitOptions;
}

function sqliteHooks(): DialectHooks {
  return {
    kind: 'sqlite',
    isUniqueViolation: (error) => {
      const code = (error as { code?: unknown } | null)?.code;
      return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
    },
    // Kysely's migration lock is a no-op on SQLite: take the write lock before reading what has been applied, so
    // that processes migrating one file at once (the CLI beside a starting server) wait for each other.
    async exclusively(kysely, migrate) {
      await kysely.connection().execute(async (connection) => {
        await sql`begin immediate`.execute(connection);
        try {
          await migrate(connection);
          await sql`commit`.execute(connection);
        } catch (error) {
          await sql`rollback`.execute(connection);
          throw error;
        }
      });
    },
    // A SQLite file serves one instance, so its counters can live in that instance's memory.
    rateLimiter: (options) => new RateLimiterMemory(options),
    async expireUsage(kysely, cutoff) {
      // Bounded batches, so the writer lock is never held for long.
      let deletedRecords = 0;
      for (;;) {
        const batch = kysely.selectFrom('usage_records').select('id').where('created_at', '<', cutoff).limit(RETENTION_BATCH);
        const result = await kysely.deleteFrom('usage_records').where('id', 'in', batch).executeTakeFirst();
        const deleted = Number(result.numDeletedRows);
        deletedRecords += deleted;
        if (deleted < RETENTION_BATCH) return { deletedRecords, droppedPartitions: [] };
      }
    },
  };
}

function configure(database: BetterSqlite3.Database): void {
  database.pragma('journal_mode = WAL');
  // FULL: a COMMIT returns only once the WAL is fsynced, so an acknowledged record survives a power loss, not
  // only a crash of the process. Affordable because usage records are committed in groups (one fsync per batch).
  database.pragma('synchronous = FULL');
  database.pragma('foreign_keys = ON');
  // Another process (the operator CLI granting credits, say) may hold the write lock for a moment.
  database.pragma('busy_timeout = 5000');
}

/**
 * A store on one SQLite file (WAL mode, so readers never wait for the writer). One server instance per file.
 *
 * The hot path (the key by its hash, the balance, and the group-committed usage records with their charges) runs
 * on better-sqlite3 statements prepared once; everything else goes through Kysely. Reads of the hot path use a
 * connection of their own, so they never see the inside of a transaction open on the writing connection.
 */
export class SqliteStore extends KyselyStore {
  private readonly reader: BetterSqlite3.Database;
  private readonly writer: GroupCommit;
  private read!: {
    credentialByHash: BetterSqlite3.Statement<[string, string], CredentialRow>;
    balance: BetterSqlite3.Statement<[string], { balance: number }>;
  };
  private write!: {
    spend: BetterSqlite3.Statement<[string, string, number, number]>;
    charge: BetterSqlite3.Statement<[number, string, number]>;
    balance: BetterSqlite3.Statement<[string], { balance: number }>;
    ledger: BetterSqlite3.Statement<[string, string, number, string, string]>;
    usage: BetterSqlite3.Statement<[UsageRow]>;
    touch: BetterSqlite3.Statement<[string, string, string]>;
    begin: BetterSqlite3.Statement;
    commit: BetterSqlite3.Statement;
    rollback: BetterSqlite3.Statement;
    savepoint: BetterSqlite3.Statement;
    release: BetterSqlite3.Statement;
    rollbackToSavepoint: BetterSqlite3.Statement;
  };
  private prepared = false;

  constructor(
    file: string,
    private readonly database: BetterSqlite3.Database,
    options: SqliteOptions = {},
  ) {
    super(new Kysely<Database>({ dialect: new SqliteDialect({ database }) }), sqliteHooks());
    // An in-memory database is private to its connection: read on the one there is.
    this.reader = file === ':memory:' ? database : new BetterSqlite3(file);
    if (this.reader !== database) this.reader.pragma('busy_timeout = 5000');
    this.writer = new GroupCommit((items) => this.commitBatch(items), options.groupCommit);
  }

  /** Statements are prepared on first use: the tables exist only once migrate() has run. */
  private prepare(): void {
    if (this.prepared) return;
    const r = this.reader;
    const w = this.database;
    this.read = {
      credentialByHash: r.prepare('select * from credentials where key_hash = ? union all select * from credentials where previous_key_hash = ? limit 1'),
      balance: r.prepare('select balance from accounts where id = ?'),
    };
    this.write = {
      // The upsert only grows the row while it stays within the budget: no change means refused.
      spend: w.prepare(
        'insert into key_spend (credential_id, period_start, spent) values (?, ?, ?) on conflict (credential_id, period_start) ' +
          'do update set spent = key_spend.spent + excluded.spent where key_spend.spent + excluded.spent <= ?',
      ),
      // The guarded update is the whole concurrency story: it never takes the balance below zero.
      charge: w.prepare('update accounts set balance = balance - ? where id = ? and balance >= ?'),
      balance: w.prepare('select balance from accounts where id = ?'),
      ledger: w.prepare(
        "insert into credit_ledger (id, account_id, amount, kind, usage_id, note, created_at) values (?, ?, ?, 'charge', ?, null, ?)",
      ),
      usage: w.prepare(
        'insert into usage_records (id, account_id, credential_id, auth_source, endpoint, method, status_code, response_time_ms, ' +
          'request_bytes, response_bytes, dataforseo_cost_usd, credits_charged, error_type, error_message, created_at) values (' +
          '@id, @account_id, @credential_id, @auth_source, @endpoint, @method, @status_code, @response_time_ms, @request_bytes, ' +
          '@response_bytes, @dataforseo_cost_usd, @credits_charged, @error_type, @error_message, @created_at)',
      ),
      touch: w.prepare('update credentials set last_used_at = ? where id = ? and (last_used_at is null or last_used_at < ?)'),
      begin: w.prepare('begin immediate'),
      commit: w.prepare('commit'),
      rollback: w.prepare('rollback'),
      savepoint: w.prepare('savepoint usage_item'),
      release: w.prepare('release usage_item'),
      rollbackToSavepoint: w.prepare('rollback to usage_item'),
    };
    this.prepared = true;
  }

  /** The SQLite settings that decide what survives a crash, read from the connection that writes. */
  override async durability(): Promise<Record<string, string>> {
    const synchronous = ['OFF', 'NORMAL', 'FULL', 'EXTRA'][Number(this.database.pragma('synchronous', { simple: true }))] ?? 'unknown';
    return { journal_mode: String(this.database.pragma('journal_mode', { simple: true })), synchronous };
  }

  override async findCredentialByHash(keyHash: string): Promise<CredentialRow | undefined> {
    this.prepare();
    return this.read.credentialByHash.get(keyHash, keyHash);
  }

  override async getBalance(accountId: string): Promise<number | undefined> {
    this.prepare();
    return this.read.balance.get(accountId)?.balance;
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
    if (this.reader !== this.database) this.reader.close();
    await super.close();
  }

  /** One transaction for the batch; a savepoint around each charged item, so a refused one leaves nothing. */
  private async commitBatch(items: UsageItem[]): Promise<ItemOutcome[]> {
    this.prepare();
    // Through Kysely's connection, so the batch never lands inside a transaction Kysely has open on it.
    return this.db.connection().execute(async () => {
      const w = this.write;
      const outcomes: ItemOutcome[] = [];
      w.begin.run();
      try {
        for (const { record, options } of items) outcomes.push(this.writeItem(record, options));
        w.commit.run();
      } catch (error) {
        if (this.database.inTransaction) w.rollback.run();
        throw error;
      }
      return outcomes;
    });
  }

  private writeItem(record: UsageRow, { charge, budget, touchCredentialIfUsedBefore }: RecordUsageOptions): ItemOutcome {
    const w = this.write;
    if (charge) {
      w.savepoint.run();
      let refusal: Error | undefined;
      if (budget && (charge.amount > budget.amount || w.spend.run(budget.credentialId, budget.periodStart, charge.amount, budget.amount).changes !== 1)) {
        refusal = new BudgetExceededError(budget.amount, budget.periodStart);
      } else if (w.charge.run(charge.amount, record.account_id, charge.amount).changes !== 1) {
        refusal = new InsufficientCreditsError(Number(w.balance.get(record.account_id)?.balance ?? 0), charge.amount);
      }
      if (refusal) {
        w.rollbackToSavepoint.run();
        w.release.run();
        return refusal;
      }
      w.ledger.run(charge.ledgerId, record.account_id, -charge.amount, record.id, record.created_at);
    }
    w.usage.run(record);
    if (touchCredentialIfUsedBefore && record.credential_id) w.touch.run(record.created_at, record.credential_id, touchCredentialIfUsedBefore);
    if (charge) w.release.run();
    return undefined;
  }
}

export function openSqliteStore(file: string, options: SqliteOptions = {}): SqliteStore {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const database = new BetterSqlite3(file);
  configure(database);
  return new SqliteStore(file, database, options);
}
