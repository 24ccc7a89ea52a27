// What a key's settings make the server do on every request made with it: expires_at, rate_limit, budget,
// project_scope and permission_mode/access, against a real server on a real SQLite file.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import type { NewAccount } from '../../server/accounts.ts';
import { type ApiKeyCreate, type ApiKeyWithSecret, apiKeysOf, expectProblem } from '../helpers/api-keys.ts';
import { TestClock } from '../helpers/clock.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type UsageRecord = components['schemas']['UsageRecord'];

const INSPECT = '/v1/tools/inspect_domain';
// The price is declared once, in the contract; read it from there rather than repeating it.
const bundled = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'));
const PRICE: number = bundled.paths[INSPECT].post['x-openrush-credits'];
const DAY = 24 * 60 * 60 * 1000;

const clock = new TestClock();
let server: TestServer;
let api: ReturnType<typeof apiKeysOf>;

beforeAll(async () => {
  // Refused keys are part of the point here; the failed-auth throttle must not turn those 401s into 429s.
  server = await startTestServer({ clock, config: { authFailuresPerMinute: 100_000 } });
  api = apiKeysOf(server);
});
afterAll(async () => {
  await server?.close();
});

const freshAccount = (credits = 500): Promise<NewAccount> => server.newAccount(credits);

function keyFor(account: NewAccount, body: ApiKeyCreate): Promise<ApiKeyWithSecret> {
  clock.advance(1);
  return api.created(account.key, body);
}

const inspect = (key: string) => server.call(INSPECT, jsonInit({ domain: 'www.example.co.uk' }, { key }));
const get = (key: string, path: string) => server.call(path, { key });

/** Moves the test clock forward to an instant. */
function advanceTo(millis: number): void {
  expect(millis).toBeGreaterThanOrEqual(clock.now().getTime());
  clock.advance(millis - clock.now().getTime());
}

/** The balance and the ledger sum of an account, straight from the store. */
async function money(account: NewAccount): Promise<{ balance: number | undefined; ledger: number }> {
  return { balance: await server.store.getBalance(account.accountId), ledger: await server.store.sumLedger(account.accountId) };
}

describe('constraints.expires_at', () => {
  it('the key works until expires_at and is refused with 401 from then on', async () => {
    const account = await freshAccount();
    const expiresAt = new Date(clock.now().getTime() + 60 * 60 * 1000);
    const key = await keyFor(account, { name: 'expiring', constraints: { expires_at: expiresAt.toISOString() } });

    expect(await api.authStatus(key.api_key)).toBe(200);
    clock.advance(expiresAt.getTime() - clock.now().getTime() - 1);
    expect(await api.authStatus(key.api_key)).toBe(200);
    clock.advance(1);
    const refused = await get(key.api_key, '/v1/me/credits');
    await expectProblem(refused, 401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await inspect(key.api_key)).status).toBe(401);

    expect((await api.fetched(account.key, key.api_key_id)).status).toBe(4);
    expect((await api.v1List(account.key)).find((c) => c.id === key.api_key_id)?.is_active).toBe(false);
  });

  it('moving expires_at later with PATCH before it passes keeps the key working', async () => {
    const account = await freshAccount();
    const key = await keyFor(account, { name: 'extended', constraints: { expires_at: new Date(clock.now().getTime() + 1000).toISOString() } });
    const later = new Date(clock.now().getTime() + 10_000).toISOString();
    expect((await api.patch(account.key, key.api_key_id, { constraints: { expires_at: later } })).status).toBe(200);
    clock.advance(5000);
    expect(await api.authStatus(key.api_key)).toBe(200);
  });
});

