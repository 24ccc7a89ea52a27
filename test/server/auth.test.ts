// Authentication against a real server on a real SQLite file: both ways of sending a key, every way a credential
// is refused, the public routes, request ids, and keeping the raw key out of the logs and the database.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { generateKey, hashKey } from '../../server/keys.ts';
import { TestClock } from '../helpers/clock.ts';
import { type CountingStore, countingStore } from '../helpers/counting-store.ts';
import { expectChallenge, WWW_AUTHENTICATE } from '../helpers/api-keys.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type Problem = components['schemas']['Problem'];
type ApiCredential = components['schemas']['ApiCredential'];
type Created = components['schemas']['ApiCredentialCreated'];


const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
// These tests fail authentication on purpose, many times, from one address: lift the per-address throttle (a
// behaviour of its own) so that they see the 401s they are about, not 429s.
const config = { authFailuresPerMinute: 100_000 };

let server: TestServer;
let clock: TestClock;

beforeAll(async () => {
  clock = new TestClock();
  server = await startTestServer({ clock, config });
});
afterAll(async () => {
  await server?.close();
});

function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(server.url + path, { headers });
}

async function expectUnauthorized(response: Response): Promise<Problem> {
  const text = await response.text();
  expect(response.status, text).toBe(401);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expectChallenge(response, JSON.parse(text) as Problem);
  const problem = JSON.parse(text) as Problem;
  expect(problem).toMatchObject({ status: 401, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  expect(problem.request_id).toBe(response.headers.get('x-request-id'));
  return problem;
}

async function createKey(key: string, body: Record<string, unknown> = { name: 'test key' }, headers: Record<string, string> = {}) {
  const response = await server.call('/v1/me/api-credentials', jsonInit(body, { key, headers }));
  expect(response.status, await response.clone().text()).toBe(201);
  return (await response.json()) as Created;
}

async function listCredentials(key: string): Promise<ApiCredential[]> {
  const response = await server.call('/v1/me/api-credentials', { key });
  expect(response.status).toBe(200);
  return (await response.json()) as ApiCredential[];
}

/** The same key with one character of its random part changed: same shape, wrong checksum. */
function withTypo(key: string): string {
  const i = 10;
  return key.slice(0, i) + (key[i] === 'A' ? 'B' : 'A') + key.slice(i + 1);
}

describe('presenting a key', () => {
  it.each([
    ['Authorization: Bearer', (key: string) => ({ Authorization: `Bearer ${key}` })],
    ['X-API-Key', (key: string) => ({ 'X-API-Key': key })],
  ])('a key works as %s', async (_name, headers) => {
    const response = await get('/v1/me/credits', headers(server.account.key));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ balance: 500 });
  });

  it('X-API-Key also works on a route that writes', async () => {
    const response = await fetch(`${server.url}/v1/me/api-credentials`, {
      method: 'POST',
      headers: { 'X-API-Key': server.account.key, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'via X-API-Key' }),
    });
    expect(response.status).toBe(201);
    const created = (await response.json()) as Created;
    expect(created.api_credential.account_id).toBe(server.account.accountId);
  });
});

