// Charged calls that are safe to retry (issue 18): an Idempotency-Key on a priced tool's call, over HTTP (the
// header) and MCP (`_meta`). The first answer is kept with its charge; the same call again gets it back, flagged,
// and is charged nothing (even once the credits are gone); the key with another body is a 409; concurrent calls
// under one key are charged once; a refused call keeps nothing. Against a real server and its real store (SQLite
// here, PostgreSQL in the PostgreSQL pass), the balance, the ledger and the usage records read back.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type UsageRecord = components['schemas']['UsageRecord'];

const INSPECT = '/v1/tools/inspect_domain';
const bundled = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'));
const PRICE: number = bundled.paths[INSPECT].post['x-openrush-credits'];
const MCP_ACCEPT = 'application/json, text/event-stream';
const KEY_META = 'openrush.io/idempotency-key';
const REPLAYED_META = 'openrush.io/idempotent-replayed';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

function inspect(key: string, domain: string, idempotencyKey?: string): Promise<Response> {
  return server.call(INSPECT, jsonInit({ domain }, { key, headers: idempotencyKey === undefined ? {} : { 'Idempotency-Key': idempotencyKey } }));
}

async function mcpCall(key: string, name: string, args: unknown, meta?: Record<string, unknown>): Promise<{ result: Record<string, unknown> }> {
  const response = await server.call(
    '/mcp',
    jsonInit({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } }, { key, headers: { Accept: MCP_ACCEPT } }),
  );
  expect(response.status).toBe(200);
  return (await response.json()) as { result: Record<string, unknown> };
}

async function balanceOf(key: string): Promise<number> {
  return ((await (await server.call('/v1/me/credits', { key })).json()) as { balance: number }).balance;
}

async function chargesOf(accountId: string): Promise<number> {
  const entries = await server.store.listLedger(accountId, { limit: 500 });
  return entries.filter((entry) => entry.kind === 'charge').length;
}

async function usageOf(key: string): Promise<UsageRecord[]> {
  return (await (await server.call('/v1/me/usage?limit=500', { key })).json()) as UsageRecord[];
}

