// What an outside fuzzer and hand attacks found (issue 9), each replayed against the real server: dates the
// validator accepts but JavaScript cannot read, keys in URL paths, lone surrogates, JavaScript number syntax in
// integer query parameters, HEAD, path spelling, RFC 6750 challenges and bare Node answers.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type Problem = components['schemas']['Problem'];
type ApiKey = components['schemas']['ApiKey'];
type ApiCredentialCreated = components['schemas']['ApiCredentialCreated'];
type UsageRecord = components['schemas']['UsageRecord'];

async function expectProblem(response: Response, status: number): Promise<Problem> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json\b/);
  const problem = JSON.parse(text) as Problem;
  expect(problem.status).toBe(status);
  expect(problem.request_id).toBe(response.headers.get('x-request-id'));
  return problem;
}

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('RFC 3339 dates: one parser for every date-time input', () => {
  // Each input, and the instant it must be stored as (or null: refused with 400).
  const cases: Array<[string, string | null]> = [
    ['2030-06-30T23:59:60Z', '2030-07-01T00:00:00.000Z'], // a leap second: the first instant after it
    ['2030-06-30T22:59:60-01:00', '2030-07-01T00:00:00.000Z'],
    ['2030-07-01T01:59:60+02:00', '2030-07-01T00:00:00.000Z'],
    ['2030-01-01T12:00:00+05:30', '2030-01-01T06:30:00.000Z'],
    ['2030-01-01t12:00:00.123456z', '2030-01-01T12:00:00.123Z'],
    ['9999-12-31T23:59:59Z', '9999-12-31T23:59:59.000Z'],
    ['9999-12-31T23:59:59-23:59', null], // would be year 10000 in UTC
    ['9999-12-31T23:59:60Z', null],
  ];

  it.each(cases)('v1 create with expires_at %s', async (input, stored) => {
    const body = { name: 'dated', expires_at: input };
    const response = await server.call('/v1/me/api-credentials', jsonInit(body));
    if (stored === null) {
      const problem = await expectProblem(response, 400);
      expect(problem.errors?.[0]).toMatchObject({ location: 'body', pointer: '/expires_at' });
      return;
    }
    expect(response.status, await response.clone().text()).toBe(201);
    const created = (await response.json()) as ApiCredentialCreated;
    expect(created.api_credential.expires_at).toBe(stored);
    expect(created.api_credential.is_active).toBe(true);
    // The list reads it back the same, and it is not counted as expired.
    const listed = (await (await server.call('/v1/me/api-credentials')).json()) as Array<{ id: string; expires_at: string }>;
    expect(listed.find((c) => c.id === created.api_credential.id)?.expires_at).toBe(stored);
    const expired = (await (await server.call('/v2/api-keys?status=4&limit=200')).json()) as { data: ApiKey[] };
    expect(expired.data.map((k) => k.api_key_id)).not.toContain(created.api_credential.id);
  });

  it.each(cases)('v2 create and PATCH with constraints.expires_at %s', async (input, stored) => {
    const created = await server.call('/v2/api-keys', jsonInit({ name: 'dated v2', constraints: { expires_at: input } }));
    const plain = (await (await server.call('/v2/api-keys', jsonInit({ name: 'to patch' }))).json()) as ApiKey;
    const patched = await server.call(`/v2/api-keys/${plain.api_key_id}`, jsonInit({ constraints: { expires_at: input } }, { method: 'PATCH' }));
    if (stored === null) {
      for (const response of [created, patched]) {
        const problem = await expectProblem(response, 400);
        expect(problem.errors?.[0]).toMatchObject({ location: 'body', pointer: '/constraints/expires_at' });
      }
      const unchanged = (await (await server.call(`/v2/api-keys/${plain.api_key_id}`)).json()) as ApiKey;
      expect(unchanged.constraints.expires_at).toBeNull();
      return;
    }
    expect(created.status, await created.clone().text()).toBe(201);
    expect(((await created.json()) as ApiKey).constraints.expires_at).toBe(stored);
    expect(patched.status, await patched.clone().text()).toBe(200);
    expect(((await patched.json()) as ApiKey).constraints.expires_at).toBe(stored);
    const read = (await (await server.call(`/v2/api-keys/${plain.api_key_id}`)).json()) as ApiKey;
    expect(read.constraints.expires_at).toBe(stored);
    expect(read.status).toBe(1);
  });

  it('an idempotent retry of a leap-second create replays the first answer', async () => {
    const init = jsonInit({ name: 'leap', expires_at: '2030-06-30T23:59:60Z' }, { headers: { 'Idempotency-Key': 'leap-second-retry' } });
    const first = await server.call('/v1/me/api-credentials', init);
    expect(first.status, await first.clone().text()).toBe(201);
    const second = await server.call('/v1/me/api-credentials', init);
    expect(second.status, await second.clone().text()).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await second.json()).toEqual(await first.json());
  });

  it('a key with a leap-second expiry cannot make a key that outlives it', async () => {
    const made = await server.call('/v2/api-keys', jsonInit({ name: 'parent', constraints: { expires_at: '2030-06-30T23:59:60Z' } }));
    expect(made.status, await made.clone().text()).toBe(201);
    const parent = (await made.json()) as ApiKey & { api_key: string };
    const child = await server.call('/v2/api-keys', jsonInit({ name: 'child', constraints: { expires_at: '2030-07-01T00:00:01Z' } }, { key: parent.api_key }));
    await expectProblem(child, 403);
  });
});

