// The SQLite usage writer on a thread of its own. better-sqlite3 is synchronous, and with synchronous=FULL every
// COMMIT waits for an fsync of the WAL: on the server's event loop that wait (0.1 ms on an idle disk, tens of ms on a
// busy one) would stall every request in the process. Here the batch is written and fsynced on a worker thread with
// its own connection, while the event loop goes on serving requests and gathering the next batch.
//
// The worker is plain JavaScript evaluated from this string (it needs no loader, whether the server runs through
// tsx or compiled), given better-sqlite3's resolved path and the statements' SQL. It answers one message per batch:
// each item's outcome (null when written, or the refusal), or the error that rolled the whole batch back.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { BudgetExceededError, IdempotencyConflictError, InsufficientCreditsError, StoreUnavailableError } from './errors.ts';
import type { ItemOutcome, UsageItem } from './group-commit.ts';
import type { RecordUsageOptions, UsageRow } from './types.ts';
import { rollupUpsert } from './usage-rollups.ts';

const BATCH_RECORDS = 'u.id in (select value from json_each(?))';

/** The writes of the hot path, prepared once per connection (on the writer thread, or in-thread for :memory:). */
export const WRITE_SQL = {
  // The upsert only grows the row while it stays within the budget: no change means refused.
  spend:
    'insert into key_spend (credential_id, period_start, spent) values (?, ?, ?) on conflict (credential_id, period_start) ' +
    'do update set spent = key_spend.spent + excluded.spent where key_spend.spent + excluded.spent <= ?',
  // The guarded update is the whole concurrency story: it never takes the balance below zero. It also numbers the
  // ledger entry (migration 008) and says the balance it leaves.
  charge:
    'update accounts set balance = balance - ?, ledger_seq = ledger_seq + 1 where id = ? and balance >= ? returning balance, ledger_seq, low_balance_threshold',
  balance: 'select balance from accounts where id = ?',
  ledger:
    'insert into credit_ledger (id, account_id, amount, kind, usage_id, note, created_at, balance_after, seq) ' +
    "values (?, ?, ?, 'charge', ?, null, ?, ?, ?)",
  usage:
    'insert into usage_records (id, account_id, credential_id, auth_source, endpoint, method, status_code, response_time_ms, ' +
    'request_bytes, response_bytes, dataforseo_cost_usd, credits_charged, error_type, error_message, created_at, channel, tool, rpc_method, request_id, oauth_client_id) values (' +
    '@id, @account_id, @credential_id, @auth_source, @endpoint, @method, @status_code, @response_time_ms, @request_bytes, ' +
    '@response_bytes, @dataforseo_cost_usd, @credits_charged, @error_type, @error_message, @created_at, @channel, @tool, @rpc_method, @request_id, @oauth_client_id)',
  // The batch's records added to their hourly rollups, in the batch's transaction: one statement per table and batch.
  rollup: rollupUpsert('usage_rollups', 'usage_records', BATCH_RECORDS),
  rollupAllKeys: rollupUpsert('usage_rollups_all_keys', 'usage_records', BATCH_RECORDS),
  touch: 'update credentials set last_used_at = ? where id = ? and (last_used_at is null or last_used_at < ?)',
  // The charge path's events (server/events.ts): a dedupe key already there makes the insert do nothing.
  event:
    'insert into account_events (id, account_id, type, api_key_id, created_at, data, dedupe_key) values (?, ?, ?, ?, ?, ?, ?) ' +
    'on conflict (dedupe_key) do nothing',
  // The first refusal for want of credits since the last grant (which clears depleted_at) is the one to report.
  deplete: 'update accounts set depleted_at = ? where id = ? and depleted_at is null',
  // An answer kept under its Idempotency-Key: an expired record under the key makes room; a live one refuses.
  idempotencyExpired: 'delete from idempotency_records where account_id = ? and key_hash = ? and expires_at <= ?',
  idempotencyClaim:
    'insert into idempotency_records (account_id, key_hash, request_hash, status_code, response_ciphertext, created_at, expires_at) ' +
    'values (@account_id, @key_hash, @request_hash, @status_code, @response_ciphertext, @created_at, @expires_at) on conflict do nothing',
  written: 'select 1 from usage_records where id = ?',
  begin: 'begin immediate',
  commit: 'commit',
  rollback: 'rollback',
  savepoint: 'savepoint usage_item',
  release: 'release usage_item',
  rollbackToSavepoint: 'rollback to usage_item',
} as const;