describe('constraints.rate_limit', () => {
  it('past requests_per_minute: 429 with Retry-After, RateLimit and RateLimit-Policy', async () => {
    const account = await freshAccount();
    const key = await keyFor(account, { name: 'limited', constraints: { rate_limit: { requests_per_minute: 3 } } });

    for (const remaining of [2, 1, 0]) {
      const response = await get(key.api_key, '/v1/me/credits');
      expect(response.status).toBe(200);
      expect(response.headers.get('ratelimit-policy')).toBe('"per-key";q=3;w=60');
      expect(response.headers.get('ratelimit')).toMatch(new RegExp(`^"per-key";r=${remaining};t=\\d+$`));
    }
    const refused = await get(key.api_key, '/v1/me/credits');
    const problem = await expectProblem(refused, 429);
    expect(problem.type).toMatch(/too_many_requests$/);
    const retryAfter = refused.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit')).toBe(`"per-key";r=0;t=${retryAfter}`);
    expect(refused.headers.get('ratelimit-policy')).toBe('"per-key";q=3;w=60');

    // The limit is the key's, whatever it calls.
    expect((await get(key.api_key, '/v2/api-keys')).status).toBe(429);
    expect((await inspect(key.api_key)).status).toBe(429);
  });

  it('is counted per key: another key of the same account, even with the same limit, is unaffected', async () => {
    const account = await freshAccount();
    const busy = await keyFor(account, { name: 'busy', constraints: { rate_limit: { requests_per_minute: 2 } } });
    const quiet = await keyFor(account, { name: 'quiet', constraints: { rate_limit: { requests_per_minute: 2 } } });
    expect((await get(busy.api_key, '/v1/me/credits')).status).toBe(200);
    expect((await get(busy.api_key, '/v1/me/credits')).status).toBe(200);
    expect((await get(busy.api_key, '/v1/me/credits')).status).toBe(429);

    const response = await get(quiet.api_key, '/v1/me/credits');
    expect(response.status).toBe(200);
    expect(response.headers.get('ratelimit')).toMatch(/^"per-key";r=1;t=\d+$/);
    // A key without a limit gets no rate-limit headers at all.
    const unlimited = await get(account.key, '/v1/me/credits');
    expect(unlimited.status).toBe(200);
    expect(unlimited.headers.get('ratelimit')).toBeNull();
    expect(unlimited.headers.get('ratelimit-policy')).toBeNull();
  });
});

