// Several instances, one truth: two real servers, each with its own store (its own connection pool) and its own
// in-memory state, on ONE PostgreSQL schema. Whatever one instance does, the other must honour at once:
// revocation, credits, budgets, rate limits, failed-authentication throttling, idempotency, session accounts.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { systemClock } from '../../server/clock.ts';
import type { Config } from '../../server/config.ts';
import { createIdGenerator } from '../../server/ids.ts';
import { type ApiKeyWithSecret, apiKeysOf, expectProblem } from '../helpers/api-keys.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';
import { openTestStore, TEST_DATABASE_URL } from '../helpers/stores.ts';

type Created = components['schemas']['ApiCredentialCreated'];

const INSPECT = '/v1/tools/inspect_domain';
// The price is declared once, in the contract; read it from there rather than repeating it.
const bundled = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'));
const PRICE: number = bundled.paths[INSPECT].post['x-openrush-credits'];
const SECRET = 'scale-out-secret-with-at-least-32-characters!';
const ledgerIds = createIdGenerator(systemClock);

interface Pair {
  a: TestServer;
  b: TestServer;
  close(): Promise<void>;
}

/** Two instances on one fresh PostgreSQL schema: A owns the database, B only its own store. */
async function startPair(config: Partial<Config>): Promise<Pair> {
  const db = openTestStore('postgres');
  const a = await startTestServer({ database: db, config });
  const b = await startTestServer({ database: { ...db, store: db.openAnother() }, sharedDatabase: true, config });
  return {
    a,
    b,
    async close() {
      await b.close();
      await a.close();
    },
  };
}

const inspect = (server: TestServer, key: string) => server.call(INSPECT, jsonInit({ domain: 'www.example.co.uk' }, { key }));

/** Reads and discards the body, so the connection is free; returns the status. */
async function statusOf(response: Response): Promise<number> {
  await response.arrayBuffer();
  return response.status;
}

function sessionToken(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub, aud: 'authenticated', role: 'authenticated', email: 'scale@example.com', iat: now, exp: now + 3600 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(SECRET));
}

