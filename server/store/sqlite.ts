import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Database } from './schema.ts';
import { type DialectHooks, KyselyStore } from './kysely-store.ts';
import { GroupCommit, type GroupCommitOptions, type ItemOutcome, type UsageItem } from './group-commit.ts';
import { outcomeOf, PRAGMAS, SqliteWriterThread, WRITE_SQL, writeBatchInThread } from './sqlite-writer.ts';
import { AsyncSqliteDialect, withoutBlocking } from './sqlite-driver.ts';
import type { CredentialRow, RecordUsageOptions, UsageRow } from './types.ts';

const RETENTION_BATCH = 1000;
/** Keys kept in memory by their hash (all forgotten at once past this, so memory stays bounded). */
const CREDENTIALS_CACHED = 10_000;

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
  // synchronous = FULL: a COMMIT returns only once the WAL is fsynced, so an acknowledged record survives a power
  // loss, not only a crash of the process. Affordable because usage records are committed in groups (one fsync per
  // batch), on a thread of their own (sqlite-writer.ts). busy_timeout = 0: this connection is on the event loop,
  // where a wait for another process's lock (the operator CLI granting credits, say) would stall every request;
  // the driver waits for it with timers instead (sqlite-driver.ts).
  for (const pragma of PRAGMAS) database.pragma(pragma);
  database.pragma('busy_timeout = 0');
}

/**
 * A store on one SQLite file (WAL mode, so readers never wait for the writer). One server instance per file.
 *
 * The hot path runs on better-sqlite3 statements prepared once; everything else goes through Kysely. The key by its
 * hash and the balance are read on a connection of their own, so they never see the inside of a transaction open
 * on Kysely's. Usage records (with their charges) are group-committed by a writer thread with its own connection
 * (in-thread, on Kysely's connection, for an in-memory database, which no other connection can see).
 */
export class SqliteStore extends KyselyStore {
  private readonly reader: BetterSqlite3.Database;
  private readonly writer: GroupCommit;
  private readonly thread: SqliteWriterThread | undefined;
  private readonly dialect: AsyncSqliteDialect;
  private read!: {
    credentialByHash: BetterSqlite3.Statement<[string, string], CredentialRow>;
    credentialChanges: BetterSqlite3.Statement<[], { version: number }>;
    dataVersion: BetterSqlite3.Statement<[], number>;
    balance: BetterSqlite3.Statement<[string], { balance: number }>;
  };
  /**
   * Keys looked up by their hash, each with the credential_changes version it was read at (migration 005): a
   * lookup reads only that counter while it has not moved, which any change to any key, by any process, moves.
   */
  private readonly credentials = new Map<string, { version: number; row: Readonly<CredentialRow> }>();
  /** The counter as last read, and PRAGMA data_version when it was. */
  private seen: { dataVersion: number; version: number } | undefined;
  private write!: Record<keyof typeof WRITE_SQL, BetterSqlite3.Statement>;
  private prepared = false;

  constructor(
    file: string,
    private readonly database: BetterSqlite3.Database,
    options: SqliteOptions = {},
  ) {
    const dialect = new AsyncSqliteDialect(database);
    super(new Kysely<Database>({ dialect }), sqliteHooks());
    this.dialect = dialect;
    const inMemory = file === ':memory:';
    this.reader = inMemory ? database : new BetterSqlite3(file);
    // WAL readers do not wait for writers; what rare BUSY they meet (a WAL recovery) is waited out with timers.
    if (this.reader !== database) this.reader.pragma('busy_timeout = 0');
    this.thread = inMemory ? undefined : new SqliteWriterThread(file);
    const thread = this.thread;
    this.writer = new GroupCommit(thread ? (items) => thread.commit(items) : (items) => this.commitBatch(items), options.groupCommit);
  }

