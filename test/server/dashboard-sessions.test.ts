// Signing in to the Dashboard over HTTP, against a real server and database (SQLite, or PostgreSQL with
// OPENRUSH_TEST_STORE=postgres): sign-in links (once, 15 minutes, racing tabs), the session cookie's flags, where
// it works and where not, CSRF, sign-out, expiry, the Supabase exchange, and that no token is kept or logged.
import { randomUUID } from 'node:crypto';
import { type JWTPayload, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createOpenRushClient } from '../../client/index.ts';
import type { components } from '../../generated/openapi.d.ts';
import { issueSignInLink } from '../../server/dashboard-sessions.ts';
import { type Config, ConfigError, loadConfig } from '../../server/config.ts';
import { TestClock } from '../helpers/clock.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type Problem = components['schemas']['Problem'];
type Session = components['schemas']['Session'];

const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const SESSION_COOKIE = /^openrush_session=(orss_[0-9A-Za-z]{43}); Path=\/; HttpOnly; SameSite=Strict; Max-Age=(\d+)$/;
const CLEARED = 'openrush_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  servers = [];
});

async function start(options: { clock?: TestClock; config?: Partial<Config> } = {}): Promise<TestServer & { clock: TestClock }> {
  const clock = options.clock ?? new TestClock();
  const server = await startTestServer({ clock, config: { authFailuresPerMinute: 1000, ...options.config } });
  servers.push(server);
  return Object.assign(server, { clock });
}

async function newLink(server: TestServer, accountId = server.account.accountId): Promise<string> {
  return (await issueSignInLink({ store: server.store, clock: server.clock }, accountId)).token;
}

