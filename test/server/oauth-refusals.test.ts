// Every refusal of the OAuth flows, over real HTTP on a real database: what the client (or the person) is told,
// and that nothing was granted. A wrong verifier, a replayed code, a mismatched resource, a redirect URI that is
// not the registered one, a csrf token or session that is not the one, a decision made twice, and expiry.
import { describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { authenticateAccessToken } from '../../server/oauth/grants.ts';
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
  registerClient,
  signInSession,
  withCookie,
} from '../helpers/oauth.ts';
import type { TestServer } from '../helpers/server.ts';

type ApiKey = components['schemas']['ApiKey'];
type Problem = components['schemas']['Problem'];

const start = serversPerTest();

async function setup() {
  const server = await start();
  const clientId = await registerClient(server);
  const session = await signInSession(server);
  return { server, clientId, session };
}

/** The redirect back to the client: its error, error_description, state and iss. */
async function redirectedError(response: Response, label = ''): Promise<Record<string, string>> {
  expect(response.status, `${label} ${response.status === 302 ? '' : await response.text()}`).toBe(302);
  const location = new URL(response.headers.get('location')!);
  expect(location.origin + location.pathname).toBe('http://127.0.0.1:53123/callback');
  return Object.fromEntries(location.searchParams);
}

async function keyStatus(server: TestServer, keyId: string): Promise<number> {
  return ((await (await server.call(`/v2/api-keys/${keyId}`)).json()) as ApiKey).status;
}

async function grantKeys(server: TestServer): Promise<ApiKey[]> {
  const listed = (await (await server.call('/v2/api-keys')).json()) as { data: ApiKey[] };
  return listed.data.filter((key) => key.oauth_client !== null);
}

// Many round trips each, on a machine that may be busy: more than the default 20 s.
describe('the authorization endpoint', { timeout: 60_000 }, () => {
  it('never redirects to an unchecked place: an unknown client or a redirect URI not registered exactly is a 400 OAuth error', async () => {
    const { server, clientId } = await setup();
    const { challenge } = pkce();
    await oauthError(await authorize(server, goodRequest(server, 'orc_01KW1WT5G0S1V3Q93S90MB6D3B', challenge)), 400, 'invalid_client');
    await oauthError(await authorize(server, goodRequest(server, clientId, challenge, { client_id: undefined })), 400, 'invalid_request');
    for (const redirect of ['http://127.0.0.1:53123/callback/', 'http://127.0.0.1:53124/callback', 'http://127.0.0.1:53123/callback?x=1', 'https://evil.example/cb', undefined]) {
      const response = await authorize(server, goodRequest(server, clientId, challenge, { redirect_uri: redirect }));
      expect(response.headers.get('location')).toBeNull();
      await oauthError(response, 400, 'invalid_request');
    }
  });

  it('sends every other refusal back to the client with error, state and iss: response_type, PKCE, scope, resource', async () => {
    const { server, clientId } = await setup();
    const { challenge } = pkce();
    const cases: Array<[Record<string, string | undefined>, string]> = [
      [{ response_type: 'token' }, 'unsupported_response_type'],
      [{ code_challenge: undefined }, 'invalid_request'],
      [{ code_challenge_method: 'plain' }, 'invalid_request'],
      [{ code_challenge_method: undefined }, 'invalid_request'],
      [{ code_challenge: 'short' }, 'invalid_request'],
      [{ scope: 'tools:use admin:write' }, 'invalid_scope'],
      [{ resource: undefined }, 'invalid_target'],
      [{ resource: 'https://other.example/mcp' }, 'invalid_target'],
      [{ resource: `${server.url}/mcp/` }, 'invalid_target'],
      [{ resource: `${server.url}/v1` }, 'invalid_target'],
    ];
    for (const [overrides, error] of cases) {
      const answer = await redirectedError(await authorize(server, goodRequest(server, clientId, challenge, overrides)), JSON.stringify(overrides));
      expect(answer, JSON.stringify(overrides)).toMatchObject({ error, state: 'state-123', iss: server.url });
      expect(answer.error_description).toBeTruthy();
    }
    // Refusals keep nothing for the consent page.
    expect(await server.database.countRows('oauth_authorizations')).toBe(0);
  });
});

