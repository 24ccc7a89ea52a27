// One conformance suite for every Store: the same calls, the same answers, on SQLite and on PostgreSQL. Both
// are real databases (a temp file, a fresh schema); the server relies on nothing that is not checked here.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../server/clock.ts';
import { KeyStatus, type KeySettings, newCredential } from '../../server/credentials.ts';
import { createIdGenerator } from '../../server/ids.ts';
import { BalanceLimitError, BudgetExceededError, IdempotencyConflictError, InsufficientCreditsError } from '../../server/store/errors.ts';
import { WATCHED_CREDENTIAL_COLUMNS } from '../../server/store/migrations/005_credential_changes.ts';
import * as m008 from '../../server/store/migrations/008_ledger_balance_and_request_ids.ts';
import type { CredentialRow, IdempotencyRow, Store, UsageRow } from '../../server/store/types.ts';
import { MIGRATIONS, migrationConnection, openTestStore, TEST_DATABASE_URL, type TestStore } from '../helpers/stores.ts';

const ids = createIdGenerator(systemClock);
const SQLITE_MODULE = new URL('../../server/store/sqlite.ts', import.meta.url).href;
const DAY = 86_400_000;
const FUTURE = '2099-01-01T00:00:00.000Z';

const iso = (millis: number) => new Date(millis).toISOString();

/**
 * Migrates one SQLite file from `count` Node processes at the same moment: each opens its store, says it is ready,
 * and migrates once all are. Resolves to each process's outcome ('migrated' or its error).
 */
async function migrateInChildProcesses(file: string, count: number): Promise<string[]> {
  const code = `const { openSqliteStore } = await import(process.env.STORE_MODULE);
    const store = openSqliteStore(process.env.STORE_FILE);
    await store.ping();
    process.stdout.write('ready\\n');
    process.stdin.once('data', async () => {
      try { await store.migrate(); console.log('migrated'); }
      catch (error) { console.log(String(error)); process.exitCode = 1; }
      finally { await store.close(); process.stdin.destroy(); }
    });`;
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      env: { ...process.env, STORE_MODULE: SQLITE_MODULE, STORE_FILE: file },
    }),
  );
  const outputs = children.map((child) => {
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => void (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (text += chunk.toString()));
    return {
      ready: new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => text.includes('ready') && resolve());
        child.on('exit', () => reject(new Error(`child exited before it was ready: ${text}`)));
      }),
      done: new Promise<string>((resolve) => child.on('exit', () => resolve(text.replace('ready\n', '').trim()))),
    };
  });
  await Promise.all(outputs.map((output) => output.ready));
  for (const child of children) child.stdin.write('go\n');
  return Promise.all(outputs.map((output) => output.done));
}

