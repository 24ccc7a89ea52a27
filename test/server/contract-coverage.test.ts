// The contract says everything the server can answer (issue 9 item 4): checked on the contract itself, then
// against the real server for every operation it lists.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { TITLES } from '../../server/problem.ts';
import { faultyStore } from '../helpers/faulty-store.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type ApiKeyWithSecret = components['schemas']['ApiKeyWithSecret'];

interface Operation {
  parameters?: Array<{ $ref?: string; in?: string; name?: string }>;
  requestBody?: unknown;
  responses: Record<string, { $ref?: string; headers?: Record<string, unknown> }>;
  security?: unknown[];
}
const contract = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, Record<string, unknown>>>;
};
const METHODS = ['get', 'post', 'patch', 'put', 'delete'];
const operations = Object.entries(contract.paths).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([method]) => METHODS.includes(method))
    .map(([method, operation]) => ({ path, method, operation })),
);

function resolveResponse(response: { $ref?: string; headers?: Record<string, unknown> }) {
  return response.$ref ? (contract.components.responses![response.$ref.split('/').pop()!] as typeof response) : response;
}

describe('the contract', () => {
  it.each(operations.map((o) => [`${o.method.toUpperCase()} ${o.path}`, o] as const))('%s documents 429, 500 and 503 with Retry-After', (_name, { operation }) => {
    for (const status of ['429', '500', '503']) expect(operation.responses[status], status).toBeDefined();
    for (const status of ['429', '503']) expect(Object.keys(resolveResponse(operation.responses[status]!).headers ?? {})).toContain('Retry-After');
  });

  it.each(operations.map((o) => [`${o.method.toUpperCase()} ${o.path}`, o] as const))('%s documents RateLimit and RateLimit-Policy on every response', (_name, { operation }) => {
    for (const [status, response] of Object.entries(operation.responses)) {
      const headers = Object.keys(resolveResponse(response).headers ?? {});
      expect(headers, status).toEqual(expect.arrayContaining(['X-Request-Id', 'RateLimit', 'RateLimit-Policy']));
    }
  });

  it('bounds every integer (format, minimum, maximum), string (maxLength) and array (maxItems, items)', () => {
    const unbounded: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (Array.isArray(node)) return node.forEach((item, i) => walk(item, `${at}/${i}`));
      if (node === null || typeof node !== 'object' || /\/(examples?|x-[\w-]+)(\/|$)/.test(at)) return;
      const schema = node as Record<string, unknown>;
      const types = [schema.type].flat();
      const fixed = schema.enum !== undefined || schema.const !== undefined;
      if (types.includes('integer') || types.includes('number')) {
        if (schema.format === undefined) unbounded.push(`${at}: format`);
        if (!fixed && (schema.minimum === undefined || schema.maximum === undefined)) unbounded.push(`${at}: minimum/maximum`);
      }
      if (types.includes('string') && !fixed && schema.maxLength === undefined) unbounded.push(`${at}: maxLength`);
      if (types.includes('array') && schema.maxItems === undefined) unbounded.push(`${at}: maxItems`);
      // An array says what it holds (even one bounded to no items, such as the absent `Link` header's).
      if (types.includes('array') && schema.items === undefined && schema.prefixItems === undefined) unbounded.push(`${at}: items`);
      for (const [key, value] of Object.entries(schema)) walk(value, `${at}/${key}`);
    };
    walk(contract, '#');
    expect(unbounded).toEqual([]);
  });

  it("lists every problem type the server uses, with the server's titles", () => {
    const listed = (contract.components.schemas!.Problem as { 'x-openrush-problem-types': Array<{ type: string; title: string; status: number }> })[
      'x-openrush-problem-types'
    ];
    expect(Object.fromEntries(listed.map((entry) => [entry.type, entry.title]))).toEqual(TITLES);
    const described = (contract.components.schemas!.Problem as { properties: { type: { description: string } } }).properties.type.description;
    for (const { type } of listed) expect(described).toContain(`| \`${type}\` |`);
  });
});

/** A request for an operation with every path parameter filled; the body is an empty object. */
function requestFor(path: string, method: string, key: string): [string, RequestInit & { key?: string | null }] {
  const url = path.replace(/\{[^}]+\}/g, 'cred_01KW1WT6F8KK8E8PW71NXT39GC');
  const init: RequestInit & { key?: string | null } = { method: method.toUpperCase(), key };
  return method === 'get' ? [url, init] : [url, jsonInit({}, init)];
}

describe('conditional requests', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  // The contract lists no 304: every GET answers in full (and is recorded as the 200 it is), with no ETag to send back.
  it.each(['/v1/me/credits', '/v1/me/usage', '/v2/api-keys', '/v1/capabilities'])('GET %s answers 200 with its body to If-None-Match, and sends no ETag', async (path) => {
    const first = await server.call(path);
    expect(first.status).toBe(200);
    expect(first.headers.get('etag')).toBeNull();
    const body = await first.text();
    for (const tag of ['*', 'W/"x"', `W/"${body.length.toString(16)}-x"`]) {
      const again = await server.call(path, { headers: { 'If-None-Match': tag } });
      expect(again.status, tag).toBe(200);
      expect((await again.text()).length, tag).toBeGreaterThan(0);
    }
  });
});

describe('a key with a rate limit, on every operation and status', () => {
  let server: TestServer;
  let limited: ApiKeyWithSecret;
  beforeAll(async () => {
    server = await startTestServer();
    const response = await server.call('/v2/api-keys', jsonInit({ name: 'limited', constraints: { rate_limit: { requests_per_minute: 1000 } } }));
    limited = (await response.json()) as ApiKeyWithSecret;
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(operations.map((o) => [`${o.method.toUpperCase()} ${o.path}`, o] as const))('%s answers with RateLimit and RateLimit-Policy', async (_name, { path, method }) => {
    const response = await server.call(...requestFor(path, method, limited.api_key));
    expect(response.status).toBeLessThan(500);
    expect(response.headers.get('ratelimit-policy')).toBe('"per-key";q=1000;w=60');
    expect(response.headers.get('ratelimit')).toMatch(/^"per-key";r=\d+;t=\d+$/);
    // A 404 of a path that is not in the contract has them too.
    const unknown = await server.call('/v1/nope', { key: limited.api_key });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('ratelimit-policy')).toBe('"per-key";q=1000;w=60');
  });
});

describe('the database unreachable, on every operation', () => {
  let server: TestServer;
  let key: string;
  beforeAll(async () => {
    const down = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' }));
    const { database } = faultyStore({ findCredentialByHash: down, ping: down });
    server = await startTestServer({ database });
    key = server.account.key;
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(operations.map((o) => [`${o.method.toUpperCase()} ${o.path}`, o] as const))('%s with a key is a 503 problem with Retry-After', async (_name, { path, method, operation }) => {
    const response = await server.call(...requestFor(path, method, key));
    expect(response.status, await response.clone().text()).toBe(503);
    expect(operation.responses['503']).toBeDefined();
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});
