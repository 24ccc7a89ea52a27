// GET /v1/me, the credit ledger (GET /v1/me/credits/ledger) and the calling key's own view (GET /v1/me/api-key and
// the free tool get_key_status, over HTTP and MCP), against a real server on the test store (a SQLite file, or
// PostgreSQL with OPENRUSH_TEST_STORE=postgres).
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import type { NewAccount } from '../../server/accounts.ts';
import { systemClock } from '../../server/clock.ts';
import { createIdGenerator } from '../../server/ids.ts';
import { budgetPeriodOf } from '../../server/permissions.ts';
import { apiKeysOf, expectProblem, expectValidationError } from '../helpers/api-keys.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type Account = components['schemas']['Account'];
type LedgerEntry = components['schemas']['LedgerEntry'];
type KeyStatus = components['schemas']['KeyStatus'];
type UsageRecord = components['schemas']['UsageRecord'];
type Capabilities = components['schemas']['Capabilities'];

const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const INSPECT = '/v1/tools/inspect_domain';
const KEY_STATUS = '/v1/tools/get_key_status';
const MCP_ACCEPT = 'application/json, text/event-stream';
const ids = createIdGenerator(systemClock);

let server: TestServer;
let api: ReturnType<typeof apiKeysOf>;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startTestServer({
    config: {
      session: { jwksUrl: undefined, jwksFile: undefined, jwtSecret: SECRET, issuer: undefined, autoprovision: true },
      authFailuresPerMinute: 100_000,
    },
  });
  api = apiKeysOf(server);
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await server?.close();
});

/** A Supabase user access token for a new person, expiring at `exp` (seconds). */
function sessionToken(exp = Math.floor(Date.now() / 1000) + 3600): Promise<string> {
  return new SignJWT({ sub: randomUUID(), aud: 'authenticated', role: 'authenticated', email: 'ada@example.com', exp })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(SECRET));
}

async function json<T>(response: Response, status = 200): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function balanceOf(key: string): Promise<number> {
  return (await json<{ balance: number }>(await server.call('/v1/me/credits', { key }))).balance;
}

/** Every ledger entry, walking the Link headers from the first page of `limit` entries. */
async function wholeLedger(key: string, limit: number): Promise<LedgerEntry[]> {
  const entries: LedgerEntry[] = [];
  let path: string | undefined = `/v1/me/credits/ledger?limit=${limit}`;
  for (let pages = 0; path; pages++) {
    expect(pages).toBeLessThan(1000);
    const response = await server.call(path, { key });
    const page = await json<LedgerEntry[]>(response);
    expect(page.length).toBeLessThanOrEqual(limit);
    entries.push(...page);
    path = /^<([^>]+)>; rel="next"$/.exec(response.headers.get('link') ?? '')?.[1];
    if (path) expect(page).toHaveLength(limit);
  }
  return entries;
}

async function usageOf(key: string): Promise<UsageRecord[]> {
  const records: UsageRecord[] = [];
  let path: string | undefined = '/v1/me/usage?limit=500';
  while (path) {
    const response = await server.call(path, { key });
    records.push(...(await json<UsageRecord[]>(response)));
    path = /^<([^>]+)>; rel="next"$/.exec(response.headers.get('link') ?? '')?.[1];
  }
  return records;
}

/** A paid HTTP call with its own X-Request-Id; returns that id once answered 200. */
async function inspectOverHttp(key: string): Promise<string> {
  const requestId = `test-${randomUUID()}`;
  const response = await server.call(INSPECT, jsonInit({ domain: 'www.example.co.uk' }, { key, headers: { 'X-Request-Id': requestId } }));
  expect(response.status, await response.text()).toBe(200);
  expect(response.headers.get('x-request-id')).toBe(requestId);
  return requestId;
}

