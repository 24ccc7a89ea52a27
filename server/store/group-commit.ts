// Group commit: usage records (with their charges) from many requests, written by one writer per store in one
// transaction per batch. A caller's promise settles only once the transaction that holds its record has
// committed, so a response released on it is never ahead of the database; the cost of a commit (on SQLite, an
// fsync of the WAL with synchronous=FULL; on PostgreSQL, a round trip and a WAL flush) is paid once per batch
// rather than once per request.
//
// What survives what, once a caller has been answered:
//   - a crash of the process (SIGKILL, OOM): everything answered, on both databases: it was committed first.
//     Records still queued or in a batch being written were never answered; their clients see the connection drop.
//   - a power loss or kernel crash: everything answered as well. SQLite runs WAL with synchronous=FULL, so a
//     COMMIT returns only after the WAL is fsynced; PostgreSQL must run with fsync=on and synchronous_commit=on
//     (its defaults) for the same promise.
import { performance } from 'node:perf_hooks';
import type { RecordUsageOptions, UsageRow } from './types.ts';

export interface UsageItem {
  record: UsageRow;
  options: RecordUsageOptions;
}

/**
 * Per item of a batch: undefined when written, or the refusal (InsufficientCreditsError, BudgetExceededError,
 * IdempotencyConflictError) for it alone.
 */
export type ItemOutcome = Error | undefined;

export interface GroupCommitOptions {
  /** Longest a queued record waits for others before its batch is written (ms). 0: the next turn of the event loop. */
  maxDelayMs?: number;
  /** A batch is written as soon as this many records wait. */
  maxBatch?: number;
  /**
   * Batches being written at once (each its own transaction). 1 for SQLite (one writer connection); a few on
   * PostgreSQL, so that a batch waiting on a row lock (an account held by another session) does not hold up every
   * other record of the instance.
   */
  maxInFlight?: number;
}

interface Waiter extends UsageItem {
  resolve(): void;
  reject(error: unknown): void;
}

// maxDelayMs 0: a batch closes at the next turn of the event loop, so it holds what arrived during this turn plus
// whatever queued while the previous batch was being written; under load (32 connections) that is ~30 records a
// batch without making a lone request wait. A few ms more buys bigger batches at the cost of every response's latency.
export const DEFAULT_GROUP_COMMIT = { maxDelayMs: 0, maxBatch: 256, maxInFlight: 1 } as const;

/**
 * The queue in front of one writer. `commit` writes a whole batch in ONE transaction and returns one outcome per
 * item (refused items must have left nothing behind: a savepoint each, or a guarded update decided in the batch);
 * if it throws, the transaction did not commit and every waiter of the batch is rejected with that error (the
 * server answers them 503). Up to maxInFlight batches are written at once; records that arrive while all are
 * busy form the next batch, written as soon as one is done.
 */
export class GroupCommit {
  private queue: Waiter[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private readonly writing = new Set<Promise<void>>();
  private readonly maxDelayMs: number;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  /** Batches written (committed or failed), the records they held, and the time from send to outcome, for the bench. */
  readonly stats = { batches: 0, records: 0, writeMs: 0 };

  constructor(
    private readonly commit: (items: UsageItem[]) => ItemOutcome[] | Promise<ItemOutcome[]>,
    options: GroupCommitOptions = {},
  ) {
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_GROUP_COMMIT.maxDelayMs;
    this.maxBatch = Math.max(1, options.maxBatch ?? DEFAULT_GROUP_COMMIT.maxBatch);
    this.maxInFlight = Math.max(1, options.maxInFlight ?? DEFAULT_GROUP_COMMIT.maxInFlight);
  }

  submit(record: UsageRow, options: RecordUsageOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ record, options, resolve, reject });
      if (this.writing.size >= this.maxInFlight) return; // a batch in flight starts the next one when it is done
      if (this.queue.length >= this.maxBatch) this.flushNow();
      else this.timer ??= this.maxDelayMs > 0 ? setTimeout(() => this.flushNow(), this.maxDelayMs) : setImmediate(() => this.flushNow());
    });
  }

  /** Resolves once everything queued so far has been written (or refused, or failed). */
  async drain(): Promise<void> {
    while (this.writing.size > 0 || this.queue.length > 0) {
      this.flushNow();
      await Promise.all(this.writing);
    }
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    if (this.maxDelayMs > 0) clearTimeout(this.timer as NodeJS.Timeout);
    else clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
  }

  private flushNow(): void {
    this.clearTimer();
    while (this.writing.size < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.stats.batches += 1;
      this.stats.records += batch.length;
      const flight: Promise<void> = this.write(batch).finally(() => {
        this.writing.delete(flight);
        // What queued up while this batch was written goes next, at once: it has already waited a commit's time.
        if (this.queue.length > 0) this.flushNow();
      });
      this.writing.add(flight);
    }
  }

  private async write(batch: Waiter[]): Promise<void> {
    let outcomes: ItemOutcome[];
    const started = performance.now();
    try {
      outcomes = await this.commit(batch);
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
      return;
    } finally {
      this.stats.writeMs += performance.now() - started;
    }
    batch.forEach((waiter, index) => {
      const refusal = outcomes[index];
      if (refusal) waiter.reject(refusal);
      else waiter.resolve();
    });
  }
}
