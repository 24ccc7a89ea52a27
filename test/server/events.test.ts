// The account's events (issue 18, item 4): one event per committed change, none for a refused or rolled-back one,
// listed by GET /v1/me/events with the contract's cursors and filters. Against a real server and its real store
// (SQLite here, PostgreSQL in the PostgreSQL pass); the server validates its own answers against the contract, so
// every event listed here matches its type's declared shape.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { createIdGenerator } from '../../server/ids.ts';
import { systemClock } from '../../server/clock.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

type AccountEvent = components['schemas']['AccountEvent'];
type ApiKeyWithSecret = components['schemas']['ApiKeyWithSecret'];

const INSPECT = '/v1/tools/inspect_domain';
const bundled = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'));
const PRICE: number = bundled.paths[INSPECT].post['x-openrush-credits'];
const DAY = 86_400_000;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

async function eventsOf(key: string, query = ''): Promise<AccountEvent[]> {
  const response = await server.call(`/v1/me/events?limit=500${query}`, { key });
  expect(response.status).toBe(200);
  return (await response.json()) as AccountEvent[];
}

const typesOf = (events: AccountEvent[]) => events.map((event) => event.type);

function inspect(key: string, domain = 'example.co.uk'): Promise<Response> {
  return server.call(INSPECT, jsonInit({ domain }, { key }));
}

async function createKey(key: string, body: Record<string, unknown>): Promise<ApiKeyWithSecret> {
  const response = await server.call('/v2/api-keys', jsonInit(body, { key }));
  expect(response.status).toBe(201);
  return (await response.json()) as ApiKeyWithSecret;
}

async function grant(accountId: string, amount: number): Promise<void> {
  const ids = createIdGenerator(systemClock);
  await server.store.grantCredits({ ledgerId: ids('led'), eventId: ids('evt'), accountId, amount, note: 'test', createdAt: new Date().toISOString() });
}

describe('events of keys', () => {
  it('a new account has its grant and its first key; a key made, changed, rotated and revoked has one event each', async () => {
    const { key, credentialId } = await server.newAccount(100);
    const start = await eventsOf(key);
    expect(typesOf(start)).toEqual(['key.created', 'credits.granted']);
    expect(start[0]).toMatchObject({ credential_id: credentialId, data: { api_key: { id: credentialId, name: 'Default key' }, changed: [] } });
    expect(start[1]).toMatchObject({ credential_id: null, data: { amount: 100, balance_after: 100, note: 'initial grant' } });

    const made = await createKey(key, { name: 'worker' });
    const id = made.api_key_id;
    expect((await server.call(`/v2/api-keys/${id}`, jsonInit({ name: 'renamed', status: 2 }, { key, method: 'PATCH' }))).status).toBe(200);
    expect((await server.call(`/v2/api-keys/${id}/rotate`, jsonInit({ grace_period_seconds: 0 }, { key }))).status).toBe(200);
    expect((await server.call(`/v2/api-keys/${id}/revoke`, { key, method: 'POST' })).status).toBe(200);
    // A second revoke changes nothing: no second event.
    expect((await server.call(`/v2/api-keys/${id}/revoke`, { key, method: 'POST' })).status).toBe(200);

    const ofKey = await eventsOf(key, `&credential_id=${id}`);
    expect(typesOf(ofKey)).toEqual(['key.revoked', 'key.rotated', 'key.updated', 'key.created']);
    expect(ofKey.every((event) => event.credential_id === id)).toBe(true);
    const updated = ofKey[2]!;
    expect(updated.type === 'key.updated' && updated.data.changed).toEqual(['name', 'status']);
    expect(ofKey[0]).toMatchObject({ data: { api_key: { id, name: 'renamed' } } });
    // The rotated key's event shows its new prefix, never a secret or a hash.
    const text = JSON.stringify(ofKey);
    expect(ofKey[1]).toMatchObject({ data: { api_key: { prefix: expect.stringMatching(/^or_[0-9A-Za-z]{6}\.\.\.$/) } } });
    expect(text).not.toContain(made.api_key);
    expect(text).not.toMatch(/key_hash|[0-9a-f]{64}/);
  });

  it('a v1 credential made and revoked has its events too; a change refused under a reused Idempotency-Key writes none', async () => {
    const { key } = await server.newAccount(10);
    const created = await server.call('/v1/me/api-credentials', jsonInit({ name: 'v1 key' }, { key }));
    const { api_credential } = (await created.json()) as { api_credential: { id: string } };
    expect((await server.call(`/v1/me/api-credentials/${api_credential.id}/revoke`, { key, method: 'POST' })).status).toBe(200);
    expect(typesOf(await eventsOf(key, `&credential_id=${api_credential.id}`))).toEqual(['key.revoked', 'key.created']);

    const other = await createKey(key, { name: 'patched' });
    const idempotencyKey = randomUUID();
    const patch = (name: string) =>
      server.call(`/v2/api-keys/${other.api_key_id}`, jsonInit({ name }, { key, method: 'PATCH', headers: { 'Idempotency-Key': idempotencyKey } }));
    expect((await patch('first')).status).toBe(200);
    expect((await patch('first')).headers.get('Idempotent-Replayed')).toBe('true');
    expect((await patch('second')).status).toBe(409);
    expect(typesOf(await eventsOf(key, `&credential_id=${other.api_key_id}`))).toEqual(['key.updated', 'key.created']);
  });

  it('maintenance writes key.expiring within 7 days of the expiry and key.expired after it, once each however often it runs', async () => {
    const { key } = await server.newAccount(10);
    const expiresAt = new Date(Date.now() + 3 * DAY).toISOString();
    const made = await createKey(key, { name: 'short-lived', constraints: { expires_at: expiresAt } });
    const ids = createIdGenerator(systemClock);
    const maintain = (at: number) => server.store.maintain(new Date(at), { eventIds: () => ids('evt') });
    const ofKey = async () => typesOf(await eventsOf(key, `&credential_id=${made.api_key_id}`));

    await maintain(Date.now() - 5 * DAY); // 8 days ahead of the expiry: nothing yet
    expect(await ofKey()).toEqual(['key.created']);
    await maintain(Date.now());
    await maintain(Date.now());
    expect(await ofKey()).toEqual(['key.expiring', 'key.created']);
    await maintain(Date.now() + 4 * DAY);
    await maintain(Date.now() + 5 * DAY);
    const events = await eventsOf(key, `&credential_id=${made.api_key_id}`);
    expect(typesOf(events)).toEqual(['key.expired', 'key.expiring', 'key.created']);
    expect(events[0]).toMatchObject({ data: { api_key: { id: made.api_key_id, expires_at: new Date(expiresAt).toISOString() } } });
  });
});

