// MCP access, through the official SDK's own client (Client + StreamableHTTPClientTransport) against the real
// server on a real port and a real database: tools from the contract, the same keys and constraints, credits
// charged with the usage record, and Activity telling MCP calls apart.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { discoverOAuthProtectedResourceMetadata, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { checkResourceAllowed } from '@modelcontextprotocol/sdk/shared/auth-utils.js';
import { type CallToolResult, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { systemClock } from '../../server/clock.ts';
import { loadConfig } from '../../server/config.ts';
import type { ContractOperation } from '../../server/contract.ts';
import { createIdGenerator } from '../../server/ids.ts';
import type { ToolDefinition } from '../../server/tools/index.ts';
import { apiKeysOf, expectProblem } from '../helpers/api-keys.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type UsageRecord = components['schemas']['UsageRecord'];
type Capabilities = components['schemas']['Capabilities'];
type Problem = components['schemas']['Problem'];

const INSPECT = '/v1/tools/inspect_domain';
const bundled = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'));
// The price is declared once, in the contract; read it from there rather than repeating it.
const PRICE: number = bundled.paths[INSPECT].post['x-openrush-credits'];
const AUTH_SERVER = 'https://abcdefghijklmnop.supabase.co/auth/v1';
const MCP_ACCEPT = 'application/json, text/event-stream';
const PROTECTED_RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';
const message = { jsonrpc: '2.0', id: 1, method: 'tools/list' };

let server: TestServer;
let api: ReturnType<typeof apiKeysOf>;
const clients: Client[] = [];

beforeAll(async () => {
  // Refused keys are part of the point here; the failed-auth throttle must not turn those 401s into 429s.
  server = await startTestServer({ config: { authFailuresPerMinute: 100_000, authorizationServers: [AUTH_SERVER] } });
  api = apiKeysOf(server);
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await server?.close();
});

/** An MCP client as an agent would run one: the server's /mcp URL and the key in a header. */
async function connect(target: TestServer, key: string, header: 'bearer' | 'x-api-key' = 'bearer'): Promise<Client> {
  const headers: Record<string, string> = header === 'bearer' ? { Authorization: `Bearer ${key}` } : { 'X-API-Key': key };
  const transport = new StreamableHTTPClientTransport(new URL(`${target.url}/mcp`), { requestInit: { headers } });
  const client = new Client({ name: 'openrush-test-agent', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function balanceOf(key: string, target = server): Promise<number> {
  return ((await (await target.call('/v1/me/credits', { key })).json()) as { balance: number }).balance;
}

async function usageOf(key: string, query = '', target = server): Promise<UsageRecord[]> {
  const response = await target.call(`/v1/me/usage?limit=500${query}`, { key });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as UsageRecord[];
}

/** The problem a refused call carries: as JSON text for the model, and the same document in _meta. */
function problemOf(result: CallToolResult): Problem {
  expect(result.isError).toBe(true);
  expect(result.structuredContent).toBeUndefined();
  const problem = JSON.parse((result.content[0] as { text: string }).text) as Problem;
  expect(result._meta?.['openrush.io/problem']).toEqual(problem);
  return problem;
}

const inspect = (client: Client, domain: string) =>
  client.callTool({ name: 'inspect_domain', arguments: { domain } }) as Promise<CallToolResult>;

describe('MCP tools come from the contract', () => {
  it('lists the same tools as /v1/capabilities, with input and output schemas and the price', async () => {
    const client = await connect(server, server.account.key);
    const { tools } = await client.listTools();
    const capabilities = (await (await fetch(`${server.url}/v1/capabilities`)).json()) as Capabilities;
    expect(tools.map((t) => t.name).sort()).toEqual(capabilities.tools.map((t) => t.name).sort());
    const listed = tools.find((t) => t.name === 'inspect_domain')!;
    const capability = capabilities.tools.find((t) => t.name === 'inspect_domain')!;
    expect(listed.description).toBe(capability.description);
    expect(listed.inputSchema).toEqual(capability.input_schema);
    // The output schema is the operation's 200 schema: every field of DomainInspection.
    expect(Object.keys((listed.outputSchema as { properties: object }).properties).sort()).toEqual(
      Object.keys(bundled.components.schemas.DomainInspection.properties).sort(),
    );
    expect(listed._meta).toMatchObject({ 'openrush.io/credits_per_call': PRICE, 'openrush.io/source': capability.source });
    expect(client.getServerVersion()).toMatchObject({ name: 'openrush', version: bundled.info.version });
    expect(client.getInstructions()).toContain('credits_per_call');
  });

  it('an embedder tool registered with createApp({ tools }) is on MCP with no more code, at its price', async () => {
    const operation = {
      operationId: 'countWords',
      summary: 'Count words',
      description: 'Counts the words of a text.',
      'x-openrush-tool': { name: 'word_count', source: 'text_lab' },
      'x-openrush-access': { resource: 'tools', level: 'use' },
      'x-openrush-credits': 2,
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: { type: 'object', additionalProperties: false, required: ['text'], properties: { text: { type: 'string', maxLength: 1000 } } },
          },
        },
      },
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
      },
    };
    const wordCount: ToolDefinition = {
      path: '/v1/tools/word_count',
      operation: operation as ContractOperation,
      source: { id: 'text_lab', name: 'Text lab', enabled: true },
      handler: (input: { text: string }) => ({ result: { words: input.text.split(/\s+/).filter(Boolean).length }, upstreamCostUsd: 0.01 }),
    };
    // A tool that fails in a way nobody planned for: the agent must learn nothing of its insides.
    const broken: ToolDefinition = {
      path: '/v1/tools/broken',
      operation: {
        ...operation,
        operationId: 'broken',
        summary: 'Broken',
        description: 'Always fails.',
        'x-openrush-tool': { name: 'broken', source: 'text_lab' },
      } as ContractOperation,
      handler: () => {
        throw new Error('connection string postgres://admin:hunter2@db.internal failed');
      },
    };
    const embedded = await startTestServer({ tools: [wordCount, broken] });
    try {
      const { key } = await embedded.newAccount(10);
      const client = await connect(embedded, key);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['broken', 'get_key_status', 'inspect_domain', 'word_count']);
      expect(tools.find((t) => t.name === 'word_count')).toMatchObject({
        description: 'Counts the words of a text.',
        inputSchema: operation.requestBody.content['application/json'].schema,
        outputSchema: operation.responses['200'].content['application/json'].schema,
      });
      const result = (await client.callTool({ name: 'word_count', arguments: { text: 'the quick  brown fox' } })) as CallToolResult;
      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toEqual({ words: 4 });
      expect(await balanceOf(key, embedded)).toBe(8);
      const [record] = await usageOf(key, '&channel=mcp', embedded);
      expect(record).toMatchObject({ tool: 'word_count', credits_charged: 2, dataforseo_cost_usd: 0.01 });

      // An unexpected failure is a 500 problem, like any failed HTTP request: no internals, nothing charged.
      const failure = await client.callTool({ name: 'broken', arguments: { text: 'x' } }).then(
        () => 'answered',
        (error: unknown) => String(error),
      );
      expect(failure).toMatch(/500/);
      expect(failure).toContain('internal_error');
      expect(failure).not.toMatch(/hunter2|postgres:|db\.internal/);
      expect(await balanceOf(key, embedded)).toBe(8);
      expect(embedded.logs.some((line) => line.includes('request failed'))).toBe(true);
      await client.close();
    } finally {
      await embedded.close();
    }
  });
});

