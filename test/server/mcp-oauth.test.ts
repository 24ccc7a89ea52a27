// /mcp as an OAuth protected resource (issue 17): this server's own access tokens (`orat_…`, issued by
// server/oauth/grants.ts into the real store) on /mcp through the MCP SDK's own client, refused anywhere else and
// when bound to another resource; Supabase session tokens refused there; 403 insufficient_scope for a tool call
// without the scope it needs; the protected-resource metadata at both paths, and none with OAuth off.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { type Config, loadConfig } from '../../server/config.ts';
import { parseCsv } from '../../server/verify.ts';
import { expectProblem } from '../helpers/api-keys.ts';
import { issueGrant } from '../helpers/oauth-grant.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

type UsageRecord = components['schemas']['UsageRecord'];

const MCP_ACCEPT = 'application/json, text/event-stream';
const listTools = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
const callInspect = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'inspect_domain', arguments: { domain: 'example.com' } } });

let server: TestServer;
let config: Config;
const clients: Client[] = [];

beforeAll(async () => {
  config = { ...loadConfig({}), authFailuresPerMinute: 100_000 };
  server = await startTestServer({ config });
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await server?.close();
});

function postMcp(target: TestServer, token: string, body = listTools): Promise<Response> {
  return fetch(`${target.url}/mcp`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: MCP_ACCEPT },
    body,
  });
}

async function usageOfKey(keyId: string): Promise<UsageRecord[]> {
  const response = await server.call(`/v1/me/usage?limit=500&credential_id=${keyId}`);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as UsageRecord[];
}

