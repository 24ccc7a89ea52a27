// CORS (issue 9): off by default; with OPENRUSH_CORS_ORIGINS, the listed browser origins may call the API with a
// key in a header, preflights are answered, and every other origin gets no CORS headers.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.ts';
import { faultyStore } from '../helpers/faulty-store.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

const DASHBOARD = 'https://dashboard.openrush.io';
const LOCAL = 'http://localhost:5173';

function preflight(server: TestServer, path: string, origin: string, method = 'POST', headers = 'authorization, content-type, idempotency-key') {
  return fetch(server.url + path, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
  });
}

describe('with OPENRUSH_CORS_ORIGINS set', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { corsOrigins: loadConfig({ OPENRUSH_CORS_ORIGINS: `${DASHBOARD}, ${LOCAL}` }).corsOrigins } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each([DASHBOARD, LOCAL])('a preflight from %s is answered 204 with the allowed methods and headers', async (origin) => {
    const response = await preflight(server, '/v1/me/api-credentials', origin);
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');
    expect(response.headers.get('access-control-allow-origin')).toBe(origin);
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    const methods = (response.headers.get('access-control-allow-methods') ?? '').split(/,\s*/);
    expect(methods).toEqual(expect.arrayContaining(['GET', 'HEAD', 'POST', 'PATCH']));
    const headers = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/,\s*/);
    expect(headers).toEqual(expect.arrayContaining(['authorization', 'x-api-key', 'content-type', 'idempotency-key', 'x-request-id']));
    expect(Number(response.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    expect(response.headers.get('vary') ?? '').toMatch(/Origin/);
    expect(response.headers.get('x-request-id')).toBeTruthy();
  });

  it('a browser MCP client is allowed every header it sends (each header parameter of the contract) on /mcp', async () => {
    const bundled = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'));
    const declared = Object.values(bundled.components.parameters as Record<string, { in: string; name: string }>)
      .filter((parameter) => parameter.in === 'header')
      .map((parameter) => parameter.name.toLowerCase());
    expect(declared).toEqual(expect.arrayContaining(['mcp-protocol-version', 'mcp-session-id', 'last-event-id', 'idempotency-key']));
    const response = await preflight(server, '/mcp', DASHBOARD, 'POST', 'authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id');
    expect(response.status).toBe(204);
    const allowed = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining([...declared, 'authorization', 'content-type', 'x-api-key']));
    const methods = (response.headers.get('access-control-allow-methods') ?? '').split(/,\s*/);
    expect(methods).toEqual(expect.arrayContaining(['GET', 'HEAD', 'POST', 'PATCH', 'DELETE']));
  });

  it('a preflight from another origin is refused with a 403 problem and no CORS headers', async () => {
    const response = await preflight(server, '/v1/me/credits', 'https://evil.example', 'GET', 'authorization');
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('an allowed origin can read answers, errors included, and the headers it needs', async () => {
    const ok = await server.call('/v1/me/usage?limit=1', { headers: { Origin: DASHBOARD } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(DASHBOARD);
    const exposed = (ok.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(['x-request-id', 'link', 'ratelimit', 'ratelimit-policy', 'retry-after']));
    const created = await server.call('/v1/me/api-credentials', jsonInit({ name: 'from the dashboard' }, { headers: { Origin: DASHBOARD } }));
    expect(created.status).toBe(201);
    expect(created.headers.get('access-control-allow-origin')).toBe(DASHBOARD);
    const refused = await server.call('/v1/me/credits', { key: null, headers: { Origin: DASHBOARD } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(DASHBOARD);
  });

  it('another origin gets the answer without CORS headers (so its browser keeps it from the page)', async () => {
    const response = await server.call('/v1/me/credits', { headers: { Origin: 'https://evil.example' } });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(response.headers.get('vary') ?? '').toMatch(/Origin/);
  });
});

describe('a database outage under CORS', () => {
  it('the 503 of an unrecordable request still carries the CORS headers', async () => {
    const { database } = faultyStore({ recordUsage: async () => Promise.reject(Object.assign(new Error('down'), { code: 'ECONNREFUSED' })) });
    const server = await startTestServer({ database, config: { corsOrigins: [DASHBOARD] } });
    try {
      const response = await server.call('/v1/me/credits', { headers: { Origin: DASHBOARD } });
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('1');
      expect(response.headers.get('access-control-allow-origin')).toBe(DASHBOARD);
    } finally {
      await server.close();
    }
  });
});

describe('by default (no OPENRUSH_CORS_ORIGINS)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('no CORS headers, and a preflight is a 405 problem', async () => {
    const response = await server.call('/v1/me/credits', { headers: { Origin: DASHBOARD } });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    const refused = await preflight(server, '/v1/me/credits', DASHBOARD, 'GET');
    expect(refused.status).toBe(405);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });

  // The MCP Inspector's page (http://localhost:6274) discovers, registers, gets tokens and calls /mcp itself.
  const INSPECTOR = 'http://localhost:6274';

  it('the OAuth surface and /mcp answer any origin with *, preflights included, and nothing else does', async () => {
    for (const [path, method] of [
      ['/mcp', 'POST'],
      ['/oauth/register', 'POST'],
      ['/oauth/token', 'POST'],
      ['/oauth/revoke', 'POST'],
      ['/.well-known/oauth-protected-resource/mcp', 'GET'],
      ['/.well-known/oauth-authorization-server', 'GET'],
    ] as const) {
      const response = await preflight(server, path, INSPECTOR, method, 'authorization, content-type, mcp-protocol-version');
      expect(response.status, path).toBe(204);
      expect(response.headers.get('access-control-allow-origin'), path).toBe('*');
      expect(response.headers.get('access-control-allow-credentials'), path).toBeNull();
      expect((response.headers.get('access-control-allow-methods') ?? '').split(/,\s*/), path).toContain(method);
      expect((response.headers.get('access-control-allow-headers') ?? '').toLowerCase(), path).toContain('mcp-protocol-version');
    }
    // The 401 that starts an MCP client's sign-in is readable, with its challenge.
    const challenge = await server.call('/mcp', { key: null, method: 'POST', headers: { Origin: INSPECTOR, 'Content-Type': 'application/json' }, body: '{}' });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('access-control-allow-origin')).toBe('*');
    expect((challenge.headers.get('access-control-expose-headers') ?? '').toLowerCase()).toContain('www-authenticate');
    const metadata = await fetch(`${server.url}/.well-known/oauth-authorization-server`, { headers: { Origin: INSPECTOR } });
    expect(metadata.status).toBe(200);
    expect(metadata.headers.get('access-control-allow-origin')).toBe('*');
    // The rest of the API, the consent operations and the authorization endpoint (a page, not a fetch) stay closed.
    for (const path of ['/v1/me/credits', '/oauth/authorize', '/v1/oauth/authorizations/x']) {
      const refused = await preflight(server, path, INSPECTOR, 'GET');
      expect(refused.headers.get('access-control-allow-origin'), path).toBeNull();
    }
    const closed = await server.call('/v1/me/credits', { headers: { Origin: INSPECTOR } });
    expect(closed.headers.get('access-control-allow-origin')).toBeNull();
  });
});
