// /v2/api-keys against a real server on a real SQLite file: the seed's list shape and keyset pagination, the key
// object, create/get/patch/revoke/rotate, and v1 credentials and v2 keys being one store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NewAccount } from '../../server/accounts.ts';
import {
  API_KEY_FIELDS,
  type ApiKey,
  type ApiKeyList,
  type ApiKeyWithSecret,
  apiKeysOf,
  expectProblem,
  expectValidationError,
  FUTURE,
  KEY_PATTERN,
  propertyNames,
  RAW_KEY_ANYWHERE,
  SECRET_PROPERTIES,
  seedKeys,
} from '../helpers/api-keys.ts';
import { TestClock } from '../helpers/clock.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const UNKNOWN_KEY = 'cred_01KW1WT6F8KK8E8PW71NXT39GC';

const clock = new TestClock();
let server: TestServer;
let api: ReturnType<typeof apiKeysOf>;

beforeAll(async () => {
  // Many tests check that refused secrets get 401; the failed-auth throttle must not turn those into 429s.
  server = await startTestServer({ clock, config: { authFailuresPerMinute: 100_000 } });
  api = apiKeysOf(server);
});
afterAll(async () => {
  await server?.close();
});

/** Each test works in an account of its own, so that lists and orders are its own. */
const freshAccount = (): Promise<NewAccount> => server.newAccount();

/** Creates through the API, a test-clock millisecond after the previous key, so that "newest" is unambiguous. */
async function createKey(account: NewAccount, body: Parameters<typeof api.created>[1]): Promise<ApiKeyWithSecret> {
  clock.advance(1);
  return api.created(account.key, body);
}

const withoutSecret = ({ api_key: _secret, ...key }: ApiKeyWithSecret): ApiKey => key;