describe('events of credits', () => {
  it('credits.low once per crossing of the threshold; a grant above it arms it again', async () => {
    const { key, accountId } = await server.newAccount(PRICE * 4);
    const threshold = PRICE * 3;
    const set = await server.call('/v1/me/credits/low-balance-alert', jsonInit({ threshold }, { key, method: 'PUT' }));
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ threshold });
    expect(await (await server.call('/v1/me/credits/low-balance-alert', { key })).json()).toEqual({ threshold });

    for (let i = 0; i < 3; i++) expect((await inspect(key)).status).toBe(200); // 4 → 3 (at the threshold) → 2 (below) → 1
    let low = await eventsOf(key, '&type=credits.low');
    expect(low).toHaveLength(1);
    expect(low[0]).toMatchObject({ data: { balance_after: PRICE * 2, threshold } });
    const ledger = await server.store.listLedger(accountId, { limit: 10 });
    expect(low[0]!.type === 'credits.low' && low[0]!.data.ledger_entry_id).toBe(ledger[1]!.id);

    await grant(accountId, PRICE * 5); // 6: above again
    for (let i = 0; i < 4; i++) expect((await inspect(key)).status).toBe(200); // 6 → 2
    low = await eventsOf(key, '&type=credits.low');
    expect(low).toHaveLength(2);

    // Removed: no more credits.low.
    await server.call('/v1/me/credits/low-balance-alert', jsonInit({ threshold: null }, { key, method: 'PUT' }));
    await grant(accountId, PRICE * 5);
    for (let i = 0; i < 5; i++) expect((await inspect(key)).status).toBe(200);
    expect(await eventsOf(key, '&type=credits.low')).toHaveLength(2);
  });

  it('only a full-access key or a session sets the threshold: a read-only key is refused and changes nothing', async () => {
    const { key } = await server.newAccount(10);
    const readOnly = await createKey(key, { name: 'reader', permission_mode: 2 });
    const refused = await server.call('/v1/me/credits/low-balance-alert', jsonInit({ threshold: 5 }, { key: readOnly.api_key, method: 'PUT' }));
    expect(refused.status).toBe(403);
    expect(await (await server.call('/v1/me/credits/low-balance-alert', { key: readOnly.api_key })).json()).toEqual({ threshold: null });
  });

  it('credits.depleted once for a run of refused calls, concurrent ones included; a grant arms it again', async () => {
    const { key, accountId } = await server.newAccount(PRICE);
    // Some refused before they run (the balance read first), some by the charge's guarded update in its batch.
    const racing = await Promise.all(Array.from({ length: 8 }, () => inspect(key)));
    expect(racing.map((response) => response.status).sort()).toEqual([200, ...Array(7).fill(402)]);
    expect((await inspect(key)).status).toBe(402);
    let depleted = await eventsOf(key, '&type=credits.depleted');
    expect(depleted).toHaveLength(1);
    expect(depleted[0]).toMatchObject({ data: { balance: 0, required: PRICE } });

    await grant(accountId, 1); // still short of a call, but a grant: the next refusal is news again
    expect((await inspect(key)).status).toBe(402);
    expect((await inspect(key)).status).toBe(402);
    depleted = await eventsOf(key, '&type=credits.depleted');
    expect(depleted).toHaveLength(2);
    expect(depleted[0]).toMatchObject({ data: { balance: 1, required: PRICE } });
    // Refused calls changed no balance: the ledger has the grants and the one charge only.
    expect(await server.store.sumLedger(accountId)).toBe(1);
    expect(typesOf(await eventsOf(key, '&type=credits.granted'))).toHaveLength(2);
  });

  it('budget.exhausted once per key, period and amount; raising the budget arms it again', async () => {
    const { key } = await server.newAccount(PRICE * 20);
    const budgeted = await createKey(key, { name: 'budgeted', constraints: { budget: { period: 1, amount: PRICE } } });
    expect((await inspect(budgeted.api_key)).status).toBe(200);
    const refused = await Promise.all(Array.from({ length: 5 }, () => inspect(budgeted.api_key)));
    expect(refused.map((response) => response.status)).toEqual(Array(5).fill(402));
    let exhausted = await eventsOf(key, '&type=budget.exhausted');
    expect(exhausted).toHaveLength(1);
    expect(exhausted[0]).toMatchObject({ credential_id: budgeted.api_key_id, data: { budget_amount: PRICE, required: PRICE } });
    // Not depleted: the account has credits.
    expect(await eventsOf(key, '&type=credits.depleted')).toEqual([]);

    const raised = await server.call(
      `/v2/api-keys/${budgeted.api_key_id}`,
      jsonInit({ constraints: { budget: { period: 1, amount: PRICE * 2 } } }, { key, method: 'PATCH' }),
    );
    expect(raised.status).toBe(200);
    expect((await inspect(budgeted.api_key)).status).toBe(200);
    expect((await inspect(budgeted.api_key)).status).toBe(402);
    exhausted = await eventsOf(key, '&type=budget.exhausted');
    expect(exhausted).toHaveLength(2);
    expect(exhausted[0]).toMatchObject({ data: { budget_amount: PRICE * 2 } });
  });
});