/** The account's usage records, newest first (as the API serves them). */
async function usage(limit = 20): Promise<UsageRecord[]> {
  const response = await server.call(`/v1/me/usage?limit=${limit}`);
  expect(response.status).toBe(200);
  return (await response.json()) as UsageRecord[];
}

describe('secrets sent in a URL path', () => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWhlcmUtYWJj';
  const key = () => server.account.key;
  const paths = () => [
    `/v1/me/credits/${key()}`,
    `/v1/me/credits/%6F${key().slice(1)}`, // the same key, percent-encoded
    `/v2/api-keys/${key()}`,
    `/v2/api-keys/${key().slice(3)}`, // the key without its or_ prefix
    `/v1/me/api-credentials/${jwt}/revoke`,
  ];

  it.each([0, 1, 2, 3, 4])('path %i: the usage record, its error message and the database never hold the secret', async (index) => {
    const path = paths()[index]!;
    const secret = index === 4 ? jwt : key().slice(3);
    const response = await server.call(path, index === 4 ? { method: 'POST' } : {});
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    const requestId = response.headers.get('x-request-id');
    const records = await usage();
    const record = records.find((r) => r.status_code === response.status && r.endpoint.includes('[REDACTED]'));
    expect(record, JSON.stringify(records.slice(0, 3))).toBeDefined();
    expect(JSON.stringify(records)).not.toContain(secret);
    expect(JSON.stringify(records)).not.toContain(secret.slice(0, 20));
    expect(await server.database.dumpText()).not.toContain(secret.slice(0, 20));
    expect(server.logs.filter((line) => line.includes(requestId!)).join('\n')).not.toContain(secret.slice(0, 20));
  });
});

describe('a key sent as X-Request-Id', () => {
  it('is not taken as the request id, so it is neither echoed nor logged', async () => {
    const key = server.account.key;
    const response = await server.call('/v1/me/credits', { headers: { 'X-Request-Id': key } });
    expect(response.status).toBe(200);
    const requestId = response.headers.get('x-request-id');
    expect(requestId).toMatch(/^req_/);
    expect(server.logs.join('\n')).not.toContain(key.slice(3));
    // A harmless id of the client's own is kept.
    const kept = await server.call('/v1/me/credits', { headers: { 'X-Request-Id': 'client-7f3a' } });
    expect(kept.headers.get('x-request-id')).toBe('client-7f3a');
  });
});