describe('refused credentials', () => {
  it('no credential: 401 problem with WWW-Authenticate and the request id', async () => {
    const response = await get('/v1/me/credits');
    const problem = await expectUnauthorized(response);
    expect(problem.type).toMatch(/unauthorized$/);
    expect(problem.request_id).toBeTruthy();
  });

  describe('malformed keys are refused without any database work', () => {
    let counted: CountingStore;
    let countedServer: TestServer;

    beforeAll(async () => {
      counted = countingStore();
      countedServer = await startTestServer({ database: counted.database, config });
    });
    afterAll(async () => {
      await countedServer?.close();
    });

    it.each([
      ['one character too many', (key: string) => `${key}A`],
      ['one character changed (checksum fails)', withTypo],
      ['truncated', (key: string) => key.slice(0, -5)],
      ['only the prefix', () => 'or_'],
    ])('%s', async (_name, mangle) => {
      const good = countedServer.account.key;
      const before = counted.calls('findCredentialByHash');
      const attempts: Record<string, string>[] = [{ Authorization: `Bearer ${mangle(good)}` }, { 'X-API-Key': mangle(good) }];
      for (const headers of attempts) {
        await expectUnauthorized(await fetch(`${countedServer.url}/v1/me/credits`, { headers }));
      }
      expect(counted.calls('findCredentialByHash')).toBe(before);

      // The counter does see lookups: the genuine key is looked up once.
      const ok = await fetch(`${countedServer.url}/v1/me/credits`, { headers: { Authorization: `Bearer ${good}` } });
      expect(ok.status).toBe(200);
      expect(counted.calls('findCredentialByHash')).toBe(before + 1);
    });
  });

  it('a well-formed key that was never issued: 401', async () => {
    await expectUnauthorized(await get('/v1/me/credits', { Authorization: `Bearer ${generateKey().key}` }));
    await expectUnauthorized(await get('/v1/me/credits', { 'X-API-Key': generateKey().key }));
  });

  it('a key revoked with another key of the account is refused on the very next request', async () => {
    const { key, api_credential } = await createKey(server.account.key, { name: 'to be revoked' });
    expect((await server.call('/v1/me/credits', { key })).status).toBe(200);

    const revoke = await server.call(`/v1/me/api-credentials/${api_credential.id}/revoke`, { method: 'POST' });
    expect(revoke.status).toBe(200);

    await expectUnauthorized(await server.call('/v1/me/credits', { key }));
    await expectUnauthorized(await get('/v1/me/credits', { 'X-API-Key': key }));
    // Only that key: the one that revoked it still works.
    expect((await server.call('/v1/me/credits')).status).toBe(200);
  });

  it('a key that revoked itself is refused on the very next request', async () => {
    const { key, api_credential } = await createKey(server.account.key, { name: 'self-revoking' });
    const revoke = await server.call(`/v1/me/api-credentials/${api_credential.id}/revoke`, { method: 'POST', key });
    expect(revoke.status).toBe(200);
    await expectUnauthorized(await server.call('/v1/me/credits', { key }));
  });

  it('an expired key: 401, and listed as inactive', async () => {
    const expiresAt = new Date(clock.now().getTime() + 60_000).toISOString();
    const { key, api_credential } = await createKey(server.account.key, { name: 'short-lived', expires_at: expiresAt });
    expect((await server.call('/v1/me/credits', { key })).status).toBe(200);

    clock.advance(61_000);
    await expectUnauthorized(await server.call('/v1/me/credits', { key }));

    const listed = (await listCredentials(server.account.key)).find((credential) => credential.id === api_credential.id);
    expect(listed).toMatchObject({ is_active: false, expires_at: expiresAt });
  });

  it.each([
    ['Basic credentials', { Authorization: `Basic ${Buffer.from('user:password').toString('base64')}` }],
    ['"Bearer" with nothing after it', { Authorization: 'Bearer' }],
    ['an empty X-API-Key', { 'X-API-Key': '' }],
  ])('%s: 401', async (_name, headers) => {
    await expectUnauthorized(await get('/v1/me/credits', headers));
  });

  it('two valid keys in Authorization and X-API-Key that differ: 401', async () => {
    const { key: other } = await createKey(server.account.key, { name: 'second key' });
    await expectUnauthorized(await get('/v1/me/credits', { Authorization: `Bearer ${server.account.key}`, 'X-API-Key': other }));
  });
});

