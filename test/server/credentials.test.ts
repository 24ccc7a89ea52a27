// /v1/me/api-credentials (create, list, revoke, Idempotency-Key) against a real server on a real SQLite file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import type { NewAccount } from '../../server/accounts.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';
import { expectProblem } from '../helpers/api-keys.ts';

type Problem = components['schemas']['Problem'];
type ApiCredential = components['schemas']['ApiCredential'];
type Created = components['schemas']['ApiCredentialCreated'];

const KEY_PATTERN = /^or_[0-9A-Za-z]{38}$/;
const CREDENTIAL_FIELDS = ['account_id', 'created_at', 'expires_at', 'id', 'is_active', 'last_used_at', 'name', 'prefix'];
const UNKNOWN_CREDENTIAL = 'cred_01KW1WT6F8KK8E8PW71NXT39GC';
const FUTURE = '2099-01-01T00:00:00Z';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

/** Each test works in an account of its own, so that counts and orders are its own. */
const freshAccount = (): Promise<NewAccount> => server.newAccount();

function create(key: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return server.call('/v1/me/api-credentials', jsonInit(body, { key, headers }));
}

async function created(response: Response): Promise<Created> {
  expect(response.status, await response.clone().text()).toBe(201);
  return (await response.json()) as Created;
}

async function list(key: string): Promise<ApiCredential[]> {
  const response = await server.call('/v1/me/api-credentials', { key });
  expect(response.status).toBe(200);
  return (await response.json()) as ApiCredential[];
}

function revoke(key: string, credentialId: string): Promise<Response> {
  return server.call(`/v1/me/api-credentials/${credentialId}/revoke`, { method: 'POST', key });
}

/** A 400 whose errors[] are well-formed and include one at `location` `pointer`. */
async function expectValidationError(response: Response, location: string, pointer: string): Promise<Problem> {
  const problem = await expectProblem(response, 400);
  expect(problem.errors?.length).toBeGreaterThan(0);
  for (const item of problem.errors!) {
    expect(item).toEqual({ location: expect.any(String), pointer: expect.any(String), message: expect.any(String) });
    expect(item.message).not.toBe('');
  }
  expect(problem.errors).toContainEqual(expect.objectContaining({ location, pointer }));
  return problem;
}

