// The contract says everything the server can answer (issue 9 item 4): checked on the contract itself, then
// against the real server for every operation it lists.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { answerClientErrors } from '../../server/http/client-errors.ts';
import { Problem, problem, PROBLEM_BASE, problemCatalogue } from '../../server/problem.ts';
import { loadConfig } from '../../server/config.ts';
import { faultyStore } from '../helpers/faulty-store.ts';
import { issueGrant } from '../helpers/oauth-grant.ts';
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

const listed = (contract.components.schemas!.Problem as { 'x-openrush-problem-types': Array<{ type: string; title: string; status: number }> })[
  'x-openrush-problem-types'
];
const catalogue = new Map(listed.map((entry) => [entry.type, entry]));

type ExampleValue = { type?: unknown; status?: unknown; title?: unknown };
/** Every example of a problem response that an operation lists, with the status it is listed under. */
function problemExamples(): Array<{ at: string; status: string; value: ExampleValue }> {
  const resolve = <T,>(node: T & { $ref?: string }): T =>
    node.$ref ? (node.$ref.slice(2).split('/').reduce<any>((at, part) => at[part], contract) as T) : node;
  return operations.flatMap(({ path, method, operation }) =>
    Object.entries(operation.responses).flatMap(([status, response]) => {
      const media = (resolveResponse(response) as { content?: Record<string, { example?: ExampleValue; examples?: Record<string, { $ref?: string; value?: ExampleValue }> }> })
        .content?.['application/problem+json'];
      if (!media) return [];
      const at = `${method.toUpperCase()} ${path} ${status}`;
      return [
        ...(media.example ? [{ at, status, value: media.example }] : []),
        ...Object.entries(media.examples ?? {}).map(([name, example]) => ({ at: `${at} ${name}`, status, value: resolve(example).value ?? {} })),
      ];
    }),
  );
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

  it("lists the server's problem types with the server's statuses and titles, and renders them as the table", () => {
    expect(new Map(listed.map((entry) => [entry.type, { status: entry.status, title: entry.title }]))).toEqual(problemCatalogue());
    const described = (contract.components.schemas!.Problem as { properties: { type: { description: string } } }).properties.type.description;
    for (const entry of listed) expect(described).toContain(`| \`${entry.type}\` | ${entry.status} | ${entry.title} |`);
  });

  it("makes a problem's status its type's, even when a caller of the old constructor passes another", () => {
    expect(new Problem('idempotency_key_reused', 'Reused.').status).toBe(catalogue.get('idempotency_key_reused')!.status);
    // The deprecated (status, type, detail) form: the status given is ignored.
    expect(new Problem(422, 'idempotency_key_reused', 'Reused.')).toMatchObject({ status: 409, problemType: 'idempotency_key_reused', detail: 'Reused.' });
    expect(problem('conflict', 'Revoked.', { headers: { 'X-A': '1' } }).body('req_1')).toEqual({
      type: `${PROBLEM_BASE}conflict`,
      title: 'Conflict',
      status: 409,
      detail: 'Revoked.',
      request_id: 'req_1',
    });
  });

  it('gives each problem example the status and title of its type, under a response of that status', () => {
    const found = problemExamples();
    expect(found.length).toBeGreaterThan(10);
    const mismatches = found.flatMap(({ at, status, value }) => {
      const entry = catalogue.get(String(value.type).replace(PROBLEM_BASE, ''));
      if (!entry) return [`${at}: ${String(value.type)} is not in x-openrush-problem-types`];
      const wrong = [];
      if (value.status !== entry.status) wrong.push(`${at}: example status ${String(value.status)}, its type's ${entry.status}`);
      if (value.title !== entry.title) wrong.push(`${at}: example title ${String(value.title)}, its type's ${entry.title}`);
      if (status !== String(entry.status)) wrong.push(`${at}: under a ${status} response, its type is ${entry.status}`);
      return wrong;
    });
    expect(mismatches).toEqual([]);
  });

  it('documents problem responses only with statuses some problem type has', () => {
    const statuses = new Set(listed.map((entry) => String(entry.status)));
    const strays = operations.flatMap(({ path, method, operation }) =>
      Object.entries(operation.responses)
        .filter(([, response]) => (resolveResponse(response) as { content?: Record<string, unknown> }).content?.['application/problem+json'])
        .filter(([status]) => !statuses.has(status))
        .map(([status]) => `${method.toUpperCase()} ${path} ${status}`),
    );
    expect(strays).toEqual([]);
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

/** The operation of the contract a request path and method fall under, if any. */
function operationOf(method: string, url: string): Operation | undefined {
  const pathname = new URL(url, 'http://x').pathname;
  for (const { path, method: candidate, operation } of operations) {
    const pattern = new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (candidate === method.toLowerCase() && pattern.test(pathname)) return operation;
  }
  return undefined;
}

/** One raw HTTP/1.1 exchange: what a client that Node's parser refuses would see. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}

function parseRaw(text: string): { status: number; headers: Headers; text: string } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = new Headers(lines.map((line): [string, string] => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, text: body };
}

// What the server really answers, for every problem type of the catalogue: each is provoked once, and must come
// with its type's status and title, as problem+json, with a status the operation documents.
describe('every problem type, as the server answers it', () => {
  let server: TestServer;
  let broken: TestServer;
  let down: TestServer;
  let timing: Server;
  /** What the request meant to provoke each type answered: its status, content type and body. */
  const answered = new Map<string, { status: number; contentType: string | null; body: string; documented: boolean | null }>();

  /** `path` undefined: answered before the request is read, so it belongs to no operation (see the catalogue). */
  function record(expected: string, method: string, path: string | undefined, response: { status: number; headers: Headers; text: string }): void {
    const operation = path === undefined ? undefined : operationOf(method, path);
    answered.set(expected, {
      status: response.status,
      contentType: response.headers.get('content-type'),
      body: response.text,
      documented: operation ? response.status in operation.responses : null,
    });
  }
  async function send(expected: string, target: TestServer, path: string, init: RequestInit & { key?: string | null } = {}): Promise<void> {
    const response = await target.call(path, init);
    record(expected, init.method ?? 'GET', path, { status: response.status, headers: response.headers, text: await response.text() });
  }
  const createKey = async (body: Record<string, unknown>) =>
    (await (await server.call('/v2/api-keys', jsonInit(body))).json()) as ApiKeyWithSecret;

  beforeAll(async () => {
    server = await startTestServer();
    const boom = () => Promise.reject(new Error('a bug in the store'));
    broken = await startTestServer({ database: faultyStore({ getBalance: boom }).database });
    const refused = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' }));
    down = await startTestServer({ database: faultyStore({ findCredentialByHash: refused, ping: refused }).database });
    // The 408 comes from the same parser-level answer, on a server whose header timeout is short enough to wait for.
    timing = createServer({ headersTimeout: 200, requestTimeout: 300, connectionsCheckingInterval: 50 });
    answerClientErrors(timing);
    await new Promise<void>((resolve) => timing.listen(0, '127.0.0.1', resolve));

    const tool = '/v1/tools/inspect_domain';
    const readOnly = await createKey({ name: 'read only', permission_mode: 2 });
    const budgeted = await createKey({ name: 'budgeted', constraints: { budget: { period: 1, amount: 1 } } });
    const limited = await createKey({ name: 'limited', constraints: { rate_limit: { requests_per_minute: 1 } } });
    const revoked = await createKey({ name: 'revoked' });
    await server.call(`/v2/api-keys/${revoked.api_key_id}/revoke`, { method: 'POST' });
    const poor = await server.newAccount(0);

    await send('validation_failed', server, '/v2/api-keys', jsonInit({}));
    await send('malformed_json', server, '/v2/api-keys', jsonInit('{"name": '));
    await send('unauthorized', server, '/v1/me/credits', { key: null });
    await send('payment_required', server, tool, jsonInit({ domain: 'example.com' }, { key: poor.key }));
    await send('budget_exhausted', server, tool, jsonInit({ domain: 'example.com' }, { key: budgeted.api_key }));
    await send('forbidden', server, '/v2/api-keys', jsonInit({ name: 'more' }, { key: readOnly.api_key }));
    await send('not_found', server, '/v1/nope');
    await send('method_not_allowed', server, '/v1/me/credits', { method: 'DELETE' });
    await send('not_acceptable', server, '/mcp', jsonInit({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { headers: { Accept: 'application/json' } }));
    await send('conflict', server, `/v2/api-keys/${revoked.api_key_id}`, jsonInit({ name: 'renamed' }, { method: 'PATCH' }));
    await server.call('/v2/api-keys', jsonInit({ name: 'one' }, { headers: { 'Idempotency-Key': 'coverage-1' } }));
    await send('idempotency_key_reused', server, '/v2/api-keys', jsonInit({ name: 'two' }, { headers: { 'Idempotency-Key': 'coverage-1' } }));
    await send('payload_too_large', server, '/v2/api-keys', jsonInit({ name: 'x'.repeat(70_000) }));
    await send('unsupported_media_type', server, '/v2/api-keys', { method: 'POST', body: 'name=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    await server.call('/v1/me/credits', { key: limited.api_key });
    await send('too_many_requests', server, '/v1/me/credits', { key: limited.api_key });
    // An OAuth access token granted no scope, calling a tool that needs tools:use.
    const scopeless = await issueGrant(server, loadConfig({}), { scopes: [] });
    const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'inspect_domain', arguments: { domain: 'example.com' } } };
    await send('insufficient_scope', server, '/mcp', jsonInit(call, { key: scopeless.accessToken, headers: { Accept: 'application/json, text/event-stream' } }));
    // What Node's parser refuses: a NUL in a header, headers over 16 KiB, headers that never end.
    const port = Number(new URL(server.url).port);
    record('bad_request', 'GET', undefined, parseRaw(await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\0b\r\n\r\n')));
    record('request_header_fields_too_large', 'GET', undefined, parseRaw(await rawExchange(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ${'x'.repeat(20_000)}\r\n\r\n`)));
    record('request_timeout', 'GET', undefined, parseRaw(await rawExchange((timing.address() as AddressInfo).port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n')));
    await send('internal_error', broken, '/v1/me/credits');
    await send('service_unavailable', down, '/v1/me/credits');
  }, 60_000);
  afterAll(async () => {
    await Promise.all([server?.close(), broken?.close(), down?.close(), new Promise((resolve) => timing?.close(resolve))]);
  });

  it.each(listed.map((entry) => [entry.type, entry] as const))('%s: its status and title, as problem+json, a status the operation documents', (type, entry) => {
    const seen = answered.get(type);
    expect(seen, `no request provokes ${type}: add one above`).toBeDefined();
    expect(seen!.contentType, seen!.body).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(seen!.body)).toMatchObject({ type: PROBLEM_BASE + type, status: entry.status, title: entry.title });
    expect(seen!.status).toBe(entry.status);
    if (seen!.documented !== null) expect(seen!.documented, `the operation does not document ${entry.status}`).toBe(true);
  });
});