/** The settings every connection that writes uses (see sqlite.ts for why FULL). */
export const PRAGMAS = ['journal_mode = WAL', 'synchronous = FULL', 'foreign_keys = ON'] as const;
/**
 * The writer thread waits for another process's write lock inside SQLite, up to this long: off the event loop, so
 * nothing else waits with it; past it the batch fails with SQLITE_BUSY and its callers are answered 503.
 */
const THREAD_BUSY_TIMEOUT = 'busy_timeout = 5000';

/** An item's refusal as it crosses the thread boundary. */
type WireOutcome = null | ['budget', number, string] | ['credits', number, number] | ['idempotency'] | ['unknown'];

// The steps of one batch, as plain JavaScript source: the writer thread runs them, and so does the store itself for an
// in-memory database (which no other connection can see), so there is one copy of the charging rules. One transaction
// for the batch; a refused item leaves nothing of itself (a savepoint where it would have written something).
const WRITE_BATCH_SOURCE = `
function writeBatch(s, db, items) {
  const outcomes = [];
  s.begin.run();
  try {
    for (const item of items) outcomes.push(writeItem(s, item.record, item.options));
    const written = items.filter((item, index) => outcomes[index] === null).map((item) => item.record.id);
    if (written.length > 0) {
      s.rollup.run(JSON.stringify(written));
      s.rollupAllKeys.run(JSON.stringify(written));
    }
    s.commit.run();
  } catch (error) {
    if (db.inTransaction) s.rollback.run();
    throw error;
  }
  return outcomes;
}
function writeItem(s, record, options) {
  const { charge, budget, touchCredentialIfUsedBefore, idempotency } = options;
  // What writes before a charge can refuse (the Idempotency-Key's record, the key's spend, then the balance) is
  // taken back by a savepoint. A charge alone is a single guarded update, which changes nothing when it refuses.
  const guarded = Boolean(charge && (budget || idempotency));
  if (guarded) s.savepoint.run();
  if (idempotency) {
    s.idempotencyExpired.run(idempotency.account_id, idempotency.key_hash, idempotency.created_at);
    if (s.idempotencyClaim.run(idempotency).changes !== 1) {
      if (guarded) {
        s.rollbackToSavepoint.run();
        s.release.run();
      }
      return ['idempotency'];
    }
  }
  if (charge) {
    let refusal = null;
    let charged;
    if (budget && (charge.amount > budget.amount || s.spend.run(budget.credentialId, budget.periodStart, charge.amount, budget.amount).changes !== 1)) {
      refusal = ['budget', budget.amount, budget.periodStart];
    } else if ((charged = s.charge.get(charge.amount, record.account_id, charge.amount)) === undefined) {
      const row = s.balance.get(record.account_id);
      refusal = ['credits', Number(row ? row.balance : 0), charge.amount];
    }
    if (refusal) {
      if (guarded) {
        s.rollbackToSavepoint.run();
        s.release.run();
      }
      // What the refusal says to the account's owner, written with the batch (the call itself writes nothing).
      if (refusal[0] === 'budget') {
        const data = JSON.stringify({ budget_amount: budget.amount, period_start: budget.periodStart, required: charge.amount });
        const dedupe = 'budget.exhausted:' + budget.credentialId + ':' + budget.periodStart + ':' + budget.amount;
        s.event.run(charge.eventId, record.account_id, 'budget.exhausted', record.credential_id, record.created_at, data, dedupe);
      } else if (s.deplete.run(record.created_at, record.account_id).changes === 1) {
        const data = JSON.stringify({ balance: refusal[1], required: charge.amount });
        s.event.run(charge.eventId, record.account_id, 'credits.depleted', record.credential_id, record.created_at, data, null);
      }
      return refusal;
    }
    s.ledger.run(charge.ledgerId, record.account_id, -charge.amount, record.id, record.created_at, charged.balance, charged.ledger_seq);
    const threshold = charged.low_balance_threshold;
    if (threshold !== null && charged.balance < threshold && charged.balance + charge.amount >= threshold) {
      const data = JSON.stringify({ ledger_entry_id: charge.ledgerId, balance_after: charged.balance, threshold });
      s.event.run(charge.eventId, record.account_id, 'credits.low', record.credential_id, record.created_at, data, null);
    }
  }
  s.usage.run(record);
  if (touchCredentialIfUsedBefore && record.credential_id) s.touch.run(record.created_at, record.credential_id, touchCredentialIfUsedBefore);
  if (guarded) s.release.run();
  return null;
}
`;