// Many round trips each, on a machine that may be busy: more than the default 20 s.
describe('the consent', { timeout: 60_000 }, () => {
  it('binds the authorization to the session that reads it first: another session gets 404 and cannot decide it', async () => {
    const { server, clientId, session } = await setup();
    const other = await signInSession(server);
    const id = consentId(await authorize(server, goodRequest(server, clientId, pkce().challenge)));
    const consent = await readConsent(server, session, id);
    expect((await withCookie(server, `/v1/oauth/authorizations/${id}`, other)).status).toBe(404);
    const stolen = await decide(server, other, id, 'approve', { csrf_token: consent.csrf_token, scopes: ['tools:use'] });
    expect(stolen.status).toBe(403);
    expect(((await stolen.json()) as Problem).detail).toMatch(/another Dashboard session/);
    expect(await grantKeys(server)).toEqual([]);
    // The session it belongs to still decides it.
    expect((await decide(server, session, id, 'approve', { csrf_token: consent.csrf_token, scopes: ['tools:use'] })).status).toBe(200);
  });

  it('refuses a csrf token that is not the one this session was given (403), and one replaced by a later read', async () => {
    const { server, clientId, session } = await setup();
    const id = consentId(await authorize(server, goodRequest(server, clientId, pkce().challenge)));
    const first = await readConsent(server, session, id);
    for (const csrf of ['A'.repeat(43), '']) {
      const response = await decide(server, session, id, 'approve', { csrf_token: csrf, scopes: ['tools:use'] });
      expect(response.status).toBe(403);
      expect(((await response.json()) as Problem).detail).toMatch(/csrf_token/);
    }
    const second = await readConsent(server, session, id);
    expect((await decide(server, session, id, 'deny', { csrf_token: first.csrf_token })).status).toBe(403);
    expect(await grantKeys(server)).toEqual([]);
    expect((await decide(server, session, id, 'deny', { csrf_token: second.csrf_token })).status).toBe(200);
  });

  it('decides once: a second approval or denial is 404, and only one key is made', async () => {
    const { server, clientId, session } = await setup();
    const id = consentId(await authorize(server, goodRequest(server, clientId, pkce().challenge)));
    const consent = await readConsent(server, session, id);
    const body = { csrf_token: consent.csrf_token, scopes: ['tools:use'] };
    const both = await Promise.all([decide(server, session, id, 'approve', body), decide(server, session, id, 'approve', body)]);
    expect(both.map((response) => response.status).sort()).toEqual([200, 404]);
    expect((await decide(server, session, id, 'deny', { csrf_token: consent.csrf_token })).status).toBe(404);
    expect((await withCookie(server, `/v1/oauth/authorizations/${id}`, session)).status).toBe(404);
    expect(await grantKeys(server)).toHaveLength(1);
  });

  it('refuses scopes that were not asked for (400) and needs the Dashboard session cookie, not an API key', async () => {
    const { server, clientId, session } = await setup();
    const id = consentId(await authorize(server, goodRequest(server, clientId, pkce().challenge, { scope: 'tools:use' })));
    const consent = await readConsent(server, session, id);
    const extra = await decide(server, session, id, 'approve', { csrf_token: consent.csrf_token, scopes: ['tools:use', 'keys:write'] });
    expect(extra.status).toBe(400);
    const withKey = await server.call(`/v1/oauth/authorizations/${id}`);
    expect(withKey.status).toBe(401);
    expect(await grantKeys(server)).toEqual([]);
  });

  it('expires a pending authorization after 10 minutes', async () => {
    const { server, clientId, session } = await setup();
    const id = consentId(await authorize(server, goodRequest(server, clientId, pkce().challenge)));
    const consent = await readConsent(server, session, id);
    server.clock.advance(10 * 60_000 + 1);
    expect((await withCookie(server, `/v1/oauth/authorizations/${id}`, session)).status).toBe(404);
    expect((await decide(server, session, id, 'approve', { csrf_token: consent.csrf_token, scopes: ['tools:use'] })).status).toBe(404);
    expect(await grantKeys(server)).toEqual([]);
  });
});

