// GET /v1/me/usage, and the metering of every authenticated request, against a real server on a real SQLite file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import type { NewAccount } from '../../server/accounts.ts';
import { createIdGenerator } from '../../server/ids.ts';
import { generateKey } from '../../server/keys.ts';
import { TestClock } from '../helpers/clock.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type UsageRecord = components['schemas']['UsageRecord'];
type ApiCredential = components['schemas']['ApiCredential'];
type Problem = components['schemas']['Problem'];

const USAGE_FIELDS = [
  'account_id',
  'auth_source',
  'channel',
  'created_at',
  'credential_id',
  'credits_charged',
  'dataforseo_cost_usd',
  'endpoint',
  'error_message',
  'error_type',
  'id',
  'method',
  'oauth_client_id',
  'request_bytes',
  'request_id',
  'response_bytes',
  'response_time_ms',
  'rpc_method',
  'status_code',
  'tool',
];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const UNKNOWN_CREDENTIAL = 'cred_01KW1WT6F8KK8E8PW71NXT39GC';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

async function listUsage(key: string, query = ''): Promise<{ response: Response; records: UsageRecord[] }> {
  const response = await server.call(`/v1/me/usage${query}`, { key });
  expect(response.status, await response.clone().text()).toBe(200);
  return { response, records: (await response.json()) as UsageRecord[] };
}

/** The newest usage record of the account, read through the API (the listing itself is recorded after it answers). */
async function newestRecord(key: string): Promise<UsageRecord> {
  const { records } = await listUsage(key, '?limit=1');
  expect(records).toHaveLength(1);
  return records[0]!;
}

/**
 * Writes `count` usage records straight through the real store, an hour in the past, so that every request the
 * test makes afterwards is newer than all of them. Returns their ids, oldest first.
 */
async function seedUsage(account: NewAccount, count: number): Promise<string[]> {
  const clock = new TestClock(Date.now() - 3_600_000);
  const ids = createIdGenerator(clock);
  const seeded: string[] = [];
  for (let i = 0; i < count; i++) {
    clock.advance(1000);
    const id = ids('log');
    await server.store.recordUsage({
      id,
      account_id: account.accountId,
      credential_id: account.credentialId,
      auth_source: 'api_key',
      channel: 'api',
      tool: null,
      rpc_method: null,
      request_id: null,
      oauth_client_id: null,
      endpoint: '/v1/me/credits',
      method: 'GET',
      status_code: 200,
      response_time_ms: 1,
      request_bytes: 0,
      response_bytes: 15,
      dataforseo_cost_usd: 0,
      credits_charged: 0,
      error_type: null,
      error_message: null,
      created_at: clock.now().toISOString(),
    });
    seeded.push(id);
  }
  return seeded;
}

async function createKey(key: string, name: string): Promise<{ key: string; api_credential: ApiCredential }> {
  const response = await server.call('/v1/me/api-credentials', jsonInit({ name }, { key }));
  expect(response.status).toBe(201);
  return (await response.json()) as { key: string; api_credential: ApiCredential };
}

