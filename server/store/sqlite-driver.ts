// Kysely's SQLite connection without a wait on the event loop. better-sqlite3 is synchronous: with a busy_timeout,
// a statement that meets another process's write lock (the operator CLI granting credits, a backup) sleeps inside
// SQLite, and the whole server with it (/healthz took 5 s). Here the event loop's connections run with
// busy_timeout = 0: a statement refused with SQLITE_BUSY is tried again after a short timer, the event loop free
// meanwhile, until LOCK_WAIT_MS has passed; then the BUSY error goes up and is answered 503 with Retry-After.
//
// Retrying is safe where it happens: a statement outside a transaction that gets BUSY has done nothing, and a
// transaction is begun with BEGIN IMMEDIATE (retried the same way), so once it has begun it holds the write lock
// and nothing inside it waits. A BUSY inside a transaction is not retried (its snapshot may be stale).
//
// Kysely's own driver holds one mutex per query, so a query waiting for the lock would hold up every other one
// (/readyz, reads). Here only an open transaction holds the connection: queries of other callers wait for it to
// end (it holds the lock already, so it is short), and a query waiting for the lock holds up nobody.
import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, type DatabaseConnection, type Driver, type QueryResult, SqliteDialect } from 'kysely';

/** The longest a statement waits for another connection's write lock before it gives up (BUSY, then a 503). */
export const LOCK_WAIT_MS = 5_000;
const FIRST_PAUSE_MS = 1;
const LONGEST_PAUSE_MS = 25;

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

function isBusy(error: unknown): boolean {
  return /^SQLITE_BUSY/.test(String((error as { code?: unknown } | null)?.code ?? ''));
}

/**
 * Runs `attempt` now; if SQLite answers BUSY, again after a growing pause (the event loop free meanwhile) until
 * LOCK_WAIT_MS has passed. Returns synchronously when the first
 * attempt succeeds, so the hot path pays nothing for it.
 */
export function withoutBlocking<T>(attempt: () => T, waitMs = LOCK_WAIT_MS): T | Promise<T> {
  try {
    return attempt();
  } catch (error) {
    if (!isBusy(error)) throw error;
    return retry(attempt, Date.now() + waitMs, error);
  }
}

async function retry<T>(attempt: () => T, deadline: number, busy: unknown, blocked?: () => Promise<void> | undefined): Promise<T> {
  let pause = FIRST_PAUSE_MS;
  for (;;) {
    if (Date.now() >= deadline) throw busy;
    await sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
    pause = Math.min(pause * 2, LONGEST_PAUSE_MS);
    // Checked and attempted in one synchronous step: nothing can open a transaction in between.
    for (let wait = blocked?.(); wait; wait = blocked?.()) await wait;
    try {
      return attempt();
    } catch (error) {
      if (!isBusy(error)) throw error;
      busy = error;
    }
  }
}

const BEGIN = /^\s*begin\b/i;
const END = /^\s*(commit|end|rollback)\s*(transaction\s*)?;?\s*$/i;

class AsyncSqliteDriver implements Driver {
  /** The connection whose transaction is open, and the callers waiting for it to end. */
  private owner: AsyncSqliteConnection | undefined;
  private ended: Promise<void> | undefined;
  private end: (() => void) | undefined;

  constructor(readonly db: BetterSqlite3.Database) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new AsyncSqliteConnection(this);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    // SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, IOERR, NOMEM): a ROLLBACK then would
    // fail ("no transaction is active") and its error would hide the one that matters.
    if (this.owner === connection && !this.db.inTransaction) {
      this.release();
      return;
    }
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    // A connection given back with its transaction still open (an error between BEGIN and COMMIT): roll it back.
    if (this.owner === connection) {
      if (this.db.inTransaction) this.db.exec('rollback');
      this.release();
    }
  }

  async destroy(): Promise<void> {
    this.db.close();
  }

  /** While another connection has a transaction open: a promise of its end. Undefined when this one may run now. */
  private blocked(connection: AsyncSqliteConnection): Promise<void> | undefined {
    return this.owner && this.owner !== connection ? this.ended : undefined;
  }

  /** Runs `statement` (synchronous, on this connection) once no transaction of another caller is open; BUSY is waited out. */
  async run<T>(connection: AsyncSqliteConnection, sql: string, statement: () => T): Promise<T> {
    // Checked and run in one synchronous step: nothing can open a transaction in between.
    for (let wait = this.blocked(connection); wait; wait = this.blocked(connection)) await wait;
    const inside = this.owner === connection;
    const attempt = () => {
      const result = statement();
      if (BEGIN.test(sql)) this.take(connection);
      else if (END.test(sql) && !this.db.inTransaction) this.release();
      return result;
    };
    if (inside) return attempt();
    try {
      return attempt();
    } catch (error) {
      if (!isBusy(error)) throw error;
      return retry(attempt, Date.now() + LOCK_WAIT_MS, error, () => this.blocked(connection));
    }
  }

  private take(connection: AsyncSqliteConnection): void {
    this.owner = connection;
    this.ended = new Promise((done) => {
      this.end = done;
    });
  }

  private release(): void {
    const end = this.end;
    this.owner = undefined;
    this.ended = undefined;
    this.end = undefined;
    end?.();
  }

  /** Runs `work` on the raw connection once no transaction is open (the in-thread writer of an in-memory database). */
  async exclusive<T>(work: () => T): Promise<T> {
    const connection = new AsyncSqliteConnection(this);
    return this.run(connection, '', work);
  }
}

class AsyncSqliteConnection implements DatabaseConnection {
  constructor(private readonly driver: AsyncSqliteDriver) {}

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const { sql, parameters } = compiledQuery;
    return this.driver.run(this, sql, () => {
      const statement = this.driver.db.prepare(sql);
      if (statement.reader) return { rows: statement.all(parameters) as R[] };
      const { changes, lastInsertRowid } = statement.run(parameters);
      return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
    });
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not used with SQLite');
  }
}

/** Kysely's SQLite dialect (compiler, adapter, introspector) on the driver above. */
export class AsyncSqliteDialect extends SqliteDialect {
  readonly driver: AsyncSqliteDriver;

  constructor(database: BetterSqlite3.Database) {
    super({ database });
    this.driver = new AsyncSqliteDriver(database);
  }

  override createDriver(): Driver {
    return this.driver;
  }
}