describe('GET /v2/api-keys', () => {
  it("answers exactly the seed's list shape, newest first", async () => {
    const account = await freshAccount();
    const a = await createKey(account, { name: 'a' });
    const b = await createKey(account, { name: 'b' });
    const c = await createKey(account, { name: 'c' });

    const response = await api.list(account.key);
    expect(response.status).toBe(200);
    const body = (await response.json()) as ApiKeyList;
    expect(Object.keys(body).sort()).toEqual(['data', 'has_more', 'object']);
    expect(body.object).toBe('list');
    expect(body.has_more).toBe(false);
    expect(body.data.map((k) => k.api_key_id)).toEqual([c.api_key_id, b.api_key_id, a.api_key_id, account.credentialId]);
    for (const key of body.data) expect(Object.keys(key).sort()).toEqual(API_KEY_FIELDS);
  });

  it('limit defaults to 25 and accepts 1 and 200', async () => {
    const account = await freshAccount();
    await seedKeys(server, clock, account, 29);

    const byDefault = await api.page(account.key);
    expect(byDefault.data).toHaveLength(25);
    expect(byDefault.has_more).toBe(true);
    const one = await api.page(account.key, { limit: 1 });
    expect(one.data).toHaveLength(1);
    expect(one.has_more).toBe(true);
    const all = await api.page(account.key, { limit: 200 });
    expect(all.data).toHaveLength(30);
    expect(all.has_more).toBe(false);
    expect(one.data[0]).toEqual(all.data[0]);
  });

  it.each([['0'], ['201'], ['abc'], ['-1'], ['1.5'], ['']])('limit=%j: 400', async (limit) => {
    await expectValidationError(await api.list(server.account.key, { limit }), 'query', '/limit');
  });

  it('walking forwards with starting_after visits every key exactly once, newest first', async () => {
    const account = await freshAccount();
    const seeded = await seedKeys(server, clock, account, 59);
    const expected = [...seeded].reverse().concat(account.credentialId);

    const pages: string[][] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await api.page(account.key, { limit: 7, ...(cursor ? { starting_after: cursor } : {}) });
      pages.push(page.data.map((k) => k.api_key_id));
      expect(page.has_more).toBe(pages.flat().length < expected.length);
      if (!page.has_more) break;
      cursor = page.data.at(-1)!.api_key_id;
      expect(pages.length).toBeLessThan(20);
    }
    expect(pages.flat()).toEqual(expected);
    expect(pages.map((p) => p.length)).toEqual([7, 7, 7, 7, 7, 7, 7, 7, 4]);
  });

  it('walking backwards with ending_before from the last page returns to the first, no gap, no repeat', async () => {
    const account = await freshAccount();
    const seeded = await seedKeys(server, clock, account, 59);
    const expected = [...seeded].reverse().concat(account.credentialId);
    const forwardPages: string[][] = [];
    for (let i = 0; i < expected.length; i += 7) forwardPages.push(expected.slice(i, i + 7));

    const last = await api.page(account.key, { limit: 7, starting_after: expected[55]! });
    expect(last.data.map((k) => k.api_key_id)).toEqual(forwardPages.at(-1));
    expect(last.has_more).toBe(false);

    const backPages: string[][] = [last.data.map((k) => k.api_key_id)];
    let cursor = last.data[0]!.api_key_id;
    for (;;) {
      const page = await api.page(account.key, { limit: 7, ending_before: cursor });
      backPages.unshift(page.data.map((k) => k.api_key_id));
      // has_more looks backwards here: are there newer keys than this page?
      expect(page.has_more).toBe(page.data[0]!.api_key_id !== expected[0]);
      if (!page.has_more) break;
      cursor = page.data[0]!.api_key_id;
      expect(backPages.length).toBeLessThan(20);
    }
    expect(backPages).toEqual(forwardPages);
  });

  it('an empty page beyond either end, with has_more false', async () => {
    const account = await freshAccount();
    const [oldest, , newest] = await seedKeys(server, clock, account, 3);
    expect(await api.page(account.key, { ending_before: newest! })).toEqual({ object: 'list', data: [], has_more: false });
    const older = await api.page(account.key, { starting_after: oldest! });
    expect(older.data.map((k) => k.api_key_id)).toEqual([account.credentialId]);
    expect(older.has_more).toBe(false);
    expect(await api.page(account.key, { starting_after: account.credentialId })).toEqual({ object: 'list', data: [], has_more: false });
  });

  it('a page short of the end says has_more in that direction only', async () => {
    const account = await freshAccount();
    const seeded = await seedKeys(server, clock, account, 9); // 10 keys
    const newestFirst = [...seeded].reverse().concat(account.credentialId);
    const middle = await api.page(account.key, { limit: 3, starting_after: newestFirst[2]! });
    expect(middle.data.map((k) => k.api_key_id)).toEqual(newestFirst.slice(3, 6));
    expect(middle.has_more).toBe(true);
    const back = await api.page(account.key, { limit: 3, ending_before: newestFirst[3]! });
    expect(back.data.map((k) => k.api_key_id)).toEqual(newestFirst.slice(0, 3));
    expect(back.has_more).toBe(false);
    const backFurther = await api.page(account.key, { limit: 2, ending_before: newestFirst[3]! });
    expect(backFurther.data.map((k) => k.api_key_id)).toEqual(newestFirst.slice(1, 3));
    expect(backFurther.has_more).toBe(true);
  });

  it('starting_after and ending_before together: 400', async () => {
    const account = await freshAccount();
    const [key] = await seedKeys(server, clock, account, 1);
    const response = await api.list(account.key, { starting_after: key!, ending_before: account.credentialId });
    await expectProblem(response, 400);
  });

  describe('a cursor that is not a key of the caller: 400', () => {
    it.each(['starting_after', 'ending_before'])("%s = another account's key", async (cursor) => {
      const mine = await freshAccount();
      const theirs = await freshAccount();
      await expectValidationError(await api.list(mine.key, { [cursor]: theirs.credentialId }), 'query', `/${cursor}`);
    });

    it.each(['starting_after', 'ending_before'])('%s = an unknown id', async (cursor) => {
      await expectValidationError(await api.list(server.account.key, { [cursor]: UNKNOWN_KEY }), 'query', `/${cursor}`);
    });

    it.each(['starting_after', 'ending_before'])('%s = a malformed id', async (cursor) => {
      await expectValidationError(await api.list(server.account.key, { [cursor]: 'cred_nope' }), 'query', `/${cursor}`);
    });
  });

  it('filters by project_id', async () => {
    const account = await freshAccount();
    const alpha = await seedKeys(server, clock, account, 3, { projectId: 'proj_alpha' });
    await seedKeys(server, clock, account, 2, { projectId: 'proj_beta' });

    const page = await api.page(account.key, { project_id: 'proj_alpha' });
    expect(page.data.map((k) => k.api_key_id)).toEqual([...alpha].reverse());
    for (const key of page.data) expect(key.project_scope).toEqual({ single: { project_id: 'proj_alpha' } });
    expect((await api.page(account.key, { project_id: 'proj_nobody' })).data).toEqual([]);
    // Without the filter, keys of every project and of all projects.
    expect((await api.page(account.key)).data).toHaveLength(6);
  });

  it('filters by status: 1 active, 2 disabled, 3 revoked, 4 expired', async () => {
    const account = await freshAccount();
    const disabled = await createKey(account, { name: 'disabled' });
    const revoked = await createKey(account, { name: 'revoked' });
    const expiring = await createKey(account, { name: 'expiring', constraints: { expires_at: new Date(clock.now().getTime() + 1000).toISOString() } });
    expect((await api.patch(account.key, disabled.api_key_id, { status: 2 })).status).toBe(200);
    expect((await api.revoke(account.key, revoked.api_key_id)).status).toBe(200);
    clock.advance(1001);

    const ids = async (status: number) => (await api.page(account.key, { status })).data.map((k) => [k.api_key_id, k.status]);
    expect(await ids(1)).toEqual([[account.credentialId, 1]]);
    expect(await ids(2)).toEqual([[disabled.api_key_id, 2]]);
    expect(await ids(3)).toEqual([[revoked.api_key_id, 3]]);
    expect(await ids(4)).toEqual([[expiring.api_key_id, 4]]);
    await expectValidationError(await api.list(account.key, { status: 5 }), 'query', '/status');
  });

  it('never shows token_hash or a raw key', async () => {
    const account = await freshAccount();
    const made = [await createKey(account, { name: 'one' }), await createKey(account, { name: 'two' })];
    const rotated = await api.rotate(account.key, made[0]!.api_key_id, 600);
    expect(rotated.status).toBe(200);
    const { api_key: newSecret } = (await rotated.json()) as ApiKeyWithSecret;
    await seedKeys(server, clock, account, 5);

    for (const query of [{}, { limit: 2 }, { status: 1 }] as Record<string, number>[]) {
      const text = await (await api.list(account.key, query)).text();
      expect(text).not.toMatch(RAW_KEY_ANYWHERE);
      for (const secret of [account.key, newSecret, ...made.map((m) => m.api_key)]) expect(text).not.toContain(secret.slice(3));
      const names = propertyNames(JSON.parse(text));
      for (const name of SECRET_PROPERTIES) expect(names.has(name), name).toBe(false);
    }
  });
});

