// The store's part of one request, timed in-process with no HTTP around it: what the authenticated, metered path
// asks of the database (the key by its hash, the balance, then the charge + ledger entry + usage record in one
// transaction), and what a plain authenticated call asks (the key, the balance, the usage record). Far less noisy
// than load over HTTP, so it shows best whether that cost grows with the rows already in the database.
import { performance } from 'node:perf_hooks';
import type { NewAccount } from '../server/accounts.ts';
import { systemClock } from '../server/clock.ts';
import { createIdGenerator } from '../server/ids.ts';
import { hashKey } from '../server/keys.ts';
import type { Store, UsageRow } from '../server/store/types.ts';
import { CREDITS_PATH, INSPECT_PATH } from './fixtures.ts';

export interface StorePathTiming {
  /** Median over rounds of the mean µs per metered call (inspect_domain's queries). */
  meteredMicros: number;
  /** The same for a plain authenticated call (GET /v1/me/credits' queries). */
  plainMicros: number;
}

export const STORE_PATH_CALLS = 1_000;
export const STORE_PATH_ROUNDS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function timeStorePath(
  store: Store,
  account: NewAccount,
  calls = STORE_PATH_CALLS,
  rounds = STORE_PATH_ROUNDS,
): Promise<StorePathTiming> {
  const ids = createIdGenerator(systemClock);
  const hash = hashKey(account.key);
  const record = (charged: boolean): UsageRow => ({
    id: ids('log'),
    account_id: account.accountId,
    credential_id: account.credentialId,
    auth_source: 'api_key',
    channel: 'api',
    tool: null,
    endpoint: charged ? INSPECT_PATH : CREDITS_PATH,
    method: charged ? 'POST' : 'GET',
    status_code: 200,
    response_time_ms: 1,
    request_bytes: charged ? 48 : 0,
    response_bytes: charged ? 252 : 14,
    dataforseo_cost_usd: 0,
    credits_charged: charged ? 3 : 0,
    error_type: null,
    error_message: null,
    created_at: systemClock.now().toISOString(),
  });
  const one = async (charged: boolean) => {
    const key = await store.findCredentialByHash(hash);
    if (!key) throw new Error('bench key not found');
    await store.getBalance(account.accountId);
    await store.recordUsage(record(charged), charged ? { charge: { ledgerId: ids('led'), amount: 3 } } : {});
  };
  const time = async (charged: boolean) => {
    const means: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const started = performance.now();
      for (let i = 0; i < calls; i++) await one(charged);
      means.push(((performance.now() - started) * 1000) / calls);
    }
    return median(means);
  };
  // Warm-up: V8's optimisation of the query builder, the database's page cache.
  for (let i = 0; i < 3 * calls; i++) await one(true);
  return { meteredMicros: await time(true), plainMicros: await time(false) };
}
