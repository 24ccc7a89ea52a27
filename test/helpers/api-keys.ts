// Shared by the v2 API-key tests: the contract's types, what a key object must look like, and thin wrappers
// over the /v2/api-keys calls of a test server.
import { expect } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import type { NewAccount } from '../../server/accounts.ts';
import type { Clock } from '../../server/clock.ts';
import { type KeySettings, newCredential } from '../../server/credentials.ts';
import { createIdGenerator } from '../../server/ids.ts';
import { jsonInit, type TestServer } from './server.ts';
import type { TestClock } from './clock.ts';

export type ApiKey = components['schemas']['ApiKey'];
export type ApiKeyWithSecret = components['schemas']['ApiKeyWithSecret'];
export type ApiKeyList = components['schemas']['ApiKeyList'];
export type ApiKeyCreate = components['schemas']['ApiKeyCreate'];
export type ApiKeyUpdate = components['schemas']['ApiKeyUpdate'];
export type ApiCredential = components['schemas']['ApiCredential'];
export type Problem = components['schemas']['Problem'];

export const KEY_PATTERN = /^or_[0-9A-Za-z]{38}$/;
/** What a leaked-key scanner looks for, anywhere in a text. */
export const RAW_KEY_ANYWHERE = /or_[0-9A-Za-z]{38}/;
/** Every field of the seed's API key object, its legacy_* fields included. */
export const API_KEY_FIELDS = [
  'access', 'api_key_id', 'constraints', 'created_at', 'created_by_id', 'last_used_at', 'legacy_key_id', 'legacy_token_family',
  'name', 'oauth_client', 'owner', 'permission_mode', 'project_scope', 'status', 'token_prefix', 'updated_at', 'updated_by_id',
];
export const SECRET_PROPERTIES = ['token_hash', 'api_key', 'key_hash', 'key', 'previous_key_hash'];
export const FUTURE = '2099-01-01T00:00:00.000Z';

export const WWW_AUTHENTICATE = 'Bearer realm="openrush"';
/**
 * RFC 6750 §3.1: the plain challenge when no credential was sent; error="invalid_token" (or "invalid_request" for
 * unusable headers) with the problem's detail as error_description when one was sent and refused.
 */
export function expectChallenge(response: Response, problem: Problem): void {
  const challenge = response.headers.get('www-authenticate');
  if (problem.detail.startsWith('Send an API key')) {
    expect(challenge).toBe(WWW_AUTHENTICATE);
    return;
  }
  const description = problem.detail.replace(/…/g, '...').replace(/["\\]/g, "'");
  expect([
    `${WWW_AUTHENTICATE}, error="invalid_token", error_description="${description}"`,
    `${WWW_AUTHENTICATE}, error="invalid_request", error_description="${description}"`,
  ]).toContain(challenge);
}

export async function expectProblem(response: Response, status: number): Promise<Problem> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(text) as Problem;
  expect(problem).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  expect(problem.request_id).toBe(response.headers.get('x-request-id'));
  return problem;
}

/** A 400 problem naming `location` `pointer` among its errors. */
export async function expectValidationError(response: Response, location: string, pointer: string): Promise<Problem> {
  const problem = await expectProblem(response, 400);
  expect(problem.errors).toContainEqual(expect.objectContaining({ location, pointer }));
  return problem;
}

/** Every property name anywhere in a JSON value. */
export function propertyNames(value: unknown, names = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) propertyNames(item, names);
  else if (value !== null && typeof value === 'object') {
    for (const [name, inner] of Object.entries(value)) {
      names.add(name);
      propertyNames(inner, names);
    }
  }
  return names;
}

export function apiKeysOf(server: TestServer) {
  const call = server.call.bind(server);
  const api = {
    create: (key: string, body: unknown, headers: Record<string, string> = {}) => call('/v2/api-keys', jsonInit(body, { key, headers })),
    async created(key: string, body: ApiKeyCreate, headers: Record<string, string> = {}): Promise<ApiKeyWithSecret> {
      const response = await api.create(key, body, headers);
      expect(response.status, await response.clone().text()).toBe(201);
      return (await response.json()) as ApiKeyWithSecret;
    },
    list: (key: string, query: Record<string, string | number> = {}) =>
      call(`/v2/api-keys?${new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))}`, { key }),
    async page(key: string, query: Record<string, string | number> = {}): Promise<ApiKeyList> {
      const response = await api.list(key, query);
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as ApiKeyList;
    },
    get: (key: string, id: string) => call(`/v2/api-keys/${id}`, { key }),
    async fetched(key: string, id: string): Promise<ApiKey> {
      const response = await api.get(key, id);
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as ApiKey;
    },
    patch: (key: string, id: string, body: unknown) => call(`/v2/api-keys/${id}`, jsonInit(body, { key, method: 'PATCH' })),
    revoke: (key: string, id: string) => call(`/v2/api-keys/${id}/revoke`, { method: 'POST', key }),
    rotate: (key: string, id: string, grace: number) => call(`/v2/api-keys/${id}/rotate`, jsonInit({ grace_period_seconds: grace }, { key })),
    /** The status a key gets on a plain authenticated read: 200 while it works, 401 once refused. */
    authStatus: async (key: string) => (await call('/v1/me/credits', { key })).status,
    v1List: async (key: string): Promise<ApiCredential[]> => {
      const response = await call('/v1/me/api-credentials', { key });
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as ApiCredential[];
    },
    v1Create: (key: string, body: unknown, headers: Record<string, string> = {}) =>
      call('/v1/me/api-credentials', jsonInit(body, { key, headers })),
    v1Revoke: (key: string, id: string) => call(`/v1/me/api-credentials/${id}/revoke`, { method: 'POST', key }),
  };
  return api;
}

/**
 * Writes `count` keys straight into the store (the real one), one test-clock millisecond apart so that creation
 * order is unambiguous. Returns their ids oldest first.
 */
export async function seedKeys(
  server: TestServer,
  clock: TestClock & Clock,
  account: NewAccount,
  count: number,
  settings: Partial<KeySettings> = {},
): Promise<string[]> {
  const ids = createIdGenerator(clock);
  const made: string[] = [];
  for (let i = 0; i < count; i++) {
    clock.advance(1);
    const { row } = newCredential(ids, clock, { accountId: account.accountId, name: `seeded ${i}`, by: account.accountId, ...settings });
    await server.store.createCredential(row);
    made.push(row.id);
  }
  return made;
}
