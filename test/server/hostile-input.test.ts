// What an outside fuzzer and hand attacks found (issue 9), each replayed against the real server: dates the
// validator accepts but JavaScript cannot read, keys in URL paths, lone surrogates, JavaScript number syntax in
// integer query parameters, HEAD, path spelling, RFC 6750 challenges and bare Node answers.
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