describe('the API key object', () => {
  it('has every field of the seed, with what was asked for', async () => {
    const account = await freshAccount();
    const created = await createKey(account, {
      name: 'Marketing dashboard',
      owner: { user: { user_id: 'user_42' } },
      project_scope: { single: { project_id: 'proj_marketing' } },
      permission_mode: 3,
      access: { credits: 'read', tools: 'use' },
      constraints: {
        expires_at: FUTURE,
        budget: { period: 3, amount: 1000, token_limit: '5000' },
        rate_limit: { requests_per_minute: 60 },
      },
    });
    const key = await api.fetched(account.key, created.api_key_id);
    expect(Object.keys(key).sort()).toEqual(API_KEY_FIELDS);
    expect(Object.keys(key.constraints).sort()).toEqual(['budget', 'expires_at', 'rate_limit']);
    expect(Object.keys(key.constraints.budget!).sort()).toEqual(['amount', 'period', 'token_limit']);
    expect(Object.keys(key.constraints.rate_limit!)).toEqual(['requests_per_minute']);
    expect(key).toEqual({
      api_key_id: created.api_key_id,
      name: 'Marketing dashboard',
      owner: { user: { user_id: 'user_42' } },
      project_scope: { single: { project_id: 'proj_marketing' } },
      permission_mode: 3,
      access: { credits: 'read', tools: 'use' },
      token_prefix: `${created.api_key.slice(0, 9)}...`,
      status: 1,
      constraints: {
        expires_at: expect.any(String),
        budget: { period: 3, amount: 1000, token_limit: '5000' },
        rate_limit: { requests_per_minute: 60 },
      },
      created_by_id: account.credentialId,
      updated_by_id: account.credentialId,
      created_at: clock.now().toISOString(),
      updated_at: clock.now().toISOString(),
      last_used_at: null,
      // Only a key imported from an older token system has these; every key made through the API has null.
      legacy_token_family: null,
      legacy_key_id: null,
      // Only a connected agent's key (an OAuth grant) names its client.
      oauth_client: null,
    });
    expect(Date.parse(key.constraints.expires_at!)).toBe(Date.parse(FUTURE));
  });

  it('a key that has been used has last_used_at', async () => {
    const account = await freshAccount();
    const created = await createKey(account, { name: 'used' });
    expect(await api.authStatus(created.api_key)).toBe(200);
    const key = await api.fetched(account.key, created.api_key_id);
    expect(key.last_used_at).toBe(clock.now().toISOString());
  });
});