describe('metering of authenticated requests', () => {
  it('records a successful request with every seed field', async () => {
    const account = await server.newAccount();
    // Non-ASCII on purpose: request_bytes counts bytes, not characters.
    const body = JSON.stringify({ name: 'Café ✓ key' });
    const started = Date.now();
    const created = await server.call('/v1/me/api-credentials', jsonInit(body, { key: account.key }));
    expect(created.status).toBe(201);
    const createdBytes = (await created.arrayBuffer()).byteLength;
    const listed = await server.call('/v1/me/usage?limit=5', { key: account.key });
    expect(listed.status).toBe(200);
    const listedBytes = (await listed.arrayBuffer()).byteLength;
    const finished = Date.now();

    const { records } = await listUsage(account.key, '?limit=2');
    const [get, post] = records;
    for (const record of [get!, post!]) {
      expect(Object.keys(record).sort()).toEqual(USAGE_FIELDS);
      expect(record.id).toMatch(/^log_[0-9A-HJKMNP-TV-Z]{26}$/);
      expect(record).toMatchObject({
        account_id: account.accountId,
        credential_id: account.credentialId,
        auth_source: 'api_key',
        status_code: expect.any(Number),
        dataforseo_cost_usd: 0,
        credits_charged: 0,
        error_type: null,
        error_message: null,
        channel: 'api',
        tool: null,
        rpc_method: null,
      });
      expect(Number.isInteger(record.response_time_ms)).toBe(true);
      expect(record.response_time_ms).toBeGreaterThanOrEqual(0);
      expect(record.created_at).toMatch(ISO);
      expect(Date.parse(record.created_at)).toBeGreaterThanOrEqual(started - 1);
      expect(Date.parse(record.created_at)).toBeLessThanOrEqual(finished + 1);
    }
    expect(post).toMatchObject({
      endpoint: '/v1/me/api-credentials',
      method: 'POST',
      status_code: 201,
      request_bytes: Buffer.byteLength(body),
      response_bytes: createdBytes,
    });
    // The query string is not part of the endpoint.
    expect(get).toMatchObject({ endpoint: '/v1/me/usage', method: 'GET', status_code: 200, request_bytes: 0, response_bytes: listedBytes });
  });

  it('records a failed request with its problem type and detail', async () => {
    const account = await server.newAccount();

    const revoke = await server.call(`/v1/me/api-credentials/${UNKNOWN_CREDENTIAL}/revoke`, { method: 'POST', key: account.key });
    expect(revoke.status).toBe(404);
    const revokeProblem = (await revoke.json()) as Problem;
    expect(await newestRecord(account.key)).toMatchObject({
      endpoint: `/v1/me/api-credentials/${UNKNOWN_CREDENTIAL}/revoke`,
      method: 'POST',
      status_code: 404,
      error_type: 'not_found',
      error_message: revokeProblem.detail,
      credits_charged: 0,
    });

    const blankName = JSON.stringify({ name: '' });
    const invalid = await server.call('/v1/me/api-credentials', jsonInit(blankName, { key: account.key }));
    expect(invalid.status).toBe(400);
    const invalidProblem = (await invalid.json()) as Problem;
    expect(await newestRecord(account.key)).toMatchObject({
      endpoint: '/v1/me/api-credentials',
      method: 'POST',
      status_code: 400,
      error_type: 'validation_failed',
      error_message: invalidProblem.detail,
      request_bytes: Buffer.byteLength(blankName),
    });

    const unknownPath = await server.call('/v1/me/nothing-here', { key: account.key });
    expect(unknownPath.status).toBe(404);
    expect(await newestRecord(account.key)).toMatchObject({ endpoint: '/v1/me/nothing-here', status_code: 404, error_type: 'not_found' });
  });

  it('records no unauthenticated 401 anywhere', async () => {
    const revoked = await createKey(server.account.key, 'soon revoked');
    const revoke = await server.call(`/v1/me/api-credentials/${revoked.api_credential.id}/revoke`, { method: 'POST' });
    expect(revoke.status).toBe(200);

    // Read the table itself: a 401 has no account, so no listing could show where it went.
    const count = () => server.database.countRows('usage_records');
    const before = await count();
    const refused: Array<Record<string, string>> = [
      {},
      { Authorization: 'Bearer or_abc' },
      { Authorization: `Bearer ${generateKey().key}` },
      { 'X-API-Key': generateKey().key },
      { Authorization: `Bearer ${revoked.key}` },
      { 'X-API-Key': revoked.key },
      { Authorization: 'Basic dXNlcjpwYXNz' },
    ];
    for (const headers of refused) {
      const response = await fetch(`${server.url}/v1/me/credits`, { headers });
      expect(response.status, JSON.stringify(headers)).toBe(401);
    }
    expect(await count()).toBe(before);

    // The counter does see an authenticated request.
    expect((await server.call('/v1/me/credits')).status).toBe(200);
    expect(await count()).toBe(before + 1);
  });

  it('has the record as soon as the response is received', async () => {
    const account = await server.newAccount();
    const probes = ['/v1/me/credits', '/v1/me/api-credentials', `/v1/me/api-credentials/${UNKNOWN_CREDENTIAL}/revoke`];
    for (let i = 0; i < 12; i++) {
      const path = probes[i % probes.length]!;
      const response = await server.call(path, { method: path.endsWith('/revoke') ? 'POST' : 'GET', key: account.key });
      // No sleep, no body read: straight to the store, then to the API.
      const [stored] = await server.store.listUsage(account.accountId, { limit: 1 });
      expect(stored).toMatchObject({ endpoint: path, status_code: response.status });
      expect(await newestRecord(account.key)).toMatchObject({ id: stored!.id, endpoint: path, status_code: response.status });
    }
  });
});