/** A paid call over MCP (tools/call); returns the request id the server gave it. */
async function inspectOverMcp(key: string): Promise<string> {
  const response = await server.call(
    '/mcp',
    jsonInit(
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'inspect_domain', arguments: { domain: 'example.org' } } },
      { key, headers: { Accept: MCP_ACCEPT } },
    ),
  );
  const body = await json<{ result: CallToolResult }>(response);
  expect(body.result.isError).toBeFalsy();
  return response.headers.get('x-request-id')!;
}

async function grant(account: NewAccount, amount: number): Promise<void> {
  await server.store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId: account.accountId, amount, note: 'granted by test', createdAt: new Date().toISOString() });
}

async function connect(key: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } });
  const client = new Client({ name: 'openrush-test-agent', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

describe('GET /v1/me', () => {
  it('with an API key: the account, and that the request was made with that key', async () => {
    const account = await server.newAccount(0);
    const response = await server.call('/v1/me', { key: account.key });
    const me = await json<Account>(response);
    const stored = await server.store.getAccount(account.accountId);
    expect(me).toEqual({
      id: account.accountId,
      name: stored!.name,
      created_at: stored!.created_at,
      auth_source: 'api_key',
      credential_id: account.credentialId,
      sign_in_method: 'api_key',
      session_expires_at: null,
    });
  });

  it('any key may read it, a read-only or restricted one too', async () => {
    const account = await server.newAccount(0);
    for (const body of [{ name: 'read-only', permission_mode: 2 as const }, { name: 'nothing', permission_mode: 3 as const, access: {} }]) {
      const made = await api.created(account.key, body);
      const me = await json<Account>(await server.call('/v1/me', { key: made.api_key }));
      expect(me).toMatchObject({ id: account.accountId, auth_source: 'api_key', credential_id: made.api_key_id });
    }
  });

  it('with a Supabase session token: a session, signed in with Supabase, ending when the token expires', async () => {
    const exp = Math.floor(Date.now() / 1000) + 1800;
    const token = await sessionToken(exp);
    const me = await json<Account>(await server.call('/v1/me', { key: token }));
    expect(me).toMatchObject({
      id: expect.stringMatching(/^acct_/),
      name: 'ada@example.com',
      auth_source: 'session',
      credential_id: null,
      sign_in_method: 'supabase',
      session_expires_at: new Date(exp * 1000).toISOString(),
    });
    // The same account as every other request of that session sees.
    const usage = await json<UsageRecord[]>(await server.call('/v1/me/usage?limit=1', { key: token }));
    expect(usage[0]).toMatchObject({ account_id: me.id, auth_source: 'session', endpoint: '/v1/me' });
  });

  it('without a credential: 401', async () => {
    await expectProblem(await server.call('/v1/me', { key: null }), 401);
  });
});

describe('the credit ledger', () => {
  it('after grants and charged calls over HTTP and MCP, concurrent ones too: sums to the balance, each balance_after the running sum, each charge its usage record and request id', async () => {
    const account = await server.newAccount(100);
    const requestIds: string[] = [];
    await grant(account, 20);
    for (let i = 0; i < 3; i++) requestIds.push(await inspectOverHttp(account.key));
    for (let i = 0; i < 2; i++) requestIds.push(await inspectOverMcp(account.key));
    // Concurrent charges (both ways in) and grants: the ledger's order must still be the order they were applied in.
    const concurrent = await Promise.all([
      ...Array.from({ length: 8 }, () => inspectOverHttp(account.key)),
      ...Array.from({ length: 4 }, () => inspectOverMcp(account.key)),
      ...Array.from({ length: 3 }, () => grant(account, 7).then(() => undefined)),
    ]);
    requestIds.push(...concurrent.filter((id): id is string => id !== undefined));
    // A refused call (a 400) charges nothing and has no ledger entry.
    expect((await server.call(INSPECT, jsonInit({ domain: '' }, { key: account.key }))).status).toBe(400);

    const ledger = await wholeLedger(account.key, 4);
    const balance = await balanceOf(account.key);
    expect(balance).toBe(100 + 20 + 21 - 3 * 17);
    expect(new Set(ledger.map((entry) => entry.id)).size).toBe(ledger.length);
    expect(ledger.filter((entry) => entry.kind === 'grant').map((entry) => entry.amount).sort()).toEqual([100, 20, 7, 7, 7].sort());
    expect(ledger.filter((entry) => entry.kind === 'charge')).toHaveLength(17);
    expect(ledger.reduce((sum, entry) => sum + entry.amount, 0)).toBe(balance);
    // Newest first: the first entry leaves the balance as it is now, and walking from the oldest, each entry's
    // balance_after is the running sum.
    expect(ledger[0]!.balance_after).toBe(balance);
    let running = 0;
    for (const entry of [...ledger].reverse()) {
      running += entry.amount;
      expect(entry.balance_after, JSON.stringify(entry)).toBe(running);
    }

    const records = new Map((await usageOf(account.key)).map((record) => [record.id, record]));
    const charged = new Set<string>();
    for (const entry of ledger) {
      if (entry.kind === 'grant') {
        expect(entry).toMatchObject({ usage_id: null, request_id: null });
        expect(entry.amount).toBeGreaterThan(0);
        continue;
      }
      expect(entry).toMatchObject({ amount: -3, note: null });
      const record = records.get(entry.usage_id!);
      expect(record, `usage record ${entry.usage_id}`).toBeDefined();
      expect(record).toMatchObject({ credits_charged: 3, status_code: 200, request_id: entry.request_id, tool: 'inspect_domain', created_at: entry.created_at });
      charged.add(entry.request_id!);
    }
    expect([...charged].sort()).toEqual([...requestIds].sort());
    // Every usage record (not only the charged ones) keeps its request's id.
    for (const record of records.values()) expect(record.request_id).toEqual(expect.any(String));
  });

  it('is paged like usage: limit clamped, a Link to the next page, starting_after another account\'s or an unknown entry is a 400', async () => {
    const account = await server.newAccount(10);
    for (let i = 0; i < 4; i++) await grant(account, 1);
    const all = await json<LedgerEntry[]>(await server.call('/v1/me/credits/ledger?limit=9999', { key: account.key }));
    expect(all.map((entry) => entry.amount)).toEqual([1, 1, 1, 1, 10]);
    expect(all.map((entry) => entry.balance_after)).toEqual([14, 13, 12, 11, 10]);
    const one = await server.call('/v1/me/credits/ledger?limit=0', { key: account.key });
    expect(await json<LedgerEntry[]>(one)).toEqual(all.slice(0, 1));
    expect(one.headers.get('link')).toBe(`</v1/me/credits/ledger?limit=1&starting_after=${all[0]!.id}>; rel="next"`);
    const rest = await server.call(`/v1/me/credits/ledger?limit=3&starting_after=${all[1]!.id}`, { key: account.key });
    expect(await json<LedgerEntry[]>(rest)).toEqual(all.slice(2));
    expect(rest.headers.get('link')).toBeNull();
    expect(await wholeLedger(account.key, 2)).toEqual(all);

    const other = await server.newAccount(5);
    const [foreign] = await json<LedgerEntry[]>(await server.call('/v1/me/credits/ledger', { key: other.key }));
    await expectValidationError(await server.call(`/v1/me/credits/ledger?starting_after=${foreign!.id}`, { key: account.key }), 'query', '/starting_after');
    await expectValidationError(await server.call(`/v1/me/credits/ledger?starting_after=${ids('led')}`, { key: account.key }), 'query', '/starting_after');
    await expectValidationError(await server.call('/v1/me/credits/ledger?starting_after=log_1', { key: account.key }), 'query', '/starting_after');
  });

  it('a key without credits: read is refused (403)', async () => {
    const made = await api.created(server.account.key, { name: 'no credits', permission_mode: 3, access: { usage: 'read' } });
    await expectProblem(await server.call('/v1/me/credits/ledger', { key: made.api_key }), 403);
  });
});

describe("the calling key's own view", () => {
  it('budget spent and left this period, when it resets, and requests left in the window, without using an extra request', async () => {
    const account = await server.newAccount(100);
    const made = await api.created(account.key, {
      name: 'agent',
      constraints: { budget: { period: 1, amount: 10 }, rate_limit: { requests_per_minute: 20 } },
    });
    await inspectOverHttp(made.api_key);
    await inspectOverHttp(made.api_key);
    const before = Date.now();
    const response = await server.call('/v1/me/api-key', { key: made.api_key });
    const status = await json<KeyStatus>(response);
    const today = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()));
    expect(status).toMatchObject({
      api_key_id: made.api_key_id,
      name: 'agent',
      token_prefix: made.token_prefix,
      status: 1,
      project_scope: { all: {} },
      permission_mode: 1,
      access: {},
      expires_at: null,
      budget: {
        period: 1,
        amount: 10,
        spent: 6,
        remaining: 4,
        period_start: today.toISOString(),
        resets_at: new Date(today.getTime() + 86_400_000).toISOString(),
      },
      rate_limit: { requests_per_minute: 20, remaining: 17 },
    });
    // The window resets within the minute, and the RateLimit header of the same answer says the same count.
    const resets = Date.parse(status.rate_limit!.resets_at);
    expect(resets).toBeGreaterThan(before);
    expect(resets).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(response.headers.get('ratelimit')).toMatch(/^"per-key";r=17;t=\d+$/);
    // Each look costs exactly the one request it is.
    const again = await json<KeyStatus>(await server.call('/v1/me/api-key', { key: made.api_key }));
    expect(again.rate_limit!.remaining).toBe(16);
    expect(again.budget!.spent).toBe(6);
  });

  it('a key without a budget or rate limit shows null for both', async () => {
    const account = await server.newAccount(0);
    const status = await json<KeyStatus>(await server.call('/v1/me/api-key', { key: account.key }));
    expect(status).toMatchObject({ api_key_id: account.credentialId, budget: null, rate_limit: null });
  });

  it('budget periods reset at the next UTC day, Monday and first of the month', () => {
    const sunday = new Date('2026-03-01T22:30:00.000Z');
    expect(budgetPeriodOf(1, sunday)).toEqual({ start: new Date('2026-03-01T00:00:00.000Z'), end: new Date('2026-03-02T00:00:00.000Z') });
    expect(budgetPeriodOf(2, sunday)).toEqual({ start: new Date('2026-02-23T00:00:00.000Z'), end: new Date('2026-03-02T00:00:00.000Z') });
    expect(budgetPeriodOf(3, new Date('2026-12-31T23:59:59.999Z'))).toEqual({
      start: new Date('2026-12-01T00:00:00.000Z'),
      end: new Date('2027-01-01T00:00:00.000Z'),
    });
  });

  it('any key may read itself, read-only and restricted ones included, with GET and with the free tool', async () => {
    const account = await server.newAccount(0);
    for (const body of [{ name: 'read-only', permission_mode: 2 as const }, { name: 'nothing', permission_mode: 3 as const, access: {} }]) {
      const made = await api.created(account.key, body);
      const viaGet = await json<KeyStatus>(await server.call('/v1/me/api-key', { key: made.api_key }));
      const viaTool = await json<KeyStatus>(await server.call(KEY_STATUS, jsonInit({}, { key: made.api_key })));
      expect(viaGet).toMatchObject({ api_key_id: made.api_key_id, permission_mode: body.permission_mode });
      expect(viaTool).toEqual(viaGet);
      // A priced tool still needs tools: use.
      await expectProblem(await server.call(INSPECT, jsonInit({ domain: 'example.com' }, { key: made.api_key })), 403);
    }
  });

  it('get_key_status costs nothing: no charge, no ledger entry, a usage record naming the tool', async () => {
    const account = await server.newAccount(0);
    const requestId = `test-${randomUUID()}`;
    const response = await server.call(KEY_STATUS, jsonInit({}, { key: account.key, headers: { 'X-Request-Id': requestId } }));
    expect((await json<KeyStatus>(response)).api_key_id).toBe(account.credentialId);
    expect(await balanceOf(account.key)).toBe(0);
    expect(await json<LedgerEntry[]>(await server.call('/v1/me/credits/ledger', { key: account.key }))).toEqual([]);
    const record = (await usageOf(account.key)).find((r) => r.request_id === requestId);
    expect(record).toMatchObject({ endpoint: KEY_STATUS, method: 'POST', status_code: 200, tool: 'get_key_status', credits_charged: 0, channel: 'api' });
    // Its arguments are {}: anything else is refused like any tool's invalid input.
    await expectValidationError(await server.call(KEY_STATUS, jsonInit({ verbose: true }, { key: account.key })), 'body', '/verbose');
    // The body is required: an empty one is not read as {}.
    await expectValidationError(await server.call(KEY_STATUS, jsonInit('', { key: account.key })), 'body', '');
  });

  it('a Dashboard session has no key: 404 from GET and from the tool over HTTP; on MCP a session token is refused (401)', async () => {
    const token = await sessionToken();
    const get = await expectProblem(await server.call('/v1/me/api-key', { key: token }), 404);
    expect(get).toMatchObject({ type: expect.stringContaining('not_found'), detail: expect.stringContaining('Dashboard session') });
    const tool = await expectProblem(await server.call(KEY_STATUS, jsonInit({}, { key: token })), 404);
    expect(tool.detail).toBe(get.detail);
    // Issue 17: a session token's audience is the Dashboard, not /mcp (RFC 8707): /mcp refuses it before any tool.
    await expect(connect(token)).rejects.toThrow(/401/);
  });

  it('over MCP: listed at 0 credits with its output schema, and a call answers what GET /v1/me/api-key answers', async () => {
    const account = await server.newAccount(30);
    const made = await api.created(account.key, { name: 'mcp agent', constraints: { budget: { period: 3, amount: 25 } } });
    await inspectOverHttp(made.api_key);
    const client = await connect(made.api_key);
    const { tools } = await client.listTools();
    const listed = tools.find((tool) => tool.name === 'get_key_status');
    expect(listed).toMatchObject({ _meta: { 'openrush.io/credits_per_call': 0, 'openrush.io/source': 'openrush_account' } });
    expect(listed!.outputSchema).toMatchObject({ type: 'object', required: expect.arrayContaining(['api_key_id', 'budget', 'rate_limit']) });
    const result = (await client.callTool({ name: 'get_key_status', arguments: {} })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    const viaGet = await json<KeyStatus>(await server.call('/v1/me/api-key', { key: made.api_key }));
    expect(result.structuredContent).toEqual(viaGet);
    expect(JSON.parse((result.content[0] as { text: string }).text)).toEqual(viaGet);
    expect(viaGet.budget).toMatchObject({ period: 3, amount: 25, spent: 3, remaining: 22 });
    expect(await balanceOf(made.api_key)).toBe(27);
    const record = (await usageOf(made.api_key)).find((r) => r.channel === 'mcp' && r.rpc_method === 'tools/call');
    expect(record).toMatchObject({ tool: 'get_key_status', credits_charged: 0, status_code: 200 });
  });

  it('capabilities list it at 0 credits, from the openrush_account source', async () => {
    const capabilities = await json<Capabilities>(await fetch(`${server.url}/v1/capabilities`));
    expect(capabilities.tools.find((tool) => tool.name === 'get_key_status')).toMatchObject({
      credits_per_call: 0,
      source: 'openrush_account',
      method: 'POST',
      path: KEY_STATUS,
    });
    expect(capabilities.sources).toContainEqual({ id: 'openrush_account', name: 'OpenRush account', enabled: true });
  });
});