describe('constraints.budget', () => {
  it('credits charged through the key in the UTC day may not pass amount: 402 budget_exhausted, nothing charged', async () => {
    const account = await freshAccount(100);
    const calls = 2;
    const key = await keyFor(account, { name: 'budgeted', constraints: { budget: { period: 1, amount: calls * PRICE + 1 } } });

    for (let i = 0; i < calls; i++) expect((await inspect(key.api_key)).status).toBe(200);
    const before = await money(account);
    expect(before).toEqual({ balance: 100 - calls * PRICE, ledger: 100 - calls * PRICE });

    const refused = await inspect(key.api_key);
    const problem = await expectProblem(refused, 402);
    expect(problem.type).toMatch(/budget_exhausted$/);
    expect(await money(account)).toEqual(before);
    const [last] = (await server.store.listUsage(account.accountId, { limit: 1 })) as UsageRecord[];
    expect(last).toMatchObject({ credential_id: key.api_key_id, status_code: 402, credits_charged: 0, error_type: 'budget_exhausted' });

    // Another key of the account is not held by this key's budget.
    expect((await inspect(account.key)).status).toBe(200);
    // Nor does the budget stop what costs nothing.
    expect((await get(key.api_key, '/v1/me/credits')).status).toBe(200);
  });

  it('a new UTC day allows again', async () => {
    const account = await freshAccount(100);
    const key = await keyFor(account, { name: 'daily', constraints: { budget: { period: 1, amount: PRICE } } });
    expect((await inspect(key.api_key)).status).toBe(200);
    expect((await inspect(key.api_key)).status).toBe(402);

    const now = clock.now();
    advanceTo(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) - 1);
    expect((await inspect(key.api_key)).status).toBe(402);
    clock.advance(1);
    expect((await inspect(key.api_key)).status).toBe(200);
    clock.advance(DAY);
    expect((await inspect(key.api_key)).status).toBe(200);
    expect(await money(account)).toEqual({ balance: 100 - 3 * PRICE, ledger: 100 - 3 * PRICE });
  });

  it('a weekly budget lasts from Monday 00:00 UTC to the next Monday', async () => {
    const account = await freshAccount(100);
    const key = await keyFor(account, { name: 'weekly', constraints: { budget: { period: 2, amount: PRICE } } });
    // Spend on a Tuesday, so that the rest of the week spans other days.
    const now = clock.now();
    const daysToTuesday = (9 - now.getUTCDay()) % 7 || 7;
    advanceTo(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + daysToTuesday, 1));
    expect(clock.now().getUTCDay()).toBe(2);
    expect((await inspect(key.api_key)).status).toBe(200);
    const tuesday = clock.now();
    advanceTo(Date.UTC(tuesday.getUTCFullYear(), tuesday.getUTCMonth(), tuesday.getUTCDate() + 6) - 1);
    expect((await inspect(key.api_key)).status).toBe(402);
    clock.advance(1);
    expect(clock.now().getUTCDay()).toBe(1);
    expect((await inspect(key.api_key)).status).toBe(200);
  });

  it('a monthly budget lasts from the 1st, 00:00 UTC, to the next 1st', async () => {
    const account = await freshAccount(100);
    const key = await keyFor(account, { name: 'monthly', constraints: { budget: { period: 3, amount: PRICE } } });
    // Spend on the 2nd, so that the rest of the month spans other days and weeks.
    const now = clock.now();
    advanceTo(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 2, 1));
    expect((await inspect(key.api_key)).status).toBe(200);
    const second = clock.now();
    advanceTo(Date.UTC(second.getUTCFullYear(), second.getUTCMonth() + 1, 1) - 1);
    expect((await inspect(key.api_key)).status).toBe(402);
    clock.advance(1);
    expect(clock.now().getUTCDate()).toBe(1);
    expect((await inspect(key.api_key)).status).toBe(200);
  });

  it('a budget smaller than one call refuses the first call', async () => {
    expect(PRICE).toBeGreaterThan(1);
    const account = await freshAccount(100);
    const key = await keyFor(account, { name: 'tiny', constraints: { budget: { period: 1, amount: PRICE - 1 } } });
    const before = await money(account);
    expect((await expectProblem(await inspect(key.api_key), 402)).type).toMatch(/budget_exhausted$/);
    expect(await money(account)).toEqual(before);
  });

  it('removing the budget with PATCH lifts it', async () => {
    const account = await freshAccount(100);
    const key = await keyFor(account, { name: 'lifted', constraints: { budget: { period: 1, amount: PRICE } } });
    expect((await inspect(key.api_key)).status).toBe(200);
    expect((await inspect(key.api_key)).status).toBe(402);
    expect((await api.patch(account.key, key.api_key_id, { constraints: { budget: null } })).status).toBe(200);
    expect((await inspect(key.api_key)).status).toBe(200);
  });
});