describe('GET /v1/me/usage', () => {
  describe('limit', () => {
    let account: NewAccount;
    let seeded: string[];

    beforeAll(async () => {
      account = await server.newAccount();
      seeded = await seedUsage(account, 520);
    });

    it('defaults to 50, newest first', async () => {
      const { records } = await listUsage(account.key);
      expect(records.map((record) => record.id)).toEqual(seeded.slice(-50).reverse());
    });

    it.each([
      ['0', 1],
      ['-3', 1],
      ['1', 1],
      ['500', 500],
      ['501', 500],
      ['9999', 500],
      // Integers past int32 are still integers: clamped like 9999, not refused.
      ['2147483648', 500],
      ['-2147483649', 1],
    ])('limit=%s gives %i records, newest first', async (limit, expected) => {
      const { records } = await listUsage(account.key, `?limit=${limit}`);
      expect(records).toHaveLength(expected);
      const ids = records.map((record) => record.id);
      expect(ids).toEqual([...ids].sort().reverse());
      expect(new Set(ids).size).toBe(ids.length);
      const times = records.map((record) => Date.parse(record.created_at));
      expect(times).toEqual([...times].sort((a, b) => b - a));
    });

    it.each(['abc', '1.5', '', 'Infinity'])('limit=%s is a 400 problem', async (limit) => {
      const response = await server.call(`/v1/me/usage?limit=${limit}`, { key: account.key });
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await response.json()) as Problem;
      expect(problem).toMatchObject({ status: 400, request_id: response.headers.get('x-request-id') });
      expect(problem.errors).toEqual(expect.arrayContaining([expect.objectContaining({ location: 'query' })]));
    });

    it('refuses an unknown query parameter', async () => {
      const response = await server.call('/v1/me/usage?foo=1', { key: account.key });
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(JSON.stringify(await response.json())).toContain('foo');
    });
  });

  describe('pagination', () => {
    const N = 23;

    it.each([1, 5, 7, 23, 30])(`following Link with limit=%i walks all ${N} records once, newest first`, async (limit) => {
      const account = await server.newAccount();
      const seeded = await seedUsage(account, N);
      const seen: string[] = [];
      const pageSizes: number[] = [];
      let next: string | null = `/v1/me/usage?limit=${limit}`;
      let pages = 0;
      while (next !== null) {
        expect(++pages, 'too many pages').toBeLessThanOrEqual(N + 1);
        const page = await server.call(next, { key: account.key });
        expect(page.status).toBe(200);
        const pageRecords = (await page.json()) as UsageRecord[];
        seen.push(...pageRecords.map((record) => record.id));
        pageSizes.push(pageRecords.length);
        const link = page.headers.get('link');
        if (link === null) {
          next = null;
        } else {
          const match = /^<([^>]+)>; rel="next"$/.exec(link);
          expect(match, link).not.toBeNull();
          // Relative to the server, as a browser or fetch client resolves it.
          const url = new URL(match![1]!, server.url);
          expect(url.origin).toBe(server.url);
          next = url.pathname + url.search;
        }
      }
      expect(seen).toEqual([...seeded].reverse());
      expect(pageSizes).toHaveLength(Math.ceil(N / limit));
      expect(pageSizes.slice(0, -1).every((size) => size === limit)).toBe(true);
    });

    it('starting_after returns the records older than the given one', async () => {
      const account = await server.newAccount();
      const seeded = await seedUsage(account, 10);
      const { records } = await listUsage(account.key, `?starting_after=${seeded[6]}&limit=3`);
      expect(records.map((record) => record.id)).toEqual([seeded[5], seeded[4], seeded[3]]);
    });

    it('refuses a starting_after that is not one of the account\'s records', async () => {
      const account = await server.newAccount();
      const other = await server.newAccount();
      await seedUsage(account, 2);
      const [othersRecord] = await seedUsage(other, 1);
      const unknown = createIdGenerator(new TestClock())('log');
      for (const cursor of [othersRecord!, unknown, 'log_nope']) {
        const response = await server.call(`/v1/me/usage?starting_after=${cursor}`, { key: account.key });
        expect(response.status, cursor).toBe(400);
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(JSON.stringify(await response.json())).not.toContain(other.accountId);
      }
    });
  });

  describe('credential_id filter', () => {
    it('returns only that credential\'s records, across pages', async () => {
      const account = await server.newAccount();
      const second = await createKey(account.key, 'second key');
      for (let i = 0; i < 3; i++) expect((await server.call('/v1/me/credits', { key: second.key })).status).toBe(200);
      for (let i = 0; i < 2; i++) expect((await server.call('/v1/me/credits', { key: account.key })).status).toBe(200);

      const { records: ofSecond } = await listUsage(account.key, `?credential_id=${second.api_credential.id}`);
      expect(ofSecond).toHaveLength(3);
      expect(ofSecond.every((record) => record.credential_id === second.api_credential.id)).toBe(true);

      const { records: ofFirst } = await listUsage(account.key, `?credential_id=${account.credentialId}`);
      expect(ofFirst.length).toBeGreaterThanOrEqual(3);
      expect(ofFirst.every((record) => record.credential_id === account.credentialId)).toBe(true);

      // The next page keeps the filter.
      const first = await server.call(`/v1/me/usage?credential_id=${second.api_credential.id}&limit=2`, { key: account.key });
      const link = /^<([^>]+)>; rel="next"$/.exec(first.headers.get('link') ?? '');
      expect(link).not.toBeNull();
      const rest = await server.call(link![1]!, { key: account.key });
      const restRecords = (await rest.json()) as UsageRecord[];
      expect(restRecords).toHaveLength(1);
      expect(restRecords[0]!.credential_id).toBe(second.api_credential.id);
      expect(rest.headers.get('link')).toBeNull();
    });

    it('gives nothing for another account\'s credential', async () => {
      const account = await server.newAccount();
      const other = await server.newAccount();
      expect((await server.call('/v1/me/credits', { key: other.key })).status).toBe(200);
      const { records } = await listUsage(account.key, `?credential_id=${other.credentialId}`);
      expect(records).toEqual([]);
    });
  });

  describe('channel filter', () => {
    it('tells MCP requests from API calls, across pages', async () => {
      const account = await server.newAccount();
      const notification = { jsonrpc: '2.0', method: 'notifications/initialized' };
      const mcpHeaders = { Accept: 'application/json, text/event-stream' };
      for (let i = 0; i < 3; i++) {
        expect((await server.call('/mcp', jsonInit(notification, { key: account.key, headers: mcpHeaders }))).status).toBe(202);
      }
      for (let i = 0; i < 2; i++) expect((await server.call('/v1/me/credits', { key: account.key })).status).toBe(200);

      const { records: viaMcp } = await listUsage(account.key, '?channel=mcp');
      expect(viaMcp).toHaveLength(3);
      expect(viaMcp.every((record) => record.channel === 'mcp' && record.endpoint === '/mcp' && record.status_code === 202)).toBe(true);
      const { records: viaApi } = await listUsage(account.key, '?channel=api');
      expect(viaApi.length).toBeGreaterThanOrEqual(3); // the two reads and the MCP listing above
      expect(viaApi.every((record) => record.channel === 'api' && record.endpoint !== '/mcp')).toBe(true);

      // The next page keeps the filter.
      const first = await server.call('/v1/me/usage?channel=mcp&limit=2', { key: account.key });
      const link = /^<([^>]+)>; rel="next"$/.exec(first.headers.get('link') ?? '');
      expect(link![1]).toContain('channel=mcp');
      const rest = (await (await server.call(link![1]!, { key: account.key })).json()) as UsageRecord[];
      expect(rest.map((record) => record.id)).toEqual([viaMcp[2]!.id]);
    });

    it('refuses a channel that is not api or mcp', async () => {
      const response = await server.call('/v1/me/usage?channel=email');
      expect(response.status).toBe(400);
      expect(((await response.json()) as { errors: Array<{ pointer: string }> }).errors).toContainEqual(
        expect.objectContaining({ location: 'query', pointer: '/channel' }),
      );
    });
  });

  it('never shows another account\'s records', async () => {
    const mine = await server.newAccount();
    const theirs = await server.newAccount();
    for (let i = 0; i < 3; i++) expect((await server.call('/v1/me/credits', { key: theirs.key })).status).toBe(200);
    const theirIds = (await server.store.listUsage(theirs.accountId, { limit: 100 })).map((record) => record.id);
    expect(theirIds).toHaveLength(3);
    expect((await server.call('/v1/me/credits', { key: mine.key })).status).toBe(200);

    const { records } = await listUsage(mine.key, '?limit=500');
    expect(records).toHaveLength(1);
    expect(records.every((record) => record.account_id === mine.accountId)).toBe(true);
    expect(records.some((record) => theirIds.includes(record.id))).toBe(false);
  });
});