describe('routes open to anyone', () => {
  it('GET and POST /v1/capabilities need no credential', async () => {
    const viaGet = await get('/v1/capabilities');
    expect(viaGet.status).toBe(200);
    const capabilities = (await viaGet.json()) as { tools: unknown[]; sources: unknown[] };
    expect(Array.isArray(capabilities.tools)).toBe(true);

    const viaPost = await fetch(`${server.url}/v1/capabilities`, jsonInit({}));
    expect(viaPost.status).toBe(200);
    expect(await viaPost.json()).toEqual(capabilities);
  });

  it('GET /healthz needs no credential', async () => {
    const response = await get('/healthz');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it.each([
    ['a malformed key', { Authorization: 'Bearer or_nonsense' }],
    ['an unknown key', { 'X-API-Key': generateKey().key }],
    ['Basic credentials', { Authorization: 'Basic dXNlcjpwYXNz' }],
  ])('a bad credential on /v1/capabilities is ignored (%s)', async (_name, headers) => {
    expect((await get('/v1/capabilities', headers)).status).toBe(200);
    const viaPost = await fetch(`${server.url}/v1/capabilities`, jsonInit({}, { headers }));
    expect(viaPost.status).toBe(200);
  });
});

describe('request ids', () => {
  it('every response carries a distinct X-Request-Id', async () => {
    const responses = await Promise.all([
      get('/v1/me/credits', { Authorization: `Bearer ${server.account.key}` }), // 200
      get('/v1/me/credits'), // 401
      get('/v1/me/usage?limit=abc', { Authorization: `Bearer ${server.account.key}` }), // 400
      get('/v1/nowhere', { Authorization: `Bearer ${server.account.key}` }), // 404
      get('/v1/capabilities'),
      get('/healthz'),
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 401, 400, 404, 200, 200]);
    const ids = responses.map((r) => r.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(SAFE_REQUEST_ID);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each([
    ['a trace id', 'trace-01.abc:XYZ_9'],
    ['128 characters', 'a'.repeat(128)],
  ])('a safe incoming X-Request-Id is echoed (%s), in the header and in a problem body', async (_name, requestId) => {
    const ok = await get('/v1/capabilities', { 'X-Request-Id': requestId });
    expect(ok.headers.get('x-request-id')).toBe(requestId);

    const problem = await expectUnauthorized(await get('/v1/me/credits', { 'X-Request-Id': requestId }));
    expect(problem.request_id).toBe(requestId);
  });

  it.each([
    ['300 characters', 'a'.repeat(300)],
    ['129 characters', 'a'.repeat(129)],
    ['spaces', 'my request id'],
    ['markup', '<script>alert(1)</script>'],
    ['a quote and a semicolon', 'abc";drop'],
  ])('an unsafe incoming X-Request-Id is replaced (%s)', async (_name, requestId) => {
    const response = await get('/v1/me/credits', { 'X-Request-Id': requestId });
    const id = response.headers.get('x-request-id');
    expect(id).not.toBe(requestId);
    expect(id).toMatch(SAFE_REQUEST_ID);
    expect(((await response.json()) as Problem).request_id).toBe(id);
  });
});

describe('the raw key is kept secret', () => {
  /** Log lines are written when a response finishes, which may be just after the client has it. */
  async function logsOf(requestIds: string[]): Promise<string> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const text = server.logs.join('\n');
      if (requestIds.every((id) => text.includes(id)) || Date.now() > deadline) return text;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('never reaches the logs, from Authorization, X-API-Key or a query string', async () => {
    const { key } = await createKey(server.account.key, { name: 'logged?' });
    const responses = [
      await get('/v1/me/credits', { Authorization: `Bearer ${key}` }),
      await get('/v1/me/credits', { 'X-API-Key': key }),
      await get(`/v1/me/credits?api_key=${key}`, { Authorization: `Bearer ${key}` }),
      await get(`/v1/me/credits?api_key=${key}`),
      // A refused key is a secret too (a revoked or mistyped one is often one character away from a live one).
      await get('/v1/me/credits', { Authorization: `Bearer ${withTypo(key)}` }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 400, 401, 401]);

    const requestIds = responses.map((r) => r.headers.get('x-request-id')!);
    const logs = await logsOf(requestIds);
    // Each request was logged, so the absence of the key below means something.
    for (const id of requestIds) expect(logs).toContain(id);
    expect(logs).toContain('/v1/me/credits');
    for (const secret of [key, withTypo(key), server.account.key, key.slice(3)]) expect(logs).not.toContain(secret);
  });

  it('is not in the database, only its hash, even after an idempotent create and its replay', async () => {
    const plain = await createKey(server.account.key, { name: 'plain' });
    const idempotent = await createKey(server.account.key, { name: 'idempotent' }, { 'Idempotency-Key': 'file-check-1' });
    const replayed = await createKey(server.account.key, { name: 'idempotent' }, { 'Idempotency-Key': 'file-check-1' });
    expect(replayed.key).toBe(idempotent.key);

    const bytes = await server.database.dumpText();
    for (const key of [server.account.key, plain.key, idempotent.key]) {
      // Reading the right file, with the rows written: the hash is there.
      expect(bytes.includes(hashKey(key))).toBe(true);
      expect(bytes.includes(key)).toBe(false);
      expect(bytes.includes(key.slice(3))).toBe(false);
    }
  });
});
