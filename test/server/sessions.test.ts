// Dashboard session tokens (JWTs) against a real server, with keys made here: served as a JWKS on a local port, as a
// JWKS file, and as a legacy HS256 secret. Then throttling of failed authentications per client address.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenRushClient } from '../../client/index.ts';
import type { components } from '../../generated/openapi.d.ts';
import type { SessionConfig } from '../../server/sessions.ts';
import { expectChallenge, WWW_AUTHENTICATE } from '../helpers/api-keys.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type Problem = components['schemas']['Problem'];
type UsageRecord = components['schemas']['UsageRecord'];
type Created = components['schemas']['ApiCredentialCreated'];
type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];


const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const ISSUER = 'https://project.supabase.co/auth/v1';
// Refusals are what many of these tests are about: keep the per-address throttle out of their way.
const UNTHROTTLED = 100_000;

let rsa: { privateKey: SigningKey; publicKey: SigningKey };
let ec: { privateKey: SigningKey; publicKey: SigningKey };
let jwksServer: Server;
let jwksUrl: string;
let dir: string;

beforeAll(async () => {
  [rsa, ec] = await Promise.all([generateKeyPair('RS256'), generateKeyPair('ES256')]);
  const jwks = {
    keys: [
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ],
  };
  jwksServer = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/auth/v1/.well-known/jwks.json`;
  dir = mkdtempSync(join(tmpdir(), 'openrush-jwks-'));
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks));
});
afterAll(async () => {
  jwksServer?.closeAllConnections();
  await new Promise<void>((resolve) => (jwksServer ? jwksServer.close(() => resolve()) : resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function sessionConfig(overrides: Partial<SessionConfig> = {}): SessionConfig {
  return { jwksUrl: undefined, jwksFile: undefined, jwtSecret: undefined, issuer: undefined, autoprovision: true, ...overrides };
}

/** A Supabase-like user access token; `claims` overrides (or, with undefined, removes) the defaults. */
async function token(
  claims: Record<string, unknown> = {},
  signer: { alg: 'RS256' | 'ES256' | 'HS256'; key?: SigningKey | Uint8Array; kid?: string } = { alg: 'RS256' },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    sub: randomUUID(),
    aud: 'authenticated',
    role: 'authenticated',
    email: 'user@example.com',
    iat: now,
    exp: now + 3600,
    ...claims,
  };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  const key =
    signer.key ?? (signer.alg === 'HS256' ? new TextEncoder().encode(SECRET) : signer.alg === 'ES256' ? ec.privateKey : rsa.privateKey);
  const kid = signer.kid ?? (signer.alg === 'RS256' ? 'rsa-1' : signer.alg === 'ES256' ? 'ec-1' : undefined);
  return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: signer.alg, typ: 'JWT', ...(kid ? { kid } : {}) }).sign(key);
}

/** An unsigned token, as an attacker would write it by hand. */
function unsignedToken(claims: Record<string, unknown> = {}): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub: randomUUID(), aud: 'authenticated', role: 'authenticated', iat: now, exp: now + 3600, ...claims };
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(payload)}.`;
}

/** server.call sends `key` as `Authorization: Bearer`, whatever it is. */
function bearer(credential: string): { key: string } {
  return { key: credential };
}

async function expectUnauthorized(response: Response): Promise<Problem> {
  const text = await response.text();
  expect(response.status, text).toBe(401);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expectChallenge(response, JSON.parse(text) as Problem);
  return JSON.parse(text) as Problem;
}

describe('sessions verified with a JWKS URL and an HS256 secret', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({
      config: { session: sessionConfig({ jwksUrl, jwtSecret: SECRET }), authFailuresPerMinute: UNTHROTTLED },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each<['RS256' | 'ES256' | 'HS256']>([['RS256'], ['ES256'], ['HS256']])('a %s session of a new user gets a new, empty account', async (alg) => {
    const accounts = await server.store.countAccounts();
    const response = await server.call('/v1/me/credits', bearer(await token({}, { alg })));
    expect(response.status, await response.clone().text()).toBe(200);
    expect(await response.json()).toEqual({ balance: 0 });
    expect(await server.store.countAccounts()).toBe(accounts + 1);
  });

  it('usage records of a session say so, with no credential', async () => {
    const session = await token();
    await server.call('/v1/me/credits', bearer(session));
    const response = await server.call('/v1/me/usage', bearer(session));
    expect(response.status).toBe(200);
    const [record] = (await response.json()) as UsageRecord[];
    expect(record).toMatchObject({ endpoint: '/v1/me/credits', auth_source: 'session', credential_id: null, status_code: 200 });
  });

  it('the same sub is the same account, token after token', async () => {
    const sub = randomUUID();
    expect((await server.call('/v1/me/credits', bearer(await token({ sub })))).status).toBe(200);
    const account = await server.store.sessionAccount(sub);
    await server.store.grantCredits({ ledgerId: `led_${randomUUID()}`, eventId: `evt_${randomUUID()}`, accountId: account!.id, amount: 250, note: 'test', createdAt: new Date().toISOString() });
    // A different token (other key, later iat) for the same user.
    const later = await token({ sub, iat: Math.floor(Date.now() / 1000) + 1 }, { alg: 'ES256' });
    const response = await server.call('/v1/me/credits', bearer(later));
    expect(await response.json()).toEqual({ balance: 250 });
  });

  it('concurrent first requests of one new sub create exactly one account', async () => {
    const sub = randomUUID();
    const accounts = await server.store.countAccounts();
    const tokens = await Promise.all(Array.from({ length: 12 }, (_, i) => token({ sub, iat: Math.floor(Date.now() / 1000) - i })));
    const responses = await Promise.all(tokens.map((t) => server.call('/v1/me/credits', bearer(t))));
    expect(responses.map((r) => r.status)).toEqual(tokens.map(() => 200));
    expect(await server.store.countAccounts()).toBe(accounts + 1);
    const account = await server.store.sessionAccount(sub);
    expect(await server.store.listUsage(account!.id, { limit: 100 })).toHaveLength(tokens.length);
  });

  it('a session creates an API key that sees the same account', async () => {
    const sub = randomUUID();
    const session = await token({ sub });
    const created = await server.call('/v1/me/api-credentials', jsonInit({ name: 'from the dashboard' }, { key: session }));
    expect(created.status).toBe(201);
    const { key, api_credential } = (await created.json()) as Created;
    const account = await server.store.sessionAccount(sub);
    expect(api_credential.account_id).toBe(account!.id);
    await server.store.grantCredits({ ledgerId: `led_${randomUUID()}`, eventId: `evt_${randomUUID()}`, accountId: account!.id, amount: 42, note: 'test', createdAt: new Date().toISOString() });
    expect(await (await server.call('/v1/me/credits', { key })).json()).toEqual({ balance: 42 });
    expect(await (await server.call('/v1/me/credits', bearer(session))).json()).toEqual({ balance: 42 });
  });

  it('the client works with a session token', async () => {
    const sub = randomUUID();
    const client = createOpenRushClient({ baseUrl: server.url, sessionToken: await token({ sub }) });
    const first = await client.GET('/v1/me/credits');
    expect(first.response.status).toBe(200);
    expect(first.data).toEqual({ balance: 0 });
    const account = await server.store.sessionAccount(sub);
    await server.store.grantCredits({ ledgerId: `led_${randomUUID()}`, eventId: `evt_${randomUUID()}`, accountId: account!.id, amount: 7, note: 'test', createdAt: new Date().toISOString() });
    expect((await client.GET('/v1/me/credits')).data).toEqual({ balance: 7 });
  });

  it('a session can call a metered tool, charged to its account', async () => {
    const sub = randomUUID();
    const session = await token({ sub });
    await server.call('/v1/me/credits', bearer(session));
    const account = await server.store.sessionAccount(sub);
    await server.store.grantCredits({ ledgerId: `led_${randomUUID()}`, eventId: `evt_${randomUUID()}`, accountId: account!.id, amount: 10, note: 'test', createdAt: new Date().toISOString() });
    const response = await server.call('/v1/tools/inspect_domain', jsonInit({ domain: 'example.com' }, { key: session }));
    expect(response.status).toBe(200);
    const balance = (await (await server.call('/v1/me/credits', bearer(session))).json()) as { balance: number };
    expect(balance.balance).toBeLessThan(10);
    expect(await server.store.sumLedger(account!.id)).toBe(balance.balance);
  });

  describe('refused tokens: 401, and no account made', () => {
    it.each<[string, () => Promise<string>]>([
      ['expired', () => token({ iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })],
      ['without exp', () => token({ exp: undefined })],
      ['for another audience', () => token({ aud: 'some-other-app' })],
      ['without an audience', () => token({ aud: undefined })],
      ['of the anon role', () => token({ role: 'anon' })],
      ['of the service_role', () => token({ role: 'service_role' })],
      ['without a role', () => token({ role: undefined })],
      ['without sub', () => token({ sub: undefined })],
      ['with an empty sub', () => token({ sub: '' })],
      ['signed by another RSA key under a known kid', async () => token({}, { alg: 'RS256', key: (await generateKeyPair('RS256')).privateKey })],
      ['signed by another EC key under an unknown kid', async () => token({}, { alg: 'ES256', key: (await generateKeyPair('ES256')).privateKey, kid: 'nope' })],
      ['signed with another HS256 secret', () => token({}, { alg: 'HS256', key: new TextEncoder().encode(`${SECRET}-but-not-quite`) })],
      ['with alg none', async () => unsignedToken()],
      ['with its payload changed after signing', async () => {
        const [header, , signature] = (await token()).split('.');
        const forged = Buffer.from(JSON.stringify({ sub: randomUUID(), aud: 'authenticated', role: 'authenticated', exp: 9999999999 })).toString('base64url');
        return `${header}.${forged}.${signature}`;
      }],
    ])('a token %s', async (_name, make) => {
      const accounts = await server.store.countAccounts();
      const problem = await expectUnauthorized(await server.call('/v1/me/credits', bearer(await make())));
      expect(problem.status).toBe(401);
      expect(await server.store.countAccounts()).toBe(accounts);
    });

    it('also through X-API-Key and on a route that writes', async () => {
      const response = await server.call('/v1/me/api-credentials', {
        ...jsonInit({ name: 'x' }),
        key: null,
        headers: { 'Content-Type': 'application/json', 'X-API-Key': await token({ role: 'anon' }) },
      });
      await expectUnauthorized(response);
    });
  });
});

describe('sessions verified with a JWKS file and a configured issuer', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({
      config: { session: sessionConfig({ jwksFile: join(dir, 'jwks.json'), issuer: ISSUER }), authFailuresPerMinute: UNTHROTTLED },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each<['RS256' | 'ES256']>([['RS256'], ['ES256']])('a %s token from the issuer is accepted', async (alg) => {
    const response = await server.call('/v1/me/credits', bearer(await token({ iss: ISSUER }, { alg })));
    expect(response.status, await response.clone().text()).toBe(200);
  });

  it.each([
    ['another issuer', { iss: 'https://evil.example.com/auth/v1' }],
    ['no issuer', { iss: undefined }],
  ])('a token from %s is refused', async (_name, claims) => {
    await expectUnauthorized(await server.call('/v1/me/credits', bearer(await token(claims))));
  });

  it('an HS256 token is refused when no secret is configured', async () => {
    await expectUnauthorized(await server.call('/v1/me/credits', bearer(await token({ iss: ISSUER }, { alg: 'HS256' }))));
  });
});

describe('sessions with autoprovisioning switched off', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({
      config: { session: sessionConfig({ jwtSecret: SECRET, autoprovision: false }), authFailuresPerMinute: UNTHROTTLED },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a valid session of an unknown sub is a 401, and no account is made', async () => {
    const accounts = await server.store.countAccounts();
    await expectUnauthorized(await server.call('/v1/me/credits', bearer(await token({}, { alg: 'HS256' }))));
    expect(await server.store.countAccounts()).toBe(accounts);
  });

  it('a sub already linked to an account is let in', async () => {
    const sub = randomUUID();
    const account = await server.store.sessionAccount(sub, {
      id: `acct_${randomUUID().replace(/-/g, '').slice(0, 26)}`,
      name: 'Linked by the operator',
      balance: 0,
      session_subject: sub,
      created_at: new Date().toISOString(),
    });
    await server.store.grantCredits({ ledgerId: `led_${randomUUID()}`, eventId: `evt_${randomUUID()}`, accountId: account!.id, amount: 9, note: 'test', createdAt: new Date().toISOString() });
    const response = await server.call('/v1/me/credits', bearer(await token({ sub }, { alg: 'HS256' })));
    expect(await response.json()).toEqual({ balance: 9 });
  });
});

describe('a server without session settings', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('refuses session tokens with 401', async () => {
    await expectUnauthorized(await server.call('/v1/me/credits', bearer(await token({}, { alg: 'HS256' }))));
  });

  it('answers valid callers normally, request after request (default throttle)', async () => {
    for (let i = 0; i < 50; i += 1) {
      const response = await server.call('/v1/me/credits');
      expect(response.status).toBe(200);
    }
  });
});

describe('throttling failed authentications per client address', () => {
  const LIMIT = 5;
  const bad = 'or_thisIsNotAValidKeyAtAllJustGuessing1234';

  async function failOnce(server: TestServer, headers: Record<string, string> = {}): Promise<number> {
    const response = await server.call('/v1/me/credits', { key: bad, headers });
    await response.arrayBuffer();
    return response.status;
  }

  it('valid callers are never counted: 50 requests in a row all pass', async () => {
    const server = await startTestServer({ config: { authFailuresPerMinute: LIMIT } });
    try {
      const statuses = [];
      for (let i = 0; i < 50; i += 1) statuses.push((await server.call('/v1/me/credits')).status);
      expect(statuses.every((s) => s === 200)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('up to the limit failures are 401s and valid callers still pass', async () => {
    const server = await startTestServer({ config: { authFailuresPerMinute: LIMIT } });
    try {
      for (let i = 0; i < LIMIT; i += 1) expect(await failOnce(server)).toBe(401);
      for (let i = 0; i < 20; i += 1) expect((await server.call('/v1/me/credits')).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('past the limit the address gets 429 with Retry-After, even with a valid key', async () => {
    const server = await startTestServer({ config: { authFailuresPerMinute: LIMIT } });
    try {
      for (let i = 0; i <= LIMIT; i += 1) expect(await failOnce(server)).toBe(401);
      for (const key of [server.account.key, bad]) {
        const response = await server.call('/v1/me/credits', { key });
        const text = await response.text();
        expect(response.status, text).toBe(429);
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const retryAfter = Number(response.headers.get('retry-after'));
        expect(Number.isInteger(retryAfter)).toBe(true);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
        expect(JSON.parse(text)).toMatchObject({ status: 429, type: expect.stringMatching(/too_many_requests$/) });
      }
      // The public routes need no credential, and stay open.
      expect((await fetch(`${server.url}/v1/capabilities`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('a storm of concurrent failures blocks the address too', async () => {
    const server = await startTestServer({ config: { authFailuresPerMinute: LIMIT } });
    try {
      const statuses = await Promise.all(Array.from({ length: 30 }, () => failOnce(server)));
      expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(LIMIT + 1);
      expect((await server.call('/v1/me/credits')).status).toBe(429);
    } finally {
      await server.close();
    }
  });

  it('failed sessions count too, and the block is per address', async () => {
    // Behind a trusted proxy the client address comes from X-Forwarded-For.
    const server = await startTestServer({
      config: { authFailuresPerMinute: LIMIT, trustProxy: true, session: sessionConfig({ jwtSecret: SECRET }) },
    });
    try {
      const attacker = { 'X-Forwarded-For': '203.0.113.7' };
      const forged = await token({}, { alg: 'HS256', key: new TextEncoder().encode('guessed-secret-guessed-secret-guessed') });
      for (let i = 0; i <= LIMIT; i += 1) {
        const response = await server.call('/v1/me/credits', { key: null, headers: { ...attacker, Authorization: `Bearer ${forged}` } });
        expect(response.status).toBe(401);
      }
      expect((await server.call('/v1/me/credits', { headers: attacker })).status).toBe(429);
      expect((await server.call('/v1/me/credits', { headers: { 'X-Forwarded-For': '198.51.100.9' } })).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