describe('an Idempotency-Key on a charged call', () => {
  it('over HTTP: the retry gets the first answer, flagged, and is charged nothing; the ledger has one charge', async () => {
    const { key, accountId } = await server.newAccount(100);
    const idempotencyKey = randomUUID();
    const first = await inspect(key, 'https://blog.example.co.uk/a', idempotencyKey);
    expect(first.status).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const answer = await first.json();
    expect(await balanceOf(key)).toBe(100 - PRICE);
    for (let retry = 0; retry < 3; retry++) {
      const again = await inspect(key, 'https://blog.example.co.uk/a', idempotencyKey);
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(await again.json()).toEqual(answer);
    }
    expect(await balanceOf(key)).toBe(100 - PRICE);
    expect(await chargesOf(accountId)).toBe(1);
    // Every call is a usage record; only the first is charged.
    const calls = (await usageOf(key)).filter((record) => record.endpoint === INSPECT);
    expect(calls.map((record) => record.credits_charged).sort()).toEqual([0, 0, 0, PRICE]);
    // The raw Idempotency-Key is nowhere in the database (only its hash, and the answer sealed with it).
    expect(await server.database.dumpText()).not.toContain(idempotencyKey);
  });

  it('the same key with another body is a 409 problem, and nothing is charged', async () => {
    const { key } = await server.newAccount(100);
    const idempotencyKey = randomUUID();
    expect((await inspect(key, 'example.com', idempotencyKey)).status).toBe(200);
    const other = await inspect(key, 'example.org', idempotencyKey);
    expect(other.status).toBe(409);
    expect(await other.json()).toMatchObject({ type: 'https://openrush.io/problems/idempotency_key_reused', status: 409 });
    expect(await balanceOf(key)).toBe(100 - PRICE);
  });

  it('a retry is answered even once the credits are gone (it costs nothing)', async () => {
    const { key } = await server.newAccount(PRICE);
    const idempotencyKey = randomUUID();
    expect((await inspect(key, 'example.com', idempotencyKey)).status).toBe(200);
    expect(await balanceOf(key)).toBe(0);
    expect((await inspect(key, 'example.com')).status).toBe(402);
    const again = await inspect(key, 'example.com', idempotencyKey);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  it('a refused call keeps nothing: after a 402, the same key runs (and charges) once credits are there', async () => {
    const { key, accountId } = await server.newAccount(0);
    const idempotencyKey = randomUUID();
    expect((await inspect(key, 'example.com', idempotencyKey)).status).toBe(402);
    await server.store.grantCredits({ ledgerId: `led_${randomUUID()}`, eventId: `evt_${randomUUID()}`, accountId, amount: 10, note: 'test', createdAt: new Date().toISOString() });
    const paid = await inspect(key, 'example.com', idempotencyKey);
    expect(paid.status).toBe(200);
    expect(paid.headers.get('idempotent-replayed')).toBeNull();
    expect(await balanceOf(key)).toBe(10 - PRICE);
  });

  it('concurrent calls under one key are charged once; every one gets the same answer', async () => {
    const { key, accountId } = await server.newAccount(1000);
    const idempotencyKey = randomUUID();
    const responses = await Promise.all(Array.from({ length: 12 }, () => inspect(key, 'https://a.b.example.com', idempotencyKey)));
    expect(responses.map((response) => response.status)).toEqual(responses.map(() => 200));
    const bodies = await Promise.all(responses.map((response) => response.json()));
    for (const body of bodies) expect(body).toEqual(bodies[0]);
    expect(responses.filter((response) => response.headers.get('idempotent-replayed') === 'true')).toHaveLength(11);
    expect(await balanceOf(key)).toBe(1000 - PRICE);
    expect(await chargesOf(accountId)).toBe(1);
    expect(await server.store.sumLedger(accountId)).toBe(1000 - PRICE);
  });

  it('keys are the account’s own: another account’s call under the same key runs and is charged', async () => {
    const idempotencyKey = randomUUID();
    const a = await server.newAccount(100);
    const b = await server.newAccount(100);
    expect((await inspect(a.key, 'example.com', idempotencyKey)).status).toBe(200);
    const other = await inspect(b.key, 'example.com', idempotencyKey);
    expect(other.status).toBe(200);
    expect(other.headers.get('idempotent-replayed')).toBeNull();
    expect(await balanceOf(b.key)).toBe(100 - PRICE);
  });

  it('over MCP (_meta): the retry is flagged in the result and charged nothing; one key is one call over both transports', async () => {
    const { key, accountId } = await server.newAccount(100);
    const idempotencyKey = randomUUID();
    const first = await mcpCall(key, 'inspect_domain', { domain: 'shop.example.de' }, { [KEY_META]: idempotencyKey });
    expect(first.result.isError).toBeUndefined();
    expect(first.result._meta).toBeUndefined();
    const again = await mcpCall(key, 'inspect_domain', { domain: 'shop.example.de' }, { [KEY_META]: idempotencyKey });
    expect(again.result.structuredContent).toEqual(first.result.structuredContent);
    expect(again.result._meta).toEqual({ [REPLAYED_META]: true });
    // The same call over HTTP under that key is the same call.
    const http = await inspect(key, 'shop.example.de', idempotencyKey);
    expect(http.headers.get('idempotent-replayed')).toBe('true');
    expect(await http.json()).toEqual(first.result.structuredContent);
    expect(await balanceOf(key)).toBe(100 - PRICE);
    expect(await chargesOf(accountId)).toBe(1);
    // Other arguments under the key: the 409 problem, as a tool error.
    const conflict = await mcpCall(key, 'inspect_domain', { domain: 'other.example.de' }, { [KEY_META]: idempotencyKey });
    expect(conflict.result.isError).toBe(true);
    expect(conflict.result._meta).toMatchObject({ 'openrush.io/problem': { status: 409 } });
  });

  it('over MCP, a key that breaks the header’s rules is a validation_failed tool error, nothing charged', async () => {
    const { key } = await server.newAccount(100);
    for (const bad of ['', 'has space', 'é', 42, 'x'.repeat(256)]) {
      const { result } = await mcpCall(key, 'inspect_domain', { domain: 'example.com' }, { [KEY_META]: bad });
      expect(result.isError, JSON.stringify(bad)).toBe(true);
      expect(result._meta).toMatchObject({ 'openrush.io/problem': { type: 'https://openrush.io/problems/validation_failed' } });
    }
    expect(await balanceOf(key)).toBe(100);
  });

  it('a free tool answers live: its calls are never replayed, whatever key they carry', async () => {
    const { key } = await server.newAccount(100);
    const idempotencyKey = randomUUID();
    const status = () => server.call('/v1/tools/get_key_status', jsonInit({}, { key, headers: { 'Idempotency-Key': idempotencyKey } }));
    expect((await status()).headers.get('idempotent-replayed')).toBeNull();
    expect((await status()).headers.get('idempotent-replayed')).toBeNull();
  });
});

describe('an Idempotency-Key on a change of a v2 key (PATCH, revoke, rotate)', () => {
  const withKey = (idempotencyKey: string, init: RequestInit & { key?: string | null }) => {
    const headers = new Headers(init.headers);
    headers.set('Idempotency-Key', idempotencyKey);
    return { ...init, headers };
  };
  const createKey = async (key: string, name: string) => (await (await server.call('/v2/api-keys', jsonInit({ name }, { key }))).json()) as { api_key_id: string; api_key: string };

  it('PATCH: a retry gets the first answer and changes nothing again; another body, or another key, is a 409', async () => {
    const { key } = await server.newAccount();
    const target = await createKey(key, 'before');
    const idempotencyKey = randomUUID();
    const patch = (id: string, body: unknown) => server.call(`/v2/api-keys/${id}`, withKey(idempotencyKey, jsonInit(body, { key, method: 'PATCH' })));
    const first = await patch(target.api_key_id, { name: 'after' });
    expect(first.status).toBe(200);
    const answer = await first.json();
    // Renamed meanwhile by someone else: the retry still answers what the first call did, and does not rename back.
    expect((await server.call(`/v2/api-keys/${target.api_key_id}`, jsonInit({ name: 'by someone else' }, { key, method: 'PATCH' }))).status).toBe(200);
    const again = await patch(target.api_key_id, { name: 'after' });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual(answer);
    expect(((await (await server.call(`/v2/api-keys/${target.api_key_id}`, { key })).json()) as { name: string }).name).toBe('by someone else');
    expect((await patch(target.api_key_id, { name: 'other' })).status).toBe(409);
    const other = await createKey(key, 'another');
    expect((await patch(other.api_key_id, { name: 'after' })).status).toBe(409);
  });

  it('rotate: retries, concurrent ones included, get one new secret, the one that works', async () => {
    const { key } = await server.newAccount();
    const target = await createKey(key, 'to rotate');
    const idempotencyKey = randomUUID();
    const rotate = () => server.call(`/v2/api-keys/${target.api_key_id}/rotate`, withKey(idempotencyKey, jsonInit({ grace_period_seconds: 0 }, { key })));
    const answers = await Promise.all(Array.from({ length: 6 }, rotate));
    expect(answers.map((response) => response.status)).toEqual(answers.map(() => 200));
    const secrets = new Set(await Promise.all(answers.map(async (response) => ((await response.json()) as { api_key: string }).api_key)));
    expect(secrets.size).toBe(1);
    expect(answers.filter((response) => response.headers.get('idempotent-replayed') === 'true')).toHaveLength(5);
    const [secret] = [...secrets];
    expect((await server.call('/v1/me/credits', { key: secret! })).status).toBe(200);
    expect((await server.call('/v1/me/credits', { key: target.api_key })).status).toBe(401);
    // The new secret is kept only sealed with the Idempotency-Key: not readable from the database.
    const stored = await server.database.dumpText();
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(idempotencyKey);
  });

  it('revoke: a retry is answered as the first call was, flagged', async () => {
    const { key } = await server.newAccount();
    const target = await createKey(key, 'to revoke');
    const idempotencyKey = randomUUID();
    const revoke = () => server.call(`/v2/api-keys/${target.api_key_id}/revoke`, withKey(idempotencyKey, { key, method: 'POST' }));
    const first = await revoke();
    expect(first.status).toBe(200);
    const again = await revoke();
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual(await first.json());
  });
});