describe('POST /v1/me/api-credentials', () => {
  it('creates a key: 201, no-store, the key once, and the key works at once', async () => {
    const account = await freshAccount();
    const response = await create(account.key, { name: 'Production server' });
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as Created;
    expect(Object.keys(body).sort()).toEqual(['api_credential', 'key']);
    expect(body.key).toMatch(KEY_PATTERN);
    expect(body.api_credential).toMatchObject({
      account_id: account.accountId,
      name: 'Production server',
      prefix: `${body.key.slice(0, 9)}...`,
      is_active: true,
      last_used_at: null,
      expires_at: null,
    });
    expect(Object.keys(body.api_credential).sort()).toEqual(CREDENTIAL_FIELDS);

    const credits = await server.call('/v1/me/credits', { key: body.key });
    expect(credits.status).toBe(200);
    expect(await credits.json()).toEqual({ balance: 500 });
  });

  it('keeps a future expires_at', async () => {
    const account = await freshAccount();
    const { api_credential } = await created(await create(account.key, { name: 'expiring', expires_at: FUTURE }));
    expect(Date.parse(api_credential.expires_at!)).toBe(Date.parse(FUTURE));
    expect(api_credential.is_active).toBe(true);
  });

  it('accepts a name of 120 characters', async () => {
    const name = 'n'.repeat(120);
    const { api_credential } = await created(await create(server.account.key, { name }));
    expect(api_credential.name).toBe(name);
  });

  describe('refuses a body that breaks the contract, creating nothing', () => {
    it.each([
      ['an unknown field', { name: 'ok', scope: 'all' }, 'body', '/scope'],
      ['a missing name', {}, 'body', '/name'],
      ['an empty name', { name: '' }, 'body', '/name'],
      ['a blank name', { name: '   ' }, 'body', '/name'],
      ['a name of 121 characters', { name: 'n'.repeat(121) }, 'body', '/name'],
      ['a name that is not a string', { name: 42 }, 'body', '/name'],
      ['expires_at in the past', { name: 'ok', expires_at: '2020-01-01T00:00:00Z' }, 'body', '/expires_at'],
      ['expires_at "tomorrow"', { name: 'ok', expires_at: 'tomorrow' }, 'body', '/expires_at'],
      ['expires_at on day 45 of month 13', { name: 'ok', expires_at: '2026-13-45T00:00:00Z' }, 'body', '/expires_at'],
      ['expires_at in month 13', { name: 'ok', expires_at: '2099-13-01T00:00:00Z' }, 'body', '/expires_at'],
      ['expires_at on February 30', { name: 'ok', expires_at: '2099-02-30T00:00:00Z' }, 'body', '/expires_at'],
      ['expires_at without a time zone', { name: 'ok', expires_at: '2099-01-01T00:00:00' }, 'body', '/expires_at'],
      ['an array body', [], 'body', ''],
    ])('%s: 400', async (_name, body, location, pointer) => {
      const account = await freshAccount();
      await expectValidationError(await create(account.key, body), location, pointer);
      expect(await list(account.key)).toHaveLength(1);
    });

    it('a JSON string body: 400 problem', async () => {
      const account = await freshAccount();
      await expectProblem(await create(account.key, JSON.stringify('x')), 400);
      expect(await list(account.key)).toHaveLength(1);
    });

    it('text/plain: 415 problem', async () => {
      const account = await freshAccount();
      const response = await server.call('/v1/me/api-credentials', {
        method: 'POST',
        key: account.key,
        headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify({ name: 'plain text' }),
      });
      await expectProblem(response, 415);
      expect(await list(account.key)).toHaveLength(1);
    });

    it('malformed JSON: 400 problem', async () => {
      const account = await freshAccount();
      await expectProblem(await create(account.key, '{"name": "half'), 400);
      expect(await list(account.key)).toHaveLength(1);
    });

    it('a body over 64 KiB: 413 problem', async () => {
      const account = await freshAccount();
      const body = JSON.stringify({ name: 'big', padding: 'x'.repeat(64 * 1024) });
      await expectProblem(await create(account.key, body), 413);
      expect(await list(account.key)).toHaveLength(1);
    });
  });
});

describe('GET /v1/me/api-credentials', () => {
  it('lists newest first, revoked ones too, never a secret', async () => {
    const account = await freshAccount();
    const first = await created(await create(account.key, { name: 'first' }));
    const second = await created(await create(account.key, { name: 'second' }));
    const third = await created(await create(account.key, { name: 'third' }));
    expect((await revoke(account.key, second.api_credential.id)).status).toBe(200);

    const response = await server.call('/v1/me/api-credentials', { key: account.key });
    expect(response.status).toBe(200);
    const text = await response.text();
    const credentials = JSON.parse(text) as ApiCredential[];
    expect(credentials.map((c) => [c.name, c.is_active])).toEqual([
      ['third', true],
      ['second', false],
      ['first', true],
      ['Default key', true],
    ]);
    expect(credentials.map((c) => c.id)).toEqual([third, second, first].map((c) => c.api_credential.id).concat(account.credentialId));
    for (const credential of credentials) {
      expect(Object.keys(credential).sort()).toEqual(CREDENTIAL_FIELDS);
      for (const field of ['key', 'key_hash', 'hash', 'fingerprint']) expect(credential).not.toHaveProperty(field);
    }
    for (const { key } of [first, second, third, account]) expect(text).not.toContain(key.slice(3));
  });

  it("never lists another account's credentials", async () => {
    const mine = await freshAccount();
    const theirs = await freshAccount();
    const theirCredential = await created(await create(theirs.key, { name: 'theirs' }));

    const listed = await list(mine.key);
    expect(listed.map((c) => c.id)).toEqual([mine.credentialId]);
    expect(listed.every((c) => c.account_id === mine.accountId)).toBe(true);

    expect((await list(theirs.key)).map((c) => c.id)).toEqual([theirCredential.api_credential.id, theirs.credentialId]);
  });
});