  /** Statements are prepared on first use: the tables exist only once migrate() has run. */
  private prepare(): void {
    if (this.prepared) return;
    const r = this.reader;
    this.read = {
      credentialByHash: r.prepare('select * from credentials where key_hash = ? union all select * from credentials where previous_key_hash = ? limit 1'),
      credentialChanges: r.prepare('select version from credential_changes where id = 1'),
      dataVersion: r.prepare('pragma data_version').pluck() as BetterSqlite3.Statement<[], number>,
      balance: r.prepare('select balance from accounts where id = ?'),
    };
    if (!this.thread) {
      const w = this.database;
      this.write = Object.fromEntries(Object.entries(WRITE_SQL).map(([name, text]) => [name, w.prepare(text)])) as SqliteStore['write'];
    }
    this.prepared = true;
  }

  /** The SQLite settings that decide what survives a crash, read from the connection that writes usage records. */
  override async durability(): Promise<Record<string, string>> {
    if (this.thread) return this.thread.durability();
    const synchronous = ['OFF', 'NORMAL', 'FULL', 'EXTRA'][Number(this.database.pragma('synchronous', { simple: true }))] ?? 'unknown';
    return { journal_mode: String(this.database.pragma('journal_mode', { simple: true })), synchronous };
  }

  override async findCredentialByHash(keyHash: string): Promise<CredentialRow | undefined> {
    this.prepare();
    // The version first, then the row: a row kept with version v was read after v, so while the counter still
    // says v nothing has changed it since. Rows not found are not kept (they are refusals, and rare).
    const version = await withoutBlocking(() => this.credentialVersion());
    const cached = this.credentials.get(keyHash);
    if (cached?.version === version) return cached.row;
    const row = await withoutBlocking(() => this.read.credentialByHash.get(keyHash, keyHash));
    if (!row) return undefined;
    if (this.credentials.size >= CREDENTIALS_CACHED) this.credentials.clear();
    this.credentials.set(keyHash, { version, row: Object.freeze(row) });
    return row;
  }

  /**
   * The credential_changes counter. PRAGMA data_version (no page read) moves only when another connection has
   * committed, so the counter itself is read once per commit of the usage writer (or anyone else), not per request.
   * With one connection for everything (:memory:) its own commits do not move data_version: read the counter.
   */
  private credentialVersion(): number {
    if (this.reader === this.database) return this.read.credentialChanges.get()!.version;
    const dataVersion = this.read.dataVersion.get()!;
    if (this.seen?.dataVersion !== dataVersion) this.seen = { dataVersion, version: this.read.credentialChanges.get()!.version };
    return this.seen.version;
  }

  override async getBalance(accountId: string): Promise<number | undefined> {
    this.prepare();
    return (await withoutBlocking(() => this.read.balance.get(accountId)))?.balance;
  }

  override recordUsage(record: UsageRow, options: RecordUsageOptions = {}): Promise<void> {
    return this.writer.submit(record, options);
  }

  /** How many batches the writer has written, holding how many records (the bench reports the mean batch). */
  groupCommitStats(): { batches: number; records: number; writeMs: number; writerBusyMs?: number; writerRestarts?: number } {
    return { ...this.writer.stats, ...(this.thread ? { writerBusyMs: this.thread.busyMs, writerRestarts: this.thread.restarts } : {}) };
  }

  /** Test hook (test/store/sqlite-faults.test.ts): the writer thread stops as a fatal error would stop it. */
  async stopWriterThreadForTest(how: 'exit' | 'terminate' | 'after-next-commit'): Promise<void> {
    await this.thread?.stopForTest(how);
  }

  override async close(): Promise<void> {
    await this.writer.drain();
    await this.thread?.close();
    if (this.reader !== this.database) this.reader.close();
    await super.close();
  }

  /** In-thread writing (in-memory databases): the writer thread's very steps (sqlite-writer.ts), on this connection. */
  private async commitBatch(items: UsageItem[]): Promise<ItemOutcome[]> {
    this.prepare();
    // Once no transaction is open on Kysely's connection, so the batch never lands inside one.
    return this.dialect.driver.exclusive(() => writeBatchInThread(this.write, this.database, items).map(outcomeOf));
  }
}

export function openSqliteStore(file: string, options: SqliteOptions = {}): SqliteStore {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const database = new BetterSqlite3(file);
  configure(database);
  return new SqliteStore(file, database, options);
}
