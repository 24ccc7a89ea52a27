// POST /oauth/register (RFC 7591) over real HTTP on a real database: public clients with loopback redirect URIs,
// more only where the operator allows it, OAuth errors, a per-address limit, and nothing when the built-in
// authorization server is off.
import { request } from 'node:http';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../server/config.ts';
import { registrantOf } from '../../server/http/routes/oauth-register.ts';
import { findClient } from '../../server/oauth/clients.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(oauth: Partial<Config['oauth']> = {}, config: Partial<Config> = {}): Promise<TestServer> {
  server = await startTestServer({ config: { ...config, oauth: { ...loadConfig({}).oauth, ...oauth } } });
  return server;
}

function register(body: unknown): Promise<Response> {
  return server!.call('/oauth/register', jsonInit(body, { key: null }));
}

async function oauthError(response: Response): Promise<{ error: string; error_description: string }> {
  expect(response.status).toBe(400);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  const body = (await response.json()) as { error: string; error_description: string };
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
  return body;
}

// Each test starts a server on a fresh database: on a busy machine (PostgreSQL) that alone can take seconds.
describe('POST /oauth/register', { timeout: 60_000 }, () => {
  it('registers a public client with a loopback redirect URI, without a credential, and keeps it', async () => {
    await start();
    const response = await register({
      client_name: 'Claude Code',
      redirect_uris: ['http://localhost:53123/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code', 'token'],
      // Asked for, answered with none (RFC 7591 §3.2.1 lets the server replace what it does not support).
      token_endpoint_auth_method: 'client_secret_basic',
      client_uri: 'https://claude.ai',
      software_id: 'claude-code',
      software_version: '2.1.0',
      // Metadata this server does not use is ignored (RFC 7591 §2).
      jwks_uri: 'https://claude.ai/jwks.json',
      tos_uri: 'https://claude.ai/tos',
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const client = (await response.json()) as Record<string, unknown>;
    expect(client).toEqual({
      client_id: expect.stringMatching(/^orc_[0-9A-HJKMNP-TV-Z]{26}$/),
      client_id_issued_at: expect.any(Number),
      client_name: 'Claude Code',
      client_uri: 'https://claude.ai',
      redirect_uris: ['http://localhost:53123/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    expect(Math.abs((client.client_id_issued_at as number) - Date.now() / 1000)).toBeLessThan(60);
    // The authorization endpoint finds it, with its redirect URIs, in the database.
    const found = await findClient({ store: server!.store, clock: server!.clock, config: loadConfig({}), logger: silentLogger }, client.client_id as string);
    expect(found).toEqual({
      client: expect.objectContaining({ id: client.client_id, name: 'Claude Code', redirect_uris: ['http://localhost:53123/callback'], source: 'registered', software_id: 'claude-code' }),
    });
    expect(await server!.database.countRows('oauth_clients')).toBe(1);
  });

  it('names a client that gives no name "MCP client"', async () => {
    await start();
    const response = await register({ redirect_uris: ['http://127.0.0.1:8976/cb', 'http://[::1]:8976/cb'] });
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ client_name: 'MCP client', redirect_uris: ['http://127.0.0.1:8976/cb', 'http://[::1]:8976/cb'] });
  });

  it.each([
    ['https://evil.example/callback', /is not allowed: a redirect URI must be a loopback URL .*OPENRUSH_OAUTH_REDIRECT_URI_PREFIXES/],
    ['http://evil.example:8080/callback', /is not allowed/],
    ['http://192.168.1.5:8080/callback', /is not allowed/],
    ['https://localhost:8080/callback', /is not allowed/],
    ['http://localhost.evil.example:8080/callback', /is not allowed/],
    ['http://localhost:8080/callback#done', /has a fragment/],
    ['http://user:pw@localhost:8080/callback', /user name or password/],
    ['javascript:alert(1)', /is not allowed/],
    ['cursor://anysphere.cursor-retrieval/oauth/callback', /is not allowed/],
    ['/callback', /is not an absolute URI/],
  ])('refuses the redirect URI %s with invalid_redirect_uri and stores nothing', async (uri, reason) => {
    await start();
    const body = await oauthError(await register({ client_name: 'X', redirect_uris: ['http://localhost:1/ok', uri] }));
    expect(body.error).toBe('invalid_redirect_uri');
    expect(body.error_description).toMatch(reason);
    expect(await server!.database.countRows('oauth_clients')).toBe(0);
  });

  it('accepts redirect URIs under the operator\'s prefixes (a web client, a desktop app\'s scheme), and no others', async () => {
    await start({ redirectUriPrefixes: ['https://claude.ai/api/mcp/auth_callback', 'cursor://'] });
    expect((await register({ client_name: 'Claude', redirect_uris: ['https://claude.ai/api/mcp/auth_callback'] })).status).toBe(201);
    expect((await register({ client_name: 'Cursor', redirect_uris: ['cursor://anysphere.cursor-retrieval/oauth/user-openrush/callback'] })).status).toBe(201);
    const refused = await oauthError(await register({ client_name: 'Other', redirect_uris: ['https://claude.ai.evil.example/api/mcp/auth_callback'] }));
    expect(refused.error).toBe('invalid_redirect_uri');
    expect(refused.error_description).toContain('start with "https://claude.ai/api/mcp/auth_callback" or "cursor://"');
  });

  it.each([
    [{ client_name: 'Claude\u202eedoC', redirect_uris: ['http://localhost:1/cb'] }, /bidirectional/],
    [{ client_name: 'Claude\nCode', redirect_uris: ['http://localhost:1/cb'] }, /control characters/],
    [{ client_name: '   ', redirect_uris: ['http://localhost:1/cb'] }, /must not be empty/],
    [{ client_uri: 'javascript:alert(1)', redirect_uris: ['http://localhost:1/cb'] }, /client_uri must be an http or https URL/],
  ])('refuses metadata it cannot show honestly with invalid_client_metadata (%j)', async (metadata, reason) => {
    await start();
    const body = await oauthError(await register(metadata));
    expect(body.error).toBe('invalid_client_metadata');
    expect(body.error_description).toMatch(reason);
  });

  it('answers a request the contract refuses as an OAuth invalid_request', async () => {
    await start();
    const body = await oauthError(await register({ client_name: 'No redirect' }));
    expect(body.error).toBe('invalid_request');
    expect(body.error_description).toMatch(/redirect_uris/);
  });

  it('limits registrations per client address: past the limit 429 with Retry-After; another address still registers', async () => {
    await start({ registrationsPerHour: 3 });
    for (let i = 0; i < 3; i++) expect((await register({ redirect_uris: [`http://localhost:${1000 + i}/cb`] })).status).toBe(201);
    const limited = await register({ redirect_uris: ['http://localhost:2000/cb'] });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(await limited.json()).toMatchObject({ status: 429, detail: expect.stringContaining('3 OAuth clients per hour') });
    // Refused attempts count too: an address past the limit stays refused.
    expect((await register({ redirect_uris: ['https://evil.example/cb'] })).status).toBe(429);
    expect(await server!.database.countRows('oauth_clients')).toBe(3);
    // Another client address has its own count.
    expect(await postFrom('127.0.0.2', `${server!.url}/oauth/register`, { redirect_uris: ['http://localhost:2001/cb'] })).toBe(201);
  });

  it('is not there when the built-in authorization server is off', async () => {
    await start({ enabled: false });
    const response = await register({ redirect_uris: ['http://localhost:1/cb'] });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await server!.database.countRows('oauth_clients')).toBe(0);
  });

  it('is not there when another authorization server is configured', async () => {
    await start({}, { authorizationServers: ['https://auth.example.com'] });
    const response = await register({ redirect_uris: ['http://localhost:1/cb'] });
    expect(response.status).toBe(404);
    expect(await server!.database.countRows('oauth_clients')).toBe(0);
  });
});

describe('registrantOf', () => {
  it('counts an IPv4 address alone, an IPv6 address with the rest of its /64, and an IPv4-mapped address as IPv4', () => {
    expect(registrantOf('203.0.113.7')).toBe('203.0.113.7');
    expect(registrantOf('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(registrantOf('2001:db8:1:2:bbbb::9')).toBe(registrantOf('2001:db8:1:2:aaaa::1'));
    expect(registrantOf('2001:db8:1:3::1')).not.toBe(registrantOf('2001:db8:1:2::1'));
    expect(registrantOf('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(registrantOf(undefined)).toBe('unknown');
  });
});

const silentLogger = pino({ level: 'silent' });

/** POSTs JSON from another local address than fetch uses (127.0.0.1), to be another client. */
function postFrom(localAddress: string, url: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = request(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, localAddress }, (answer) => {
      answer.resume();
      answer.on('end', () => resolve(answer.statusCode!));
    });
    outgoing.on('error', reject);
    outgoing.end(JSON.stringify(body));
  });
}