describe('POST /v1/me/api-credentials/{credential_id}/revoke', () => {
  it('revokes: 200 with is_active false; revoking again is 200 and changes nothing', async () => {
    const account = await freshAccount();
    const { api_credential } = await created(await create(account.key, { name: 'to revoke' }));

    const first = await revoke(account.key, api_credential.id);
    expect(first.status).toBe(200);
    const revoked = (await first.json()) as ApiCredential;
    expect(revoked).toEqual({ ...api_credential, is_active: false });

    const again = await revoke(account.key, api_credential.id);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(revoked);
    expect((await list(account.key)).find((c) => c.id === api_credential.id)).toEqual(revoked);
  });

  it("another account's credential: 404, and it stays active", async () => {
    const mine = await freshAccount();
    const theirs = await freshAccount();
    const target = await created(await create(theirs.key, { name: 'not yours' }));

    const response = await revoke(mine.key, target.api_credential.id);
    const problem = await expectProblem(response, 404);
    // Indistinguishable from an id that does not exist.
    const unknown = await expectProblem(await revoke(mine.key, UNKNOWN_CREDENTIAL), 404);
    expect(problem.detail).toBe(unknown.detail);

    expect((await list(theirs.key)).find((c) => c.id === target.api_credential.id)?.is_active).toBe(true);
    expect((await server.call('/v1/me/credits', { key: target.key })).status).toBe(200);
  });

  it('an unknown well-formed id: 404', async () => {
    await expectProblem(await revoke(server.account.key, UNKNOWN_CREDENTIAL), 404);
  });

  it.each([
    ['too short', 'cred_123'],
    ['wrong prefix', 'acct_01KW1WT6F8KK8E8PW71NXT39GC'],
    ['a letter Crockford excludes', 'cred_01KW1WT6F8KK8E8PW71NXT39GU'],
  ])('a malformed id (%s): 400', async (_name, id) => {
    await expectValidationError(await revoke(server.account.key, id), 'path', '/credential_id');
  });
});

describe('Idempotency-Key on create', () => {
  it('a retry with the same body replays the first response and creates nothing more', async () => {
    const account = await freshAccount();
    const headers = { 'Idempotency-Key': 'retry-1' };
    const first = await create(account.key, { name: 'retried', expires_at: FUTURE }, headers);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const original = await created(first);

    const retry = await create(account.key, { expires_at: FUTURE, name: 'retried' }, headers);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('cache-control')).toBe('no-store');
    expect(await created(retry)).toEqual(original);

    const listed = await list(account.key);
    expect(listed.map((c) => c.id)).toEqual([original.api_credential.id, account.credentialId]);
  });

  it('the same Idempotency-Key with a different body: 409 problem, nothing created', async () => {
    const account = await freshAccount();
    const headers = { 'Idempotency-Key': 'reused-1' };
    await created(await create(account.key, { name: 'one' }, headers));
    await expectProblem(await create(account.key, { name: 'two' }, headers), 409);
    expect((await list(account.key)).map((c) => c.name)).toEqual(['one', 'Default key']);
  });

  it("another account's Idempotency-Key does not replay the first account's response", async () => {
    const alice = await freshAccount();
    const bob = await freshAccount();
    const headers = { 'Idempotency-Key': 'shared-idempotency-key' };
    const body = { name: 'same name' };
    const alices = await created(await create(alice.key, body, headers));

    const response = await create(bob.key, body, headers);
    expect(response.headers.get('idempotent-replayed')).toBeNull();
    const bobs = await created(response);
    expect(bobs.key).not.toBe(alices.key);
    expect(bobs.api_credential.id).not.toBe(alices.api_credential.id);
    expect(bobs.api_credential.account_id).toBe(bob.accountId);
    expect((await list(bob.key)).map((c) => c.id)).toEqual([bobs.api_credential.id, bob.credentialId]);
  });

  it('concurrent requests with the same Idempotency-Key create exactly one credential', async () => {
    const account = await freshAccount();
    const headers = { 'Idempotency-Key': 'concurrent-1' };
    const responses = await Promise.all(Array.from({ length: 5 }, () => create(account.key, { name: 'racing' }, headers)));
    const bodies = await Promise.all(responses.map(created));

    expect(new Set(bodies.map((b) => b.key)).size).toBe(1);
    expect(new Set(bodies.map((b) => b.api_credential.id)).size).toBe(1);
    expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(4);
    expect((await list(account.key)).map((c) => c.id)).toEqual([bodies[0]!.api_credential.id, account.credentialId]);
  });
});