describe('POST /v2/api-keys', () => {
  it('creates with the defaults: the caller as user, all projects, full access, no constraints; the key once, no-store', async () => {
    const account = await freshAccount();
    clock.advance(1);
    const response = await api.create(account.key, { name: 'Defaults' });
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as ApiKeyWithSecret;
    expect(Object.keys(body).sort()).toEqual([...API_KEY_FIELDS, 'api_key'].sort());
    expect(body.api_key).toMatch(KEY_PATTERN);
    expect(body).toMatchObject({
      name: 'Defaults',
      owner: { user: { user_id: account.accountId } },
      project_scope: { all: {} },
      permission_mode: 1,
      access: {},
      token_prefix: `${body.api_key.slice(0, 9)}...`,
      status: 1,
      constraints: { expires_at: null, budget: null, rate_limit: null },
      created_by_id: account.credentialId,
      last_used_at: null,
    });
    expect(await api.authStatus(body.api_key)).toBe(200);

    // Shown once: reading the key again never gives the secret back.
    const again = await api.get(account.key, body.api_key_id);
    const text = await again.text();
    expect(text).not.toMatch(RAW_KEY_ANYWHERE);
    expect(JSON.parse(text)).toEqual({ ...withoutSecret(body), last_used_at: expect.any(String) });
  });

  it('creates a service-account key of one project, read-only, with constraints', async () => {
    const account = await freshAccount();
    const body = await createKey(account, {
      name: 'CI',
      owner: { service_account: {} },
      project_scope: { single: { project_id: 'proj_ci' } },
      permission_mode: 2,
      constraints: { rate_limit: { requests_per_minute: 5 }, budget: { period: 1, amount: 10 } },
    });
    expect(body).toMatchObject({
      owner: { service_account: {} },
      project_scope: { single: { project_id: 'proj_ci' } },
      permission_mode: 2,
      constraints: { expires_at: null, budget: { period: 1, amount: 10, token_limit: null }, rate_limit: { requests_per_minute: 5 } },
    });
    expect(await api.fetched(account.key, body.api_key_id)).toEqual(withoutSecret(body));
  });

  describe('refuses a body that breaks the contract, creating nothing', () => {
    it.each([
      ['no name', {}, '/name'],
      ['an unknown field', { name: 'x', scope: 'all' }, '/scope'],
      ['both owners', { name: 'x', owner: { user: { user_id: 'u' }, service_account: {} } }, '/owner'],
      ['both project scopes', { name: 'x', project_scope: { all: {}, single: { project_id: 'p' } } }, '/project_scope'],
      ['permission_mode 4', { name: 'x', permission_mode: 4 }, '/permission_mode'],
      ['an unknown access level', { name: 'x', access: { tools: 'write' } }, '/access/tools'],
      ['a budget period 4', { name: 'x', constraints: { budget: { period: 4, amount: 1 } } }, '/constraints/budget'],
      ['a rate limit of 0', { name: 'x', constraints: { rate_limit: { requests_per_minute: 0 } } }, '/constraints/rate_limit'],
      ['expires_at in the past', { name: 'x', constraints: { expires_at: '2020-01-01T00:00:00Z' } }, '/constraints/expires_at'],
    ])('%s: 400', async (_name, body, pointer) => {
      const account = await freshAccount();
      const response = await api.create(account.key, body);
      const problem = await expectProblem(response, 400);
      expect(problem.errors?.some((e) => e.location === 'body' && e.pointer.startsWith(pointer)), JSON.stringify(problem.errors)).toBe(true);
      expect((await api.page(account.key)).data).toHaveLength(1);
    });
  });

  describe('Idempotency-Key', () => {
    it('the same key and body: the same response, one key', async () => {
      const account = await freshAccount();
      const headers = { 'Idempotency-Key': 'v2-retry-1' };
      const body = { name: 'retried', constraints: { rate_limit: { requests_per_minute: 10 } } };
      const first = await api.created(account.key, body, headers);
      const retry = await api.create(account.key, body, headers);
      expect(retry.status).toBe(201);
      expect(retry.headers.get('cache-control')).toBe('no-store');
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(await retry.json()).toEqual(first);
      expect((await api.page(account.key)).data.map((k) => k.api_key_id)).toEqual([first.api_key_id, account.credentialId]);
    });

    it('the same key with another body: 409, nothing more created', async () => {
      const account = await freshAccount();
      const headers = { 'Idempotency-Key': 'v2-reused-1' };
      const first = await api.created(account.key, { name: 'one' }, headers);
      const problem = await expectProblem(await api.create(account.key, { name: 'two' }, headers), 409);
      expect(problem.type).toMatch(/idempotency_key_reused$/);
      expect((await api.page(account.key)).data.map((k) => k.api_key_id)).toEqual([first.api_key_id, account.credentialId]);
    });

    it('a key first used on POST /v1/me/api-credentials is never answered with the v1 response on v2', async () => {
      const account = await freshAccount();
      const headers = { 'Idempotency-Key': 'v1-then-v2' };
      expect((await api.v1Create(account.key, { name: 'same body' }, headers)).status).toBe(201);
      const response = await api.create(account.key, { name: 'same body' }, headers);
      // Either a refusal of the reused key or a v2 key of its own; never the v1 body (or a 500) under the v2 contract.
      expect([201, 409], await response.clone().text()).toContain(response.status);
      if (response.status === 201) {
        const body = (await response.json()) as ApiKeyWithSecret;
        expect(Object.keys(body).sort()).toEqual([...API_KEY_FIELDS, 'api_key'].sort());
      }
    });
  });
});