describe('GET /v1/me/events', () => {
  it('pages newest first through Link, keeping the filters; refuses a cursor of another account', async () => {
    const { key } = await server.newAccount(10);
    for (let i = 0; i < 5; i++) await createKey(key, { name: `key ${i}` });
    const all = await eventsOf(key, '&type=key.created');
    expect(all).toHaveLength(6);
    const seen: string[] = [];
    let path: string | undefined = '/v1/me/events?limit=2&type=key.created';
    while (path) {
      const response = await server.call(path, { key });
      expect(response.status).toBe(200);
      seen.push(...((await response.json()) as AccountEvent[]).map((event) => event.id));
      path = /<([^>]+)>; rel="next"/.exec(response.headers.get('link') ?? '')?.[1];
      if (path) expect(path).toContain('type=key.created');
    }
    expect(seen).toEqual(all.map((event) => event.id));
    const times = all.map((event) => event.created_at);
    expect([...times].sort().reverse()).toEqual(times);

    const other = await server.newAccount(10);
    const foreign = await server.call(`/v1/me/events?starting_after=${all[0]!.id}`, { key: other.key });
    expect(foreign.status).toBe(400);
    // Each account sees its own events only.
    expect((await eventsOf(other.key)).every((event) => !seen.includes(event.id))).toBe(true);
  });

  it('filters by time range, and refuses an unknown type or a range that ends before it starts', async () => {
    const { key } = await server.newAccount(10);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const before = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await createKey(key, { name: 'late' });
    const late = await eventsOf(key, `&from=${encodeURIComponent(before)}`);
    expect(typesOf(late)).toEqual(['key.created']);
    expect(typesOf(await eventsOf(key, `&to=${encodeURIComponent(before)}`))).toEqual(['key.created', 'credits.granted']);
    expect((await server.call('/v1/me/events?type=key.lost', { key })).status).toBe(400);
    expect((await server.call(`/v1/me/events?from=${encodeURIComponent(before)}&to=${encodeURIComponent(before)}`, { key })).status).toBe(400);
  });
});
