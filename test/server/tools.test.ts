// Metered tools against a real server on a real SQLite file: what inspect_domain answers, what a call costs
// (charged with its usage record, refused with 402 when short, never below zero under concurrency), the
// capabilities list derived from the contract, and a tool registered by an embedder.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import type { ContractOperation } from '../../server/contract.ts';
import type { ToolDefinition } from '../../server/tools/index.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type DomainInspection = components['schemas']['DomainInspection'];
type Capabilities = components['schemas']['Capabilities'];
type UsageRecord = components['schemas']['UsageRecord'];
type Problem = components['schemas']['Problem'];

const INSPECT = '/v1/tools/inspect_domain';
// The price is declared once, in the contract; the tests read it from there rather than repeating it.
const bundled = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'));
const PRICE: number = bundled.paths[INSPECT].post['x-openrush-credits'];

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

function inspect(domain: unknown, key?: string): Promise<Response> {
  return server.call(INSPECT, jsonInit(typeof domain === 'string' ? { domain } : domain, key ? { key } : {}));
}

async function balanceOf(key: string): Promise<number> {
  const response = await server.call('/v1/me/credits', { key });
  expect(response.status).toBe(200);
  return ((await response.json()) as { balance: number }).balance;
}

async function usageOf(key: string, limit = 500): Promise<UsageRecord[]> {
  const response = await server.call(`/v1/me/usage?limit=${limit}`, { key });
  expect(response.status).toBe(200);
  return (await response.json()) as UsageRecord[];
}

async function expectProblem(response: Response, status: number, type: string): Promise<Problem> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(text) as Problem;
  expect(problem).toMatchObject({ status, type: expect.stringMatching(new RegExp(`/${type}$`)) });
  return problem;
}

