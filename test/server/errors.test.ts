// Every error is an RFC 9457 problem+json document with a request id, and none of them leaks internals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import type { Store } from '../../server/store/types.ts';
import { faultyStore } from '../helpers/faulty-store.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type Problem = components['schemas']['Problem'];
type UsageRecord = components['schemas']['UsageRecord'];

// What must never reach a client: stack frames, dependency or checkout paths, SQL, the database's name.
const LEAKS = [/\n\s*at /, /\bat \S+ \(/, /node_modules/, /\/work\//, /SELECT/i, /sqlite/i, /secret/i];
const SECRET_MESSAGE = 'SELECT secret FROM x at /work/main/server/store/kysely-store.ts:88:13';
const BODY_LIMIT = 64 * 1024;

/** Checks one error response from top to bottom; every error response in this file goes through here. */
async function expectProblem(response: Response, status: number): Promise<Problem> {
  const text = await response.text();
  for (const leak of LEAKS) expect(text, `leak ${leak} in ${text}`).not.toMatch(leak);
  expect(response.status, text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json\b/);
  const requestId = response.headers.get('x-request-id');
  expect(requestId).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  const problem = JSON.parse(text) as Problem;
  expect(problem).toEqual(
    expect.objectContaining({
      type: expect.stringMatching(/^https?:\/\/\S+$/),
      title: expect.any(String),
      status,
      detail: expect.any(String),
      request_id: requestId,
    }),
  );
  expect(problem.title.length).toBeGreaterThan(0);
  expect(problem.detail.length).toBeGreaterThan(0);
  return problem;
}

function failing(message = SECRET_MESSAGE): () => Promise<never> {
  return async () => {
    throw new Error(message);
  };
}

/** The JSON log lines the server wrote about one request. */
function logsOf(server: TestServer, requestId: string): Array<Record<string, unknown>> {
  return server.logs
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry.request_id === requestId || (entry.req as { id?: string } | undefined)?.id === requestId);
}

describe('a working server', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('unknown paths and methods', () => {
    it.each(['/', '/v1/nope', '/v1/me/credits/extra', '/v3/api-keys'])('GET %s is a 404 problem, with or without a key', async (path) => {
      await expectProblem(await server.call(path), 404);
      await expectProblem(await server.call(path, { key: null }), 404);
    });

    it.each([
      ['DELETE', '/v1/me/credits', 'GET'],
      ['PUT', '/v1/me/usage', 'GET'],
      ['PATCH', '/v1/me/api-credentials', 'GET'],
      ['GET', '/v1/me/api-credentials/cred_01KW1WT6F8KK8E8PW71NXT39GC/revoke', 'POST'],
    ])('%s %s is a 405 problem that names the allowed methods', async (method, path, allowed) => {
      const response = await server.call(path, { method });
      expect(response.headers.get('allow') ?? '').toContain(allowed);
      await expectProblem(response, 405);
    });
  });

  describe('request bodies', () => {
    // A JSON body of exactly `size` bytes.
    const bodyOf = (size: number) => {
      const shell = JSON.stringify({ name: '' });
      return JSON.stringify({ name: 'x'.repeat(size - shell.length) });
    };

    it('a body over 64 KiB is a 413 problem, authenticated or not', async () => {
      const body = bodyOf(BODY_LIMIT + 1);
      expect(Buffer.byteLength(body)).toBe(BODY_LIMIT + 1);
      await expectProblem(await server.call('/v1/me/api-credentials', jsonInit(body)), 413);
      await expectProblem(await server.call('/v1/capabilities', jsonInit(body, { key: null })), 413);
    });

    it('a body of exactly 64 KiB is read (and then judged on its content)', async () => {
      const problem = await expectProblem(await server.call('/v1/me/api-credentials', jsonInit(bodyOf(BODY_LIMIT))), 400);
      expect(problem.errors?.some((error) => error.pointer === '/name')).toBe(true);
    });

    it.each([
      ['text/plain', 'name=Acme'],
      ['application/x-www-form-urlencoded', 'name=Acme'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nAcme\r\n--x--\r\n'],
    ])('a %s body is a 415 problem', async (contentType, body) => {
      const init = { method: 'POST', headers: { 'Content-Type': contentType }, body };
      await expectProblem(await server.call('/v1/me/api-credentials', init), 415);
      await expectProblem(await server.call('/v1/capabilities', { ...init, key: null }), 415);
      // Nothing was created by the refused requests.
      const list = await server.call('/v1/me/api-credentials');
      expect(((await list.json()) as Array<{ name: string }>).some((credential) => credential.name === 'Acme')).toBe(false);
    });

    it('a body with no Content-Type is a 415 problem, also where the body is optional', async () => {
      // Found by the fuzz suite: POST /v1/capabilities answered 200, ignoring a body it could not read.
      const body = new TextEncoder().encode('{"name":"Acme"}');
      await expectProblem(await server.call('/v1/me/api-credentials', { method: 'POST', body }), 415);
      await expectProblem(await server.call('/v1/capabilities', { method: 'POST', body, key: null }), 415);
      // Without a body there is nothing to refuse.
      expect((await server.call('/v1/capabilities', { method: 'POST', key: null })).status).toBe(200);
    });

    it.each(['{"name": ', '{name: "Acme"}', "{'name': 'Acme'}", '{"name": "Acme"}}'])('malformed JSON %s is a 400 problem', async (body) => {
      const problem = await expectProblem(await server.call('/v1/me/api-credentials', jsonInit(body)), 400);
      // The parser's own message (which quotes the input and names positions) is not passed on.
      expect(problem.detail).not.toContain('Unexpected');
    });

    it('a validation failure lists each problem with its JSON pointer', async () => {
      const problem = await expectProblem(
        await server.call('/v1/me/api-credentials', jsonInit({ name: 'ok', colour: 'red' })),
        400,
      );
      expect(problem.errors).toEqual(expect.arrayContaining([expect.objectContaining({ location: 'body', message: expect.any(String) })]));
    });
  });

  it('GET /readyz is 200 {status: ok} and GET /healthz too', async () => {
    for (const path of ['/readyz', '/healthz']) {
      const response = await server.call(path, { key: null });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-request-id')).toBeTruthy();
      expect(await response.json()).toEqual({ status: 'ok' });
    }
  });
});

describe('a server whose database fails', () => {
  async function serverWith(overrides: Partial<Store>) {
    const server = await startTestServer({ database: faultyStore(overrides).database });
    return { server, close: () => server.close() };
  }

  it('answers an internal failure with a 500 problem that hides the cause and logs it under the request id', async () => {
    const { server, close } = await serverWith({ getBalance: failing() });
    try {
      const response = await server.call('/v1/me/credits');
      const problem = await expectProblem(response, 500);
      expect(problem.detail).toContain('request_id');

      // The operator, not the client, gets the real error, findable by the id the client was given.
      const lines = logsOf(server, problem.request_id);
      const logged = lines.find((entry) => entry.level === 50 && JSON.stringify(entry.err ?? '').includes(SECRET_MESSAGE));
      expect(logged, JSON.stringify(lines)).toBeDefined();

      // The failed request is in the usage, with the same harmless detail.
      const usage = await server.call('/v1/me/usage?limit=1');
      const [record] = (await usage.json()) as UsageRecord[];
      expect(record).toMatchObject({
        endpoint: '/v1/me/credits',
        status_code: 500,
        error_type: 'internal_error',
        error_message: problem.detail,
      });
    } finally {
      await close();
    }
  });

  it('answers a failure while checking the key with a 500 problem, not a 401 and not the cause', async () => {
    const { server, close } = await serverWith({ findCredentialByHash: failing() });
    try {
      const problem = await expectProblem(await server.call('/v1/me/credits'), 500);
      expect(logsOf(server, problem.request_id).some((entry) => entry.level === 50)).toBe(true);
    } finally {
      await close();
    }
  });

  it('does not acknowledge a request whose usage record cannot be written', async () => {
    // "Nothing acknowledged is lost": a 200 the usage never shows would be exactly that.
    const { server, close } = await serverWith({ recordUsage: failing() });
    try {
      const response = await server.call('/v1/me/credits');
      expect([500, 503]).toContain(response.status);
      const problem = await expectProblem(response, response.status);
      expect(logsOf(server, problem.request_id).some((entry) => entry.level === 50)).toBe(true);
    } finally {
      await close();
    }
  });

  it('answers GET /readyz with a 503 problem when the database cannot be reached, while /healthz stays 200', async () => {
    const { server, close } = await serverWith({ ping: failing('SQLITE_CANTOPEN: unable to open /work/main/data/openrush.db') });
    try {
      await expectProblem(await server.call('/readyz', { key: null }), 503);
      const health = await server.call('/healthz', { key: null });
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
    } finally {
      await close();
    }
  });
});
