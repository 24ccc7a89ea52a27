// One contract suite, two targets: the Prism mock of the contract, and the real server behind `prism proxy`.
// It goes through the published client, and any `sl-violations` header fails the test.
import { readFileSync } from 'node:fs';
import type { Middleware } from 'openapi-fetch';
import { describe, expect, inject, it } from 'vitest';
import { createOpenRushClient } from '../client/index.ts';

const KEY_PATTERN = /^or_[0-9A-Za-z]{38}$/;
const contract = JSON.parse(readFileSync(new URL('../generated/openapi.json', import.meta.url), 'utf8'));
const INSPECT = '/v1/tools/inspect_domain';
// The mock answers with the contract's example; asking the real server about the example's own input makes both
// targets promise the same answer.
const INSPECTION_EXAMPLE = contract.components.examples.DomainInspection.value;
const INSPECT_PRICE: number = contract.paths[INSPECT].post['x-openrush-credits'];
const targets = [
  { name: 'prism mock', baseUrl: inject('mockUrl'), apiKey: inject('realKey') },
  { name: 'real server behind prism proxy', baseUrl: inject('proxyUrl'), apiKey: inject('realKey') },
];

const failOnViolations: Middleware = {
  onResponse({ request, response }) {
    const violations = response.headers.get('sl-violations');
    if (violations) throw new Error(`${request.method} ${request.url} broke the contract: ${violations}`);
  },
};

