// The OAuth authorization server by hand over real HTTP, on a real database (SQLite, or PostgreSQL with
// OPENRUSH_TEST_STORE=postgres): discovery, authorize → consent → code → tokens → refresh rotation → a replayed
// refresh token kills the grant, revocation (RFC 7009), the grant as an API key, and no secret kept or logged.
import { describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { loadConfig } from '../../server/config.ts';
import { authenticateAccessToken } from '../../server/oauth/grants.ts';
import { hashSecret } from '../../server/oauth/tokens.ts';
import {
  serversPerTest,
  approvedCode,
  authorize,
  consentId,
  decide,
  goodRequest,
  type OAuthTokenResponse,
  oauthError,
  pkce,
  postForm,
  readConsent,
  redeem,
  REDIRECT_URI,
  registerClient,
  signInSession,
} from '../helpers/oauth.ts';
import type { TestServer } from '../helpers/server.ts';

type ApiKey = components['schemas']['ApiKey'];

const start = serversPerTest();

async function keyOf(server: TestServer, id: string): Promise<ApiKey> {
  const response = await server.call(`/v2/api-keys/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as ApiKey;
}

async function grantKeyId(server: TestServer, accessToken: string): Promise<string> {
  const result = await authenticateAccessToken(server, accessToken);
  if (!('caller' in result)) throw new Error(`the access token was refused: ${result.failure.detail}`);
  return result.caller.credentialId!;
}

// Many round trips each, on a machine that may be busy: more than the default 20 s.
describe('authorization-server metadata', { timeout: 60_000 }, () => {
  it('is RFC 8414 metadata with this server as issuer, S256 only, iss in responses, and no client ID metadata documents unless allowed', async () => {
    const server = await start();
    const response = await fetch(`${server.url}/.well-known/oauth-authorization-server`);
    expect(response.status).toBe(200);
    const metadata = (await response.json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({
      issuer: server.url,
      authorization_endpoint: `${server.url}/oauth/authorize`,
      token_endpoint: `${server.url}/oauth/token`,
      registration_endpoint: `${server.url}/oauth/register`,
      revocation_endpoint: `${server.url}/oauth/revoke`,
      scopes_supported: ['tools:use'],
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
    });
    expect(metadata).not.toHaveProperty('client_id_metadata_document_supported');
    const cimd = await start({ oauth: { ...loadConfig({}).oauth, clientMetadataDocuments: true } });
    expect(await (await fetch(`${cimd.url}/.well-known/oauth-authorization-server`)).json()).toHaveProperty('client_id_metadata_document_supported', true);
  });

  it('uses OPENRUSH_PUBLIC_URL as the issuer, and is 404 (with every OAuth endpoint) when the authorization server is off or another one is named', async () => {
    const server = await start({ publicUrl: 'https://api.example.com' });
    expect(await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()).toMatchObject({
      issuer: 'https://api.example.com',
      token_endpoint: 'https://api.example.com/oauth/token',
    });
    const off = await start({ oauth: { ...loadConfig({}).oauth, enabled: false } });
    const elsewhere = await start({ authorizationServers: ['https://auth.example.com'] });
    for (const target of [off, elsewhere]) {
      expect((await fetch(`${target.url}/.well-known/oauth-authorization-server`)).status).toBe(404);
      const clientId = await registerClient(target);
      expect((await authorize(target, goodRequest(target, clientId, pkce().challenge))).status).toBe(404);
      expect((await postForm(target, '/oauth/token', { grant_type: 'refresh_token', refresh_token: 'x', client_id: clientId })).status).toBe(404);
    }
  });
});

// Many round trips each, on a machine that may be busy: more than the default 20 s.
describe('the whole flow', { timeout: 60_000 }, () => {
  it('authorize → consent → code → tokens → refresh rotation; a replayed refresh token revokes the grant; nothing secret stored or logged', async () => {
    const server = await start();
    const clientId = await registerClient(server, 'Claude Code');
    const session = await signInSession(server);
    const { verifier, challenge } = pkce();

    // The browser goes to the authorization endpoint and is sent to the consent page.
    const started = await authorize(server, goodRequest(server, clientId, challenge));
    expect(started.headers.get('cache-control')).toBe('no-store');
    const id = consentId(started);

    // The consent page reads it: who asks, where the browser goes back, which scopes.
    const consent = await readConsent(server, session, id);
    expect(consent).toMatchObject({
      authorization_id: id,
      client: { client_id: clientId, client_name: 'Claude Code', redirect_host: '127.0.0.1:53123' },
      scopes: [{ scope: 'tools:use', description: expect.stringContaining('metered tools') }],
      resource: `${server.url}/mcp`,
    });
    expect(consent.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // Approved with a budget and a rate limit: the browser goes back with the code, state and iss.
    const approved = await decide(server, session, id, 'approve', {
      csrf_token: consent.csrf_token,
      scopes: ['tools:use'],
      permission_mode: 3,
      budget: { period: 1, amount: 50 },
      rate_limit: { requests_per_minute: 30 },
    });
    expect(approved.status).toBe(200);
    expect(approved.headers.get('cache-control')).toBe('no-store');
    const redirect = new URL(((await approved.json()) as { redirect_to: string }).redirect_to);
    expect(redirect.origin + redirect.pathname).toBe(REDIRECT_URI);
    expect(redirect.searchParams.get('state')).toBe('state-123');
    expect(redirect.searchParams.get('iss')).toBe(server.url);
    const code = redirect.searchParams.get('code')!;
    expect(code).toMatch(/^orac_[A-Za-z0-9_-]{43}$/);

    // The code for tokens.
    const exchanged = await redeem(server, clientId, code, verifier);
    expect(exchanged.status).toBe(200);
    expect(exchanged.headers.get('cache-control')).toBe('no-store');
    const tokens = (await exchanged.json()) as OAuthTokenResponse;
    expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'tools:use' });
    expect(tokens.access_token).toMatch(/^orat_[A-Za-z0-9_-]{43}$/);
    expect(tokens.refresh_token).toMatch(/^orrt_[A-Za-z0-9_-]{43}$/);

    // The grant is an API key of the account, named after the client, restricted to the scope, with the constraints.
    const keyId = await grantKeyId(server, tokens.access_token);
    const key = await keyOf(server, keyId);
    expect(key).toMatchObject({
      name: 'Claude Code via OAuth',
      permission_mode: 3,
      access: { tools: 'use' },
      status: 1,
      constraints: { budget: { period: 1, amount: 50 }, rate_limit: { requests_per_minute: 30 } },
      oauth_client: { client_id: clientId, client_name: 'Claude Code', redirect_host: '127.0.0.1:53123' },
    });
    const listed = (await (await server.call('/v2/api-keys')).json()) as { data: ApiKey[] };
    expect(listed.data.find((entry) => entry.api_key_id === keyId)?.oauth_client?.client_id).toBe(clientId);
    expect(listed.data.find((entry) => entry.api_key_id === server.account.credentialId)?.oauth_client).toBeNull();
    const authenticated = await authenticateAccessToken(server, tokens.access_token);
    expect('caller' in authenticated && authenticated.caller).toMatchObject({
      accountId: server.account.accountId,
      authSource: 'api_key',
      oauth: { clientId, scopes: ['tools:use'], resource: `${server.url}/mcp` },
    });

    // Refresh rotates: a new pair, for the same key.
    const refreshed = await postForm(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId });
    expect(refreshed.status).toBe(200);
    expect(refreshed.headers.get('cache-control')).toBe('no-store');
    const rotated = (await refreshed.json()) as OAuthTokenResponse;
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
    expect(rotated.access_token).not.toBe(tokens.access_token);
    expect(await grantKeyId(server, rotated.access_token)).toBe(keyId);

    // A client that puts a code or token in a URL by mistake does not get it logged (base64url, so '-' and '_' too).
    for (const secret of [code, rotated.refresh_token]) {
      expect((await fetch(`${server.url}/oauth/token?code=${secret}`, { method: 'POST' })).status).toBe(400);
      expect((await fetch(`${server.url}/v1/${secret}`)).status).toBe(404);
    }
    // Nothing secret in the database or the logs: hashes only.
    const dump = await server.database.dumpText();
    for (const secret of [code, tokens.access_token, tokens.refresh_token, rotated.access_token, rotated.refresh_token, consent.csrf_token, session]) {
      expect(dump).not.toContain(secret);
      expect(server.logs.join('\n')).not.toContain(secret);
    }
    expect(dump).toContain(hashSecret(rotated.refresh_token));

    // The used refresh token presented again: refused, and the whole grant is revoked (its key, so every token).
    const replay = await postForm(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId });
    expect(await oauthError(replay, 400, 'invalid_grant')).toMatch(/already used/);
    expect((await keyOf(server, keyId)).status).toBe(3);
    const after = await authenticateAccessToken(server, rotated.access_token);
    expect('failure' in after && after.failure.detail).toMatch(/revoked/);
    const next = await postForm(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: rotated.refresh_token, client_id: clientId });
    expect(await oauthError(next, 400, 'invalid_grant')).toMatch(/revoked/);
  });

  it('revokes (RFC 7009): a refresh token revokes the grant, an access token only itself, an unknown token is 200', async () => {
    const server = await start();
    const clientId = await registerClient(server);
    const session = await signInSession(server);

    const first = await approvedCode(server, session, clientId);
    const one = (await (await redeem(server, clientId, first.code, first.verifier)).json()) as OAuthTokenResponse;
    const again = await postForm(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: one.refresh_token, client_id: clientId });
    const two = (await again.json()) as OAuthTokenResponse;
    // An access token: that token stops, the grant and its other tokens go on.
    const revokedAccess = await postForm(server, '/oauth/revoke', { token: one.access_token, token_type_hint: 'access_token', client_id: clientId });
    expect(revokedAccess.status).toBe(200);
    expect('failure' in (await authenticateAccessToken(server, one.access_token))).toBe(true);
    const keyId = await grantKeyId(server, two.access_token);
    // Unknown tokens, or another's: 200, nothing happens.
    expect((await postForm(server, '/oauth/revoke', { token: 'orrt_unknown' })).status).toBe(200);
    expect((await postForm(server, '/oauth/revoke', { token: one.access_token })).status).toBe(200);
    expect((await keyOf(server, keyId)).status).toBe(1);
    // A refresh token: the whole grant.
    expect((await postForm(server, '/oauth/revoke', { token: two.refresh_token, client_id: clientId })).status).toBe(200);
    expect((await keyOf(server, keyId)).status).toBe(3);
    expect('failure' in (await authenticateAccessToken(server, two.access_token))).toBe(true);
  });

  it('stops a grant whose key is revoked or disabled in API access, at the next request, for access and refresh tokens', async () => {
    const server = await start();
    const clientId = await registerClient(server);
    const session = await signInSession(server);
    const { code, verifier } = await approvedCode(server, session, clientId);
    const tokens = (await (await redeem(server, clientId, code, verifier)).json()) as OAuthTokenResponse;
    const keyId = await grantKeyId(server, tokens.access_token);
    const disabled = await server.call(`/v2/api-keys/${keyId}`, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ status: 2 }) });
    expect(disabled.status).toBe(200);
    const refused = await authenticateAccessToken(server, tokens.access_token);
    expect('failure' in refused && refused.failure.detail).toMatch(/disabled/);
    const refresh = await postForm(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId });
    expect(await oauthError(refresh, 400, 'invalid_grant')).toMatch(/disabled/);
  });

  it('denies: the browser goes back with access_denied, state and iss, and no key is made', async () => {
    const server = await start();
    const clientId = await registerClient(server);
    const session = await signInSession(server);
    const id = consentId(await authorize(server, goodRequest(server, clientId, pkce().challenge)));
    const consent = await readConsent(server, session, id);
    const keysBefore = await server.database.countRows('credentials');
    const denied = await decide(server, session, id, 'deny', { csrf_token: consent.csrf_token });
    expect(denied.status).toBe(200);
    const redirect = new URL(((await denied.json()) as { redirect_to: string }).redirect_to);
    expect(Object.fromEntries(redirect.searchParams)).toMatchObject({ error: 'access_denied', state: 'state-123', iss: server.url });
    expect(redirect.searchParams.has('code')).toBe(false);
    expect(await server.database.countRows('credentials')).toBe(keysBefore);
  });

  it('asks for every scope when none is given, and makes a READ_ONLY key when chosen', async () => {
    const server = await start();
    const clientId = await registerClient(server);
    const session = await signInSession(server);
    const { challenge } = pkce();
    const id = consentId(await authorize(server, goodRequest(server, clientId, challenge, { scope: undefined })));
    const consent = await readConsent(server, session, id);
    expect(consent.scopes.map((entry) => entry.scope)).toEqual(['tools:use']);
    const { code, verifier } = await approvedCode(server, session, clientId, { permission_mode: 2 });
    const tokens = (await (await redeem(server, clientId, code, verifier)).json()) as OAuthTokenResponse;
    expect((await keyOf(server, await grantKeyId(server, tokens.access_token))).permission_mode).toBe(2);
    // A read-only grant holds no scope that spends credits, and its token says so.
    expect(tokens.scope).toBe('');
  });

  it('purges authorizations, codes and tokens a day past their expiry (store maintenance), and keeps the live ones', async () => {
    const server = await start();
    const clientId = await registerClient(server);
    const session = await signInSession(server);
    const { code, verifier } = await approvedCode(server, session, clientId);
    const old = (await (await redeem(server, clientId, code, verifier)).json()) as OAuthTokenResponse;
    // 31 days on, the first grant's tokens are past their expiry by more than a day; a new grant's are live.
    server.clock.advance(31 * 86_400_000 + 60_000);
    const later = await signInSession(server); // the first session has ended by now
    const fresh = await approvedCode(server, later, clientId);
    const live = (await (await redeem(server, clientId, fresh.code, fresh.verifier)).json()) as OAuthTokenResponse;
    consentId(await authorize(server, goodRequest(server, clientId, pkce().challenge)));
    const counts = async () =>
      Object.fromEntries(await Promise.all(['oauth_authorizations', 'oauth_codes', 'oauth_tokens'].map(async (table) => [table, await server.database.countRows(table)])));
    expect(await counts()).toEqual({ oauth_authorizations: 3, oauth_codes: 2, oauth_tokens: 4 });
    await server.store.maintain(server.clock.now(), {});
    expect(await counts()).toEqual({ oauth_authorizations: 2, oauth_codes: 1, oauth_tokens: 2 });
    expect('caller' in (await authenticateAccessToken(server, live.access_token))).toBe(true);
    expect('failure' in (await authenticateAccessToken(server, old.access_token))).toBe(true);
  });
});