describe('GET /v2/api-keys/{api_key_id}', () => {
  it('an unknown id: 404; a malformed one: 400', async () => {
    await expectProblem(await api.get(server.account.key, UNKNOWN_KEY), 404);
    await expectValidationError(await api.get(server.account.key, 'cred_123'), 'path', '/api_key_id');
  });
});

describe('PATCH /v2/api-keys/{api_key_id}', () => {
  it('renames, keeping everything else, and records who changed it and when', async () => {
    const account = await freshAccount();
    const admin = await createKey(account, { name: 'admin' });
    const target = await createKey(account, { name: 'old name', constraints: { rate_limit: { requests_per_minute: 9 } } });
    clock.advance(5000);
    const response = await api.patch(admin.api_key, target.api_key_id, { name: 'new name' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      ...withoutSecret(target),
      name: 'new name',
      updated_by_id: admin.api_key_id,
      updated_at: clock.now().toISOString(),
    });
    expect((await api.fetched(account.key, target.api_key_id)).name).toBe('new name');
  });

  it('in constraints, null removes a field and a field left out is kept', async () => {
    const account = await freshAccount();
    const target = await createKey(account, {
      name: 'constrained',
      constraints: { expires_at: FUTURE, budget: { period: 2, amount: 50 }, rate_limit: { requests_per_minute: 30 } },
    });
    const removeBudget = await api.patch(account.key, target.api_key_id, { constraints: { budget: null } });
    expect(removeBudget.status).toBe(200);
    expect(((await removeBudget.json()) as ApiKey).constraints).toEqual({
      expires_at: target.constraints.expires_at,
      budget: null,
      rate_limit: { requests_per_minute: 30 },
    });

    const change = await api.patch(account.key, target.api_key_id, {
      constraints: { rate_limit: { requests_per_minute: 7 }, expires_at: null, budget: { period: 1, amount: 3, token_limit: '12' } },
    });
    expect(((await change.json()) as ApiKey).constraints).toEqual({
      expires_at: null,
      budget: { period: 1, amount: 3, token_limit: '12' },
      rate_limit: { requests_per_minute: 7 },
    });

    // A name-only change leaves the constraints alone.
    await api.patch(account.key, target.api_key_id, { name: 'renamed' });
    expect((await api.fetched(account.key, target.api_key_id)).constraints).toEqual({
      expires_at: null,
      budget: { period: 1, amount: 3, token_limit: '12' },
      rate_limit: { requests_per_minute: 7 },
    });
  });

  it('status 2 disables the key (401 on its next request) until status 1 activates it again', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'toggled' });
    expect(await api.authStatus(target.api_key)).toBe(200);

    const disabled = await api.patch(account.key, target.api_key_id, { status: 2 });
    expect(disabled.status).toBe(200);
    expect(((await disabled.json()) as ApiKey).status).toBe(2);
    const refused = await server.call('/v1/me/credits', { key: target.api_key });
    await expectProblem(refused, 401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await api.v1List(account.key)).find((c) => c.id === target.api_key_id)?.is_active).toBe(false);

    const active = await api.patch(account.key, target.api_key_id, { status: 1 });
    expect(((await active.json()) as ApiKey).status).toBe(1);
    expect(await api.authStatus(target.api_key)).toBe(200);
  });

  it('a revoked key cannot be changed: 409, and it stays revoked', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'gone' });
    expect((await api.revoke(account.key, target.api_key_id)).status).toBe(200);
    for (const body of [{ status: 1 }, { name: 'back' }, { constraints: { rate_limit: null } }]) {
      const problem = await expectProblem(await api.patch(account.key, target.api_key_id, body), 409);
      expect(problem.type).toMatch(/conflict$/);
    }
    const key = await api.fetched(account.key, target.api_key_id);
    expect(key).toMatchObject({ status: 3, name: 'gone' });
    expect(await api.authStatus(target.api_key)).toBe(401);
  });

  it.each([
    ['an empty body', {}],
    ['status 3', { status: 3 }],
    ['an unknown field', { permission_mode: 1 }],
    ['a blank name', { name: '  ' }],
  ])('%s: 400', async (_name, body) => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'unchanged' });
    await expectProblem(await api.patch(account.key, target.api_key_id, body), 400);
    expect(await api.fetched(account.key, target.api_key_id)).toEqual(withoutSecret(target));
  });
});