describe('well-formed Unicode on the way in', () => {
  it('a lone surrogate in a JSON string is a 400 and nothing is created', async () => {
    const before = (await (await server.call('/v1/me/api-credentials')).json()) as unknown[];
    for (const raw of ['{"name":"x\\ud800y"}', '{"name":"x\\udc00"}', '{"name":"ok","\\ud800":1}']) {
      const problem = await expectProblem(await server.call('/v1/me/api-credentials', jsonInit(raw)), 400);
      expect(problem.type).toMatch(/validation_failed$/);
    }
    const v2 = await server.call('/v2/api-keys', jsonInit('{"name":"a","project_scope":{"single":{"project_id":"proj_\\ud83d"}}}'));
    await expectProblem(v2, 400);
    const after = (await (await server.call('/v1/me/api-credentials')).json()) as unknown[];
    expect(after).toHaveLength(before.length);
  });

  it('a surrogate pair (an emoji) is fine and reads back the same', async () => {
    const response = await server.call('/v1/me/api-credentials', jsonInit('{"name":"rocket \\ud83d\\ude80"}'));
    expect(response.status).toBe(201);
    const created = (await response.json()) as ApiCredentialCreated;
    expect(created.api_credential.name).toBe('rocket 🚀');
    const listed = (await (await server.call('/v1/me/api-credentials')).json()) as Array<{ id: string; name: string }>;
    expect(listed.find((c) => c.id === created.api_credential.id)?.name).toBe('rocket 🚀');
  });

  it('bytes that are not UTF-8 in a JSON body are a 400', async () => {
    const body = Buffer.concat([Buffer.from('{"name":"x'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('y"}')]);
    await expectProblem(await server.call('/v1/me/api-credentials', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }), 400);
    const latin1 = Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    await expectProblem(await server.call('/v1/me/api-credentials', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: latin1 }), 400);
  });

  it.each([
    '/v2/api-keys?project_id=proj_%ED%A0%80',
    '/v2/api-keys?project_id=proj_%FF',
    '/v1/me/usage?credential_id=cred_%ED%A0%80',
    '/v2/api-keys/cred_%ED%A0%80',
    '/v2/api-keys/cred_%C0%AF',
  ])('GET %s (an encoded lone surrogate or a byte that is not UTF-8) is a 400', async (path) => {
    const problem = await expectProblem(await server.call(path), 400);
    expect(problem.type).toMatch(/validation_failed$/);
  });
});

describe('integer query parameters: plain decimal digits only', () => {
  it.each(['0x10', '1e1', '0b11', '0o7', '+5', '%205', '5%20', 'Infinity', '-Infinity', '1.0', '5.5', '', '0x', '1_0', '٣'])(
    'limit=%s is a 400 on both lists',
    async (value) => {
      for (const path of [`/v1/me/usage?limit=${value}`, `/v2/api-keys?limit=${value}`]) {
        const problem = await expectProblem(await server.call(path), 400);
        expect(problem.errors?.[0]).toMatchObject({ location: 'query', pointer: '/limit' });
      }
    },
  );

  it('status=0x1 is a 400; status=1 and limit=16 work', async () => {
    await expectProblem(await server.call('/v2/api-keys?status=0x1'), 400);
    expect((await server.call('/v2/api-keys?status=1&limit=16')).status).toBe(200);
    expect((await server.call('/v1/me/usage?limit=16')).status).toBe(200);
  });

  it('limit=-3 and limit=0 on usage are clamped to 1, as documented', async () => {
    for (const value of ['-3', '0', '007']) {
      const response = await server.call(`/v1/me/usage?limit=${value}`);
      expect(response.status).toBe(200);
      expect(((await response.json()) as unknown[]).length).toBe(value === '007' ? 7 : 1);
    }
  });
});