describe('MCP tool calls are charged and recorded like API calls', () => {
  it('calls inspect_domain: the answer the HTTP route gives, the price charged, one usage record', async () => {
    const { key, accountId, credentialId } = await server.newAccount(10);
    const client = await connect(server, key);
    const result = await inspect(client, 'https://blog.example.co.uk/posts/1');
    expect(result.isError).toBeFalsy();
    const viaHttp = await (await server.call(INSPECT, jsonInit({ domain: 'https://blog.example.co.uk/posts/1' }, { key }))).json();
    expect(result.structuredContent).toEqual(viaHttp);
    expect(JSON.parse((result.content[0] as { text: string }).text)).toEqual(viaHttp);
    // One MCP call and one HTTP call of the same tool: 2 × the price.
    expect(await balanceOf(key)).toBe(10 - 2 * PRICE);
    expect(await server.store.sumLedger(accountId)).toBe(10 - 2 * PRICE);

    const mcp = await usageOf(key, '&channel=mcp');
    const call = mcp.find((r) => r.tool === 'inspect_domain')!;
    expect(call).toMatchObject({
      channel: 'mcp',
      endpoint: '/mcp',
      method: 'POST',
      status_code: 200,
      credits_charged: PRICE,
      credential_id: credentialId,
      auth_source: 'api_key',
      error_type: null,
    });
    expect(call.response_bytes).toBeGreaterThan(0);
    expect(call.request_bytes).toBeGreaterThan(0);
    // initialize, its notification and tools/call are each a record, all on the MCP channel.
    expect(mcp.every((r) => r.channel === 'mcp' && r.endpoint === '/mcp')).toBe(true);
    expect(mcp.length).toBeGreaterThanOrEqual(3);
    expect(mcp.filter((r) => r.credits_charged > 0)).toHaveLength(1);
    // The API's own records: the HTTP tool call (charged, tool named) and the reads, none on the MCP channel.
    const apiRecords = await usageOf(key, '&channel=api');
    expect(apiRecords.every((r) => r.channel === 'api')).toBe(true);
    expect(apiRecords.find((r) => r.endpoint === INSPECT)).toMatchObject({ tool: 'inspect_domain', credits_charged: PRICE });
    const all = await usageOf(key);
    expect(all.length).toBe(mcp.length + apiRecords.length + 1); // + the unfiltered listing of channel=api itself
  });

  it('X-API-Key works as well as Bearer', async () => {
    const { key } = await server.newAccount(10);
    const client = await connect(server, key, 'x-api-key');
    expect((await inspect(client, 'example.com')).isError).toBeFalsy();
    expect(await balanceOf(key)).toBe(10 - PRICE);
  });

  it('without enough credits: a tool error with the problem, nothing charged, the refusal recorded', async () => {
    const { key, accountId } = await server.newAccount(PRICE - 1);
    const client = await connect(server, key);
    const problem = problemOf(await inspect(client, 'example.com'));
    expect(problem).toMatchObject({ type: 'https://openrush.io/problems/payment_required', status: 402 });
    expect(problem.detail).toContain(`costs ${PRICE} credits`);
    expect(await balanceOf(key)).toBe(PRICE - 1);
    expect(await server.store.sumLedger(accountId)).toBe(PRICE - 1);
    const [record] = (await usageOf(key, '&channel=mcp')).filter((r) => r.tool === 'inspect_domain');
    expect(record).toMatchObject({ credits_charged: 0, error_type: 'payment_required', status_code: 200 });
  });

  it("once the key's budget is spent: a budget_exhausted tool error, nothing more charged", async () => {
    const admin = await server.newAccount(100);
    const budgeted = await api.created(admin.key, { name: 'agent', constraints: { budget: { period: 3, amount: PRICE + 1 } } });
    const client = await connect(server, budgeted.api_key);
    expect((await inspect(client, 'example.com')).isError).toBeFalsy();
    const problem = problemOf(await inspect(client, 'example.org'));
    expect(problem.type).toBe('https://openrush.io/problems/budget_exhausted');
    expect(await balanceOf(admin.key)).toBe(100 - PRICE);
  });

  it('arguments that do not match the input schema: a validation tool error, the handler not charged', async () => {
    const { key } = await server.newAccount(10);
    const client = await connect(server, key);
    const problem = problemOf((await client.callTool({ name: 'inspect_domain', arguments: { domain: 'x.com', extra: 1 } })) as CallToolResult);
    expect(problem).toMatchObject({ type: 'https://openrush.io/problems/validation_failed', status: 400 });
    expect(problem.errors).toContainEqual(expect.objectContaining({ pointer: '/extra' }));
    const notAHost = problemOf(await inspect(client, 'http://'));
    expect(notAHost.type).toBe('https://openrush.io/problems/validation_failed');
    expect(await balanceOf(key)).toBe(10);
  });

  it('an unknown tool is a JSON-RPC error, and nothing is charged', async () => {
    const { key } = await server.newAccount(10);
    const client = await connect(server, key);
    await expect(client.callTool({ name: 'inspect_domains', arguments: {} })).rejects.toThrow(/Unknown tool: inspect_domains/);
    expect(await balanceOf(key)).toBe(10);
    const refused = (await usageOf(key, '&channel=mcp')).filter((r) => r.error_message?.includes('Unknown tool: inspect_domains'));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ credits_charged: 0, tool: null, error_type: 'validation_failed', status_code: 200 });
  });

  it('50 concurrent calls never overdraw: exactly as many succeed as the balance pays for', async () => {
    const calls = 50;
    const affordable = 16;
    const { key, accountId } = await server.newAccount(affordable * PRICE + PRICE - 1);
    const client = await connect(server, key);
    const results = await Promise.all(Array.from({ length: calls }, (_, i) => inspect(client, `host${i}.example.com`)));
    const succeeded = results.filter((r) => !r.isError);
    const refused = results.filter((r) => r.isError).map((r) => problemOf(r).type);
    expect(succeeded).toHaveLength(affordable);
    expect(refused).toEqual(Array(calls - affordable).fill('https://openrush.io/problems/payment_required'));
    expect(await balanceOf(key)).toBe(PRICE - 1);
    expect(await server.store.sumLedger(accountId)).toBe(PRICE - 1);
    const records = (await usageOf(key, '&channel=mcp')).filter((r) => r.tool === 'inspect_domain');
    expect(records).toHaveLength(calls);
    expect(records.filter((r) => r.credits_charged === PRICE)).toHaveLength(affordable);
  });
});

