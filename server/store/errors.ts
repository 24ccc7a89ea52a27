/** The account's balance cannot cover a charge; nothing was written. */
export class InsufficientCreditsError extends Error {
  constructor(readonly balance: number, readonly required: number) {
    super(`balance ${balance} is below the ${required} credits required`);
    this.name = 'InsufficientCreditsError';
  }
}

/** Another request already stored a response under this idempotency key; nothing was written. */
export class IdempotencyConflictError extends Error {
  constructor() {
    super('idempotency key already used');
    this.name = 'IdempotencyConflictError';
  }
}

/** The key's budget for the current period cannot cover a charge; nothing was written. */
export class BudgetExceededError extends Error {
  constructor(readonly amount: number, readonly periodStart: string) {
    super(`key budget of ${amount} credits for the period from ${periodStart} is spent`);
    this.name = 'BudgetExceededError';
  }
}

/** A grant would take the balance past the largest one the contract allows; nothing was written. */
export class BalanceLimitError extends Error {
  constructor(readonly accountId: string, readonly balance: number, readonly amount: number, readonly maximum: number) {
    super(
      `granting ${amount} credits would take the balance of ${accountId} from ${balance} past ${maximum}, ` +
        'the largest balance the contract allows; nothing was granted',
    );
    this.name = 'BalanceLimitError';
  }
}

/**
 * The store cannot take the request now, but may shortly: the server answers 503 with Retry-After, and clients
 * retry (an idempotent request, or one with an Idempotency-Key). Thrown by the store itself (its writer thread
 * died with a batch in flight, a lock was not had in time); the drivers' own "try again" errors are recognised
 * by isStoreUnavailable below, so either way there is one decision.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

// SQLite primary result codes (better-sqlite3 gives the extended code as a string, e.g. SQLITE_BUSY_SNAPSHOT, and
// every extended code starts with its primary one). "Try again":
//   BUSY, LOCKED   another connection or process holds the lock longer than we wait;
//   FULL           the disk (or max_page_count) is full: the transaction rolled back, nothing half-written;
//                  space may come back (retention, the operator), and a retry may then succeed;
//   IOERR          the disk or file system failed an operation (EIO, ENOSPC on the WAL, a network mount gone);
//   NOMEM          memory ran out; PROTOCOL: a WAL lock race between processes, SQLite says to retry.
// Not "try again" (a 500, and the operator must act): CORRUPT, NOTADB (the file is damaged or not a database),
// READONLY, PERM, CANTOPEN (permissions, a missing directory), CONSTRAINT, ERROR, MISUSE, SCHEMA, TOOBIG,
// MISMATCH, RANGE: a retry would meet the same answer.
const SQLITE_TRY_AGAIN = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|NOMEM|PROTOCOL)(_|$)/;

// PostgreSQL SQLSTATEs (and the socket errors of its client). "Try again":
//   08xxx          connection exceptions; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now;
//   53xxx          insufficient resources: 53100 disk full, 53200 out of memory, 53300 too many connections;
//   40001, 40P01   serialization failure, deadlock detected: the transaction rolled back and may simply rerun;
//   55P03          lock not available (lock_timeout); 57014: statement cancelled (statement_timeout).
// Not "try again": everything else (23xxx constraint violations, 42xxx errors in our SQL, XX001 data corrupted, …).
const POSTGRES_TRY_AGAIN = /^(08...|53...|57P0[123]|40001|40P01|55P03|57014)$/;
const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** True for errors that mean the connection to PostgreSQL is gone or cannot be made (the pool drops such a client). */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (/^08/.test(code) || ['57P01', '57P02', '57P03'].includes(code) || SOCKET_ERRORS.has(code))) return true;
  const message = (error as Error | null)?.message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
}

/**
 * The one decision of which store errors mean "unavailable, try again shortly" (answered 503 with Retry-After, on
 * HTTP and MCP alike) rather than a fault of ours (500). See the lists above for each database.
 */
export function isStoreUnavailable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (SQLITE_TRY_AGAIN.test(code) || POSTGRES_TRY_AGAIN.test(code))) return true;
  return isConnectionError(error);
}