describe('HEAD, path spelling and trailing slashes', () => {
  it.each(['/v1/me/credits', '/v1/me/usage', '/v1/me/api-credentials', '/v2/api-keys', '/v1/capabilities', '/healthz', '/readyz'])(
    'HEAD %s answers like GET without a body',
    async (path) => {
      const get = await server.call(path);
      const head = await server.call(path, { method: 'HEAD' });
      expect(head.status).toBe(get.status);
      expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
      expect(await head.text()).toBe('');
    },
  );

  it('a 405 lists HEAD wherever GET is allowed; HEAD where there is no GET is a 405', async () => {
    const response = await server.call('/v1/me/credits', { method: 'DELETE' });
    await expectProblem(response, 405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    const head = await server.call('/v1/tools/inspect_domain', { method: 'HEAD' });
    expect(head.status).toBe(405);
    expect(head.headers.get('allow')).toBe('POST');
  });

  it('HEAD needs a key like GET, and is recorded with the canonical path', async () => {
    const refused = await server.call('/v1/me/credits', { method: 'HEAD', key: null });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="openrush"');
    const head = await server.call('/v1/me/credits', { method: 'HEAD' });
    expect(head.status).toBe(200);
    const [record] = await usage(2).then((records) => records.filter((r) => r.method === 'HEAD'));
    expect(record).toMatchObject({ endpoint: '/v1/me/credits', method: 'HEAD', status_code: 200 });
  });

  it.each(['/V1/me/credits', '/v1/ME/credits', '/v1/me/credits/', '/v2/api-keys/', '/v1/capabilities/', '/healthz/', '//v1/me/credits'])(
    'GET %s is a 404 problem, and the usage record keeps the path as a 404',
    async (path) => {
      const problem = await expectProblem(await server.call(path), 404);
      expect(problem.type).toMatch(/not_found$/);
      const [record] = await usage(2).then((records) => records.filter((r) => r.status_code === 404));
      expect(record).toMatchObject({ endpoint: path, method: 'GET', status_code: 404 });
    },
  );
});

describe('RFC 6750 challenges', () => {
  it('a missing credential gets the plain challenge', async () => {
    const response = await server.call('/v1/me/credits', { key: null });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="openrush"');
  });

  it.each([
    ['an unknown key', () => `or_${'a'.repeat(38)}`],
    ['a revoked key', async () => {
      const created = (await (await server.call('/v1/me/api-credentials', jsonInit({ name: 'to revoke' }))).json()) as ApiCredentialCreated;
      await server.call(`/v1/me/api-credentials/${created.api_credential.id}/revoke`, { method: 'POST' });
      return created.key;
    }],
    ['a forged session token', () => 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'],
    ['something else', () => 'hello'],
  ])('%s gets error="invalid_token" with a description', async (_what, credential) => {
    const response = await server.call('/v1/me/credits', { key: await credential() });
    await expectProblem(response, 401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer realm="openrush", error="invalid_token", error_description="[\x20\x21\x23-\x5B\x5D-\x7E]+"$/);
  });
});

/** Sends raw bytes to the server and reads everything it answers until it closes the connection. */
function rawRequest(request: string | Buffer): Promise<string> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.end(request));
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

function parseRaw(answer: string): { status: number; headers: Record<string, string>; body: string } {
  const [head = '', body = ''] = answer.split('\r\n\r\n', 2);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

describe('requests Node refuses before Express sees them', () => {
  it('oversized headers get a 431 problem document that keeps the request id', async () => {
    const answer = parseRaw(
      await rawRequest(`GET /v1/me/credits HTTP/1.1\r\nHost: x\r\nX-Request-Id: big-headers-1\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    expect(answer.status).toBe(431);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.headers['x-request-id']).toBe('big-headers-1');
    const problem = JSON.parse(answer.body) as Problem;
    expect(problem).toMatchObject({ status: 431, request_id: 'big-headers-1', type: expect.stringMatching(/request_header_fields_too_large$/) });
  });

  it.each([
    ['a NUL in a header value', 'GET /v1/me/credits HTTP/1.1\r\nHost: x\r\nX-Thing: a\u0000b\r\n\r\n'],
    ['a space in a header name', 'GET /v1/me/credits HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n'],
    ['a request line that is not HTTP', 'HELLO\r\n\r\n'],
  ])('%s gets a 400 problem document with a request id', async (_what, request) => {
    const answer = parseRaw(await rawRequest(Buffer.from(request, 'latin1')));
    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(answer.body) as Problem;
    expect(problem.status).toBe(400);
    expect(problem.request_id).toMatch(/^req_/);
    expect(problem.request_id).toBe(answer.headers['x-request-id']);
  });
});