describe('project_scope.single', () => {
  /** An account with keys in two projects and one of all projects, and a key confined to proj_a. */
  async function projects() {
    const account = await freshAccount();
    const scoped = await keyFor(account, { name: 'scoped', project_scope: { single: { project_id: 'proj_a' } } });
    const a2 = await keyFor(account, { name: 'a2', project_scope: { single: { project_id: 'proj_a' } } });
    const b1 = await keyFor(account, { name: 'b1', project_scope: { single: { project_id: 'proj_b' } } });
    const all = await keyFor(account, { name: 'all', project_scope: { all: {} } });
    return { account, scoped, a2, b1, all };
  }

  it('lists only keys of its project, on v2 and on v1', async () => {
    const { scoped, a2 } = await projects();
    expect((await api.page(scoped.api_key)).data.map((k) => k.api_key_id)).toEqual([a2.api_key_id, scoped.api_key_id]);
    expect((await api.page(scoped.api_key, { project_id: 'proj_a' })).data).toHaveLength(2);
    expect((await api.v1List(scoped.api_key)).map((c) => c.id)).toEqual([a2.api_key_id, scoped.api_key_id]);
  });

  it('listing another project: 403', async () => {
    const { scoped } = await projects();
    const problem = await expectProblem(await api.list(scoped.api_key, { project_id: 'proj_b' }), 403);
    expect(problem.type).toMatch(/forbidden$/);
  });

  it('a cursor outside its project: 400', async () => {
    const { scoped, b1 } = await projects();
    await expectProblem(await api.list(scoped.api_key, { starting_after: b1.api_key_id }), 400);
  });

  it('keys outside its project are 404 on get, patch, revoke and rotate, on v1 revoke too, and stay as they were', async () => {
    const { account, scoped, b1, all } = await projects();
    for (const target of [b1, all]) {
      await expectProblem(await api.get(scoped.api_key, target.api_key_id), 404);
      await expectProblem(await api.patch(scoped.api_key, target.api_key_id, { status: 2 }), 404);
      await expectProblem(await api.revoke(scoped.api_key, target.api_key_id), 404);
      await expectProblem(await api.rotate(scoped.api_key, target.api_key_id, 0), 404);
      await expectProblem(await api.v1Revoke(scoped.api_key, target.api_key_id), 404);
      expect((await api.fetched(account.key, target.api_key_id)).status).toBe(1);
      expect(await api.authStatus(target.api_key)).toBe(200);
    }
  });

  it('manages keys of its own project', async () => {
    const { scoped, a2 } = await projects();
    expect((await api.fetched(scoped.api_key, a2.api_key_id)).name).toBe('a2');
    expect((await api.patch(scoped.api_key, a2.api_key_id, { name: 'a2 renamed' })).status).toBe(200);
    expect((await api.revoke(scoped.api_key, a2.api_key_id)).status).toBe(200);
    expect(await api.authStatus(a2.api_key)).toBe(401);
  });

  it('creating a key for another project or for all projects: 403, nothing created', async () => {
    const { account, scoped } = await projects();
    for (const project_scope of [{ single: { project_id: 'proj_b' } }, { all: {} }]) {
      const problem = await expectProblem(await api.create(scoped.api_key, { name: 'escape', project_scope }), 403);
      expect(problem.type).toMatch(/forbidden$/);
    }
    expect((await api.page(account.key)).data).toHaveLength(5);
  });

  it('a key it creates without project_scope, on v2 or v1, belongs to its project', async () => {
    const { account, scoped } = await projects();
    const made = await api.created(scoped.api_key, { name: 'child' });
    expect(made.project_scope).toEqual({ single: { project_id: 'proj_a' } });
    expect(made.created_by_id).toBe(scoped.api_key_id);
    const explicit = await api.created(scoped.api_key, { name: 'explicit', project_scope: { single: { project_id: 'proj_a' } } });
    expect(explicit.project_scope).toEqual({ single: { project_id: 'proj_a' } });

    const v1 = await api.v1Create(scoped.api_key, { name: 'v1 child' });
    expect(v1.status).toBe(201);
    const v1Id = ((await v1.json()) as { api_credential: { id: string } }).api_credential.id;
    expect((await api.fetched(account.key, v1Id)).project_scope).toEqual({ single: { project_id: 'proj_a' } });
  });
});

