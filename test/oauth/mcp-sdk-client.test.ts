// An agent signs in by OAuth, end to end, as MCP clients no one here wrote do it: the MCP SDK's own client
// (Client + StreamableHTTPClientTransport with an OAuthClientProvider) against the real server on a real port and a
// real database (SQLite, or PostgreSQL with OPENRUSH_TEST_STORE=postgres). No header is configured: the SDK follows
// the 401 to the protected-resource metadata, registers (RFC 7591), sends the browser to the authorization URL with
// PKCE; Chromium, signed in to the Dashboard, approves on the consent page; a loopback server receives the code; the
// SDK redeems it. Then the tools work, the charge lands on the grant's key, refresh rotates, a replayed refresh
// token kills the grant, revoking the key stops the agent and its next attempt asks for consent again; and what
// must be refused is refused (through the SDK where a client would meet it, raw HTTP otherwise).
import { readFileSync } from 'node:fs';
import { type OAuthClientProvider, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { loadConfig } from '../../server/config.ts';
import { KeyStatus, PermissionMode } from '../../server/credentials.ts';
import { TestClock } from '../helpers/clock.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import {
  authorizeUrl,
  type Callback,
  ConsentBrowser,
  type ConsentChoices,
  expectOAuthError,
  pkce,
  postRegistration,
  redeemCode,
  refresh,
  registerClient,
  startCallbackServer,
} from './flow.ts';

type ApiKey = components['schemas']['ApiKey'];
type UsageRecord = components['schemas']['UsageRecord'];
type LedgerEntry = components['schemas']['LedgerEntry'];

const bundled = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'));
// The price is declared once, in the contract.
const PRICE: number = bundled.paths['/v1/tools/inspect_domain'].post['x-openrush-credits'];
const CLIENT_NAME = 'OpenRush e2e agent';
const ACCESS_TOKEN_SECONDS = loadConfig({}).oauth.accessTokenSeconds;

/**
 * An OAuthClientProvider as an MCP client keeps one, in memory. `onRedirect` is what the client does with the
 * authorization URL (a CLI opens the person's browser); every URL it was asked to open is kept.
 */
class AgentProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens[] = [];
  current: OAuthTokens | undefined;
  verifier = '';
  authorizationUrls: URL[] = [];
  invalidated: string[] = [];
  lastState = '';

  constructor(
    private readonly callback: Callback,
    public onRedirect: (url: URL) => Promise<void> | void,
  ) {}

  get redirectUrl(): string {
    return this.callback.redirectUri;
  }
  get clientMetadata(): OAuthClientMetadata {
    return { client_name: CLIENT_NAME, redirect_uris: [this.callback.redirectUri], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  state(): string {
    this.lastState = crypto.randomUUID();
    return this.lastState;
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(information: OAuthClientInformationMixed) {
    this.client = information;
  }
  tokens() {
    return this.current;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved.push(tokens);
    this.current = tokens;
  }
  async redirectToAuthorization(url: URL) {
    this.authorizationUrls.push(url);
    await this.onRedirect(url);
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery') {
    this.invalidated.push(scope);
    if (scope === 'all' || scope === 'tokens') this.current = undefined;
    if (scope === 'all' || scope === 'client') this.client = undefined;
  }
}

// Each test drives Chromium through the consent page (and the conformance suite a child process): on the shared
// two-core machine that can take longer than the default 20 s; nothing here asserts a duration.
vi.setConfig({ testTimeout: 90_000 });

let server: TestServer;
let clock: TestClock;
let browser: ConsentBrowser;
let person: BrowserContext;
let callback: Callback;
const clients: Client[] = [];

beforeAll(async () => {
  clock = new TestClock();
  server = await startTestServer({
    clock,
    credits: 1000,
    // Refusals are the point of several tests: neither the failed-auth throttle nor the registration limit may
    // turn them into 429s.
    config: { authFailuresPerMinute: 100_000, oauth: { ...loadConfig({}).oauth, registrationsPerHour: 10_000 } },
  });
  browser = await ConsentBrowser.launch();
  person = await browser.signedIn(server, server.account.accountId);
  callback = await startCallbackServer();
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  await callback?.close();
  await browser?.close();
  await server?.close();
});

const mcpUrl = () => new URL(`${server.url}/mcp`);
const approveWith = (choices: ConsentChoices = {}) => (url: URL) => browser.approve(person, url, choices).then(() => undefined);

interface Agent {
  provider: AgentProvider;
  client: Client;
  transport: StreamableHTTPClientTransport;
}

/**
 * What an MCP client does with no credential: connect, meet the 401, sign in (the provider's redirect opens the
 * consent page, the person approves), take the code from its loopback callback, finishAuth, connect again.
 */
async function signInAgent(provider: AgentProvider): Promise<Agent> {
  const first = new Client({ name: 'openrush-e2e-agent', version: '1.0.0' });
  await expect(first.connect(new StreamableHTTPClientTransport(mcpUrl(), { authProvider: provider }))).rejects.toThrow(UnauthorizedError);
  const landed = await callback.next();
  expect(landed.searchParams.get('error'), landed.href).toBeNull();
  expect(landed.searchParams.get('state')).toBe(provider.lastState);
  expect(landed.searchParams.get('iss')).toBe(server.url);
  const transport = new StreamableHTTPClientTransport(mcpUrl(), { authProvider: provider });
  await transport.finishAuth(landed.searchParams.get('code')!);
  const client = new Client({ name: 'openrush-e2e-agent', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return { provider, client, transport };
}

async function keys(): Promise<ApiKey[]> {
  const response = await server.call('/v2/api-keys?limit=200');
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: ApiKey[] }).data;
}

/** The key made by approving `clientId`'s latest grant. */
async function grantKey(clientId: string): Promise<ApiKey> {
  const grants = (await keys()).filter((key) => key.oauth_client?.client_id === clientId);
  expect(grants.length).toBeGreaterThan(0);
  return grants[0]!;
}

async function balance(): Promise<number> {
  return ((await (await server.call('/v1/me/credits')).json()) as { balance: number }).balance;
}

const inspect = (agent: Agent, domain = 'www.example.co.uk') =>
  agent.client.callTool({ name: 'inspect_domain', arguments: { domain } }) as Promise<CallToolResult>;

const clientIdOf = (provider: AgentProvider) => provider.client!.client_id;

describe('the MCP SDK client signs in by OAuth and its calls are the grant key\'s', () => {
  let agent: Agent;

  it('registers, gets consent in the browser, lists the tools and calls inspect_domain: charged to the grant\'s key, the record names the client', async () => {
    const before = await balance();
    agent = await signInAgent(new AgentProvider(callback, approveWith({ budget: 50 })));
    const clientId = clientIdOf(agent.provider);
    expect(clientId).toMatch(/^orc_/);
    // The authorization request the SDK made: PKCE S256 and the resource from the protected-resource metadata.
    const [request] = agent.provider.authorizationUrls;
    expect(request!.origin + request!.pathname).toBe(`${server.url}/oauth/authorize`);
    expect(request!.searchParams.get('code_challenge_method')).toBe('S256');
    expect(request!.searchParams.get('resource')).toBe(`${server.url}/mcp`);
    expect(agent.provider.current!.access_token).toMatch(/^orat_[A-Za-z0-9_-]{43}$/);
    expect(agent.provider.current!.refresh_token).toMatch(/^orrt_[A-Za-z0-9_-]{43}$/);

    const { tools } = await agent.client.listTools();
    expect(tools.map((tool) => tool.name)).toContain('inspect_domain');
    const result = await inspect(agent);
    expect(result.isError, JSON.stringify(result)).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ domain: 'example.co.uk', subdomain: 'www' });

    // The grant is a key of the person's account, named after the client, restricted to the scope, with the budget.
    const key = await grantKey(clientId);
    expect(key).toMatchObject({
      name: `${CLIENT_NAME} via OAuth`,
      status: KeyStatus.ACTIVE,
      permission_mode: PermissionMode.RESTRICTED,
      oauth_client: { client_id: clientId, client_name: CLIENT_NAME, redirect_host: new URL(callback.redirectUri).host },
    });
    expect(key.constraints.budget).toMatchObject({ amount: 50 });

    // The account paid the price once; the ledger's charge names the usage record; the record is the grant key's
    // and names the client.
    expect(await balance()).toBe(before - PRICE);
    const [charge] = (await (await server.call('/v1/me/credits/ledger?limit=1')).json()) as LedgerEntry[];
    expect(charge).toMatchObject({ amount: -PRICE });
    const records = (await (await server.call('/v1/me/usage?limit=10')).json()) as UsageRecord[];
    const record = records.find((candidate) => candidate.id === charge!.usage_id);
    expect(record).toMatchObject({ credential_id: key.api_key_id, oauth_client_id: clientId, tool: 'inspect_domain', credits_charged: PRICE });

    // The key's budget counted it: the agent reads its own key over MCP.
    const status = (await agent.client.callTool({ name: 'get_key_status', arguments: {} })) as CallToolResult;
    expect(status.isError, JSON.stringify(status)).toBeFalsy();
    expect(status.structuredContent).toMatchObject({ budget: { amount: 50, spent: PRICE } });

    // The access token is for /mcp only.
    const elsewhere = await server.call('/v1/me/credits', { key: agent.provider.current!.access_token });
    expect(elsewhere.status).toBe(401);
  });

  it('an expired access token is refreshed by the SDK, and the refresh rotates both tokens', async () => {
    const before = agent.provider.current!;
    const savedBefore = agent.provider.saved.length;
    clock.advance((ACCESS_TOKEN_SECONDS + 1) * 1000);
    // The old access token has expired: /mcp says so.
    const expired = await fetch(mcpUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${before.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toContain('error="invalid_token"');

    // The SDK meets that 401, refreshes, and retries: the call goes through without the person.
    const result = await inspect(agent);
    expect(result.isError, JSON.stringify(result)).toBeFalsy();
    expect(agent.provider.authorizationUrls).toHaveLength(1);
    expect(agent.provider.saved.length).toBe(savedBefore + 1);
    const after = agent.provider.current!;
    expect(after.access_token).not.toBe(before.access_token);
    expect(after.refresh_token).toMatch(/^orrt_/);
    expect(after.refresh_token).not.toBe(before.refresh_token);
    (agent as Agent & { replaced: OAuthTokens }).replaced = before;
  });

  it('a used refresh token presented again kills the grant: its key is revoked, and the SDK client is sent back to consent', async () => {
    const used = (agent as Agent & { replaced: OAuthTokens }).replaced.refresh_token!;
    const clientId = clientIdOf(agent.provider);
    const replayed = await refresh(server.url, { refresh_token: used, client_id: clientId });
    expect(replayed.response.status, JSON.stringify(replayed.body)).toBe(400);
    expect(replayed.body.error).toBe('invalid_grant');
    expect((await grantKey(clientId)).status).toBe(KeyStatus.REVOKED);

    // The live tokens died with it: the SDK's call is a 401, its refresh is refused, and it asks for consent again.
    agent.provider.onRedirect = () => undefined;
    await expect(inspect(agent)).rejects.toThrow(UnauthorizedError);
    expect(agent.provider.authorizationUrls).toHaveLength(2);
    expect(agent.provider.invalidated).toContain('tokens');
  });
});

describe('revoking the grant\'s key stops the agent at its next call', () => {
  it('revoked over the API: 401 on /mcp, and the SDK client\'s next attempt asks for consent again; approving again works', async () => {
    const agent = await signInAgent(new AgentProvider(callback, approveWith()));
    const clientId = clientIdOf(agent.provider);
    expect((await inspect(agent)).isError).toBeFalsy();
    const key = await grantKey(clientId);
    const revoked = await server.call(`/v2/api-keys/${key.api_key_id}/revoke`, { method: 'POST' });
    expect(revoked.status).toBe(200);

    const token = agent.provider.current!.access_token;
    const refused = await fetch(mcpUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('resource_metadata=');

    agent.provider.onRedirect = () => undefined;
    await expect(inspect(agent)).rejects.toThrow(UnauthorizedError);
    expect(agent.provider.authorizationUrls).toHaveLength(2);
    const again = agent.provider.authorizationUrls[1]!;
    expect(again.searchParams.get('client_id')).toBe(clientId);
    expect(again.searchParams.get('resource')).toBe(`${server.url}/mcp`);

    // The person approves again: a new key, and the agent works again.
    await browser.approve(person, again);
    const landed = await callback.next();
    await agent.transport.finishAuth(landed.searchParams.get('code')!);
    expect((await inspect(agent)).isError).toBeFalsy();
    const now = (await keys()).filter((candidate) => candidate.oauth_client?.client_id === clientId);
    expect(now.map((candidate) => candidate.status)).toEqual([KeyStatus.ACTIVE, KeyStatus.REVOKED]);
  });
});

describe('what is refused', () => {
  /** A registered client, a PKCE pair, and a code the person approved in the browser. */
  async function approvedCode(choices: ConsentChoices = {}) {
    const client = await registerClient(server.url, [callback.redirectUri]);
    const pair = pkce();
    const url = authorizeUrl(server.url, { client_id: client.client_id, redirect_uri: callback.redirectUri, challenge: pair.challenge });
    await browser.approve(person, url, choices);
    const landed = await callback.next();
    expect(landed.searchParams.get('error'), landed.href).toBeNull();
    return { client, pair, code: landed.searchParams.get('code')! };
  }

  const redeem = (grant: Awaited<ReturnType<typeof approvedCode>>, changes: { verifier?: string; resource?: string } = {}) =>
    redeemCode(server.url, {
      code: grant.code,
      verifier: changes.verifier ?? grant.pair.verifier,
      client_id: grant.client.client_id,
      redirect_uri: callback.redirectUri,
      resource: changes.resource,
    });

  it('a wrong PKCE verifier: invalid_grant, no tokens', async () => {
    const grant = await approvedCode();
    const { response, body } = await redeem(grant, { verifier: pkce().verifier });
    expect(response.status, JSON.stringify(body)).toBe(400);
    expect(body).toEqual({ error: 'invalid_grant', error_description: expect.any(String) });
  });

  it('a replayed code: the second redemption is invalid_grant, and the tokens of the first stop working', async () => {
    const grant = await approvedCode();
    const first = await redeem(grant);
    expect(first.response.status, JSON.stringify(first.body)).toBe(200);
    expect(first.response.headers.get('cache-control')).toBe('no-store');
    const token = first.body.access_token as string;
    const listTools = () =>
      fetch(mcpUrl(), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
    expect((await listTools()).status).toBe(200);
    const second = await redeem(grant);
    expect(second.response.status).toBe(400);
    expect(second.body.error).toBe('invalid_grant');
    expect((await listTools()).status).toBe(401);
    expect((await grantKey(grant.client.client_id)).status).toBe(KeyStatus.REVOKED);
  });

  it('a resource other than this server\'s /mcp: invalid_target at the authorization endpoint (sent back to the client) and at the token endpoint', async () => {
    const client = await registerClient(server.url, [callback.redirectUri]);
    const pair = pkce();
    const state = 'resource-state';
    const elsewhere = 'https://mcp.example.com/mcp';
    const response = await fetch(authorizeUrl(server.url, { client_id: client.client_id, redirect_uri: callback.redirectUri, challenge: pair.challenge, state, resource: elsewhere }), {
      redirect: 'manual',
    });
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(callback.redirectUri);
    expect(Object.fromEntries(location.searchParams)).toMatchObject({ error: 'invalid_target', state, iss: server.url });
    expect(location.searchParams.has('code')).toBe(false);

    // A code bound to this server's /mcp cannot be redeemed for another resource.
    const grant = await approvedCode();
    const { response: mismatched, body } = await redeem(grant, { resource: elsewhere });
    expect(mismatched.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toBe('invalid_target');
  });

  it('a redirect URI the client did not register: a 400 shown to the person, the browser is not sent there', async () => {
    const client = await registerClient(server.url, [callback.redirectUri]);
    const pair = pkce();
    const stranger = `http://127.0.0.1:${callback.port}/other`;
    const response = await fetch(authorizeUrl(server.url, { client_id: client.client_id, redirect_uri: stranger, challenge: pair.challenge }), { redirect: 'manual' });
    await expectOAuthError(response, 400, 'invalid_request');
    expect(response.headers.get('location')).toBeNull();
  });

  it('registering a redirect URI that is not loopback: invalid_redirect_uri', async () => {
    for (const redirect of ['https://evil.example.com/callback', 'http://192.168.1.20:8080/callback']) {
      await expectOAuthError(await postRegistration(server.url, { client_name: 'Evil', redirect_uris: [redirect] }), 400, 'invalid_redirect_uri');
    }
  });

  it('a token issued for another resource (the same database behind another public URL): 401 invalid_token on that /mcp', async () => {
    const grant = await approvedCode();
    const { body } = await redeem(grant);
    const other = await startTestServer({
      database: { ...server.database, store: server.database.openAnother() },
      sharedDatabase: true,
      clock,
      config: { publicUrl: 'https://mcp.other.example' },
    });
    try {
      const response = await fetch(`${other.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${body.access_token as string}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
    } finally {
      await other.close();
    }
  });

  it('a grant without tools:use (unticked on the consent page): the tool call is 403 insufficient_scope with the scope in the challenge, nothing charged', async () => {
    const before = await balance();
    const agent = await signInAgent(new AgentProvider(callback, approveWith({ untick: ['tools:use'] })));
    const { tools } = await agent.client.listTools();
    expect(tools.map((tool) => tool.name)).toContain('inspect_domain');

    const token = agent.provider.current!.access_token;
    const response = await fetch(mcpUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'inspect_domain', arguments: { domain: 'example.com' } } }),
    });
    expect(response.status).toBe(403);
    const challenge = response.headers.get('www-authenticate')!;
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="tools:use"');
    expect(challenge).toContain(`resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp"`);
    expect((await response.json()) as { type: string }).toMatchObject({ type: expect.stringMatching(/insufficient_scope$/) });

    // The SDK reads that challenge (error="insufficient_scope") and tries to get the scope (its step-up: a refresh,
    // which cannot widen a grant), then gives up with the 403. Without the challenge it would fail at once instead.
    agent.provider.onRedirect = () => undefined;
    const failure = await inspect(agent).then(
      () => 'answered',
      (error: unknown) => String(error),
    );
    expect(failure).toContain('Server returned 403 after trying upscoping');
    expect(await balance()).toBe(before);
  });
});
