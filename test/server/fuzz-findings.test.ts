// What the fuzz suite (test/fuzz/) found answered wrongly, each pinned by a plain test.
// - U+0000 (NUL) in any text is a 400 on every store: PostgreSQL cannot store NUL in text, so a name "a\u0000b" was
//   a 500 there (and stored as sent on SQLite).
// - Integer query parameters that Number() turns into Infinity are a 400, not a 500.
// - The JSON-RPC method of an MCP message is recorded in usage as the client sent it: "a\u0000b" made the record
//   unstorable on PostgreSQL (a 503 for every such message). Request text a record keeps is cleaned and bounded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../helpers/api-keys.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('NUL in text', () => {
  it.each([
    ['/v1/me/api-credentials', '{"name":"a\\u0000b"}', '/name'],
    ['/v2/api-keys', '{"name":"\\u0000"}', '/name'],
    ['/v2/api-keys', '{"name":"ok","owner":{"user":{"user_id":"u\\u0000"}}}', '/owner/user/user_id'],
    ['/v1/tools/inspect_domain', '{"domain":"example.com\\u0000"}', '/domain'],
  ])('POST %s with %s is a 400 naming the field, and nothing is created or charged', async (path, body, pointer) => {
    const ids = async () => ((await (await server.call('/v2/api-keys?limit=200')).json()) as { data: Array<{ api_key_id: string }> }).data.map((key) => key.api_key_id);
    const before = await ids();
    const balance = await (await server.call('/v1/me/credits')).json();
    const problem = await expectProblem(await server.call(path, jsonInit(body)), 400);
    expect(problem.errors).toContainEqual(expect.objectContaining({ location: 'body', pointer }));
    expect(await ids()).toEqual(before);
    expect(await (await server.call('/v1/me/credits')).json()).toEqual(balance);
  });

  it('PATCH a name with NUL is a 400 and the name stays', async () => {
    const created = (await (await server.call('/v2/api-keys', jsonInit({ name: 'before' }))).json()) as { api_key_id: string };
    await expectProblem(await server.call(`/v2/api-keys/${created.api_key_id}`, jsonInit('{"name":"a\\u0000b"}', { method: 'PATCH' })), 400);
    const key = (await (await server.call(`/v2/api-keys/${created.api_key_id}`)).json()) as { name: string };
    expect(key.name).toBe('before');
  });

  it.each(['/v2/api-keys?project_id=proj%00', '/v2/api-keys/cred_%00', '/v1/me/%00'])('GET %s is a 4xx problem, not a 500', async (path) => {
    const response = await server.call(path);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('a name with other control characters still works and reads back the same', async () => {
    const response = await server.call('/v1/me/api-credentials', jsonInit({ name: 'tab\there\u0001' }));
    expect(response.status).toBe(201);
    expect(((await response.json()) as { api_credential: { name: string } }).api_credential.name).toBe('tab\there\u0001');
  });
});

describe('integer query parameters too long for a number', () => {
  // Found by the fuzz suite: 400 nines are digits, Number() makes them Infinity, and the validator's maximum let that
  // through: /v2/api-keys answered 500 and /v1/me/usage clamped it to 500 records.
  it.each(['/v2/api-keys', '/v1/me/usage'])('GET %s?limit=<400 nines> (and its negative) is a 400', async (path) => {
    for (const value of ['9'.repeat(400), `-${'9'.repeat(400)}`, '9007199254740993']) {
      const problem = await expectProblem(await server.call(`${path}?limit=${value}`), 400);
      expect(problem.errors).toContainEqual(expect.objectContaining({ location: 'query', pointer: '/limit' }));
    }
    expect((await server.call(`${path}?limit=20`)).status).toBe(200);
  });
});

describe('request text that a usage record keeps', () => {
  const mcp = (body: string) =>
    server.call('/mcp', jsonInit(body, { headers: { Accept: 'application/json, text/event-stream' } }));
  const newest = async () =>
    ((await (await server.call('/v1/me/usage?limit=1&channel=mcp')).json()) as Array<{ rpc_method: string | null; error_message: string | null }>)[0]!;

  it.each([
    ['a NUL', '"a\\u0000b"', 'a\uFFFDb'],
    ['a control character', '"tools/\\u0007list"', 'tools/\uFFFDlist'],
    ['a key', '"or_abcdefghijklmnopqrstuvwxyz0123456789AB"', '[REDACTED]'],
  ])('an MCP method holding %s is answered (not a 5xx) and recorded cleaned', async (_what, method, recorded) => {
    const response = await mcp(`{"jsonrpc":"2.0","id":1,"method":${method}}`);
    expect(response.status).toBeLessThan(500);
    expect((await newest()).rpc_method).toBe(recorded);
  });

  it('an over-long MCP method is recorded within the contract\'s bound, well-formed', async () => {
    const method = `${'ab/'.repeat(42)}a\u{1F600}${'x/'.repeat(250)}`; // the emoji straddles the 128th unit
    const response = await mcp(JSON.stringify({ jsonrpc: '2.0', id: 1, method }));
    expect(response.status).toBeLessThan(500);
    const { rpc_method } = await newest();
    expect(rpc_method).toBe(`${'ab/'.repeat(42)}a\uFFFD`);
  });
});