describe('permission_mode', () => {
  it('read-only (2): cannot create, patch, rotate or revoke (403), on v1 either; nothing changes', async () => {
    const account = await freshAccount();
    const reader = await keyFor(account, { name: 'reader', permission_mode: 2 });
    const target = await keyFor(account, { name: 'target' });

    const refusals = [
      await api.create(reader.api_key, { name: 'nope' }),
      await api.patch(reader.api_key, target.api_key_id, { name: 'nope' }),
      await api.rotate(reader.api_key, target.api_key_id, 0),
      await api.revoke(reader.api_key, target.api_key_id),
      await api.v1Create(reader.api_key, { name: 'nope' }),
      await api.v1Revoke(reader.api_key, target.api_key_id),
      // Not even itself.
      await api.revoke(reader.api_key, reader.api_key_id),
    ];
    for (const response of refusals) expect((await expectProblem(response, 403)).type).toMatch(/forbidden$/);

    const listed = (await api.page(account.key)).data;
    expect(listed.map((k) => k.api_key_id)).toEqual([target.api_key_id, reader.api_key_id, account.credentialId]);
    expect(listed.every((k) => k.status === 1)).toBe(true);
    expect(listed[0]!.name).toBe('target');
    expect(await api.authStatus(target.api_key)).toBe(200);
  });

  it('read-only (2): can list and read, but not call tools (403, nothing charged)', async () => {
    const account = await freshAccount();
    const reader = await keyFor(account, { name: 'reader', permission_mode: 2 });
    expect((await api.page(reader.api_key)).data).toHaveLength(2);
    expect((await api.fetched(reader.api_key, account.credentialId)).api_key_id).toBe(account.credentialId);
    expect(await api.v1List(reader.api_key)).toHaveLength(2);
    expect((await get(reader.api_key, '/v1/me/credits')).status).toBe(200);
    expect((await get(reader.api_key, '/v1/me/usage')).status).toBe(200);
    const before = await money(account);
    expect((await expectProblem(await inspect(reader.api_key), 403)).detail).toMatch(/read-only/);
    expect(await money(account)).toEqual(before);
  });

  it('restricted (3) with access {credits: read}: credits only', async () => {
    const account = await freshAccount();
    const key = await keyFor(account, { name: 'credits only', permission_mode: 3, access: { credits: 'read' } });
    const before = await money(account);
    expect((await get(key.api_key, '/v1/me/credits')).status).toBe(200);
    await expectProblem(await get(key.api_key, '/v1/me/usage'), 403);
    await expectProblem(await inspect(key.api_key), 403);
    await expectProblem(await api.list(key.api_key), 403);
    await expectProblem(await api.create(key.api_key, { name: 'nope' }), 403);
    expect(await money(account)).toEqual(before);
    // Capabilities need no credential and no access.
    expect((await get(key.api_key, '/v1/capabilities')).status).toBe(200);
  });

  it('restricted (3) with access {tools: use}: tool calls only', async () => {
    const account = await freshAccount();
    const key = await keyFor(account, { name: 'tools only', permission_mode: 3, access: { tools: 'use' } });
    expect((await inspect(key.api_key)).status).toBe(200);
    await expectProblem(await get(key.api_key, '/v1/me/credits'), 403);
    await expectProblem(await get(key.api_key, '/v1/me/usage'), 403);
    await expectProblem(await api.list(key.api_key), 403);
  });

  it('restricted (3) with no access: every operation that needs one is 403', async () => {
    const account = await freshAccount();
    const key = await keyFor(account, { name: 'nothing', permission_mode: 3 });
    for (const path of ['/v1/me/credits', '/v1/me/usage', '/v1/me/api-credentials', '/v2/api-keys']) {
      await expectProblem(await get(key.api_key, path), 403);
    }
    await expectProblem(await inspect(key.api_key), 403);
  });

  it('restricted (3): api_keys read lists but cannot create; api_keys write creates', async () => {
    const account = await freshAccount();
    const reader = await keyFor(account, { name: 'keys read', permission_mode: 3, access: { api_keys: 'read', usage: 'read' } });
    expect((await api.page(reader.api_key)).data).toHaveLength(2);
    expect((await get(reader.api_key, '/v1/me/usage')).status).toBe(200);
    await expectProblem(await api.create(reader.api_key, { name: 'nope' }), 403);
    await expectProblem(await api.revoke(reader.api_key, account.credentialId), 403);

    const writer = await keyFor(account, { name: 'keys write', permission_mode: 3, access: { api_keys: 'write' } });
    expect((await api.create(writer.api_key, { name: 'made by writer' })).status).toBe(201);
    expect((await api.page(writer.api_key)).data).toHaveLength(4);
    await expectProblem(await get(writer.api_key, '/v1/me/credits'), 403);
  });

  it('access is ignored for full-access keys', async () => {
    const account = await freshAccount();
    const key = await keyFor(account, { name: 'full', permission_mode: 1, access: { credits: 'none', tools: 'none' } });
    expect((await get(key.api_key, '/v1/me/credits')).status).toBe(200);
    expect((await inspect(key.api_key)).status).toBe(200);
  });
});