describe('MCP access uses the same keys and constraints', () => {
  it('a revoked key is refused on its next MCP request', async () => {
    const { key, credentialId, accountId } = await server.newAccount(10);
    const client = await connect(server, key);
    await client.listTools();
    expect((await server.call(`/v1/me/api-credentials/${credentialId}/revoke`, { method: 'POST', key })).status).toBe(200);
    await expect(client.listTools()).rejects.toThrow(/401/);
    await expect(inspect(client, 'example.com')).rejects.toThrow(/401/);
    expect(await server.store.getBalance(accountId)).toBe(10);
  });

  it('a read-only key, a restricted reader, or one without tools: use, may list the tools but not call them', async () => {
    const admin = await server.newAccount(100);
    const readOnly = await api.created(admin.key, { name: 'read-only', permission_mode: 2 });
    const reader = await api.created(admin.key, { name: 'reader', permission_mode: 3, access: { credits: 'read', usage: 'read' } });
    const noTools = await api.created(admin.key, { name: 'no tools', permission_mode: 3, access: { api_keys: 'read', tools: 'none' } });
    for (const key of [readOnly.api_key, reader.api_key, noTools.api_key]) {
      const client = await connect(server, key);
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('inspect_domain');
      const problem = problemOf(await inspect(client, 'example.com'));
      expect(problem).toMatchObject({ type: 'https://openrush.io/problems/forbidden', status: 403 });
      expect(problem.detail).toMatch(key === readOnly.api_key ? /read-only/ : /use on tools/);
    }
    expect(await balanceOf(admin.key)).toBe(100);
    const toolsOnly = await api.created(admin.key, { name: 'agent', permission_mode: 3, access: { tools: 'use' } });
    expect((await inspect(await connect(server, toolsOnly.api_key), 'example.com')).isError).toBeFalsy();
    expect(await balanceOf(admin.key)).toBe(100 - PRICE);
  });

  // Issue 17: a Supabase session token's audience is the Dashboard (`authenticated`), not /mcp: the MCP specification
  // forbids accepting it there (RFC 8707). It used to work as an API key does on /mcp; it still does on the API.
  it('a Dashboard session token (a Supabase JWT) is refused on /mcp with invalid_token, and still works on the API', async () => {
    const secret = 'super-secret-jwt-token-with-at-least-32-characters-long';
    const withSessions = await startTestServer({
      config: { session: { jwksUrl: undefined, jwksFile: undefined, jwtSecret: secret, issuer: undefined, autoprovision: true } },
    });
    try {
      const subject = randomUUID();
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ sub: subject, aud: 'authenticated', role: 'authenticated', iat: now, exp: now + 3600 })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .sign(new TextEncoder().encode(secret));
      const refused = await withSessions.call('/mcp', { key: token, method: 'POST', headers: { 'Content-Type': 'application/json', Accept: MCP_ACCEPT }, body: JSON.stringify(message) });
      const problem = await expectProblem(refused, 401);
      expect(problem.detail).toMatch(/Session tokens are not accepted on \/mcp/);
      const challenge = refused.headers.get('www-authenticate')!;
      expect(challenge).toMatch(/^Bearer realm="openrush", error="invalid_token", /);
      expect(challenge).toContain(`resource_metadata="${withSessions.url}/.well-known/oauth-protected-resource/mcp"`);
      await expect(connect(withSessions, token)).rejects.toThrow(/401/);
      expect((await withSessions.call('/v1/me', { key: token })).status).toBe(200);
      // Nothing was recorded for the refused requests: there was no caller.
      expect(await usageOf(token, '&channel=mcp', withSessions)).toEqual([]);
    } finally {
      await withSessions.close();
    }
  });

  it("a key's rate limit counts MCP requests too: past it, 429 with Retry-After", async () => {
    const admin = await server.newAccount(100);
    const limited = await api.created(admin.key, { name: 'slow agent', constraints: { rate_limit: { requests_per_minute: 3 } } });
    const client = await connect(server, limited.api_key); // initialize, its notification (and the client's GET)
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) outcomes.push(await client.listTools().then(() => 'ok', (error: unknown) => String(error)));
    expect(outcomes.find((outcome) => outcome !== 'ok')).toMatch(/429.*allows 3 requests per minute/);
  });
});

