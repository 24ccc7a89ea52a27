// Driving this server's OAuth authorization server by hand over real HTTP, as an MCP client and the consent page
// would: a registered client, a Dashboard session, PKCE, authorize → consent → code → tokens.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, expect } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { issueSignInLink } from '../../server/dashboard-sessions.ts';
import type { Config } from '../../server/config.ts';
import { TestClock } from './clock.ts';
import { jsonInit, startTestServer, type TestServer } from './server.ts';

export type OAuthTokenResponse = components['schemas']['OAuthTokenResponse'];
export type OAuthAuthorization = components['schemas']['OAuthAuthorization'];

/**
 * `start(config)` for a test file: a test server with its own test clock (and a high failed-authentication limit,
 * as refusals are provoked on purpose), each closed after the test that started it.
 */
export function serversPerTest(): (config?: Partial<Config>) => Promise<TestServer & { clock: TestClock }> {
  let servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((server) => server.close()));
    servers = [];
  });
  return async (config = {}) => {
    const clock = new TestClock();
    const server = await startTestServer({ clock, config: { authFailuresPerMinute: 1000, ...config } });
    servers.push(server);
    return Object.assign(server, { clock });
  };
}

export const REDIRECT_URI = 'http://127.0.0.1:53123/callback';
const SESSION_COOKIE = /openrush_session=(orss_[0-9A-Za-z]{43})/;

/** Registers a public client straight in the store (the registration endpoint is another part's). */
export async function registerClient(server: TestServer, name = 'Test Agent', redirectUris = [REDIRECT_URI]): Promise<string> {
  const id = `orc_${randomBytes(13).toString('hex').toUpperCase().slice(0, 26)}`;
  await server.store.insertOAuthClient({
    id,
    name,
    client_uri: null,
    redirect_uris: JSON.stringify(redirectUris),
    software_id: null,
    software_version: null,
    source: 'registered',
    metadata_expires_at: null,
    created_at: new Date().toISOString(),
  });
  return id;
}

/** Signs a Dashboard session in with a fresh sign-in link; the cookie's value. */
export async function signInSession(server: TestServer, accountId = server.account.accountId): Promise<string> {
  const { token } = await issueSignInLink({ store: server.store, clock: server.clock }, accountId);
  const response = await fetch(`${server.url}/v1/sessions`, jsonInit({ sign_in_link: token }, { headers: { Origin: server.url } }));
  expect(response.status).toBe(201);
  return SESSION_COOKIE.exec(response.headers.get('set-cookie') ?? '')![1]!;
}

/** fetch with the session cookie only, from the server's own page. */
export function withCookie(server: TestServer, path: string, session: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('Cookie', `openrush_session=${session}`);
  if ((init.method ?? 'GET') !== 'GET') headers.set('Origin', server.url);
  return fetch(server.url + path, { ...init, headers });
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function authorizeUrl(server: TestServer, parameters: Record<string, string | undefined>): string {
  const url = new URL('/oauth/authorize', server.url);
  for (const [name, value] of Object.entries(parameters)) if (value !== undefined) url.searchParams.set(name, value);
  return url.toString();
}

/** The parameters of a good authorization request. */
export function goodRequest(server: TestServer, clientId: string, challenge: string, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'state-123',
    resource: `${server.url}/mcp`,
    ...overrides,
  };
}

export async function authorize(server: TestServer, parameters: Record<string, string | undefined>): Promise<Response> {
  return fetch(authorizeUrl(server, parameters), { redirect: 'manual' });
}

/** The authorization id of a 302 to the consent page. */
export function consentId(response: Response): string {
  expect(response.status).toBe(302);
  const location = response.headers.get('location')!;
  const match = /^\/dashboard\/consent\?authorization=([A-Za-z0-9_-]{43})$/.exec(location);
  expect(match, location).not.toBeNull();
  return match![1]!;
}

export async function readConsent(server: TestServer, session: string, id: string): Promise<OAuthAuthorization> {
  const response = await withCookie(server, `/v1/oauth/authorizations/${id}`, session);
  expect(response.status).toBe(200);
  return (await response.json()) as OAuthAuthorization;
}

export function decide(server: TestServer, session: string, id: string, decision: 'approve' | 'deny', body: Record<string, unknown>): Promise<Response> {
  return withCookie(server, `/v1/oauth/authorizations/${id}/${decision}`, session, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Authorize, read the consent, approve: the code and what goes with it. */
export async function approvedCode(
  server: TestServer,
  session: string,
  clientId: string,
  approval: Record<string, unknown> = {},
): Promise<{ code: string; verifier: string; redirect: URL }> {
  const { verifier, challenge } = pkce();
  const id = consentId(await authorize(server, goodRequest(server, clientId, challenge)));
  const consent = await readConsent(server, session, id);
  const response = await decide(server, session, id, 'approve', { csrf_token: consent.csrf_token, scopes: ['tools:use'], ...approval });
  expect(response.status).toBe(200);
  const redirect = new URL(((await response.json()) as { redirect_to: string }).redirect_to);
  return { code: redirect.searchParams.get('code')!, verifier, redirect };
}

export function postForm(server: TestServer, path: string, form: Record<string, string | undefined>): Promise<Response> {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(form)) if (value !== undefined) body.set(name, value);
  return fetch(server.url + path, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: body.toString() });
}

export function redeem(server: TestServer, clientId: string, code: string, verifier: string, overrides: Record<string, string | undefined> = {}): Promise<Response> {
  return postForm(server, '/oauth/token', {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT_URI,
    client_id: clientId,
    resource: `${server.url}/mcp`,
    ...overrides,
  });
}

/** An OAuth error answer: its status, JSON body, no-store. */
export async function oauthError(response: Response, status: number, error: string): Promise<string> {
  const body = (await response.json()) as { error: string; error_description: string };
  expect({ status: response.status, error: body.error }, body.error_description).toEqual({ status, error });
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  return body.error_description;
}