/** The name PostgreSQL gives the usage partition of a month (month may be out of 0..11: Date.UTC rolls it over). */
function partitionName(year: number, month: number): string {
  const start = new Date(Date.UTC(year, month, 1));
  return `usage_records_${start.getUTCFullYear()}_${String(start.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** Settles every promise; the successes and the failures, apart. */
async function settle<T>(promises: Array<Promise<T>>): Promise<{ ok: T[]; failed: unknown[] }> {
  const results = await Promise.allSettled(promises);
  return {
    ok: results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
    failed: results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : [])),
  };
}


// Always SQLite; PostgreSQL when there is one to run on, and otherwise listed as not run.
const STORES: Array<[name: string, kind: Store['kind'], available: boolean]> = [
  ['sqlite', 'sqlite', true],
  [TEST_DATABASE_URL ? 'postgres' : 'postgres (NOT RUN: TEST_DATABASE_URL is not set)', 'postgres', Boolean(TEST_DATABASE_URL)],
];

describe.each(STORES)('%s store conformance', (_name, kind, available) => {
  describe.skipIf(!available)(kind, () => {
    let db: TestStore;
    let store: Store;

    beforeAll(async () => {
      db = openTestStore(kind);
      store = db.store;
      await store.migrate();
    });
    afterAll(async () => {
      await store?.close();
      await db?.cleanup();
    });

    async function newAccount(credits = 0): Promise<string> {
      const id = ids('acct');
      await store.createAccount({ id, name: 'Conformance', balance: 0, session_subject: null, created_at: iso(Date.now()) });
      if (credits > 0) await store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: id, amount: credits, note: 'start', createdAt: iso(Date.now()) });
      return id;
    }

    function credential(accountId: string, settings: Partial<KeySettings> = {}): CredentialRow {
      return newCredential(ids, systemClock, { accountId, name: 'conformance key', by: accountId, ...settings }).row;
    }

    function usage(accountId: string, createdAt: string, extra: Partial<UsageRow> = {}): UsageRow {
      return {
        id: ids('log'),
        account_id: accountId,
        credential_id: null,
        auth_source: 'api_key',
        channel: 'api',
        tool: null,
        rpc_method: null,
        request_id: `req_${randomUUID()}`,
        oauth_client_id: null,
        endpoint: '/v1/tools/inspect_domain',
        method: 'POST',
        status_code: 200,
        response_time_ms: 3,
        request_bytes: 21,
        response_bytes: 340,
        dataforseo_cost_usd: 0.0025,
        credits_charged: 0,
        error_type: null,
        error_message: null,
        created_at: createdAt,
        ...extra,
      };
    }

    /** A metered call's write: the usage record and its charge. */
    function charge(accountId: string, amount: number, options: { budget?: { credentialId: string; periodStart: string; amount: number } } = {}) {
      const record = usage(accountId, iso(Date.now()), { credits_charged: amount, credential_id: options.budget?.credentialId ?? null });
      return store.recordUsage(record, { charge: { ledgerId: ids('led'), eventId: ids('evt'), amount }, budget: options.budget }).then(() => record);
    }

    function idempotencyRow(accountId: string, keyHash: string, createdAt: number, overrides: Partial<IdempotencyRow> = {}): IdempotencyRow {
      return {
        account_id: accountId,
        key_hash: keyHash,
        request_hash: 'request-1',
        status_code: 201,
        response_ciphertext: 'sealed-response-1',
        created_at: iso(createdAt),
        expires_at: iso(createdAt + DAY),
        ...overrides,
      };
    }

    it('reports its kind and answers ping', async () => {
      expect(store.kind).toBe(kind);
      await expect(store.ping()).resolves.toBeUndefined();
    });

    describe('accounts', () => {
      it('createAccount, getAccount and countAccounts', async () => {
        const before = await store.countAccounts();
        const row = { id: ids('acct'), name: 'Ada', balance: 0, session_subject: null, created_at: iso(Date.now()) };
        expect(await store.createAccount(row)).toEqual(row);
        expect(await store.getAccount(row.id)).toEqual(row);
        expect(await store.getAccount('acct_missing')).toBeUndefined();
        await newAccount();
        expect(await store.countAccounts()).toBe(before + 2);
      });

      it('sessionAccount: unknown subject without create is undefined and creates nothing', async () => {
        const before = await store.countAccounts();
        expect(await store.sessionAccount(`sub-${randomUUID()}`)).toBeUndefined();
        expect(await store.countAccounts()).toBe(before);
      });

      it('sessionAccount: concurrent first sessions of one subject make exactly one account', async () => {
        const subject = `sub-${randomUUID()}`;
        const before = await store.countAccounts();
        const accounts = await Promise.all(
          Array.from({ length: 12 }, () =>
            store.sessionAccount(subject, { id: ids('acct'), name: 'Dashboard user', balance: 0, session_subject: subject, created_at: iso(Date.now()) }),
          ),
        );
        const distinct = new Set(accounts.map((account) => account?.id));
        expect(distinct.size).toBe(1);
        expect(accounts[0]).toMatchObject({ session_subject: subject, balance: 0 });
        expect(await store.countAccounts()).toBe(before + 1);
        expect((await store.sessionAccount(subject))?.id).toBe(accounts[0]!.id);
      });
    });

    describe('credits', () => {
      it('grantCredits returns the new balance; getBalance and sumLedger agree', async () => {
        const account = await newAccount();
        expect(await store.getBalance(account)).toBe(0);
        expect(await store.sumLedger(account)).toBe(0);
        expect(await store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account, amount: 120, note: null, createdAt: iso(Date.now()) })).toBe(120);
        expect(await store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account, amount: 5, note: 'top-up', createdAt: iso(Date.now()) })).toBe(125);
        expect(await store.getBalance(account)).toBe(125);
        expect(await store.sumLedger(account)).toBe(125);
        expect((await store.getAccount(account))?.balance).toBe(125);
      });

      it('an unknown account has no balance, and a grant to it fails without writing', async () => {
        expect(await store.getBalance('acct_missing')).toBeUndefined();
        await expect(
          store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: 'acct_missing', amount: 10, note: null, createdAt: iso(Date.now()) }),
        ).rejects.toThrow();
        expect(await store.sumLedger('acct_missing')).toBe(0);
      });

      it('a grant past the largest balance the contract allows throws BalanceLimitError and writes nothing, even when concurrent', async () => {
        const maximum = Number.MAX_SAFE_INTEGER; // CreditBalance.balance.maximum
        const account = await newAccount(10);
        const grant = (amount: number) => store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account, amount, note: null, createdAt: iso(Date.now()) });
        const error = await grant(maximum - 9).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BalanceLimitError);
        expect(error).toMatchObject({ balance: 10, amount: maximum - 9, maximum });
        expect(await store.getBalance(account)).toBe(10);
        expect(await store.sumLedger(account)).toBe(10);

        // Two grants that each fit but not together: one lands, the other is refused.
        const half = Math.floor((maximum - 10) / 2) + 1;
        const { ok, failed } = await settle([grant(half), grant(half)]);
        expect(ok).toHaveLength(1);
        expect(failed[0]).toBeInstanceOf(BalanceLimitError);
        expect(await store.getBalance(account)).toBe(10 + half);
        expect(await store.sumLedger(account)).toBe(10 + half);

        expect(await grant(maximum - 10 - half)).toBe(maximum);
        await expect(grant(1)).rejects.toBeInstanceOf(BalanceLimitError);
        await expect(grant(0)).rejects.toThrow(RangeError);
        await expect(grant(-5)).rejects.toThrow(RangeError);
        expect(await store.getBalance(account)).toBe(maximum);
      });

      it('a charge above the balance throws InsufficientCreditsError and writes nothing', async () => {
        const account = await newAccount(30);
        const record = usage(account, iso(Date.now()), { credits_charged: 31 });
        const error = await store.recordUsage(record, { charge: { ledgerId: ids('led'), eventId: ids('evt'), amount: 31 } }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InsufficientCreditsError);
        expect(error).toMatchObject({ balance: 30, required: 31 });
        expect(await store.getUsageRecord(account, record.id)).toBeUndefined();
        expect(await store.getBalance(account)).toBe(30);
        expect(await store.sumLedger(account)).toBe(30);
      });

      it('balance == sum of ledger entries after many grants and charges, concurrent ones included', async () => {
        const account = await newAccount(50);
        for (let i = 0; i < 10; i++) await charge(account, 3);
        for (let i = 0; i < 5; i++) await store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account, amount: 4, note: null, createdAt: iso(Date.now()) });
        expect(await store.getBalance(account)).toBe(50 - 30 + 20);

        const charges = Array.from({ length: 40 }, () => charge(account, 5));
        const grants = Array.from({ length: 10 }, () =>
          store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account, amount: 7, note: null, createdAt: iso(Date.now()) }),
        );
        const { ok } = await settle(charges);
        await Promise.all(grants);
        const balance = await store.getBalance(account);
        expect(balance).toBe(40 + 70 - 5 * ok.length);
        expect(balance).toBeGreaterThanOrEqual(0);
        expect(await store.sumLedger(account)).toBe(balance);
      });

      it('listLedger: newest first in the order applied, balance_after the running sum, seq 1, 2, 3…, concurrent grants and charges included', async () => {
        const account = await newAccount(60);
        const records = await Promise.all([
          ...Array.from({ length: 30 }, () => charge(account, 2)),
          ...Array.from({ length: 6 }, () =>
            store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account, amount: 5, note: 'top-up', createdAt: iso(Date.now()) }).then(() => undefined),
          ),
        ]);
        const ledger = await store.listLedger(account, { limit: 100 });
        expect(ledger).toHaveLength(37);
        expect(ledger.map((entry) => entry.seq)).toEqual(Array.from({ length: 37 }, (_, i) => 37 - i));
        expect(ledger[0]!.balance_after).toBe(await store.getBalance(account));
        let running = 0;
        for (const entry of [...ledger].reverse()) {
          running += entry.amount;
          expect(entry.balance_after).toBe(running);
        }
        // A charge carries its usage record's request id; a page after an entry starts right below it.
        const charged = new Map(records.filter((r) => r !== undefined).map((record) => [record!.id, record!]));
        for (const entry of ledger.filter((e) => e.kind === 'charge')) expect(entry.request_id).toBe(charged.get(entry.usage_id!)!.request_id);
        expect(await store.listLedger(account, { limit: 3, startingAfter: ledger[4]! })).toEqual(ledger.slice(5, 8));
        expect(await store.getLedgerEntry(account, ledger[4]!.id)).toEqual((({ request_id: _, ...entry }) => entry)(ledger[4]!));
        expect(await store.getLedgerEntry(await newAccount(0), ledger[4]!.id)).toBeUndefined();
      });

      it('migration 008 numbers and balances the entries written before it, per account in (created_at, id) order', async () => {
        // A database of its own, taken back to before migration 008 by its own down(), then migrated up again.
        const fresh = openTestStore(kind);
        const kysely = await migrationConnection(fresh);
        try {
          await fresh.store.migrate();
          await m008.down(kysely);
          const a = ids('acct');
          const b = ids('acct');
          for (const [id, balance] of [[a, 99], [b, 10]] as const) {
            await fresh.query(`insert into accounts (id, name, balance, session_subject, created_at) values ('${id}', 'old', ${balance}, null, '2026-01-01T00:00:00.000Z')`);
          }
          // Entries as the server wrote them before: ids not in time order, two at the same instant.
          const rows: Array<[string, string, number, string, string]> = [
            [a, 'led_01KW00000000000000000000C3', 100, 'grant', '2026-01-01T00:00:00.000Z'],
            [a, 'led_01KW00000000000000000000A1', -3, 'charge', '2026-01-02T00:00:00.000Z'],
            [a, 'led_01KW00000000000000000000B2', -3, 'charge', '2026-01-02T00:00:00.000Z'],
            [b, 'led_01KW00000000000000000000D4', 10, 'grant', '2026-01-01T00:00:00.000Z'],
            [a, 'led_01KW00000000000000000000E5', 5, 'grant', '2026-01-03T00:00:00.000Z'],
          ];
          for (const [account, id, amount, kind, at] of rows) {
            await fresh.query(
              `insert into credit_ledger (id, account_id, amount, kind, usage_id, note, created_at) values ('${id}', '${account}', ${amount}, '${kind}', null, null, '${at}')`,
            );
          }
          await m008.up(kysely);
          const ledger = await fresh.store.listLedger(a, { limit: 10 });
          expect(ledger.map(({ id, seq, balance_after }) => [id.slice(-2), seq, balance_after])).toEqual([
            ['E5', 4, 99],
            ['B2', 3, 94],
            ['A1', 2, 97],
            ['C3', 1, 100],
          ]);
          expect((await fresh.store.listLedger(b, { limit: 10 })).map(({ seq, balance_after }) => [seq, balance_after])).toEqual([[1, 10]]);
          // New entries go on from there.
          await fresh.store.recordUsage(usage(a, iso(Date.now()), { credits_charged: 4 }), { charge: { ledgerId: ids('led'), eventId: ids('evt'), amount: 4 } });
          expect((await fresh.store.listLedger(a, { limit: 1 }))[0]).toMatchObject({ seq: 5, balance_after: 95, amount: -4 });
          await fresh.store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: b, amount: 1, note: null, createdAt: iso(Date.now()) });
          expect((await fresh.store.listLedger(b, { limit: 1 }))[0]).toMatchObject({ seq: 2, balance_after: 11, amount: 1 });
        } finally {
          await kysely.destroy();
          await fresh.store.close();
          await fresh.cleanup();
        }
      });

      it('concurrent charges past the balance: exactly the affordable ones succeed, the balance never goes negative', async () => {
        const account = await newAccount(70);
        const { ok, failed } = await settle(Array.from({ length: 30 }, () => charge(account, 10)));
        expect(ok).toHaveLength(7);
        expect(failed).toHaveLength(23);
        for (const error of failed) expect(error).toBeInstanceOf(InsufficientCreditsError);
        expect(await store.getBalance(account)).toBe(0);
        expect(await store.sumLedger(account)).toBe(0);
        // Refused charges leave no usage record behind either.
        expect(await store.listUsage(account, { limit: 100 })).toHaveLength(7);
      });
    });

    describe('budgets', () => {
      const periodStart = '2030-01-01T00:00:00.000Z';

      it('charges within the budget pass; past it BudgetExceededError, and nothing is written', async () => {
        const account = await newAccount(1000);
        const key = credential(account);
        await store.createCredential(key);
        const budget = { credentialId: key.id, periodStart, amount: 25 };
        await charge(account, 10, { budget });
        await charge(account, 10, { budget });
        const record = usage(account, iso(Date.now()), { credits_charged: 10, credential_id: key.id });
        const error = await store.recordUsage(record, { charge: { ledgerId: ids('led'), eventId: ids('evt'), amount: 10 }, budget }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BudgetExceededError);
        expect(error).toMatchObject({ amount: 25, periodStart });
        expect(await store.getUsageRecord(account, record.id)).toBeUndefined();
        expect(await store.getBalance(account)).toBe(980);
        expect(await store.sumLedger(account)).toBe(980);
        // What is left of the budget still fits.
        await charge(account, 5, { budget });
        // A new period starts from nothing.
        await charge(account, 25, { budget: { ...budget, periodStart: '2030-02-01T00:00:00.000Z' } });
        expect(await store.getBalance(account)).toBe(950);
      });

      it('a single charge larger than the whole budget is refused', async () => {
        const account = await newAccount(1000);
        const key = credential(account);
        await store.createCredential(key);
        await expect(charge(account, 30, { budget: { credentialId: key.id, periodStart, amount: 25 } })).rejects.toBeInstanceOf(BudgetExceededError);
        // The refused charge did not count either: the full budget is still there.
        await charge(account, 25, { budget: { credentialId: key.id, periodStart, amount: 25 } });
        expect(await store.getBalance(account)).toBe(975);
      });

      it('a charge refused for want of credits does not use up the budget', async () => {
        const account = await newAccount(5);
        const key = credential(account);
        await store.createCredential(key);
        const budget = { credentialId: key.id, periodStart, amount: 10 };
        await expect(charge(account, 10, { budget })).rejects.toBeInstanceOf(InsufficientCreditsError);
        await store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account, amount: 5, note: null, createdAt: iso(Date.now()) });
        await charge(account, 10, { budget });
        expect(await store.getBalance(account)).toBe(0);
      });

      it('concurrent charges against one budget: exactly what fits succeeds', async () => {
        const account = await newAccount(1000);
        const key = credential(account);
        await store.createCredential(key);
        const budget = { credentialId: key.id, periodStart, amount: 30 };
        const { ok, failed } = await settle(Array.from({ length: 12 }, () => charge(account, 10, { budget })));
        expect(ok).toHaveLength(3);
        for (const error of failed) expect(error).toBeInstanceOf(BudgetExceededError);
        expect(await store.getBalance(account)).toBe(970);
        expect(await store.sumLedger(account)).toBe(970);
      });
    });

    describe('events of the charge path', () => {
      const eventsOf = async (accountId: string, type: string) =>
        (await store.listEvents(accountId, { limit: 500, type })).map((row) => ({ ...row, data: JSON.parse(row.data) as Record<string, unknown> }));

      it('concurrent charges write one credits.low on the crossing and one credits.depleted for all the refusals, in their batches', async () => {
        const account = await newAccount(5);
        await store.setLowBalanceThreshold(account, 3);
        expect(await store.getLowBalanceThreshold(account)).toBe(3);
        const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => charge(account, 1)));
        expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(5);
        expect(outcomes.filter((outcome) => outcome.status === 'rejected').every((outcome) => (outcome as PromiseRejectedResult).reason instanceof InsufficientCreditsError)).toBe(true);
        const low = await eventsOf(account, 'credits.low');
        expect(low).toHaveLength(1);
        expect(low[0]!.data).toMatchObject({ balance_after: 2, threshold: 3 });
        const entry = await store.getLedgerEntry(account, low[0]!.data.ledger_entry_id as string);
        expect(entry).toMatchObject({ balance_after: 2, amount: -1 });
        const depleted = await eventsOf(account, 'credits.depleted');
        expect(depleted).toHaveLength(1);
        expect(depleted[0]!.data).toEqual({ balance: 0, required: 1 });
        // A refusal on a depleted account is no news; markDepleted (the refusal before a call runs) agrees.
        await expect(charge(account, 1)).rejects.toBeInstanceOf(InsufficientCreditsError);
        expect(await store.markDepleted({ ...depleted[0]!, id: ids('evt'), data: '{}' })).toBe(false);
        expect(await eventsOf(account, 'credits.depleted')).toHaveLength(1);
        // A grant arms it again.
        await store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account, amount: 1, note: null, createdAt: iso(Date.now()) });
        await expect(charge(account, 2)).rejects.toBeInstanceOf(InsufficientCreditsError);
        expect(await eventsOf(account, 'credits.depleted')).toHaveLength(2);
        expect(await eventsOf(account, 'credits.granted')).toHaveLength(2);
      });

      it('concurrent charges past a key budget write one budget.exhausted for the key, period and amount', async () => {
        const account = await newAccount(100);
        const key = credential(account);
        await store.createCredential(key);
        const budget = { credentialId: key.id, periodStart: '2026-01-01T00:00:00.000Z', amount: 2 };
        const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => charge(account, 1, { budget })));
        expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(2);
        await expect(charge(account, 1, { budget })).rejects.toBeInstanceOf(BudgetExceededError);
        const exhausted = await eventsOf(account, 'budget.exhausted');
        expect(exhausted).toHaveLength(1);
        expect(exhausted[0]).toMatchObject({ api_key_id: key.id, data: { budget_amount: 2, period_start: budget.periodStart, required: 1 } });
        await expect(charge(account, 1, { budget: { ...budget, amount: 3 } })).resolves.toBeDefined();
        await expect(charge(account, 1, { budget: { ...budget, amount: 3 } })).rejects.toBeInstanceOf(BudgetExceededError);
        expect(await eventsOf(account, 'budget.exhausted')).toHaveLength(2);
        expect(await eventsOf(account, 'credits.depleted')).toHaveLength(0);
      });
    });

    describe('group commit and durability', () => {
      it('reports the settings that make an acknowledged record survive a power loss, read from the database', async () => {
        const settings = await store.durability();
        if (kind === 'sqlite') {
          expect(settings).toEqual({ journal_mode: 'wal', synchronous: 'FULL' });
        } else {
          // The server's own settings (the test cluster may run with fsync off, for speed): what it reports is
          // what the database says, for the operator to see.
          const rows = await db.query<{ name: string; setting: string }>(
            "select name, setting from pg_settings where name in ('fsync', 'synchronous_commit', 'full_page_writes')",
          );
          expect(settings).toEqual(Object.fromEntries(rows.map((row) => [row.name, row.setting])));
          expect(Object.keys(settings).sort()).toEqual(['fsync', 'full_page_writes', 'synchronous_commit']);
        }
      });

      it('many records at once, charged and not, over budget and not: each is decided alone, the rest are written', async () => {
        const account = await newAccount(100);
        const key = credential(account);
        await store.createCredential(key);
        const budget = { credentialId: key.id, periodStart: '2031-01-01T00:00:00.000Z', amount: 40 };
        // Submitted in one go, so they share batches: 60 plain records, 20 charges of 10 on a key budgeted at 40,
        // 20 charges of 10 without a budget (the balance covers 10 charges in all).
        const plain = Array.from({ length: 60 }, () => usage(account, iso(Date.now()), { endpoint: '/v1/me/credits', method: 'GET' }));
        const results = await Promise.allSettled([
          ...plain.map((record) => store.recordUsage(record)),
          ...Array.from({ length: 20 }, () => charge(account, 10, { budget })),
          ...Array.from({ length: 20 }, () => charge(account, 10)),
        ]);
        expect(results.slice(0, 60).every((result) => result.status === 'fulfilled')).toBe(true);
        const charged = results.slice(60).filter((result) => result.status === 'fulfilled');
        const refused = results.slice(60).flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
        expect(charged).toHaveLength(10);
        for (const error of refused) expect([InsufficientCreditsError, BudgetExceededError].some((type) => error instanceof type)).toBe(true);
        // No more than the budget went through the budgeted key.
        const budgetedOk = results.slice(60, 80).filter((result) => result.status === 'fulfilled').length;
        expect(budgetedOk).toBeLessThanOrEqual(4);
        expect(await store.getBalance(account)).toBe(0);
        expect(await store.sumLedger(account)).toBe(0);
        const records = await store.listUsage(account, { limit: 500 });
        expect(records).toHaveLength(70);
        for (const record of plain) expect(await store.getUsageRecord(account, record.id)).toMatchObject({ id: record.id });
      });

      it('concurrent charges on one account through two store instances never overdraw it', async () => {
        const account = await newAccount(300);
        const other = db.openAnother();
        try {
          const through = (instance: Store) => {
            const record = usage(account, iso(Date.now()), { credits_charged: 7 });
            return instance.recordUsage(record, { charge: { ledgerId: ids('led'), eventId: ids('evt'), amount: 7 } });
          };
          const { ok, failed } = await settle(Array.from({ length: 80 }, (_, i) => through(i % 2 ? other : store)));
          // 300 / 7: 42 charges fit, 6 credits are left over.
          expect(ok).toHaveLength(42);
          expect(failed).toHaveLength(38);
          for (const error of failed) expect(error).toBeInstanceOf(InsufficientCreditsError);
          expect(await store.getBalance(account)).toBe(6);
          expect(await other.getBalance(account)).toBe(6);
          expect(await store.sumLedger(account)).toBe(6);
          expect(await store.listUsage(account, { limit: 500 })).toHaveLength(42);
        } finally {
          await other.close();
        }
      });

      it('a batch that fails for another reason than a refused charge rejects every record in it and writes none', async () => {
        const account = await newAccount(100);
        const duplicate = usage(account, iso(Date.now()));
        const others = Array.from({ length: 5 }, () => usage(account, iso(Date.now())));
        // Submitted in the same turn: one batch, which the second copy of one id makes fail as a whole.
        const { ok, failed } = await settle([
          store.recordUsage(others[0]!, { charge: { ledgerId: ids('led'), eventId: ids('evt'), amount: 5 } }),
          store.recordUsage(duplicate),
          ...others.slice(1).map((record) => store.recordUsage(record)),
          store.recordUsage(duplicate),
        ]);
        expect(ok).toHaveLength(0);
        expect(failed).toHaveLength(7);
        for (const error of failed) expect(error).not.toBeInstanceOf(InsufficientCreditsError);
        expect(await store.listUsage(account, { limit: 50 })).toHaveLength(0);
        expect(await store.getBalance(account)).toBe(100);
        expect(await store.sumLedger(account)).toBe(100);
        // The writer goes on: the next record is written.
        await store.recordUsage(usage(account, iso(Date.now())));
        expect(await store.listUsage(account, { limit: 50 })).toHaveLength(1);
      });
    });

    describe('credentials', () => {
      it('createCredential, getCredential and findCredentialByHash', async () => {
        const account = await newAccount();
        const row = credential(account, { budget: { period: 3, amount: 1234, token_limit: null }, rateLimitRpm: 60, projectId: 'proj_x' });
        await store.createCredential(row);
        expect(await store.getCredential(account, row.id)).toEqual(row);
        expect(await store.findCredentialByHash(row.key_hash)).toEqual(row);
        expect(await store.findCredentialByHash('0'.repeat(64))).toBeUndefined();
        // Another account cannot reach it by id.
        expect(await store.getCredential(await newAccount(), row.id)).toBeUndefined();
      });

      it('findCredentialByHash finds a rotated key by its previous secret too', async () => {
        const account = await newAccount();
        const row = credential(account);
        await store.createCredential(row);
        const rotated = 'f'.repeat(40) + randomUUID().replaceAll('-', '').slice(0, 24);
        const updated = await store.updateCredential(account, row.id, {
          key_hash: rotated,
          previous_key_hash: row.key_hash,
          previous_key_expires_at: FUTURE,
        });
        expect(updated).toMatchObject({ key_hash: rotated, previous_key_hash: row.key_hash, previous_key_expires_at: FUTURE });
        expect((await store.findCredentialByHash(rotated))?.id).toBe(row.id);
        expect((await store.findCredentialByHash(row.key_hash))?.id).toBe(row.id);
      });

      it('findCredentialByHash sees a key changed by the store or by another connection on its very next lookup', async () => {
        const account = await newAccount();
        const row = credential(account);
        await store.createCredential(row);
        expect((await store.findCredentialByHash(row.key_hash))?.revoked_at).toBeNull();
        await store.revokeCredential(account, row.id, FUTURE, 'test');
        expect((await store.findCredentialByHash(row.key_hash))?.revoked_at).toBe(FUTURE);
        // Another process (an operator's script, the CLI) writing to the same database.
        await db.query(`update credentials set revoked_at = null, disabled_at = '${FUTURE}', rate_limit_rpm = 7 where id = '${row.id}'`);
        expect(await store.findCredentialByHash(row.key_hash)).toMatchObject({ revoked_at: null, disabled_at: FUTURE, rate_limit_rpm: 7 });
        await db.query(`delete from credentials where id = '${row.id}'`);
        expect(await store.findCredentialByHash(row.key_hash)).toBeUndefined();
      });

      if (kind === 'sqlite') {
        it('every credential column but last_used_at moves the version that cached keys are checked against', async () => {
          const columns = await db.query<{ name: string }>("select name from pragma_table_info('credentials')");
          expect([...WATCHED_CREDENTIAL_COLUMNS].sort()).toEqual(columns.map((column) => column.name).filter((name) => name !== 'last_used_at').sort());
          const account = await newAccount();
          const row = credential(account);
          await store.createCredential(row);
          const version = async () => (await db.query<{ version: number }>('select version from credential_changes'))[0]!.version;
          const before = await version();
          // The usage writer's last_used_at update leaves cached keys alone...
          await db.query(`update credentials set last_used_at = '${FUTURE}' where id = '${row.id}'`);
          expect(await version()).toBe(before);
          // ...any other change does not.
          await db.query(`update credentials set name = 'renamed' where id = '${row.id}'`);
          expect(await version()).toBe(before + 1);
        });
      }

      it('listCredentials: newest first, and only one project when asked', async () => {
        const account = await newAccount();
        const rows = [credential(account), credential(account, { projectId: 'proj_a' }), credential(account), credential(account, { projectId: 'proj_a' })];
        // Inserted out of order: the order comes from the ids, not from insertion.
        for (const row of [rows[2]!, rows[0]!, rows[3]!, rows[1]!]) await store.createCredential(row);
        await store.createCredential(credential(await newAccount()));
        expect((await store.listCredentials(account)).map((r) => r.id)).toEqual([rows[3]!.id, rows[2]!.id, rows[1]!.id, rows[0]!.id]);
        expect((await store.listCredentials(account, 'proj_a')).map((r) => r.id)).toEqual([rows[3]!.id, rows[1]!.id]);
        expect(await store.listCredentials(account, 'proj_none')).toEqual([]);
      });

      it('revokeCredential sets revoked_at once, ends a rotated secret, and is idempotent', async () => {
        const account = await newAccount();
        const row = credential(account);
        await store.createCredential(row);
        await store.updateCredential(account, row.id, { previous_key_hash: 'e'.repeat(64), previous_key_expires_at: FUTURE });
        const first = await store.revokeCredential(account, row.id, '2030-01-01T00:00:00.000Z', 'cred_admin');
        expect(first).toMatchObject({
          revoked_at: '2030-01-01T00:00:00.000Z',
          updated_at: '2030-01-01T00:00:00.000Z',
          updated_by_id: 'cred_admin',
          previous_key_hash: null,
          previous_key_expires_at: null,
        });
        const again = await store.revokeCredential(account, row.id, '2030-06-01T00:00:00.000Z', 'cred_other');
        expect(again).toEqual(first);
        expect(await store.findCredentialByHash('e'.repeat(64))).toBeUndefined();
        expect(await store.revokeCredential(account, 'cred_missing', '2030-01-01T00:00:00.000Z', account)).toBeUndefined();
        expect(await store.revokeCredential(await newAccount(), row.id, '2030-01-01T00:00:00.000Z', account)).toBeUndefined();
      });

      it('updateCredential changes only the given columns; undefined for a key the account does not have', async () => {
        const account = await newAccount();
        const row = credential(account);
        await store.createCredential(row);
        const changes = { name: 'renamed', disabled_at: '2030-01-01T00:00:00.000Z', rate_limit_rpm: 7, budget_period: 1, budget_amount: 99 };
        expect(await store.updateCredential(account, row.id, changes)).toEqual({ ...row, ...changes });
        expect(await store.updateCredential(account, 'cred_missing', { name: 'x' })).toBeUndefined();
        expect(await store.updateCredential(await newAccount(), row.id, { name: 'stolen' })).toBeUndefined();
        expect((await store.getCredential(account, row.id))?.name).toBe('renamed');
      });
    });

    describe('idempotency records', () => {
      it('a credential and its record are written together; the record is found while live', async () => {
        const account = await newAccount();
        const keyHash = `idem-${randomUUID()}`;
        const created = Date.now();
        const row = credential(account);
        const record = idempotencyRow(account, keyHash, created);
        await store.createCredential(row, record);
        expect(await store.getCredential(account, row.id)).toEqual(row);
        expect(await store.findIdempotencyRecord(account, keyHash, iso(created + 1000))).toEqual(record);
        // Per account: the same hash under another account is not this record.
        expect(await store.findIdempotencyRecord(await newAccount(), keyHash, iso(created + 1000))).toBeUndefined();
      });

      it('a second create under the same key hash throws IdempotencyConflictError and writes nothing', async () => {
        const account = await newAccount();
        const keyHash = `idem-${randomUUID()}`;
        const created = Date.now();
        const first = credential(account);
        await store.createCredential(first, idempotencyRow(account, keyHash, created));
        const second = credential(account);
        await expect(
          store.createCredential(second, idempotencyRow(account, keyHash, created + 10, { request_hash: 'request-2', response_ciphertext: 'sealed-2' })),
        ).rejects.toBeInstanceOf(IdempotencyConflictError);
        expect(await store.getCredential(account, second.id)).toBeUndefined();
        expect(await store.findCredentialByHash(second.key_hash)).toBeUndefined();
        expect(await store.findIdempotencyRecord(account, keyHash, iso(created + 20))).toMatchObject({ request_hash: 'request-1' });
      });

      it('concurrent creates under one key hash: exactly one is written', async () => {
        const account = await newAccount();
        const keyHash = `idem-${randomUUID()}`;
        const created = Date.now();
        const { ok, failed } = await settle(
          Array.from({ length: 8 }, (_, i) =>
            store.createCredential(credential(account), idempotencyRow(account, keyHash, created, { request_hash: `request-${i}` })),
          ),
        );
        expect(ok).toHaveLength(1);
        expect(failed).toHaveLength(7);
        for (const error of failed) expect(error).toBeInstanceOf(IdempotencyConflictError);
        expect(await store.listCredentials(account)).toHaveLength(1);
      });

      it('an expired record is not found, and a new request under the same key replaces it', async () => {
        const account = await newAccount();
        const keyHash = `idem-${randomUUID()}`;
        const created = Date.now() - 2 * DAY;
        const record = idempotencyRow(account, keyHash, created, { expires_at: iso(created + 1000) });
        await store.createCredential(credential(account), record);
        expect(await store.findIdempotencyRecord(account, keyHash, iso(created + 999))).toEqual(record);
        expect(await store.findIdempotencyRecord(account, keyHash, iso(created + 1000))).toBeUndefined();

        const replacement = idempotencyRow(account, keyHash, created + 1000, { request_hash: 'request-2', response_ciphertext: 'sealed-2' });
        const second = credential(account);
        await store.createCredential(second, replacement);
        expect(await store.getCredential(account, second.id)).toEqual(second);
        expect(await store.findIdempotencyRecord(account, keyHash, iso(created + 2000))).toEqual(replacement);
      });
    });

    describe('listApiKeys', () => {
      let account: string;
      /** Oldest first. */
      let keys: string[];
      const now = iso(Date.now());
      const page = (options: Partial<Parameters<Store['listApiKeys']>[1]> = {}) =>
        store.listApiKeys(account, { limit: 3, now, ...options }).then(({ rows, hasMore }) => ({ ids: rows.map((r) => r.id), hasMore }));
      const k = (...indexes: number[]) => indexes.map((i) => keys[i]!);

      beforeAll(async () => {
        account = await newAccount();
        const rows = [
          credential(account), // 0 active
          credential(account), // 1 revoked
          credential(account), // 2 disabled
          credential(account, { expiresAt: iso(Date.now() - DAY) }), // 3 expired
          credential(account, { expiresAt: FUTURE }), // 4 active until later
          credential(account, { projectId: 'proj_a' }), // 5 active, project a
          credential(account, { projectId: 'proj_a' }), // 6 active, project a
        ];
        for (const row of rows) await store.createCredential(row);
        keys = rows.map((row) => row.id);
        await store.revokeCredential(account, keys[1]!, now, account);
        await store.updateCredential(account, keys[2]!, { disabled_at: now });
        // Someone else's keys never show.
        await store.createCredential(credential(await newAccount()));
      });

      it('pages forwards, newest first, with hasMore', async () => {
        expect(await page()).toEqual({ ids: k(6, 5, 4), hasMore: true });
        expect(await page({ startingAfter: keys[4] })).toEqual({ ids: k(3, 2, 1), hasMore: true });
        expect(await page({ startingAfter: keys[1] })).toEqual({ ids: k(0), hasMore: false });
        expect(await page({ startingAfter: keys[0] })).toEqual({ ids: [], hasMore: false });
        expect(await page({ limit: 7 })).toEqual({ ids: k(6, 5, 4, 3, 2, 1, 0), hasMore: false });
      });

      it('pages backwards: the keys just newer than endingBefore, still newest first', async () => {
        expect(await page({ endingBefore: keys[0] })).toEqual({ ids: k(3, 2, 1), hasMore: true });
        expect(await page({ endingBefore: keys[3] })).toEqual({ ids: k(6, 5, 4), hasMore: false });
        expect(await page({ endingBefore: keys[5] })).toEqual({ ids: k(6), hasMore: false });
        expect(await page({ endingBefore: keys[6] })).toEqual({ ids: [], hasMore: false });
      });

      it('filters by status as of now', async () => {
        expect(await page({ status: KeyStatus.ACTIVE, limit: 10 })).toEqual({ ids: k(6, 5, 4, 0), hasMore: false });
        expect(await page({ status: KeyStatus.DISABLED })).toEqual({ ids: k(2), hasMore: false });
        expect(await page({ status: KeyStatus.REVOKED })).toEqual({ ids: k(1), hasMore: false });
        expect(await page({ status: KeyStatus.EXPIRED })).toEqual({ ids: k(3), hasMore: false });
        // Key 4 expires later: as of a `now` past its expiry it counts as expired.
        expect(await page({ status: KeyStatus.EXPIRED, now: '2100-01-01T00:00:00.000Z', limit: 10 })).toEqual({ ids: k(4, 3), hasMore: false });
        expect(await page({ status: KeyStatus.ACTIVE, limit: 2 })).toEqual({ ids: k(6, 5), hasMore: true });
        expect(await page({ status: KeyStatus.ACTIVE, limit: 2, startingAfter: keys[5] })).toEqual({ ids: k(4, 0), hasMore: false });
      });

      it('filters by project, combined with status and paging', async () => {
        expect(await page({ projectId: 'proj_a' })).toEqual({ ids: k(6, 5), hasMore: false });
        expect(await page({ projectId: 'proj_a', limit: 1 })).toEqual({ ids: k(6), hasMore: true });
        expect(await page({ projectId: 'proj_a', endingBefore: keys[5] })).toEqual({ ids: k(6), hasMore: false });
        expect(await page({ projectId: 'proj_a', status: KeyStatus.REVOKED })).toEqual({ ids: [], hasMore: false });
        expect(await page({ projectId: 'proj_b' })).toEqual({ ids: [], hasMore: false });
      });
    });

    describe('usage', () => {
      it('recordUsage then getUsageRecord returns the record as written; per account', async () => {
        const account = await newAccount();
        const record = usage(account, iso(Date.now()), { status_code: 402, error_type: 'payment_required', error_message: 'short' });
        await store.recordUsage(record);
        expect(await store.getUsageRecord(account, record.id)).toEqual(record);
        expect(await store.getUsageRecord(await newAccount(), record.id)).toBeUndefined();
        expect(await store.getUsageRecord(account, 'log_missing')).toBeUndefined();
      });

      it('listUsage: newest first by (created_at, id), startingAfter a record, credentialId filter, limit', async () => {
        const account = await newAccount();
        const [c1, c2] = [credential(account), credential(account)];
        const base = Date.now() - 60_000;
        // Made in id order; r5 has the newest id but the oldest time, and r2/r3 share a time.
        const r1 = usage(account, iso(base), { credential_id: c1.id });
        const r2 = usage(account, iso(base + 1000), { credential_id: c2.id });
        const r3 = usage(account, iso(base + 1000), { credential_id: c1.id });
        const r4 = usage(account, iso(base + 2000), { credential_id: c1.id });
        const r5 = usage(account, iso(base - 1000), { credential_id: null, auth_source: 'session' });
        for (const record of [r3, r5, r1, r4, r2]) await store.recordUsage(record);
        await store.recordUsage(usage(await newAccount(), iso(base + 500)));

        expect(await store.listUsage(account, { limit: 10 })).toEqual([r4, r3, r2, r1, r5]);
        expect(await store.listUsage(account, { limit: 2 })).toEqual([r4, r3]);
        expect(await store.listUsage(account, { limit: 10, startingAfter: r3 })).toEqual([r2, r1, r5]);
        expect(await store.listUsage(account, { limit: 10, startingAfter: r5 })).toEqual([]);
        expect(await store.listUsage(account, { limit: 10, credentialId: c1.id })).toEqual([r4, r3, r1]);
        expect(await store.listUsage(account, { limit: 10, credentialId: c1.id, startingAfter: r3 })).toEqual([r1]);
        expect(await store.listUsage(account, { limit: 10, credentialId: c2.id })).toEqual([r2]);
      });

      it('keeps channel and tool; listUsage filters by channel, with the other filters and paging', async () => {
        const account = await newAccount();
        const key = credential(account);
        const base = Date.now() - 60_000;
        const api1 = usage(account, iso(base), { credential_id: key.id, channel: 'api', tool: 'inspect_domain' });
        const mcp1 = usage(account, iso(base + 1000), { credential_id: key.id, channel: 'mcp', tool: null, rpc_method: 'initialize', endpoint: '/mcp' });
        const mcp2 = usage(account, iso(base + 2000), { credential_id: null, auth_source: 'session', channel: 'mcp', tool: 'inspect_domain', rpc_method: 'tools/call', endpoint: '/mcp' });
        const api2 = usage(account, iso(base + 3000), { credential_id: key.id, channel: 'api' });
        for (const record of [api1, mcp1, mcp2, api2]) await store.recordUsage(record);
        expect(await store.getUsageRecord(account, mcp2.id)).toEqual(mcp2);
        expect(await store.listUsage(account, { limit: 10, channel: 'mcp' })).toEqual([mcp2, mcp1]);
        expect(await store.listUsage(account, { limit: 10, channel: 'api' })).toEqual([api2, api1]);
        expect(await store.listUsage(account, { limit: 1, channel: 'mcp', startingAfter: mcp2 })).toEqual([mcp1]);
        expect(await store.listUsage(account, { limit: 10, channel: 'mcp', credentialId: key.id })).toEqual([mcp1]);
      });

      it('touchCredentialIfUsedBefore sets last_used_at only when it is older than the threshold', async () => {
        const account = await newAccount();
        const key = credential(account);
        await store.createCredential(key);
        const t = Date.now() - 10 * 60_000;
        const lastUsed = async () => (await store.getCredential(account, key.id))?.last_used_at;

        await store.recordUsage(usage(account, iso(t), { credential_id: key.id }), { touchCredentialIfUsedBefore: iso(t - 60_000) });
        expect(await lastUsed()).toBe(iso(t));
        await store.recordUsage(usage(account, iso(t + 1000), { credential_id: key.id }), { touchCredentialIfUsedBefore: iso(t + 1000 - 60_000) });
        expect(await lastUsed()).toBe(iso(t));
        await store.recordUsage(usage(account, iso(t + 120_000), { credential_id: key.id }), { touchCredentialIfUsedBefore: iso(t + 60_000) });
        expect(await lastUsed()).toBe(iso(t + 120_000));
      });
    });

    describe('migrate', () => {
      it('a second migrate() is a no-op that keeps the data', async () => {
        const account = await newAccount(42);
        await store.migrate();
        await store.migrate();
        expect(await store.getBalance(account)).toBe(42);
        const applied = await db.query<{ name: string }>('select name from schema_migrations order by name');
        expect(applied.map((row) => row.name)).toEqual(MIGRATIONS);
      });

      it('stores migrating one fresh database at once all succeed', async () => {
        // A race either shows or it does not: a few rounds, each on a fresh database, make it show.
        for (let round = 0; round < (kind === 'sqlite' ? 1 : 3); round++) {
          const fresh = openTestStore(kind);
          const others: Store[] = [];
          try {
            if (kind === 'sqlite') {
              // Each in a process of its own, as `openrush migrate` beside a starting server would be: stores in one
              // thread would only wait out each other's synchronous busy timeout.
              const [main] = await fresh.query<{ file: string }>("select file from pragma_database_list where name = 'main'");
              expect(await migrateInChildProcesses(main!.file, 4)).toEqual(['migrated', 'migrated', 'migrated', 'migrated']);
            } else {
              others.push(...Array.from({ length: 5 }, () => fresh.openAnother()));
              // Connected first, so that the migrations themselves start together.
              await Promise.all(others.map((other) => other.ping()));
              const outcomes = await Promise.allSettled(others.map((other) => other.migrate()));
              expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'migrated' : String(o.reason)))).toEqual(others.map(() => 'migrated'));
            }
            const applied = await fresh.query<{ name: string }>('select name from schema_migrations');
            expect(applied).toHaveLength(MIGRATIONS.length);
            const id = ids('acct');
            await fresh.store.createAccount({ id, name: 'after migrate', balance: 0, session_subject: null, created_at: iso(Date.now()) });
            expect((await (others[0] ?? fresh.store).getAccount(id))?.name).toBe('after migrate');
          } finally {
            await Promise.all([...others, fresh.store].map((s) => s.close()));
            await fresh.cleanup();
          }
        }
      });

      it.runIf(kind === 'postgres')('PostgreSQL: two stores migrating an existing, empty schema at once both succeed', async () => {
        const fresh = openTestStore(kind);
        const others = Array.from({ length: 5 }, () => fresh.openAnother());
        try {
          // The schema is there already (as the connection's default schema is in production): only the migrations race.
          const [setting] = await fresh.query<{ search_path: string }>('show search_path');
          await fresh.query(`create schema "${setting!.search_path}"`);
          await Promise.all(others.map((other) => other.ping()));
          await Promise.all(others.map((other) => other.migrate()));
          expect(await fresh.query('select name from schema_migrations')).toHaveLength(MIGRATIONS.length);
        } finally {
          await Promise.all([...others, fresh.store].map((s) => s.close()));
          await fresh.cleanup();
        }
      });
    });

    describe('maintain', () => {
      // A mid-month instant of the current month, so that month arithmetic below is unambiguous.
      const today = new Date();
      const now = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 15, 12));
      const [year, month] = [now.getUTCFullYear(), now.getUTCMonth()];
      const retentionDays = 365;
      const cutoff = now.getTime() - retentionDays * DAY;

      /** A fresh database of its own: retention deletes records of every account, and partitions are per database. */
      async function withFreshStore(run: (fresh: TestStore) => Promise<void>): Promise<void> {
        const fresh = openTestStore(kind);
        try {
          await fresh.store.migrate();
          await run(fresh);
        } finally {
          await fresh.store.close();
          await fresh.cleanup();
        }
      }

      it('without retentionDays nothing is removed', async () => {
        await withFreshStore(async ({ store: fresh }) => {
          const account = ids('acct');
          await fresh.createAccount({ id: account, name: 'old', balance: 0, session_subject: null, created_at: iso(Date.now()) });
          await fresh.recordUsage(usage(account, iso(cutoff - 30 * DAY)));
          expect(await fresh.maintain(now, {})).toEqual({ deletedRecords: 0, droppedPartitions: [] });
          expect(await fresh.listUsage(account, { limit: 10 })).toHaveLength(1);
        });
      });

      it.runIf(kind === 'sqlite')('SQLite: deletes the records older than retentionDays, in batches, and keeps the rest', async () => {
        await withFreshStore(async ({ store: fresh }) => {
          const account = ids('acct');
          await fresh.createAccount({ id: account, name: 'old', balance: 0, session_subject: null, created_at: iso(Date.now()) });
          // More than one deletion batch's worth of old records.
          for (let i = 0; i < 2500; i++) await fresh.recordUsage(usage(account, iso(cutoff - DAY - i * 1000)));
          await fresh.recordUsage(usage(account, iso(cutoff - 1)));
          const kept = [usage(account, iso(cutoff)), usage(account, iso(cutoff + DAY)), usage(account, iso(now.getTime() - 1000))];
          for (const record of kept) await fresh.recordUsage(record);

          expect(await fresh.maintain(now, { retentionDays })).toEqual({ deletedRecords: 2501, droppedPartitions: [] });
          expect(await fresh.listUsage(account, { limit: 5000 })).toEqual([...kept].reverse());
          expect(await fresh.maintain(now, { retentionDays })).toEqual({ deletedRecords: 0, droppedPartitions: [] });
        });
      });

      it.runIf(kind === 'postgres')('PostgreSQL: partitions for last month, this month and the coming months exist after migrate', async () => {
        const children = await db.query<{ name: string }>(
          `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'usage_records'::regclass`,
        );
        const names = children.map((row) => row.name);
        const real = new Date();
        for (let offset = -1; offset <= 3; offset++) {
          const name = partitionName(real.getUTCFullYear(), real.getUTCMonth() + offset);
          expect(names).toContain(name);
          const [found] = await db.query<{ found: string | null }>(`select to_regclass('${name}')::text as found`);
          expect(found?.found).toBe(name);
        }
        expect(names).toContain('usage_records_default');
        // Maintenance later on keeps making the months ahead.
        await store.maintain(new Date(Date.UTC(real.getUTCFullYear(), real.getUTCMonth() + 1, 2)), {});
        const [ahead] = await db.query<{ found: string | null }>(
          `select to_regclass('${partitionName(real.getUTCFullYear(), real.getUTCMonth() + 4)}')::text as found`,
        );
        expect(ahead?.found).not.toBeNull();
      });

      it.runIf(kind === 'postgres')('PostgreSQL: drops whole partitions past the retention cutoff and deletes stray older rows', async () => {
        await withFreshStore(async ({ store: fresh, query }) => {
          const account = ids('acct');
          await fresh.createAccount({ id: account, name: 'old', balance: 0, session_subject: null, created_at: iso(Date.now()) });
          // Partitions around a month some 400 days ago (month - 13), as a server running back then would have made.
          await fresh.maintain(new Date(now.getTime() - 400 * DAY), {});
          const oldMonth = partitionName(year, month - 13);
          expect((await query<{ found: string | null }>(`select to_regclass('${oldMonth}')::text as found`))[0]?.found).toBe(oldMonth);

          const inDroppedMonth = usage(account, iso(Date.UTC(year, month - 13, 20)));
          const stray = usage(account, iso(cutoff - 3_600_000)); // older than the cutoff, in a month that partly is not
          const kept = [usage(account, iso(cutoff + 3_600_000)), usage(account, iso(now.getTime() - DAY))];
          for (const record of [inDroppedMonth, stray, ...kept]) await fresh.recordUsage(record);

          const result = await fresh.maintain(now, { retentionDays });
          expect([...result.droppedPartitions].sort()).toEqual([partitionName(year, month - 14), oldMonth]);
          expect(result.deletedRecords).toBe(1);
          expect(await fresh.listUsage(account, { limit: 10 })).toEqual([...kept].reverse());
          const [gone] = await query<{ found: string | null }>(`select to_regclass('${oldMonth}')::text as found`);
          expect(gone?.found).toBeNull();
          // The partition holding the cutoff stays, and so do this month's.
          for (const name of [partitionName(year, month - 12), partitionName(year, month)]) {
            expect((await query<{ found: string | null }>(`select to_regclass('${name}')::text as found`))[0]?.found).toBe(name);
          }
          expect(await fresh.maintain(now, { retentionDays })).toEqual({ deletedRecords: 0, droppedPartitions: [] });
        });
      });
    });

    describe('rateLimiter', () => {
      const options = () => ({ keyPrefix: `conformance_${randomUUID().slice(0, 8)}`, points: 5, duration: 60 });

      it('consumes up to the points, then refuses with RateLimiterRes', async () => {
        const limiter = store.rateLimiter(options());
        for (let i = 4; i >= 0; i--) expect((await limiter.consume('caller')).remainingPoints).toBe(i);
        const refused = await limiter.consume('caller').catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(RateLimiterRes);
        expect((refused as RateLimiterRes).msBeforeNext).toBeGreaterThan(0);
        expect((refused as RateLimiterRes).msBeforeNext).toBeLessThanOrEqual(60_000);
        // Another key is counted apart.
        expect((await limiter.consume('someone else')).remainingPoints).toBe(4);
      });

      it('blockDuration keeps refusing after the window would have reset', async () => {
        const limiter = store.rateLimiter({ ...options(), points: 1, duration: 1, blockDuration: 30 });
        await limiter.consume('caller');
        await expect(limiter.consume('caller')).rejects.toBeInstanceOf(RateLimiterRes);
        const state = await limiter.get('caller');
        expect(state?.msBeforeNext).toBeGreaterThan(25_000);
      });

      it.runIf(kind === 'postgres')('PostgreSQL: limiters of two stores on one database share their counts', async () => {
        const other = db.openAnother();
        try {
          const shared = options();
          const [a, b] = [store.rateLimiter(shared), other.rateLimiter(shared)];
          await Promise.all([a.consume('caller'), b.consume('caller'), a.consume('caller'), b.consume('caller'), a.consume('caller')]);
          expect((await a.get('caller'))?.consumedPoints).toBe(5);
          expect((await b.get('caller'))?.consumedPoints).toBe(5);
          await expect(b.consume('caller')).rejects.toBeInstanceOf(RateLimiterRes);
          await expect(a.consume('caller')).rejects.toBeInstanceOf(RateLimiterRes);
        } finally {
          await other.close();
        }
      });

      it.runIf(kind === 'sqlite')('SQLite: counts in memory, per limiter (a SQLite file serves one instance)', async () => {
        const other = db.openAnother();
        try {
          const shared = options();
          const [a, b] = [store.rateLimiter(shared), other.rateLimiter(shared)];
          for (let i = 0; i < 5; i++) await a.consume('caller');
          await expect(a.consume('caller')).rejects.toBeInstanceOf(RateLimiterRes);
          expect((await b.consume('caller')).remainingPoints).toBe(4);
          expect(await db.query("select name from sqlite_master where name = 'rate_limits'")).toEqual([]);
        } finally {
          await other.close();
        }
      });
    });
  });
});