describe('MCP endpoint over HTTP', () => {
  it('the contract names exactly the protocol versions the SDK speaks (MCP-Protocol-Version)', () => {
    const parameter = bundled.components.parameters.McpProtocolVersion;
    expect([...parameter.schema.enum].sort()).toEqual([...SUPPORTED_PROTOCOL_VERSIONS].sort());
  });

  const message = { jsonrpc: '2.0', id: 1, method: 'tools/list' };

  // Issue 17 fixed what these encoded: `resource` was the base URL (it is /mcp's URI, `<base>/mcp`, RFC 9728 §3.3 and
  // RFC 8707), the metadata was only at the root (the MCP specification derives `<well-known>/mcp` from the
  // endpoint), and the authorization server defaulted to the Supabase issuer (whose tokens are not issued for /mcp).
  it('without a credential: 401 naming /mcp\'s protected-resource metadata and the scope the tools need; the metadata names the authorization server', async () => {
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: MCP_ACCEPT },
      body: JSON.stringify(message),
    });
    await expectProblem(response, 401);
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer realm="openrush", resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp", scope="tools:use"`,
    );
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(response.headers.get('www-authenticate')!)?.[1];
    const metadata = await fetch(metadataUrl!);
    expect(metadata.status).toBe(200);
    const document = await metadata.json();
    expect(document).toEqual({
      resource: `${server.url}/mcp`,
      authorization_servers: [AUTH_SERVER],
      scopes_supported: ['tools:use'],
      bearer_methods_supported: ['header'],
      resource_name: 'OpenRush API',
    });
    // The same document at the root, for clients that look there first.
    expect(await (await fetch(`${server.url}${PROTECTED_RESOURCE_METADATA_PATH}`)).json()).toEqual(document);
    // Other operations keep their plain challenge.
    expect((await fetch(`${server.url}/v1/me/credits`)).headers.get('www-authenticate')).toBe('Bearer realm="openrush"');
  });

  it('OPENRUSH_AUTHORIZATION_SERVER names another authorization server; it no longer defaults to the session issuer', () => {
    const issuer = 'https://abcdefghijklmnop.supabase.co/auth/v1';
    expect(loadConfig({ OPENRUSH_SESSION_ISSUER: issuer }).authorizationServers).toEqual([]);
    expect(loadConfig({ OPENRUSH_SESSION_ISSUER: issuer, OPENRUSH_AUTHORIZATION_SERVER: 'https://auth.example.com/' }).authorizationServers).toEqual([
      'https://auth.example.com',
    ]);
    expect(loadConfig({}).authorizationServers).toEqual([]);
    expect(() => loadConfig({ OPENRUSH_AUTHORIZATION_SERVER: 'not a url' })).toThrow(/OPENRUSH_AUTHORIZATION_SERVER/);
    expect(loadConfig({ OPENRUSH_PUBLIC_URL: 'https://api.example.com/' }).publicUrl).toBe('https://api.example.com');
  });

  it('with OPENRUSH_PUBLIC_URL set, the 401 and the metadata name it, whatever Host the request carried', async () => {
    const behindProxy = await startTestServer({ config: { publicUrl: 'https://api.example.com' } });
    try {
      const response = await fetch(`${behindProxy.url}/mcp`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp"');
      const metadata = (await (await fetch(`${behindProxy.url}/.well-known/oauth-protected-resource/mcp`)).json()) as { resource: string; authorization_servers: string[] };
      expect(metadata.resource).toBe('https://api.example.com/mcp');
      // This server's own authorization server, whose issuer is the public URL.
      expect(metadata.authorization_servers).toEqual(['https://api.example.com']);
    } finally {
      await behindProxy.close();
    }
  });

  it("an MCP client without a key is told 401, and the SDK's own OAuth discovery finds the authorization server", async () => {
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
    const client = new Client({ name: 'anonymous-agent', version: '1.0.0' });
    await expect(client.connect(transport)).rejects.toThrow(/401/);

    // What the SDK's auth() does first: read resource_metadata and scope from the 401, fetch it, check the resource.
    const refused = await fetch(`${server.url}/mcp`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(refused);
    expect(resourceMetadataUrl?.href).toBe(`${server.url}/.well-known/oauth-protected-resource/mcp`);
    expect(scope).toBe('tools:use');
    const metadata = await discoverOAuthProtectedResourceMetadata(`${server.url}/mcp`, { resourceMetadataUrl });
    expect(metadata.authorization_servers).toEqual([AUTH_SERVER]);
    expect(checkResourceAllowed({ requestedResource: `${server.url}/mcp`, configuredResource: metadata.resource })).toBe(true);
    // A client that only knows the endpoint's URL finds the same document by well-known discovery.
    expect(await discoverOAuthProtectedResourceMetadata(`${server.url}/mcp`)).toEqual(metadata);
  });

  it('GET and DELETE are 405 with Allow: POST (the endpoint is stateless)', async () => {
    for (const method of ['GET', 'DELETE']) {
      const response = await server.call('/mcp', { method, headers: { Accept: 'text/event-stream' } });
      await expectProblem(response, 405);
      expect(response.headers.get('allow')).toBe('POST');
    }
  });

  it('a client that does not accept an event stream is a 406 problem; a non-JSON body a 415; a batch a 400', async () => {
    const notAcceptable = await server.call('/mcp', jsonInit(message, { headers: { Accept: 'application/json' } }));
    expect((await expectProblem(notAcceptable, 406)).type).toBe('https://openrush.io/problems/not_acceptable');
    // No Accept at all accepts any answer (RFC 9110): the JSON one.
    const anyAnswer = await server.call('/mcp', jsonInit(message));
    expect(anyAnswer.status).toBe(200);
    expect(anyAnswer.headers.get('content-type')).toMatch(/^application\/json/);
    const text = await server.call('/mcp', { method: 'POST', headers: { 'Content-Type': 'text/plain', Accept: MCP_ACCEPT }, body: 'hello' });
    await expectProblem(text, 415);
    const batch = await server.call('/mcp', jsonInit([message, { ...message, id: 2 }], { headers: { Accept: MCP_ACCEPT } }));
    await expectProblem(batch, 400);
  });

  it('a notification is 202 with no body, and a usage record on the MCP channel', async () => {
    const { key } = await server.newAccount(0);
    const response = await server.call(
      '/mcp',
      jsonInit({ jsonrpc: '2.0', method: 'notifications/initialized' }, { key, headers: { Accept: MCP_ACCEPT } }),
    );
    expect(response.status).toBe(202);
    expect(await response.text()).toBe('');
    const [record] = await usageOf(key, '&channel=mcp');
    expect(record).toMatchObject({ endpoint: '/mcp', status_code: 202, channel: 'mcp', tool: null });
  });
});