describe('inspect_domain answers', () => {
  it('the contract prices it at a whole number of credits', () => {
    expect(Number.isInteger(PRICE)).toBe(true);
    expect(PRICE).toBeGreaterThan(0);
  });

  it.each<[string, string, Partial<DomainInspection>]>([
    [
      'a URL with port, path, query and fragment: only its host counts, lower-cased',
      'https://Blog.Example.co.uk:8443/posts/1?x=1#top',
      {
        hostname: 'blog.example.co.uk',
        ascii: 'blog.example.co.uk',
        unicode: 'blog.example.co.uk',
        is_ip: false,
        domain: 'example.co.uk',
        domain_without_suffix: 'example',
        public_suffix: 'co.uk',
        subdomain: 'blog',
        suffix_type: 'icann',
      },
    ],
    [
      'a Unicode IDN gets its punycode form',
      'münchen.de',
      {
        hostname: 'xn--mnchen-3ya.de',
        ascii: 'xn--mnchen-3ya.de',
        unicode: 'münchen.de',
        domain: 'xn--mnchen-3ya.de',
        public_suffix: 'de',
        subdomain: null,
        suffix_type: 'icann',
      },
    ],
    [
      'a punycode IDN gets its Unicode form',
      'xn--mnchen-3ya.de',
      { hostname: 'xn--mnchen-3ya.de', ascii: 'xn--mnchen-3ya.de', unicode: 'münchen.de', domain: 'xn--mnchen-3ya.de' },
    ],
    [
      'an upper-case IDN inside a URL',
      'http://MÜNCHEN.de/Straße',
      { hostname: 'xn--mnchen-3ya.de', unicode: 'münchen.de', public_suffix: 'de' },
    ],
    [
      'a private suffix (github.io) is the public suffix, and reported as private',
      'a.b.github.io',
      {
        hostname: 'a.b.github.io',
        domain: 'b.github.io',
        domain_without_suffix: 'b',
        public_suffix: 'github.io',
        subdomain: 'a',
        suffix_type: 'private',
      },
    ],
    [
      'a bare public suffix has no registrable domain',
      'co.uk',
      { hostname: 'co.uk', domain: null, domain_without_suffix: null, public_suffix: 'co.uk', subdomain: null, suffix_type: 'icann' },
    ],
    [
      'a suffix the list does not know is unlisted, not guessed',
      'localhost',
      { hostname: 'localhost', is_ip: false, domain: null, suffix_type: 'unlisted' },
    ],
    [
      'a trailing dot (fully qualified name) is dropped',
      'example.com.',
      { hostname: 'example.com', domain: 'example.com', public_suffix: 'com', subdomain: null },
    ],
  ])('%s', async (_name, domain, expected) => {
    const response = await inspect(domain);
    expect(response.status, await response.clone().text()).toBe(200);
    expect(await response.json()).toMatchObject({ input: domain, ...expected });
  });

  it.each([
    ['an IPv4 address', '192.168.0.1', '192.168.0.1'],
    ['an IPv4 URL with port', 'http://192.168.0.1:8080/status', '192.168.0.1'],
    ['a bracketed IPv6 address', '[2001:db8::1]', '2001:db8::1'],
    ['an IPv6 URL with port', 'http://[::1]:8080/x', '::1'],
    // The way an IPv6 address is usually written and pasted: without brackets.
    ['a bare IPv6 address', '2001:db8::1', '2001:db8::1'],
  ])('%s is an IP, with no domain fields', async (_name, domain, host) => {
    const response = await inspect(domain);
    expect(response.status, await response.clone().text()).toBe(200);
    expect(await response.json()).toEqual({
      input: domain,
      hostname: host,
      ascii: host,
      unicode: host,
      is_ip: true,
      domain: null,
      domain_without_suffix: null,
      public_suffix: null,
      subdomain: null,
      suffix_type: null,
    });
  });

  it.each([
    ['words with spaces', 'not a domain'],
    ['only blanks', '   '],
    ['a scheme with no host', 'https://'],
    ['an empty label', 'ex..com'],
    ['a label starting with a hyphen', '-bad-.com'],
    ['an out-of-range IPv4 address', '999.999.999.999'],
    ['an invalid port', 'https://example.com:99999'],
    // DNS names are at most 253 characters: one longer is not a host name (and does not fit the response schema).
    ['a 254-character host name', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(58)}.com`],
  ])('%s is a 400 problem that costs nothing', async (_name, domain) => {
    const { key } = await server.newAccount(10);
    const response = await inspect(domain, key);
    // Status and balance side by side, so that a failure shows both what the caller saw and what it paid.
    expect({ status: response.status, balance: await balanceOf(key) }).toEqual({ status: 400, balance: 10 });
    const problem = await expectProblem(response, 400, 'validation_failed');
    expect(problem.detail).toBeTruthy();
    const [record] = (await usageOf(key)).filter((r) => r.endpoint === INSPECT);
    expect(record).toMatchObject({ status_code: 400, credits_charged: 0, error_type: 'validation_failed' });
  });

  it.each([
    ['an empty domain', { domain: '' }],
    ['no domain', {}],
    ['a domain that is not a string', { domain: 42 }],
    ['an unknown field', { domain: 'example.com', verbose: true }],
    ['a domain over 2048 characters', { domain: `${'a'.repeat(2049)}.com` }],
  ])('a body with %s is a 400 against the contract, and costs nothing', async (_name, body) => {
    const { key } = await server.newAccount(10);
    const response = await inspect(body, key);
    expect({ status: response.status, balance: await balanceOf(key) }).toEqual({ status: 400, balance: 10 });
    const problem = await expectProblem(response, 400, 'validation_failed');
    expect(problem.errors?.length).toBeGreaterThan(0);
  });
});

describe('metering', () => {
  it('a call charges the contract price and records it, with no upstream cost for a built-in tool', async () => {
    const { key, accountId, credentialId } = await server.newAccount(100);
    const response = await inspect('example.com', key);
    expect(response.status).toBe(200);
    expect(await balanceOf(key)).toBe(100 - PRICE);
    const [record] = (await usageOf(key)).filter((r) => r.endpoint === INSPECT);
    expect(record).toMatchObject({
      account_id: accountId,
      credential_id: credentialId,
      auth_source: 'api_key',
      method: 'POST',
      status_code: 200,
      credits_charged: PRICE,
      dataforseo_cost_usd: 0,
      error_type: null,
      error_message: null,
    });
    expect(record!.response_bytes).toBe(Number(response.headers.get('content-length')));
    expect(await server.store.sumLedger(accountId)).toBe(100 - PRICE);
  });

  it('a balance of exactly the price pays for one call, down to zero', async () => {
    const { key } = await server.newAccount(PRICE);
    expect((await inspect('example.org', key)).status).toBe(200);
    expect(await balanceOf(key)).toBe(0);
  });

  it('too few credits: 402 problem, nothing charged, the refusal recorded with credits_charged 0', async () => {
    const { key, accountId } = await server.newAccount(PRICE - 1);
    const problem = await expectProblem(await inspect('example.com', key), 402, 'payment_required');
    expect(problem.detail).toContain(String(PRICE));
    expect(await balanceOf(key)).toBe(PRICE - 1);
    expect(await server.store.sumLedger(accountId)).toBe(PRICE - 1);
    const records = (await usageOf(key)).filter((r) => r.endpoint === INSPECT);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status_code: 402, credits_charged: 0, error_type: 'payment_required', dataforseo_cost_usd: 0 });
  });

  it('under concurrency exactly the affordable calls succeed and the balance never goes negative', async () => {
    const affordable = 7;
    const attempts = 24;
    const credits = affordable * PRICE + (PRICE - 1);
    const { key, accountId } = await server.newAccount(credits);
    const statuses = await Promise.all(
      Array.from({ length: attempts }, async (_, i) => {
        const response = await inspect(`host${i}.example.com`, key);
        await response.arrayBuffer();
        return response.status;
      }),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(affordable);
    expect(statuses.filter((s) => s === 402)).toHaveLength(attempts - affordable);
    const balance = await server.store.getBalance(accountId);
    expect(balance).toBe(PRICE - 1);
    expect(await server.store.sumLedger(accountId)).toBe(balance);
    const records = (await usageOf(key)).filter((r) => r.endpoint === INSPECT);
    expect(records).toHaveLength(attempts);
    expect(records.reduce((sum, r) => sum + r.credits_charged, 0)).toBe(affordable * PRICE);
  });
});

describe('capabilities', () => {
  it.each(['GET', 'POST'])('%s /v1/capabilities lists inspect_domain at the contract price, without a credential', async (method) => {
    const response = await fetch(`${server.url}/v1/capabilities`, method === 'POST' ? jsonInit({}) : {});
    expect(response.status).toBe(200);
    const capabilities = (await response.json()) as Capabilities;
    const tool = capabilities.tools.find((t) => t.path === INSPECT);
    expect(tool).toMatchObject({
      name: 'inspect_domain',
      credits_per_call: PRICE,
      source: 'public_suffix_list',
      method: 'POST',
      description: expect.stringMatching(/public suffix list/i),
    });
    // A self-contained schema (no $ref left) that a caller can validate its input with.
    expect(tool!.input_schema).toMatchObject({ type: 'object', additionalProperties: false, required: ['domain'] });
    expect(tool!.input_schema).toHaveProperty('properties.domain.type', 'string');
    expect(JSON.stringify(tool!.input_schema)).not.toContain('$ref');
    expect(capabilities.sources).toContainEqual({ id: 'public_suffix_list', name: expect.any(String), enabled: true });
  });

  it('lists every tool operation of the contract, and nothing else', async () => {
    const response = await fetch(`${server.url}/v1/capabilities`);
    const capabilities = (await response.json()) as Capabilities;
    const contractTools = Object.entries(bundled.paths as Record<string, { post?: Record<string, unknown> }>)
      .filter(([, item]) => item.post?.['x-openrush-tool'])
      .map(([path, item]) => ({ path, credits_per_call: item.post!['x-openrush-credits'] }));
    expect(capabilities.tools.map(({ path, credits_per_call }) => ({ path, credits_per_call }))).toEqual(contractTools);
  });
});

describe('a tool registered by the embedder', () => {
  const WORD_COUNT = '/v1/tools/word_count';
  const inputSchema = {
    type: 'object',
    additionalProperties: false,
    required: ['text'],
    properties: { text: { type: 'string', minLength: 1, maxLength: 10_000 } },
  };
  let calls = 0;
  let embedded: TestServer;

  // The operation as an embedder writes it: the contract's own problem responses, and its own 200 schema.
  const operation = {
    operationId: 'wordCount',
    summary: 'Count words',
    description: 'Counts the words of a text.',
    'x-openrush-tool': { name: 'word_count', source: 'text_lab' },
    'x-openrush-credits': 2,
    requestBody: { required: true, content: { 'application/json': { schema: inputSchema } } },
    responses: {
      '200': {
        description: 'The count.',
        content: {
          'application/json': {
            schema: { type: 'object', additionalProperties: false, required: ['words'], properties: { words: { type: 'integer' } } },
          },
        },
      },
      '400': { $ref: '#/components/responses/ValidationFailed' },
      '401': { $ref: '#/components/responses/Unauthorized' },
      '402': { $ref: '#/components/responses/PaymentRequired' },
    },
  };
  const wordCount: ToolDefinition = {
    path: WORD_COUNT,
    operation: operation as ContractOperation,
    source: { id: 'text_lab', name: 'Text lab', enabled: true },
    handler(input: { text: string }) {
      calls += 1;
      return { result: { words: input.text.split(/\s+/).filter(Boolean).length }, upstreamCostUsd: 0.0125 };
    },
  };

  beforeAll(async () => {
    embedded = await startTestServer({ tools: [wordCount] });
  });
  afterAll(async () => {
    await embedded?.close();
  });

  it('is listed in capabilities, next to the built-in tools, with its source', async () => {
    const capabilities = (await (await fetch(`${embedded.url}/v1/capabilities`)).json()) as Capabilities;
    const builtIn = Object.values(bundled.paths as Record<string, { post?: { 'x-openrush-tool'?: { name: string } } }>).flatMap((item) =>
      item.post?.['x-openrush-tool'] ? [item.post['x-openrush-tool'].name] : [],
    );
    expect(builtIn).toEqual(expect.arrayContaining(['inspect_domain', 'get_key_status']));
    expect(capabilities.tools.map((t) => t.name).sort()).toEqual([...builtIn, 'word_count'].sort());
    expect(capabilities.tools.find((t) => t.name === 'word_count')).toEqual({
      name: 'word_count',
      description: 'Counts the words of a text.',
      credits_per_call: 2,
      source: 'text_lab',
      method: 'POST',
      path: WORD_COUNT,
      input_schema: inputSchema,
    });
    expect(capabilities.sources).toContainEqual({ id: 'text_lab', name: 'Text lab', enabled: true });
  });

  it('is validated against its schema: an unknown field is a 400, the handler never runs and nothing is charged', async () => {
    const { key } = await embedded.newAccount(10);
    const before = calls;
    const response = await embedded.call(WORD_COUNT, jsonInit({ text: 'one two', language: 'en' }, { key }));
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(calls).toBe(before);
    const balance = await embedded.call('/v1/me/credits', { key });
    expect(await balance.json()).toEqual({ balance: 10 });
  });

  it('is metered at its declared price, with the upstream cost it reports', async () => {
    const { key, accountId } = await embedded.newAccount(10);
    const response = await embedded.call(WORD_COUNT, jsonInit({ text: 'the quick  brown fox' }, { key }));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ words: 4 });
    expect(await (await embedded.call('/v1/me/credits', { key })).json()).toEqual({ balance: 8 });
    const usage = (await (await embedded.call('/v1/me/usage', { key })).json()) as UsageRecord[];
    expect(usage.find((r) => r.endpoint === WORD_COUNT)).toMatchObject({
      status_code: 200,
      credits_charged: 2,
      dataforseo_cost_usd: 0.0125,
    });
    expect(await embedded.store.sumLedger(accountId)).toBe(8);
  });

  it('is refused with 402 when the balance is short, and nothing is charged', async () => {
    const { key } = await embedded.newAccount(1);
    const response = await embedded.call(WORD_COUNT, jsonInit({ text: 'a b' }, { key }));
    expect(response.status).toBe(402);
    expect(await (await embedded.call('/v1/me/credits', { key })).json()).toEqual({ balance: 1 });
  });
});