describe('POST /v2/api-keys/{api_key_id}/revoke', () => {
  it('revokes: the key is refused on its next request; revoking again is 200 and changes nothing', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'revoke me' });
    expect(await api.authStatus(target.api_key)).toBe(200);

    clock.advance(1000);
    const first = await api.revoke(account.key, target.api_key_id);
    expect(first.status).toBe(200);
    const revoked = (await first.json()) as ApiKey;
    expect(revoked).toMatchObject({ api_key_id: target.api_key_id, status: 3, updated_at: clock.now().toISOString() });
    expect(await api.authStatus(target.api_key)).toBe(401);

    clock.advance(1000);
    const again = await api.revoke(account.key, target.api_key_id);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(revoked);
  });
});

describe('POST /v2/api-keys/{api_key_id}/rotate', () => {
  it('gives a new secret; the old one works during the grace period and is refused after it', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'rotating', constraints: { rate_limit: { requests_per_minute: 1000 } } });
    const response = await api.rotate(account.key, target.api_key_id, 60);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const rotated = (await response.json()) as ApiKeyWithSecret;
    expect(rotated.api_key).toMatch(KEY_PATTERN);
    expect(rotated.api_key).not.toBe(target.api_key);
    expect(rotated).toMatchObject({
      api_key_id: target.api_key_id,
      token_prefix: `${rotated.api_key.slice(0, 9)}...`,
      name: 'rotating',
      status: 1,
      constraints: target.constraints,
      created_at: target.created_at,
    });

    expect(await api.authStatus(rotated.api_key)).toBe(200);
    expect(await api.authStatus(target.api_key)).toBe(200);
    clock.advance(59_000);
    expect(await api.authStatus(target.api_key)).toBe(200);
    clock.advance(1_001);
    expect(await api.authStatus(target.api_key)).toBe(401);
    expect(await api.authStatus(rotated.api_key)).toBe(200);
  });

  it('grace 0: the old secret is refused at once', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'rotate now' });
    const rotated = (await (await api.rotate(account.key, target.api_key_id, 0)).json()) as ApiKeyWithSecret;
    expect(await api.authStatus(target.api_key)).toBe(401);
    expect(await api.authStatus(rotated.api_key)).toBe(200);
  });

  it('rotating twice ends the first old secret at once: never more than one old secret alive', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'rotate twice' });
    const second = (await (await api.rotate(account.key, target.api_key_id, 3600)).json()) as ApiKeyWithSecret;
    expect(await api.authStatus(target.api_key)).toBe(200);
    const third = (await (await api.rotate(account.key, target.api_key_id, 3600)).json()) as ApiKeyWithSecret;

    expect(await api.authStatus(target.api_key)).toBe(401);
    expect(await api.authStatus(second.api_key)).toBe(200);
    expect(await api.authStatus(third.api_key)).toBe(200);
    expect(new Set([target.api_key, second.api_key, third.api_key]).size).toBe(3);
  });

  it('the key can rotate itself, and its old secret still works within the grace period', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'self' });
    const response = await api.rotate(target.api_key, target.api_key_id, 30);
    expect(response.status).toBe(200);
    const rotated = (await response.json()) as ApiKeyWithSecret;
    expect(rotated.updated_by_id).toBe(target.api_key_id);
    expect(await api.authStatus(target.api_key)).toBe(200);
    expect(await api.authStatus(rotated.api_key)).toBe(200);
  });

  it('revoking ends the old secret in its grace period too', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'rotate then revoke' });
    const rotated = (await (await api.rotate(account.key, target.api_key_id, 3600)).json()) as ApiKeyWithSecret;
    expect((await api.revoke(account.key, target.api_key_id)).status).toBe(200);
    expect(await api.authStatus(target.api_key)).toBe(401);
    expect(await api.authStatus(rotated.api_key)).toBe(401);
  });

  it('a revoked key cannot be rotated: 409', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'revoked' });
    await api.revoke(account.key, target.api_key_id);
    await expectProblem(await api.rotate(account.key, target.api_key_id, 0), 409);
    expect(await api.authStatus(target.api_key)).toBe(401);
  });

  it.each([[-1], [604_801], ['60']])('grace_period_seconds %j: 400', async (grace) => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'bad grace' });
    await expectValidationError(
      await server.call(`/v2/api-keys/${target.api_key_id}/rotate`, {
        method: 'POST',
        key: account.key,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ grace_period_seconds: grace }),
      }),
      'body',
      '/grace_period_seconds',
    );
    expect(await api.authStatus(target.api_key)).toBe(200);
  });
});

