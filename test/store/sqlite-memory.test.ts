// An in-memory SQLite store writes its batches on its own connection (no writer thread can see it), with the very
// steps the writer thread runs: the same charging rules must hold there too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../server/clock.ts';
import { createIdGenerator } from '../../server/ids.ts';
import { InsufficientCreditsError } from '../../server/store/errors.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import type { Store, UsageRow } from '../../server/store/types.ts';

const ids = createIdGenerator(systemClock);

function record(accountId: string, credits: number): UsageRow {
  return {
    id: ids('log'),
    account_id: accountId,
    credential_id: null,
    auth_source: 'session',
    endpoint: credits ? '/v1/tools/inspect_domain' : '/v1/me/credits',
    method: credits ? 'POST' : 'GET',
    status_code: 200,
    response_time_ms: 1,
    request_bytes: 0,
    response_bytes: 10,
    dataforseo_cost_usd: 0,
    credits_charged: credits,
    error_type: null,
    error_message: null,
    created_at: new Date().toISOString(),
    channel: 'api',
    request_id: null,
    tool: credits ? 'inspect_domain' : null,
    rpc_method: null,
    oauth_client_id: null,
  };
}

describe('SQLite in memory', () => {
  let store: Store;
  beforeAll(async () => {
    store = openSqliteStore(':memory:');
    await store.migrate();
  });
  afterAll(() => store.close());

  it('charges and refuses by the same rules as the writer thread: never below zero, a refusal leaves nothing', async () => {
    const now = new Date().toISOString();
    const account = await store.createAccount({ id: ids('acct'), name: 'memory', balance: 0, session_subject: null, created_at: now });
    await store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account.id, amount: 25, note: null, createdAt: now });
    const results = await Promise.allSettled([
      ...Array.from({ length: 5 }, () => store.recordUsage(record(account.id, 0))),
      ...Array.from({ length: 10 }, () => {
        const charged = record(account.id, 3);
        return store.recordUsage(charged, { charge: { ledgerId: ids('led'), eventId: ids('evt'), amount: 3 } });
      }),
    ]);
    expect(results.slice(0, 5).every((result) => result.status === 'fulfilled')).toBe(true);
    const refused = results.slice(5).filter((result) => result.status === 'rejected');
    expect(refused).toHaveLength(2);
    for (const result of refused) expect((result as PromiseRejectedResult).reason).toBeInstanceOf(InsufficientCreditsError);
    expect(await store.getBalance(account.id)).toBe(1);
    expect(await store.sumLedger(account.id)).toBe(1);
    expect(await store.listUsage(account.id, { limit: 100 })).toHaveLength(13);
  });
});