// Many round trips each, on a machine that may be busy: more than the default 20 s.
describe('the token endpoint', { timeout: 60_000 }, () => {
  it('refuses a wrong code_verifier, another redirect_uri, another client and another resource; the code still works after', async () => {
    const { server, clientId, session } = await setup();
    const otherClient = await registerClient(server, 'Other');
    const { code, verifier } = await approvedCode(server, session, clientId);
    expect(await oauthError(await redeem(server, clientId, code, pkce().verifier), 400, 'invalid_grant')).toMatch(/code_verifier/);
    expect(await oauthError(await redeem(server, clientId, code, verifier, { redirect_uri: 'http://127.0.0.1:53123/other' }), 400, 'invalid_grant')).toMatch(/redirect_uri/);
    expect(await oauthError(await redeem(server, otherClient, code, verifier), 400, 'invalid_grant')).toMatch(/another client/);
    await oauthError(await redeem(server, clientId, code, verifier, { resource: 'https://other.example/mcp' }), 400, 'invalid_target');
    await oauthError(await redeem(server, 'orc_01KW1WT5G0S1V3Q93S90MB6D3B', code, verifier), 401, 'invalid_client');
    await oauthError(await redeem(server, clientId, code, verifier, { code_verifier: undefined }), 400, 'invalid_request');
    // resource may be left out: the code's is meant.
    expect((await redeem(server, clientId, code, verifier, { resource: undefined })).status).toBe(200);
  });

  it('uses a code once: presented again, it is refused and the grant made with it is revoked', async () => {
    const { server, clientId, session } = await setup();
    const { code, verifier } = await approvedCode(server, session, clientId);
    const tokens = (await (await redeem(server, clientId, code, verifier)).json()) as OAuthTokenResponse;
    const caller = await authenticateAccessToken(server, tokens.access_token);
    const keyId = 'caller' in caller ? caller.caller.credentialId! : '';
    expect(await oauthError(await redeem(server, clientId, code, verifier), 400, 'invalid_grant')).toMatch(/already used/);
    expect(await keyStatus(server, keyId)).toBe(3);
    expect('failure' in (await authenticateAccessToken(server, tokens.access_token))).toBe(true);
  });

  it('expires codes after 60 seconds, access tokens after an hour, refresh tokens after 30 days', async () => {
    const { server, clientId, session } = await setup();
    const late = await approvedCode(server, session, clientId);
    server.clock.advance(60_001);
    expect(await oauthError(await redeem(server, clientId, late.code, late.verifier), 400, 'invalid_grant')).toMatch(/expired/);

    const { code, verifier } = await approvedCode(server, session, clientId);
    const tokens = (await (await redeem(server, clientId, code, verifier)).json()) as OAuthTokenResponse;
    server.clock.advance(3600_000);
    const expired = await authenticateAccessToken(server, tokens.access_token);
    expect('failure' in expired && expired.failure.detail).toMatch(/expired/);
    server.clock.advance(30 * 86_400_000);
    const refresh = await postForm(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId });
    expect(await oauthError(refresh, 400, 'invalid_grant')).toMatch(/expired/);
  });

  it('refuses a refresh by another client, beyond the granted scopes or for another resource, without using the token up', async () => {
    const { server, clientId, session } = await setup();
    const otherClient = await registerClient(server, 'Other');
    const { code, verifier } = await approvedCode(server, session, clientId);
    const tokens = (await (await redeem(server, clientId, code, verifier)).json()) as OAuthTokenResponse;
    const refresh = (overrides: Record<string, string | undefined>) =>
      postForm(server, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId, ...overrides });
    await oauthError(await refresh({ client_id: otherClient }), 400, 'invalid_grant');
    await oauthError(await refresh({ scope: 'keys:write' }), 400, 'invalid_scope');
    await oauthError(await refresh({ resource: 'https://other.example/mcp' }), 400, 'invalid_target');
    await oauthError(await refresh({ refresh_token: tokens.access_token }), 400, 'invalid_grant');
    expect((await refresh({ scope: 'tools:use' })).status).toBe(200);
  });

  it("answers OAuth errors for what the contract's validator refuses, and for unknown grant types", async () => {
    const { server, clientId } = await setup();
    await oauthError(await postForm(server, '/oauth/token', { grant_type: 'password', client_id: clientId }), 400, 'unsupported_grant_type');
    await oauthError(await postForm(server, '/oauth/token', { client_id: clientId }), 400, 'invalid_request');
    // A parameter sent twice (RFC 6749 §3.1), a JSON body, no body.
    const twice = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=refresh_token&grant_type=authorization_code',
    });
    await oauthError(twice, 400, 'invalid_request');
    const json = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"grant_type":"refresh_token"}' });
    await oauthError(json, 400, 'invalid_request');
    await oauthError(await fetch(`${server.url}/oauth/token`, { method: 'POST' }), 400, 'invalid_request');
    await oauthError(await fetch(`${server.url}/oauth/revoke`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: '' }), 400, 'invalid_request');
  });
});