describe("another account's key", () => {
  it('is 404 on get, patch, revoke and rotate, and nothing happens to it', async () => {
    const mine = await freshAccount();
    const theirs = await freshAccount();
    const target = await createKey(theirs, { name: 'not yours' });

    const unknown = await expectProblem(await api.get(mine.key, UNKNOWN_KEY), 404);
    for (const response of [
      await api.get(mine.key, target.api_key_id),
      await api.patch(mine.key, target.api_key_id, { status: 2 }),
      await api.revoke(mine.key, target.api_key_id),
      await api.rotate(mine.key, target.api_key_id, 0),
    ]) {
      // Indistinguishable from an id that does not exist.
      expect((await expectProblem(response, 404)).detail).toBe(unknown.detail);
    }
    expect(await api.fetched(theirs.key, target.api_key_id)).toEqual(withoutSecret(target));
    expect(await api.authStatus(target.api_key)).toBe(200);
  });

  it('is never listed', async () => {
    const mine = await freshAccount();
    const theirs = await freshAccount();
    await createKey(theirs, { name: 'not yours' });
    expect((await api.page(mine.key)).data.map((k) => k.api_key_id)).toEqual([mine.credentialId]);
  });
});

describe('v1 credentials and v2 API keys are one store', () => {
  it('a key made with POST /v1/me/api-credentials is in /v2/api-keys, and the other way round', async () => {
    const account = await freshAccount();
    clock.advance(1);
    const v1Response = await api.v1Create(account.key, { name: 'made on v1', expires_at: FUTURE });
    expect(v1Response.status).toBe(201);
    const v1 = (await v1Response.json()) as { key: string; api_credential: { id: string; prefix: string } };
    const v2 = await createKey(account, { name: 'made on v2' });

    const listed = (await api.page(account.key)).data;
    expect(listed.map((k) => k.api_key_id)).toEqual([v2.api_key_id, v1.api_credential.id, account.credentialId]);
    expect(listed[1]).toMatchObject({
      name: 'made on v1',
      token_prefix: v1.api_credential.prefix,
      status: 1,
      project_scope: { all: {} },
      permission_mode: 1,
      created_by_id: account.credentialId,
    });
    expect(Date.parse(listed[1]!.constraints.expires_at!)).toBe(Date.parse(FUTURE));

    const v1List = await api.v1List(account.key);
    expect(v1List.map((c) => c.id)).toEqual([v2.api_key_id, v1.api_credential.id, account.credentialId]);
    expect(v1List[0]).toMatchObject({ name: 'made on v2', prefix: v2.token_prefix, is_active: true, account_id: account.accountId });
  });

  it('revoked via v1: status 3 on v2', async () => {
    const account = await freshAccount();
    const target = await createKey(account, { name: 'v1 revokes' });
    expect((await api.v1Revoke(account.key, target.api_key_id)).status).toBe(200);
    expect((await api.fetched(account.key, target.api_key_id)).status).toBe(3);
    expect((await api.page(account.key, { status: 3 })).data.map((k) => k.api_key_id)).toEqual([target.api_key_id]);
  });

  it('revoked via v2: is_active false on v1', async () => {
    const account = await freshAccount();
    const made = await api.v1Create(account.key, { name: 'v2 revokes' });
    const id = ((await made.json()) as { api_credential: { id: string } }).api_credential.id;
    expect((await api.revoke(account.key, id)).status).toBe(200);
    expect((await api.v1List(account.key)).find((c) => c.id === id)?.is_active).toBe(false);
  });
});