describe.skipIf(!TEST_DATABASE_URL)(
  `scale-out: two instances on one PostgreSQL database${TEST_DATABASE_URL ? '' : ' (NOT RUN: TEST_DATABASE_URL is not set)'}`,
  () => {
    let pair: Pair;
    let a: TestServer;
    let b: TestServer;

    beforeAll(async () => {
      pair = await startPair({
        // Revoked keys are refused on purpose below; the failed-auth throttle has its own test and pair.
        authFailuresPerMinute: 100_000,
        session: { jwtSecret: SECRET, autoprovision: true },
      });
      ({ a, b } = pair);
    });
    afterAll(async () => {
      await pair?.close();
    });

    it('a key revoked through one instance is refused by the other on its very next request', async () => {
      for (const [issuer, other, revoke] of [
        [a, b, (key: string, id: string) => apiKeysOf(a).revoke(key, id)],
        [b, a, (key: string, id: string) => apiKeysOf(b).v1Revoke(key, id)],
      ] as const) {
        const account = await issuer.newAccount();
        const key = await apiKeysOf(issuer).created(account.key, { name: 'soon revoked' });
        // Used on the other instance first, so anything it might remember about the key is warm.
        expect(await apiKeysOf(other).authStatus(key.api_key)).toBe(200);
        expect(await statusOf(await revoke(account.key, key.api_key_id))).toBe(200);
        await expectProblem(await other.call('/v1/me/credits', { key: key.api_key }), 401);
        expect(await apiKeysOf(issuer).authStatus(key.api_key)).toBe(401);
      }
    });

    it('concurrent metered calls spread over both instances never overdraw the account', async () => {
      const leftover = PRICE - 1;
      const account = await a.newAccount(7 * PRICE + leftover);
      const statuses = await Promise.all(Array.from({ length: 24 }, (_, i) => inspect(i % 2 ? b : a, account.key).then(statusOf)));
      expect(statuses.filter((s) => s === 200)).toHaveLength(7);
      expect(statuses.filter((s) => s === 402)).toHaveLength(17);
      for (const server of [a, b]) {
        expect(await server.store.getBalance(account.accountId)).toBe(leftover);
        expect(await server.store.sumLedger(account.accountId)).toBe(leftover);
      }
      // Every call is in the usage, refused ones uncharged.
      const usage = await b.store.listUsage(account.accountId, { limit: 100 });
      expect(usage).toHaveLength(24);
      expect(usage.reduce((sum, record) => sum + record.credits_charged, 0)).toBe(7 * PRICE);
    });

    it('the ledger of calls and grants spread over both instances is in the order they were applied: each balance_after the running sum', async () => {
      const account = await a.newAccount(200 * PRICE);
      const grants = (server: TestServer, amount: number) =>
        server.store.grantCredits({ ledgerId: ledgerIds('led'), eventId: ledgerIds('evt'), accountId: account.accountId, amount, note: null, createdAt: new Date().toISOString() });
      await Promise.all([
        ...Array.from({ length: 40 }, (_, i) => inspect(i % 2 ? b : a, account.key).then(statusOf)),
        ...Array.from({ length: 6 }, (_, i) => grants(i % 2 ? a : b, 5)),
      ]);
      const response = await b.call('/v1/me/credits/ledger?limit=500', { key: account.key });
      const ledger = (await response.json()) as Array<{ amount: number; balance_after: number }>;
      expect(ledger).toHaveLength(1 + 40 + 6);
      expect(ledger[0]!.balance_after).toBe(await a.store.getBalance(account.accountId));
      let running = 0;
      for (const entry of [...ledger].reverse()) {
        running += entry.amount;
        expect(entry.balance_after).toBe(running);
      }
      // The key's own view, asked on either instance, agrees.
      expect(((await (await a.call('/v1/me/api-key', { key: account.key })).json()) as { api_key_id: string }).api_key_id).toBe(account.credentialId);
    });

    it("a key's budget is counted across instances", async () => {
      const account = await a.newAccount(100 * PRICE);
      const key = await apiKeysOf(a).created(account.key, { name: 'budgeted', constraints: { budget: { period: 3, amount: 2 * PRICE } } });
      expect(await statusOf(await inspect(a, key.api_key))).toBe(200);
      expect(await statusOf(await inspect(b, key.api_key))).toBe(200);
      for (const server of [a, b]) {
        const problem = await expectProblem(await inspect(server, key.api_key), 402);
        expect(problem.type).toMatch(/budget_exhausted$/);
      }
      expect(await b.store.getBalance(account.accountId)).toBe(98 * PRICE);
    });

    it("a key's rate limit is counted across instances", async () => {
      const account = await a.newAccount();
      const key = await apiKeysOf(b).created(account.key, { name: 'limited', constraints: { rate_limit: { requests_per_minute: 4 } } });
      const remaining: Array<string | null> = [];
      for (const server of [a, a, b, b]) {
        const response = await server.call('/v1/me/credits', { key: key.api_key });
        expect(await statusOf(response)).toBe(200);
        remaining.push(response.headers.get('ratelimit')?.match(/r=(\d+)/)?.[1] ?? null);
      }
      expect(remaining).toEqual(['3', '2', '1', '0']);
      for (const server of [a, b]) {
        const refused = await server.call('/v1/me/credits', { key: key.api_key });
        await expectProblem(refused, 429);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
    });

    it('an idempotent v1 create retried on the other instance returns the first response', async () => {
      const account = await a.newAccount();
      const headers = { 'Idempotency-Key': randomUUID() };
      const first = await apiKeysOf(a).v1Create(account.key, { name: 'idempotent v1' }, headers);
      expect(first.status).toBe(201);
      const retried = await apiKeysOf(b).v1Create(account.key, { name: 'idempotent v1' }, headers);
      expect(retried.status).toBe(201);
      expect(retried.headers.get('idempotent-replayed')).toBe('true');
      const [body, replayed] = [(await first.json()) as Created, (await retried.json()) as Created];
      expect(replayed).toEqual(body);
      expect(await a.store.listCredentials(account.accountId)).toHaveLength(2);
      // A different body under the same key is refused on either instance.
      await expectProblem(await apiKeysOf(b).v1Create(account.key, { name: 'something else' }, headers), 409);
    });

    it('an idempotent v2 create retried on the other instance returns the first response', async () => {
      const account = await a.newAccount();
      const headers = { 'Idempotency-Key': randomUUID() };
      const first = await apiKeysOf(b).created(account.key, { name: 'idempotent v2' }, headers);
      const retried = await apiKeysOf(a).create(account.key, { name: 'idempotent v2' }, headers);
      expect(retried.status).toBe(201);
      expect(retried.headers.get('idempotent-replayed')).toBe('true');
      expect((await retried.json()) as ApiKeyWithSecret).toEqual(first);
      expect(await a.store.listCredentials(account.accountId)).toHaveLength(2);
    });

    it.each([
      ['/v1/me/api-credentials', (body: unknown) => (body as Created).key],
      ['/v2/api-keys', (body: unknown) => (body as ApiKeyWithSecret).api_key],
    ])('concurrent identical %s creates on both instances make exactly one key', async (path, secretOf) => {
      const account = await a.newAccount();
      const request = jsonInit({ name: 'raced' }, { key: account.key, headers: { 'Idempotency-Key': randomUUID() } });
      const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? b : a).call(path, request)));
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 201));
      expect(responses.filter((r) => r.headers.get('idempotent-replayed') !== 'true')).toHaveLength(1);
      const secrets = new Set(await Promise.all(responses.map(async (r) => secretOf(await r.json()))));
      expect(secrets.size).toBe(1);
      expect(await b.store.listCredentials(account.accountId)).toHaveLength(2);
    });

    it('a session account first seen on both instances at once is one account', async () => {
      const sub = randomUUID();
      const before = await a.store.countAccounts();
      const tokens = await Promise.all(Array.from({ length: 12 }, () => sessionToken(sub)));
      const statuses = await Promise.all(tokens.map((token, i) => (i % 2 ? b : a).call('/v1/me/credits', { key: token }).then(statusOf)));
      expect(statuses).toEqual(tokens.map(() => 200));
      expect(await a.store.countAccounts()).toBe(before + 1);
      const account = await b.store.sessionAccount(sub);
      expect(account).toBeDefined();
      expect(await a.store.listUsage(account!.id, { limit: 100 })).toHaveLength(tokens.length);
    });
  },
);

describe.skipIf(!TEST_DATABASE_URL)(
  `scale-out: failed-authentication throttling${TEST_DATABASE_URL ? '' : ' (NOT RUN: TEST_DATABASE_URL is not set)'}`,
  () => {
    const LIMIT = 3;
    const bad = 'or_thisIsNotAValidKeyAtAllJustGuessing1234';
    let pair: Pair;

    beforeAll(async () => {
      pair = await startPair({ authFailuresPerMinute: LIMIT });
    });
    afterAll(async () => {
      await pair?.close();
    });

    it('failures are counted across instances: past the limit both answer 429', async () => {
      const { a, b } = pair;
      // LIMIT + 1 failures, alternating: neither instance alone has seen enough of them to block.
      for (let i = 0; i <= LIMIT; i++) expect(await statusOf(await (i % 2 ? b : a).call('/v1/me/credits', { key: bad }))).toBe(401);
      for (const server of [a, b]) {
        const response = await server.call('/v1/me/credits', { key: server.account.key });
        expect(await statusOf(response)).toBe(429);
        expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
    });
  },
);