describe('last_used_at', () => {
  it('is null until the key is used, then written at most once a minute', async () => {
    const clock = new TestClock();
    const timed = await startTestServer({ clock });
    try {
      // A second key, watched through the first, so that looking does not itself use the watched key.
      const response = await timed.call('/v1/me/api-credentials', jsonInit({ name: 'watched' }));
      const watched = (await response.json()) as { key: string; api_credential: ApiCredential };
      const lastUsed = async () => {
        const list = await timed.call('/v1/me/api-credentials');
        const credentials = (await list.json()) as ApiCredential[];
        return credentials.find((credential) => credential.id === watched.api_credential.id)!.last_used_at;
      };
      const use = async () => expect((await timed.call('/v1/me/credits', { key: watched.key })).status).toBe(200);

      expect(await lastUsed()).toBeNull();

      const firstUse = clock.now().toISOString();
      await use();
      expect(await lastUsed()).toBe(firstUse);

      clock.advance(10_000);
      await use();
      expect(await lastUsed()).toBe(firstUse);

      clock.advance(51_000);
      const laterUse = clock.now().toISOString();
      await use();
      expect(await lastUsed()).toBe(laterUse);
    } finally {
      await timed.close();
    }
  });
});

describe('credits', () => {
  it('a new account has 500 credits, and grants add to them; the ledger always sums to the balance', async () => {
    const account = await server.newAccount();
    const balance = async () => {
      const response = await server.call('/v1/me/credits', { key: account.key });
      expect(response.status).toBe(200);
      return ((await response.json()) as { balance: number }).balance;
    };
    expect(await balance()).toBe(500);
    expect(await server.store.sumLedger(account.accountId)).toBe(500);

    const ids = createIdGenerator(server.clock);
    const after = await server.store.grantCredits({
      ledgerId: ids('led'), eventId: ids('evt'),
      accountId: account.accountId,
      amount: 25,
      note: 'test grant',
      createdAt: new Date().toISOString(),
    });
    expect(after).toBe(525);
    expect(await balance()).toBe(525);
    expect(await server.store.sumLedger(account.accountId)).toBe(525);

    // Plain requests are metered, not charged.
    for (let i = 0; i < 3; i++) await server.call('/v1/me/api-credentials', { key: account.key });
    expect(await balance()).toBe(525);
    expect(await server.store.sumLedger(account.accountId)).toBe(await server.store.getBalance(account.accountId));
  });

  it('an account made with no credits has a balance of 0 and an empty ledger', async () => {
    const account = await server.newAccount(0);
    const response = await server.call('/v1/me/credits', { key: account.key });
    expect(await response.json()).toEqual({ balance: 0 });
    expect(await server.store.sumLedger(account.accountId)).toBe(0);
  });
});