describe('OAuth access tokens on /mcp', () => {
  it("the MCP SDK's client lists and calls tools with an access token; the charge lands on the grant's key", async () => {
    const grant = await issueGrant(server, config);
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${grant.accessToken}` } } });
    const client = new Client({ name: 'oauth-agent', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('inspect_domain');
    const before = (await server.store.getBalance(server.account.accountId))!;
    const result = (await client.callTool({ name: 'inspect_domain', arguments: { domain: 'example.com' } })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect(await server.store.getBalance(server.account.accountId)).toBeLessThan(before);
    const records = await usageOfKey(grant.keyId);
    const call = records.find((record) => record.tool === 'inspect_domain')!;
    expect(call).toMatchObject({ credential_id: grant.keyId, auth_source: 'api_key', channel: 'mcp', status_code: 200, oauth_client_id: grant.clientId });
    expect(call.credits_charged).toBeGreaterThan(0);
    // Every record of the grant names the client (initialize and tools/list too); an API key's names none.
    expect(new Set(records.map((record) => record.oauth_client_id))).toEqual(new Set([grant.clientId]));
    const keyed = await server.call('/v1/me/usage?limit=5');
    expect(((await keyed.json()) as UsageRecord[]).filter((record) => record.credential_id === server.account.credentialId).map((record) => record.oauth_client_id)).not.toContain(grant.clientId);
    // The CSV export has the column, last, filled for the grant's records.
    const csv = await (await server.call(`/v1/me/usage/export?credential_id=${grant.keyId}`)).text();
    const [header, ...rows] = parseCsv(csv);
    expect(header!.at(-1)).toBe('oauth_client_id');
    expect(rows.length).toBe(records.length);
    expect(new Set(rows.map((row) => row.at(-1)))).toEqual(new Set([grant.clientId]));
  });

  it('is refused (401 invalid_token) on every operation but /mcp', async () => {
    const grant = await issueGrant(server, config);
    for (const path of ['/v1/me', '/v1/me/credits', '/v2/api-keys']) {
      const response = await server.call(path, { key: grant.accessToken });
      const problem = await expectProblem(response, 401);
      expect(problem.detail).toBe('OAuth access tokens are accepted on /mcp only: use an API key here.');
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="openrush", error="invalid_token"/);
    }
    const tool = await server.call('/v1/tools/inspect_domain', {
      key: grant.accessToken,
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ domain: 'example.com' }),
    });
    await expectProblem(tool, 401);
    // Nothing ran on the grant's key.
    expect(await usageOfKey(grant.keyId)).toEqual([]);
  });

  it("a token bound to another resource is 401 invalid_token on /mcp, and the challenge names /mcp's metadata", async () => {
    const grant = await issueGrant(server, config, { issuer: 'https://elsewhere.example.com' });
    const response = await postMcp(server, grant.accessToken);
    const problem = await expectProblem(response, 401);
    expect(problem.detail).toContain('issued for https://elsewhere.example.com/mcp');
    const challenge = response.headers.get('www-authenticate')!;
    expect(challenge).toMatch(/^Bearer realm="openrush", error="invalid_token", error_description="[^"]*", /);
    expect(challenge).toContain(`resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp", scope="tools:use"`);
  });

  it("revoking the grant's key stops its access token at the next request", async () => {
    const grant = await issueGrant(server, config);
    expect((await postMcp(server, grant.accessToken)).status).toBe(200);
    expect((await server.call(`/v2/api-keys/${grant.keyId}/revoke`, { method: 'POST' })).status).toBe(200);
    const refused = await postMcp(server, grant.accessToken);
    await expectProblem(refused, 401);
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it("a tools/call without the scope it needs is 403 insufficient_scope naming the scope; recorded, nothing charged", async () => {
    const grant = await issueGrant(server, config, { scopes: [] });
    // Listing needs no scope.
    expect((await postMcp(server, grant.accessToken)).status).toBe(200);
    const before = await server.store.getBalance(server.account.accountId);
    const response = await postMcp(server, grant.accessToken, callInspect);
    const problem = await expectProblem(response, 403);
    expect(problem.type).toBe('https://openrush.io/problems/insufficient_scope');
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer error="insufficient_scope", scope="tools:use", resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp"`,
    );
    expect(await server.store.getBalance(server.account.accountId)).toBe(before);
    const record = (await usageOfKey(grant.keyId)).find((r) => r.rpc_method === 'tools/call')!;
    expect(record).toMatchObject({ status_code: 403, error_type: 'insufficient_scope', tool: 'inspect_domain', credits_charged: 0, oauth_client_id: grant.clientId });
  });

  it('an API key keeps working on /mcp (headless use)', async () => {
    expect((await postMcp(server, server.account.key)).status).toBe(200);
  });
});

describe('the protected-resource metadata and OAuth turned off', () => {
  it('is served at /.well-known/oauth-protected-resource/mcp and at the root, naming this server as the authorization server', async () => {
    const atMcp = await fetch(`${server.url}/.well-known/oauth-protected-resource/mcp`);
    expect(atMcp.status).toBe(200);
    const document = await atMcp.json();
    expect(document).toEqual({
      resource: `${server.url}/mcp`,
      authorization_servers: [server.url],
      scopes_supported: ['tools:use'],
      bearer_methods_supported: ['header'],
      resource_name: 'OpenRush API',
    });
    expect(await (await fetch(`${server.url}/.well-known/oauth-protected-resource`)).json()).toEqual(document);
  });

  it('with OPENRUSH_OAUTH=off: no metadata (404), a plain challenge on /mcp, and access tokens refused', async () => {
    const offConfig = { ...loadConfig({ OPENRUSH_OAUTH: 'off' }), authFailuresPerMinute: 100_000 };
    const off = await startTestServer({ config: offConfig, database: server.database, sharedDatabase: true });
    try {
      // A token issued while OAuth was on (same database).
      const grant = await issueGrant(server, config);
      for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
        await expectProblem(await fetch(`${off.url}${path}`), 404);
      }
      const anonymous = await fetch(`${off.url}/mcp`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: listTools });
      await expectProblem(anonymous, 401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="openrush"');
      const refused = await postMcp(off, grant.accessToken);
      const problem = await expectProblem(refused, 401);
      expect(problem.detail).toMatch(/authorization server is turned off/);
      expect((await postMcp(off, server.account.key)).status).toBe(200);
    } finally {
      await off.close();
    }
  });
});