type Statements = Record<keyof typeof WRITE_SQL, { run(...args: unknown[]): { changes: number }; get(...args: unknown[]): unknown }>;

/** The same steps in this thread: `statements` prepared on `db` from WRITE_SQL. */
export const writeBatchInThread = new Function(`${WRITE_BATCH_SOURCE}\nreturn writeBatch;`)() as (
  statements: Statements,
  db: { inTransaction: boolean },
  items: Array<{ record: UsageRow; options: RecordUsageOptions }>,
) => WireOutcome[];

/** An item's outcome as the group commit wants it: undefined when written, the refusal otherwise. */
export function outcomeOf(outcome: WireOutcome): ItemOutcome {
  if (outcome === null) return undefined;
  if (outcome[0] === 'unknown') return new StoreUnavailableError('the SQLite writer thread stopped; this record was not written');
  if (outcome[0] === 'idempotency') return new IdempotencyConflictError();
  return outcome[0] === 'budget' ? new BudgetExceededError(outcome[1], outcome[2]) : new InsufficientCreditsError(outcome[1], outcome[2]);
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
for (const pragma of workerData.pragmas) db.pragma(pragma);
let s;
function statements() {
  // Prepared on the first batch: the tables exist only once the store has migrated.
  if (!s) s = Object.fromEntries(Object.entries(workerData.sql).map(([name, text]) => [name, db.prepare(text)]));
  return s;
}
${WRITE_BATCH_SOURCE}
// A batch sent again after the previous thread stopped with it in flight: that thread may have committed it (and
// stopped before answering) or not. One transaction wrote all of its records, so if any of them is there, it
// committed: the records found were written, the others were refused then (nothing of them was written; their
// callers are answered 503 and retry). If none is there, it did not commit (or refused every item): write it now.
function resume(items) {
  const found = items.filter((item) => s.written.get(item.record.id) !== undefined).map((item) => item.record.id);
  if (found.length === 0) return writeBatch(s, db, items);
  return items.map((item) => (found.includes(item.record.id) ? null : ['unknown']));
}
let exitAfterCommit = false;
parentPort.on('message', (message) => {
  try {
    if (message.type === 'batch') {
      statements();
      const started = performance.now();
      const outcomes = message.resume ? resume(message.items) : writeBatch(s, db, message.items);
      if (exitAfterCommit) process.exit(1); // test hook, below
      parentPort.postMessage({ id: message.id, outcomes, busyMs: performance.now() - started });
    } else if (message.type === 'durability') {
      const synchronous = ['OFF', 'NORMAL', 'FULL', 'EXTRA'][Number(db.pragma('synchronous', { simple: true }))] || 'unknown';
      parentPort.postMessage({ id: message.id, durability: { journal_mode: String(db.pragma('journal_mode', { simple: true })), synchronous } });
    } else if (message.type === 'exit') {
      // Test hook (test/store/sqlite-faults.test.ts): the thread dies, as it would on a fatal error: now, or
      // between the next batch's COMMIT and its answer.
      if (message.afterNextCommit) exitAfterCommit = true;
      else process.exit(1);
    } else if (message.type === 'close') {
      db.close();
      parentPort.postMessage({ id: message.id, closed: true });
    }
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: { message: String(error && error.message), code: error && error.code } });
  }
});
`;

type Reply =
  | { id: number; outcomes: WireOutcome[]; busyMs: number }
  | { id: number; durability: Record<string, string> }
  | { id: number; closed: true }
  | { id: number; error: { message: string; code?: string } };

/**
 * The writer thread. If it dies (an uncaught error, a crash of the native code, terminate()), the next request
 * starts a new one; the batch that was in flight is sent to the new thread, which finds out whether it committed
 * (see resume above): so its callers are answered as the database says, never charged twice, never told "written"
 * of a record that is not.
 */
export class SqliteWriterThread {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, { resolve(reply: Reply): void; reject(error: unknown): void }>();
  private nextId = 1;
  private closed = false;
  /** Threads started after the first, because the one before stopped. */
  restarts = 0;

  constructor(private readonly file: string) {
    this.worker = this.start();
  }

  private start(): Worker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // Plain CommonJS needing no loader: none of the parent's flags (--import tsx, --input-type=module, …).
      execArgv: [],
      workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), file: this.file, sql: WRITE_SQL, pragmas: [...PRAGMAS, THREAD_BUSY_TIMEOUT] },
    });
    // Only a pending request keeps the process alive (see ask).
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiter = this.waiting.get(reply.id);
      if (!waiter) return;
      this.settle(reply.id);
      if ('error' in reply) waiter.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
      else waiter.resolve(reply);
    });
    let cause: Error | undefined;
    worker.on('error', (error) => {
      cause = error;
    });
    worker.on('exit', (code) => {
      // The next request starts a new thread (not this handler: a thread that cannot even start would loop).
      if (this.worker === worker) this.worker = undefined;
      const error = new WriterThreadStopped(`the SQLite writer thread stopped (exit code ${code})`, { cause });
      for (const [id, waiter] of [...this.waiting]) {
        this.settle(id);
        waiter.reject(error);
      }
    });
    return worker;
  }

  private settle(id: number): void {
    this.waiting.delete(id);
    if (this.waiting.size === 0) this.worker?.unref();
  }

  private ask(message: Record<string, unknown>): Promise<Reply> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    if (!this.worker) {
      this.worker = this.start();
      this.restarts += 1;
    }
    const worker = this.worker;
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...message, id });
    });
  }

  /** Time the thread spent writing batches, BEGIN to COMMIT (the bench compares it with the time callers waited). */
  busyMs = 0;

  async commit(items: UsageItem[]): Promise<ItemOutcome[]> {
    // Only the data crosses: the items are the queue's waiters, with their callbacks.
    const batch = items.map(({ record, options }) => ({ record, options }));
    let reply: Extract<Reply, { outcomes: unknown }>;
    try {
      reply = (await this.ask({ type: 'batch', items: batch })) as typeof reply;
    } catch (error) {
      if (!(error instanceof WriterThreadStopped)) throw error;
      // Once more, on a new thread, which first looks whether the stopped one committed it. If that one stops
      // too, the callers are answered 503.
      reply = (await this.ask({ type: 'batch', items: batch, resume: true })) as typeof reply;
    }
    this.busyMs += reply.busyMs;
    return reply.outcomes.map(outcomeOf);
  }

  async durability(): Promise<Record<string, string>> {
    return ((await this.ask({ type: 'durability' })) as { durability: Record<string, string> }).durability;
  }

  /**
   * Test hook (test/store/sqlite-faults.test.ts): the thread stops as a fatal error would stop it: `exit` once it
   * has finished what it is doing, `terminate` at once (even in the middle of a batch), `after-next-commit`
   * between the next batch's COMMIT and its answer. Resolves once it has stopped.
   */
  async stopForTest(how: 'exit' | 'terminate' | 'after-next-commit'): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    const stopped = new Promise((done) => worker.once('exit', done));
    if (how === 'terminate') void worker.terminate();
    else worker.postMessage({ type: 'exit', afterNextCommit: how === 'after-next-commit' });
    await stopped;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.worker) await this.ask({ type: 'close' });
    this.closed = true;
    await this.worker?.terminate();
  }
}

/** The thread stopped while a request to it was pending (it is restarted on the next request). */
class WriterThreadStopped extends StoreUnavailableError {}