/** POST /v1/sessions with a body, as the Dashboard's sign-in page sends it (same origin). */
function signIn(server: TestServer, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}/v1/sessions`, jsonInit(body, { headers: { Origin: server.url, ...headers } }));
}

/** Signs in with a fresh link; the cookie's value. */
async function session(server: TestServer, accountId?: string): Promise<string> {
  const response = await signIn(server, { sign_in_link: await newLink(server, accountId) });
  expect(response.status).toBe(201);
  return SESSION_COOKIE.exec(response.headers.get('set-cookie') ?? '')![1]!;
}

/** fetch with the session cookie and no other credential, from this server's own page unless told otherwise. */
function withCookie(server: TestServer, path: string, token: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('Cookie', `openrush_session=${token}`);
  const method = init.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD' && !headers.has('origin')) headers.set('Origin', server.url);
  return fetch(server.url + path, { ...init, headers });
}

async function problem(response: Response, status: number): Promise<Problem> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return (await response.json()) as Problem;
}

function hs256(claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub: randomUUID(), aud: 'authenticated', role: 'authenticated', email: 'person@example.com', iat: now, exp: now + 3600, ...claims };
  return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(SECRET));
}

describe('sign-in options', () => {
  it('offer sign-in links always, and the Supabase project only when one is configured', async () => {
    const plain = await start();
    const response = await fetch(`${plain.url}/v1/sessions/options`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sign_in_link: true, supabase: null });
    const configured = await start({
      config: { dashboard: { sessionHours: 12, supabase: { url: 'https://abcdefghijklmnop.supabase.co', anonKey: 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln' } } },
    });
    expect(await (await fetch(`${configured.url}/v1/sessions/options`)).json()).toEqual({
      sign_in_link: true,
      supabase: { url: 'https://abcdefghijklmnop.supabase.co', anon_key: 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln' },
    });
  });
});

describe('through the typed client', () => {
  it('reads the sign-in options and signs in with a link; a used link is the problem the client types', async () => {
    const server = await start();
    const client = createOpenRushClient({ baseUrl: server.url, retries: 0 });
    const options = await client.GET('/v1/sessions/options');
    expect(options.data).toEqual({ sign_in_link: true, supabase: null });
    const link = await newLink(server);
    const signedIn = await client.POST('/v1/sessions', { body: { sign_in_link: link } });
    expect(signedIn.response.status).toBe(201);
    expect(signedIn.data?.sign_in_method).toBe('sign_in_link');
    expect(signedIn.data?.account_id).toBe(server.account.accountId);
    const again = await client.POST('/v1/sessions', { body: { sign_in_link: link } });
    expect(again.data).toBeUndefined();
    expect(again.error?.detail).toBe('This sign-in link was already used. Run `openrush dashboard link` for a new one.');
  });
});

describe('sign-in links', () => {
  it('sign in once: a session cookie with exact flags, no-store, and the session in the body; the second use is refused saying so', async () => {
    const server = await start();
    const link = await newLink(server);
    const response = await signIn(server, { sign_in_link: link });
    expect(response.status).toBe(201);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const cookie = response.headers.get('set-cookie')!;
    const [, token, maxAge] = SESSION_COOKIE.exec(cookie) ?? [];
    expect(cookie, 'HttpOnly; SameSite=Strict; Path=/; Max-Age, and no Secure over plain http').toMatch(SESSION_COOKIE);
    expect(Number(maxAge)).toBe(12 * 3600);
    const body = (await response.json()) as Session;
    expect(body).toEqual({
      account_id: server.account.accountId,
      sign_in_method: 'sign_in_link',
      expires_at: new Date(server.clock.now().getTime() + 12 * 3_600_000).toISOString(),
    });
    expect(JSON.stringify(body)).not.toContain(token);

    const again = await signIn(server, { sign_in_link: link });
    const refused = await problem(again, 401);
    expect(refused.detail).toBe('This sign-in link was already used. Run `openrush dashboard link` for a new one.');
    expect(again.headers.get('set-cookie')).toBeNull();
  });

  it('work for 15 minutes only, and an unknown link is refused as such', async () => {
    const server = await start();
    const link = await newLink(server);
    server.clock.advance(15 * 60_000);
    expect((await problem(await signIn(server, { sign_in_link: link }), 401)).detail).toMatch(/^This sign-in link has expired \(a link works for 15 minutes\)/);
    const fresh = await newLink(server);
    server.clock.advance(15 * 60_000 - 1);
    expect((await signIn(server, { sign_in_link: fresh })).status).toBe(201);
    const unknown = `orsl_${'A'.repeat(43)}`;
    expect((await problem(await signIn(server, { sign_in_link: unknown }), 401)).detail).toMatch(/^This sign-in link is not valid/);
  });

  it('raced by two tabs give one session', async () => {
    const server = await start();
    for (let round = 0; round < 5; round++) {
      const link = await newLink(server);
      const answers = await Promise.all(Array.from({ length: 4 }, () => signIn(server, { sign_in_link: link })));
      expect(answers.map((answer) => answer.status).sort()).toEqual([201, 401, 401, 401]);
    }
    expect(await server.database.countRows('dashboard_sessions')).toBe(5);
  });

  it('count failed sign-ins towards the failed-authentication limit of the address', async () => {
    const server = await start({ config: { authFailuresPerMinute: 3 } });
    const statuses = [];
    for (let attempt = 0; attempt < 6; attempt++) statuses.push((await signIn(server, { sign_in_link: `orsl_${'B'.repeat(43)}` })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
    // Blocked: even a good link is not looked at.
    expect((await signIn(server, { sign_in_link: await newLink(server) })).status).toBe(429);
  });

  it('cannot be used by another site to sign this browser in (login CSRF)', async () => {
    const server = await start();
    const link = await newLink(server);
    const crossOrigin = await problem(await signIn(server, { sign_in_link: link }, { Origin: 'https://evil.example' }), 403);
    expect(crossOrigin.detail).toContain('https://evil.example');
    expect((await problem(await signIn(server, { sign_in_link: link }, { 'Sec-Fetch-Site': 'cross-site' }), 403)).detail).toContain('Sec-Fetch-Site');
    // Nothing was spent: the link still works, from curl (no Origin) too.
    const curl = await fetch(`${server.url}/v1/sessions`, jsonInit({ sign_in_link: link }));
    expect(curl.status).toBe(201);
  });
});

describe('the session cookie', () => {
  it('is Secure over HTTPS (behind a trusted proxy, or with an https public URL), and lasts OPENRUSH_SESSION_HOURS', async () => {
    const proxied = await start({ config: { trustProxy: 1, dashboard: { sessionHours: 2, supabase: null } } });
    const response = await signIn(proxied, { sign_in_link: await newLink(proxied) }, { 'X-Forwarded-Proto': 'https', Origin: proxied.url.replace('http:', 'https:') });
    expect(response.status).toBe(201);
    expect(response.headers.get('set-cookie')).toMatch(/^openrush_session=orss_[0-9A-Za-z]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=7200; Secure$/);

    const untrusted = await start();
    const spoofed = await signIn(untrusted, { sign_in_link: await newLink(untrusted) }, { 'X-Forwarded-Proto': 'https' });
    expect(spoofed.headers.get('set-cookie')).toMatch(SESSION_COOKIE);

    const publicHttps = await start({ config: { publicUrl: 'https://api.example.com' } });
    const secure = await signIn(publicHttps, { sign_in_link: await newLink(publicHttps) }, { Origin: 'https://api.example.com' });
    expect(secure.status).toBe(201);
    expect(secure.headers.get('set-cookie')).toMatch(/; Secure$/);
  });

  it('authenticates /v1 and /v2 operations for the account, recorded as auth_source session with no credential', async () => {
    const server = await start();
    const token = await session(server);
    const credits = await withCookie(server, '/v1/me/credits', token);
    expect(credits.status).toBe(200);
    expect(await credits.json()).toEqual({ balance: 500 });
    const keys = await withCookie(server, '/v2/api-keys', token);
    expect(keys.status).toBe(200);
    const created = await withCookie(server, '/v2/api-keys', token, jsonInit({ name: 'Made in the Dashboard' }));
    expect(created.status).toBe(201);
    const records = await server.store.listUsage(server.account.accountId, { limit: 10 });
    const byEndpoint = records.filter((record) => record.endpoint === '/v1/me/credits' || record.endpoint === '/v2/api-keys' || record.endpoint === '/v1/sessions');
    expect(byEndpoint.map((record) => `${record.method} ${record.endpoint} ${record.status_code}`).sort()).toEqual([
      'GET /v1/me/credits 200',
      'GET /v2/api-keys 200',
      'POST /v2/api-keys 201',
    ]);
    for (const record of byEndpoint) {
      expect(record.auth_source).toBe('session');
      expect(record.credential_id).toBeNull();
    }
  });

  it('is not accepted on /mcp (401, and nothing recorded for the session)', async () => {
    const server = await start();
    const token = await session(server);
    const before = (await server.store.listUsage(server.account.accountId, { limit: 100 })).length;
    const response = await withCookie(server, '/mcp', token, {
      ...jsonInit({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      headers: { Accept: 'application/json, text/event-stream', 'Content-Type': 'application/json', Origin: server.url },
    });
    const refused = await problem(response, 401);
    expect(refused.detail).toMatch(/session cookie is not accepted here/);
    expect((await server.store.listUsage(server.account.accountId, { limit: 100 })).length).toBe(before);
  });

  it('gives way to a credential header: an API key wins over the cookie', async () => {
    const server = await start();
    const other = await server.newAccount(7);
    const token = await session(server);
    const response = await withCookie(server, '/v1/me/credits', token, { headers: { Authorization: `Bearer ${other.key}` } });
    expect(await response.json()).toEqual({ balance: 7 });
  });

  it('is refused once expired, and a malformed Cookie header is a 401, never a 500', async () => {
    const server = await start();
    const token = await session(server);
    server.clock.advance(12 * 3_600_000);
    const expired = await withCookie(server, '/v1/me/credits', token);
    expect((await problem(expired, 401)).detail).toBe('The Dashboard session has expired. Sign in again.');
    // The browser is told to forget it.
    expect(expired.headers.get('set-cookie')).toBe(CLEARED);
    for (const header of ['openrush_session', 'openrush_session=', 'openrush_session="', ';;=;openrush_session=%ZZ', 'a=b; openrush_session=orss_x; openrush_session=y', '=\u00ff']) {
      const response = await fetch(`${server.url}/v1/me/credits`, { headers: { Cookie: header } });
      expect([401], header).toContain(response.status);
    }
  });
});

describe('CSRF', () => {
  it('refuses cross-origin (or Origin-less) POST, PATCH and DELETE made with the cookie, and nothing changes', async () => {
    const server = await start();
    const token = await session(server);
    const created = await withCookie(server, '/v2/api-keys', token, jsonInit({ name: 'Mine' }));
    const keyId = ((await created.json()) as { api_key_id: string }).api_key_id;
    const keysBefore = await server.database.countRows('credentials');

    const evil = { Origin: 'https://evil.example' };
    const post = await withCookie(server, '/v2/api-keys', token, jsonInit({ name: 'Forged' }, { headers: evil }));
    expect((await problem(post, 403)).detail).toMatch(/Origin \(https:\/\/evil\.example\) is not this server's own/);
    const patch = await withCookie(server, `/v2/api-keys/${keyId}`, token, jsonInit({ name: 'Renamed' }, { method: 'PATCH', headers: evil }));
    await problem(patch, 403);
    const signOut = await withCookie(server, '/v1/sessions/current', token, { method: 'DELETE', headers: evil });
    await problem(signOut, 403);
    const noOrigin = await fetch(`${server.url}/v2/api-keys`, jsonInit({ name: 'No origin' }, { headers: { Cookie: `openrush_session=${token}` } }));
    expect((await problem(noOrigin, 403)).detail).toMatch(/must carry this server's Origin header/);
    const sameSite = await withCookie(server, '/v2/api-keys', token, jsonInit({ name: 'Sibling' }, { headers: { 'Sec-Fetch-Site': 'same-site' } }));
    await problem(sameSite, 403);

    expect(await server.database.countRows('credentials')).toBe(keysBefore);
    const key = await withCookie(server, `/v2/api-keys/${keyId}`, token);
    expect(((await key.json()) as { name: string }).name).toBe('Mine');
    // The session was not signed out, and same-origin changes go through.
    const renamed = await withCookie(server, `/v2/api-keys/${keyId}`, token, jsonInit({ name: 'Renamed' }, { method: 'PATCH', headers: { 'Sec-Fetch-Site': 'same-origin' } }));
    expect(renamed.status).toBe(200);
  });

  it('refuses a GET from another site (Sec-Fetch-Site), and lets the same origin and a typed URL through', async () => {
    const server = await start();
    const token = await session(server);
    const crossSite = await withCookie(server, '/v1/me/credits', token, { headers: { 'Sec-Fetch-Site': 'cross-site' } });
    expect((await problem(crossSite, 403)).detail).toMatch(/Sec-Fetch-Site: cross-site/);
    expect((await withCookie(server, '/v1/me/credits', token, { headers: { 'Sec-Fetch-Site': 'same-origin' } })).status).toBe(200);
    expect((await withCookie(server, '/v1/me/credits', token, { headers: { 'Sec-Fetch-Site': 'none' } })).status).toBe(200);
  });

  it('takes the own origin from OPENRUSH_PUBLIC_URL when it is set', async () => {
    const server = await start({ config: { publicUrl: 'https://api.example.com' } });
    const token = await session(server, undefined).catch(() => undefined);
    // The test's own origin is not the public one: signing in from it is refused as cross-origin.
    expect(token).toBeUndefined();
    const response = await signIn(server, { sign_in_link: await newLink(server) }, { Origin: 'https://api.example.com' });
    const cookieToken = SESSION_COOKIE.exec((response.headers.get('set-cookie') ?? '').replace('; Secure', ''))![1]!;
    const local = await withCookie(server, '/v2/api-keys', cookieToken, jsonInit({ name: 'Local' }));
    await problem(local, 403);
    const own = await withCookie(server, '/v2/api-keys', cookieToken, jsonInit({ name: 'Public' }, { headers: { Origin: 'https://api.example.com' } }));
    expect(own.status).toBe(201);
  });
});

describe('sign-out', () => {
  it('ends the session on the server and clears the cookie; the old cookie replayed is refused', async () => {
    const server = await start();
    const token = await session(server);
    const out = await withCookie(server, '/v1/sessions/current', token, { method: 'DELETE' });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toBe(CLEARED);
    const replayed = await withCookie(server, '/v1/me/credits', token);
    expect((await problem(replayed, 401)).detail).toBe('The Dashboard session was signed out. Sign in again.');
    expect((await withCookie(server, '/v1/sessions/current', token, { method: 'DELETE' })).status).toBe(401);
  });

  it('needs the session cookie: an API key cannot sign out', async () => {
    const server = await start();
    const response = await server.call('/v1/sessions/current', { method: 'DELETE', headers: { Origin: server.url } });
    await problem(response, 401);
  });

  it('is what signing in again does to the session the browser held', async () => {
    const server = await start();
    const first = await session(server);
    const again = await signIn(server, { sign_in_link: await newLink(server) }, { Cookie: `openrush_session=${first}` });
    expect(again.status).toBe(201);
    expect((await withCookie(server, '/v1/me/credits', first)).status).toBe(401);
  });
});

describe('the Supabase way in', () => {
  const supabase = { session: { jwtSecret: SECRET, autoprovision: true } } as Partial<Config>;

  it('exchanges a verified access token for the same kind of session, for the account of its user', async () => {
    const server = await start({ config: supabase });
    const subject = randomUUID();
    const accessToken = await hs256({ sub: subject });
    const response = await signIn(server, { supabase_access_token: accessToken });
    expect(response.status).toBe(201);
    const body = (await response.json()) as Session;
    expect(body.sign_in_method).toBe('supabase');
    const token = SESSION_COOKIE.exec(response.headers.get('set-cookie')!)![1]!;
    // The same account as a bearer request with the token acts for.
    const bearer = await fetch(`${server.url}/v1/me/credits`, { headers: { Authorization: `Bearer ${accessToken}` } });
    expect(bearer.status).toBe(200);
    const records = await server.store.listUsage(body.account_id, { limit: 10 });
    expect(records.map((record) => record.endpoint)).toEqual(['/v1/me/credits']);
    expect((await withCookie(server, '/v1/me/credits', token)).status).toBe(200);
    const again = (await (await signIn(server, { supabase_access_token: await hs256({ sub: subject }) })).json()) as Session;
    expect(again.account_id).toBe(body.account_id);
  });

  it('refuses a token that does not verify, and one when no verifier is configured', async () => {
    const server = await start({ config: supabase });
    const forged = await new SignJWT({ sub: 'x', aud: 'authenticated', role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('another-secret-another-secret-another-secret'));
    expect((await problem(await signIn(server, { supabase_access_token: forged }), 401)).detail).toBe('The session token is not valid.');
    const anon = await hs256({ role: 'anon' });
    expect((await problem(await signIn(server, { supabase_access_token: anon }), 401)).detail).toBe('Only signed-in user sessions are accepted.');
    const plain = await start();
    expect((await problem(await signIn(plain, { supabase_access_token: await hs256() }), 401)).detail).toBe('Session tokens are not accepted by this server.');
  });
});

describe('secrets', () => {
  it('no link or session token in the logs or the database', async () => {
    const server = await start();
    const link = await newLink(server);
    const response = await signIn(server, { sign_in_link: link }, { 'X-Request-Id': 'sign-in-test' });
    const token = SESSION_COOKIE.exec(response.headers.get('set-cookie')!)![1]!;
    await withCookie(server, '/v1/me/credits', token);
    await withCookie(server, `/v1/me/credits?leak=${token}`, token).catch(() => undefined);
    await withCookie(server, '/v1/sessions/current', token, { method: 'DELETE' });
    await signIn(server, { sign_in_link: link });
    const logs = server.logs.join('\n');
    expect(logs).toContain('sign-in-test');
    expect(logs).not.toContain(link);
    expect(logs).not.toContain(token);
    const dump = await server.database.dumpText();
    expect(dump.length).toBeGreaterThan(0);
    expect(dump).not.toContain(link);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain(link.slice(5));
    expect(dump).not.toContain(token.slice(5));
  });
});

describe('configuration and housekeeping', () => {
  it("OPENRUSH_SUPABASE_URL and OPENRUSH_SUPABASE_ANON_KEY go together, and make the project's JWKS and issuer the defaults", () => {
    expect(() => loadConfig({ OPENRUSH_SUPABASE_URL: 'https://p.supabase.co' })).toThrow(ConfigError);
    expect(() => loadConfig({ OPENRUSH_SUPABASE_ANON_KEY: 'eyJ.x.y' })).toThrow(/go together/);
    expect(() => loadConfig({ OPENRUSH_SUPABASE_URL: 'ftp://p', OPENRUSH_SUPABASE_ANON_KEY: 'k' })).toThrow(ConfigError);
    const config = loadConfig({ OPENRUSH_SUPABASE_URL: 'https://p.supabase.co/', OPENRUSH_SUPABASE_ANON_KEY: 'anon' });
    expect(config.dashboard).toEqual({ sessionHours: 12, supabase: { url: 'https://p.supabase.co', anonKey: 'anon' } });
    expect(config.session.jwksUrl).toBe('https://p.supabase.co/auth/v1/.well-known/jwks.json');
    expect(config.session.issuer).toBe('https://p.supabase.co/auth/v1');
    const explicit = loadConfig({ OPENRUSH_SUPABASE_URL: 'https://p.supabase.co', OPENRUSH_SUPABASE_ANON_KEY: 'anon', OPENRUSH_SESSION_JWT_SECRET: 's', OPENRUSH_SESSION_JWKS_FILE: '/x.json', OPENRUSH_SESSION_ISSUER: 'https://other' });
    expect([explicit.session.jwksUrl, explicit.session.jwksFile, explicit.session.issuer]).toEqual([undefined, '/x.json', 'https://other']);
    expect(loadConfig({}).dashboard).toEqual({ sessionHours: 12, supabase: null });
    expect(loadConfig({ OPENRUSH_SESSION_HOURS: '720' }).dashboard.sessionHours).toBe(720);
    for (const hours of ['0', '721', '1.5', 'x']) expect(() => loadConfig({ OPENRUSH_SESSION_HOURS: hours }), hours).toThrow(ConfigError);
  });

  it('maintenance removes links and sessions a day past their expiry, and only those', async () => {
    const server = await start();
    await newLink(server);
    await session(server);
    server.clock.advance(2 * 86_400_000);
    await newLink(server);
    const recent = await session(server);
    await server.store.maintain(server.clock.now(), {});
    expect(await server.database.countRows('sign_in_links')).toBe(2);
    expect(await server.database.countRows('dashboard_sessions')).toBe(1);
    expect((await withCookie(server, '/v1/me/credits', recent)).status).toBe(200);
    await server.store.maintain(new Date(server.clock.now().getTime() + 36 * 3_600_000 + 1), {});
    expect(await server.database.countRows('sign_in_links')).toBe(0);
    expect(await server.database.countRows('dashboard_sessions')).toBe(0);
  });
});