describe.each(targets)('contract: $name', ({ baseUrl, apiKey }) => {
  const client = createOpenRushClient({ baseUrl, apiKey });
  client.use(failOnViolations);
  const anonymous = createOpenRushClient({ baseUrl });

  it('GET /v1/capabilities answers without a credential', async () => {
    anonymous.use(failOnViolations);
    const { data, response } = await anonymous.GET('/v1/capabilities');
    expect(response.status).toBe(200);
    expect(Array.isArray(data?.tools)).toBe(true);
    expect(Array.isArray(data?.sources)).toBe(true);
    expect(response.headers.get('x-request-id')).toBeTruthy();
  });

  it('POST /v1/capabilities answers the same as GET', async () => {
    const get = await anonymous.GET('/v1/capabilities');
    const post = await anonymous.POST('/v1/capabilities', { body: {} });
    expect(post.response.status).toBe(200);
    expect(post.data).toEqual(get.data);
  });

  it('GET /v1/me/credits gives a non-negative integer balance', async () => {
    const { data, response } = await client.GET('/v1/me/credits');
    expect(response.status).toBe(200);
    expect(Number.isInteger(data?.balance)).toBe(true);
    expect(data!.balance).toBeGreaterThanOrEqual(0);
  });

  it('a request without a credential is a 401 problem with WWW-Authenticate', async () => {
    const response = await fetch(`${baseUrl}/v1/me/credits`);
    expect(response.status).toBe(401);
    // Through `prism proxy --errors` the 401 for a missing credential comes from Prism itself (it refuses the
    // request before forwarding it), so only what both promise is checked here; the server's own problem
    // body and exact realm are checked in test/server/auth.test.ts.
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toMatchObject({ status: 401, type: expect.any(String), title: expect.any(String) });
  });

  it('POST /v1/me/api-credentials returns the key once, with no-store', async () => {
    const { data, response } = await client.POST('/v1/me/api-credentials', { body: { name: 'Production server' } });
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(data!.key).toMatch(KEY_PATTERN);
    expect(data!.api_credential.prefix).toBe(`${data!.key.slice(0, 9)}...`);
    expect(data!.api_credential).toMatchObject({ name: 'Production server', is_active: true });
  });

  it('GET /v1/me/api-credentials lists credentials without secrets', async () => {
    const { data, response } = await client.GET('/v1/me/api-credentials');
    expect(response.status).toBe(200);
    expect(data!.length).toBeGreaterThan(0);
    for (const credential of data!) {
      expect(Object.keys(credential).sort()).toEqual(
        ['account_id', 'created_at', 'expires_at', 'id', 'is_active', 'last_used_at', 'name', 'prefix'],
      );
    }
  });

  it('POST /v1/me/api-credentials/{id}/revoke deactivates the credential', async () => {
    const created = await client.POST('/v1/me/api-credentials', { body: { name: 'to revoke' } });
    const id = created.data!.api_credential.id;
    const { data, response } = await client.POST('/v1/me/api-credentials/{credential_id}/revoke', {
      params: { path: { credential_id: id } },
    });
    expect(response.status).toBe(200);
    expect(data!.is_active).toBe(false);
  });

  it('GET /v1/me/usage lists records with every field of the seed', async () => {
    await client.GET('/v1/me/credits');
    const { data, response } = await client.GET('/v1/me/usage', { params: { query: { limit: 5 } } });
    expect(response.status).toBe(200);
    expect(data!.length).toBeGreaterThan(0);
    expect(data!.length).toBeLessThanOrEqual(5);
    expect(Object.keys(data![0]!).sort()).toEqual(
      [
        'account_id', 'auth_source', 'channel', 'created_at', 'credential_id', 'credits_charged', 'dataforseo_cost_usd',
        'endpoint', 'error_message', 'error_type', 'id', 'method', 'request_bytes', 'response_bytes', 'response_time_ms',
        'status_code', 'tool',
      ],
    );
  });

  it('POST /v1/tools/inspect_domain answers a DomainInspection', async () => {
    const { data, response } = await client.POST(INSPECT, { body: { domain: INSPECTION_EXAMPLE.input } });
    expect(response.status).toBe(200);
    expect(Object.keys(data!).sort()).toEqual(
      ['ascii', 'domain', 'domain_without_suffix', 'hostname', 'input', 'is_ip', 'public_suffix', 'subdomain', 'suffix_type', 'unicode'],
    );
    expect(data).toEqual(INSPECTION_EXAMPLE);
  });

  it('capabilities list inspect_domain at its contract price', async () => {
    const { data } = await anonymous.GET('/v1/capabilities');
    const tool = data!.tools.find((t) => t.path === INSPECT);
    expect(tool).toMatchObject({ name: 'inspect_domain', method: 'POST', credits_per_call: INSPECT_PRICE });
    expect(data!.sources.map((s) => s.id)).toContain(tool!.source);
  });

  it('POST /mcp answers tools/list with the contract\'s tools, as JSON-RPC', async () => {
    const { data, response } = await client.POST('/mcp', {
      body: { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      headers: { Accept: 'application/json, text/event-stream' },
    });
    expect(response.status).toBe(200);
    expect(data).toMatchObject({ jsonrpc: '2.0', id: 1 });
    const tools = (data!.result as { tools: Array<{ name: string; inputSchema: { type: string } }> }).tools;
    expect(tools.find((tool) => tool.name === 'inspect_domain')?.inputSchema.type).toBe('object');
  });

  it('GET /.well-known/oauth-protected-resource answers RFC 9728 metadata without a credential', async () => {
    const { data, response } = await anonymous.GET('/.well-known/oauth-protected-resource');
    expect(response.status).toBe(200);
    expect(Object.keys(data!).sort()).toEqual(
      expect.arrayContaining(['authorization_servers', 'bearer_methods_supported', 'resource', 'resource_name']),
    );
    expect(data!.bearer_methods_supported).toEqual(['header']);
  });

  it('GET /healthz answers ok', async () => {
    const { data, response } = await anonymous.GET('/healthz');
    expect(response.status).toBe(200);
    expect(data).toEqual({ status: 'ok' });
  });
});

// v2 API keys on both targets. On the mock every answer is the contract's example, so only status codes and
// shapes are asserted, never ids; the keys changed here are ones the test made, never the suite's own key.
const API_KEY_FIELDS = [
  'access', 'api_key_id', 'constraints', 'created_at', 'created_by_id', 'last_used_at', 'legacy_key_id', 'legacy_token_family',
  'name', 'owner', 'permission_mode', 'project_scope', 'status', 'token_prefix', 'updated_at', 'updated_by_id',
];
const TOKEN_PREFIX = /^or_[0-9A-Za-z]{6}\.\.\.$/;

describe.each(targets)('contract v2 API keys: $name', ({ baseUrl, apiKey }) => {
  const client = createOpenRushClient({ baseUrl, apiKey });
  client.use(failOnViolations);

  function expectApiKey(key: unknown, withSecret = false): void {
    const fields = withSecret ? [...API_KEY_FIELDS, 'api_key'].sort() : API_KEY_FIELDS;
    expect(Object.keys(key as object).sort()).toEqual(fields);
    const { token_prefix, status, constraints } = key as { token_prefix: string; status: number; constraints: object };
    expect(token_prefix).toMatch(TOKEN_PREFIX);
    expect([1, 2, 3, 4]).toContain(status);
    expect(Object.keys(constraints).sort()).toEqual(['budget', 'expires_at', 'rate_limit']);
  }

  async function created(): Promise<string> {
    const { data, response } = await client.POST('/v2/api-keys', { body: { name: 'contract v2' } });
    expect(response.status).toBe(201);
    return data!.api_key_id;
  }

  it('GET /v2/api-keys answers a page in the seed shape', async () => {
    await created();
    const { data, response } = await client.GET('/v2/api-keys', { params: { query: { limit: 5 } } });
    expect(response.status).toBe(200);
    expect(Object.keys(data!).sort()).toEqual(['data', 'has_more', 'object']);
    expect(data!.object).toBe('list');
    expect(typeof data!.has_more).toBe('boolean');
    expect(data!.data.length).toBeGreaterThan(0);
    expect(data!.data.length).toBeLessThanOrEqual(5);
    for (const key of data!.data) expectApiKey(key);
  });

  it('POST /v2/api-keys returns the key once, with no-store', async () => {
    // The contract's example, with an expiry that stays in the future however long this suite lives.
    const example = contract.components.examples.ApiKeyCreate.value;
    const body = { ...example, constraints: { ...example.constraints, expires_at: '2099-01-01T00:00:00Z' } };
    const { data, response } = await client.POST('/v2/api-keys', { body });
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expectApiKey(data, true);
    expect(data!.api_key).toMatch(KEY_PATTERN);
  });

  it('GET /v2/api-keys/{api_key_id} answers an API key', async () => {
    const id = await created();
    const { data, response } = await client.GET('/v2/api-keys/{api_key_id}', { params: { path: { api_key_id: id } } });
    expect(response.status).toBe(200);
    expectApiKey(data);
  });

  it('PATCH /v2/api-keys/{api_key_id} answers the changed API key', async () => {
    const id = await created();
    const { data, response } = await client.PATCH('/v2/api-keys/{api_key_id}', {
      params: { path: { api_key_id: id } },
      body: contract.components.examples.ApiKeyUpdate.value,
    });
    expect(response.status).toBe(200);
    expectApiKey(data);
  });

  it('POST /v2/api-keys/{api_key_id}/revoke answers the API key', async () => {
    const id = await created();
    const { data, response } = await client.POST('/v2/api-keys/{api_key_id}/revoke', { params: { path: { api_key_id: id } } });
    expect(response.status).toBe(200);
    expectApiKey(data);
  });

  it('POST /v2/api-keys/{api_key_id}/rotate answers the new secret, with no-store', async () => {
    const id = await created();
    const { data, response } = await client.POST('/v2/api-keys/{api_key_id}/rotate', {
      params: { path: { api_key_id: id } },
      body: { grace_period_seconds: 0 },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expectApiKey(data, true);
    expect(data!.api_key).toMatch(KEY_PATTERN);
  });
});