/** One request with exactly these headers (fetch will not send a Host of our choosing). */
function rawRequest(
  target: TestServer,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const { port } = new URL(target.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: options.headers, setHost: !options.headers?.Host },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('MCP protocol edges (issue 15)', () => {
  const rpc = (key: string, message: unknown) =>
    server.call('/mcp', jsonInit(message, { key, headers: { Accept: MCP_ACCEPT } }));

  // Each row: a method this server answers and params that do not fit it. The next case is one more line.
  const malformed: Array<[string, Record<string, unknown>, RegExp]> = [
    ['tools/call', { name: 'inspect_domain', arguments: ['domain', 'example.com'] }, /arguments/],
    ['tools/call', { name: 'inspect_domain', arguments: 'domain=example.com' }, /arguments/],
    ['tools/call', { name: 'inspect_domain', arguments: null }, /arguments/],
    ['tools/call', { name: 42, arguments: { domain: 'example.com' } }, /name/],
    ['tools/call', { arguments: { domain: 'example.com' } }, /name/],
    ['tools/call', { name: { toString: 'inspect_domain' } }, /name/],
    ['initialize', { protocolVersion: 20250618, capabilities: {}, clientInfo: { name: 'a', version: '1' } }, /protocolVersion/],
    ['initialize', { protocolVersion: '2025-06-18', capabilities: {} }, /clientInfo/],
    ['initialize', { protocolVersion: '2025-06-18', capabilities: [], clientInfo: { name: 'a', version: '1' } }, /capabilities/],
    ['tools/list', { cursor: 5 }, /cursor/],
    ['tools/list', { _meta: 'x' }, /_meta/],
    ['ping', { _meta: [1] }, /_meta/],
  ];

  it.each(malformed)('%s with params %j is a JSON-RPC -32602 naming the parameter, recorded as validation_failed', async (method, params, names) => {
    const { key } = await server.newAccount(10);
    const response = await rpc(key, { jsonrpc: '2.0', id: 'x1', method, params });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { id: unknown; error: { code: number; message: string } };
    expect(body.id).toBe('x1');
    expect(body.error.code).toBe(-32602);
    expect(body.error.message).toMatch(names);
    expect(body.error.message).toContain(method);
    // One line a person reads, not a zod dump.
    expect(body.error.message.length).toBeLessThan(300);
    expect(body.error.message).not.toMatch(/[\n{[]|"code"|invalid_type/);
    const [record] = await usageOf(key, '&channel=mcp');
    expect(record).toMatchObject({ rpc_method: method, error_type: 'validation_failed', credits_charged: 0, status_code: 200 });
    expect(await balanceOf(key)).toBe(10);
  });

  it('a notification with malformed params is still 202, and its record says validation_failed', async () => {
    const { key } = await server.newAccount(0);
    const response = await rpc(key, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: { not: 'an id' } } });
    expect(response.status).toBe(202);
    const [record] = await usageOf(key, '&channel=mcp');
    expect(record).toMatchObject({ rpc_method: 'notifications/cancelled', error_type: 'validation_failed', status_code: 202 });
  });

  it('every MCP usage record names its JSON-RPC method; API records have none', async () => {
    const { key } = await server.newAccount(10);
    const client = await connect(server, key);
    await client.listTools();
    await inspect(client, 'example.com');
    await client.ping();
    expect((await rpc(key, { jsonrpc: '2.0', id: 9, method: 'resources/list' })).status).toBe(200);
    await server.call(INSPECT, jsonInit({ domain: 'example.com' }, { key }));
    const records = (await usageOf(key)).reverse();
    const methods = records.filter((r) => r.channel === 'mcp' && r.method === 'POST').map((r) => r.rpc_method);
    // The client's GET for an event stream (405) carries no JSON-RPC message.
    expect(records.filter((r) => r.channel === 'mcp' && r.method !== 'POST').every((r) => r.rpc_method === null)).toBe(true);
    expect(methods).toEqual(['initialize', 'notifications/initialized', 'tools/list', 'tools/call', 'ping', 'resources/list']);
    expect(records.find((r) => r.rpc_method === 'resources/list')).toMatchObject({ error_type: 'not_found' });
    expect(records.filter((r) => r.channel === 'api').every((r) => r.rpc_method === null)).toBe(true);
  });

  const hosts = ['a:99999', '999.1.1.1', '[:::]', 'example.com:65536', '[1::2::3]'];

  it.each(hosts)('Host %s: the request is answered (never a 500), and no URL is made from it', async (host) => {
    const { key } = await server.newAccount(10);
    const headers = { Host: host, 'Content-Type': 'application/json', Accept: MCP_ACCEPT };
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'inspect_domain', arguments: { domain: 'example.com' } } });
    const called = await rawRequest(server, { method: 'POST', path: '/mcp', headers: { ...headers, Authorization: `Bearer ${key}` }, body });
    expect(called.status).toBe(200);
    expect((JSON.parse(called.body) as { result: CallToolResult }).result.isError).toBeFalsy();
    expect(await balanceOf(key)).toBe(10 - PRICE);
    // Without a credential: the plain challenge, no resource_metadata built from the Host.
    const refused = await rawRequest(server, { method: 'POST', path: '/mcp', headers, body });
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="openrush"');
    // The metadata cannot name the resource: a 400 problem naming the header.
    const metadata = await rawRequest(server, { path: PROTECTED_RESOURCE_METADATA_PATH, headers: { Host: host } });
    expect(metadata.status).toBe(400);
    expect(metadata.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(metadata.body)).toMatchObject({ type: 'https://openrush.io/problems/validation_failed', errors: [{ location: 'header', pointer: '/Host' }] });
    expect(server.logs.join('\n')).not.toContain('"level":50');
  });

  it('behind a trusted proxy, an X-Forwarded-Proto other than http or https is never echoed (no javascript: URL)', async () => {
    const proxied = await startTestServer({ config: { trustProxy: true, authorizationServers: [AUTH_SERVER] } });
    try {
      for (const proto of ['javascript', 'a b', 'data', 'file']) {
        const headers = { 'X-Forwarded-Proto': proto, 'Content-Type': 'application/json', Accept: MCP_ACCEPT };
        const refused = await rawRequest(proxied, { method: 'POST', path: '/mcp', headers, body: JSON.stringify(message) });
        expect(refused.status).toBe(401);
        expect(refused.headers['www-authenticate']).toBe('Bearer realm="openrush"');
        const metadata = await rawRequest(proxied, { path: PROTECTED_RESOURCE_METADATA_PATH, headers: { 'X-Forwarded-Proto': proto } });
        expect(metadata.status).toBe(400);
        expect(metadata.body).not.toMatch(/javascript:|"resource"/);
        expect(JSON.parse(metadata.body)).toMatchObject({ errors: [{ location: 'header', pointer: '/X-Forwarded-Proto' }] });
        const called = await rawRequest(proxied, {
          method: 'POST',
          path: '/mcp',
          headers: { ...headers, Authorization: `Bearer ${proxied.account.key}` },
          body: JSON.stringify(message),
        });
        expect(called.status).toBe(200);
      }
      // A proxy that says https with a good host: that names the resource, /mcp's URI there (issue 17: it was the
      // base URL, which is not the protected resource).
      const good = await rawRequest(proxied, { path: PROTECTED_RESOURCE_METADATA_PATH, headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'api.example.com' } });
      expect(JSON.parse(good.body)).toMatchObject({ resource: 'https://api.example.com/mcp' });
      expect(proxied.logs.join('\n')).not.toContain('"level":50');
    } finally {
      await proxied.close();
    }
  });

  it('every method but POST on /mcp is 405 with the same Allow: POST', async () => {
    for (const method of ['GET', 'HEAD', 'DELETE', 'PUT', 'PATCH', 'OPTIONS']) {
      const response = await server.call('/mcp', { method, headers: { Accept: MCP_ACCEPT } });
      expect(response.status, method).toBe(405);
      expect(response.headers.get('allow'), method).toBe('POST');
      if (method !== 'HEAD') expect((await response.json()) as Problem).toMatchObject({ type: 'https://openrush.io/problems/method_not_allowed' });
    }
  });

  it('a 500 is logged with its cause (name, message, stack), over HTTP and over MCP, and none of it is answered', async () => {
    const failing: ToolDefinition = {
      path: '/v1/tools/failing',
      operation: {
        operationId: 'failing',
        summary: 'Failing',
        description: 'Always fails.',
        'x-openrush-tool': { name: 'failing', source: 'public_suffix_list' },
        'x-openrush-access': { resource: 'tools', level: 'use' },
        'x-openrush-credits': 1,
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', additionalProperties: false } } } },
        responses: { '200': { description: 'Never.' }, '500': { $ref: '#/components/responses/InternalError' } },
      } as ContractOperation,
      handler: () => {
        throw new RangeError('quota table missing in upstream shard 7');
      },
    };
    const embedded = await startTestServer({ tools: [failing] });
    try {
      const viaHttp = await embedded.call('/v1/tools/failing', jsonInit({}));
      const viaMcp = await embedded.call(
        '/mcp',
        jsonInit({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'failing', arguments: {} } }, { headers: { Accept: MCP_ACCEPT } }),
      );
      for (const response of [viaHttp, viaMcp]) {
        expect(response.status).toBe(500);
        expect(await response.text()).not.toMatch(/quota|shard|RangeError/);
      }
      const failures = embedded.logs.map((line) => JSON.parse(line) as { msg: string; err?: { type: string; message: string; stack: string } });
      const logged = failures.filter((line) => line.msg === 'request failed');
      expect(logged).toHaveLength(2);
      for (const line of logged) {
        expect(line.err).toMatchObject({ type: 'RangeError', message: 'quota table missing in upstream shard 7' });
        expect(line.err!.stack).toMatch(/\n\s+at /);
      }
    } finally {
      await embedded.close();
    }
  });
});
