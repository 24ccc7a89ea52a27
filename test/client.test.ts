// The typed client's paginators against a real server: every item exactly once, newest first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allApiKeys, allEvents, allLedgerEntries, allUsage, createOpenRushClient, OpenRushError, type OpenRushClient } from '../client/index.ts';
import type { NewAccount } from '../server/accounts.ts';
import { TestClock } from './helpers/clock.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const clock = new TestClock();
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ clock });
});
afterAll(async () => {
  await server?.close();
});

const clientFor = (apiKey: string): OpenRushClient => createOpenRushClient({ baseUrl: server.url, apiKey });

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Creates keys through the client, a test-clock millisecond apart; their ids, oldest first. */
async function createKeys(client: OpenRushClient, count: number, projectId?: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    clock.advance(1);
    const { data, response } = await client.POST('/v2/api-keys', {
      body: { name: `key ${i}`, ...(projectId ? { project_scope: { single: { project_id: projectId } } } : {}) },
    });
    expect(response.status).toBe(201);
    ids.push(data!.api_key_id);
  }
  return ids;
}

describe('allApiKeys', () => {
  let account: NewAccount;
  let newestFirst: string[];

  beforeAll(async () => {
    account = await server.newAccount();
    const made = await createKeys(clientFor(account.key), 30);
    newestFirst = [...made].reverse().concat(account.credentialId);
  });

  it('yields every key exactly once, newest first, across pages', async () => {
    const keys = await collect(allApiKeys(clientFor(account.key), { limit: 7 }));
    expect(keys.map((k) => k.api_key_id)).toEqual(newestFirst);
  });

  it('with the default page size too', async () => {
    const keys = await collect(allApiKeys(clientFor(account.key)));
    expect(keys.map((k) => k.api_key_id)).toEqual(newestFirst);
  });

  it('a page size that divides the total exactly ends without an extra empty page', async () => {
    const keys = await collect(allApiKeys(clientFor(account.key), { limit: 31 }));
    expect(keys.map((k) => k.api_key_id)).toEqual(newestFirst);
  });

  it('passes filters along on every page', async () => {
    const other = await server.newAccount();
    const client = clientFor(other.key);
    const inProject = await createKeys(client, 9, 'proj_x');
    await createKeys(client, 4);
    const keys = await collect(allApiKeys(client, { project_id: 'proj_x', limit: 2 }));
    expect(keys.map((k) => k.api_key_id)).toEqual([...inProject].reverse());
  });

  it('throws an OpenRushError with the problem when the API refuses', async () => {
    const other = await server.newAccount();
    const { data } = await clientFor(other.key).POST('/v2/api-keys', { body: { name: 'no access', permission_mode: 3 } });
    const refused = collect(allApiKeys(clientFor(data!.api_key)));
    await expect(refused).rejects.toBeInstanceOf(OpenRushError);
    await expect(refused).rejects.toMatchObject({ status: 403, problem: { status: 403 } });
  });
});

describe('allUsage', () => {
  it('yields every record exactly once, newest first, across pages', async () => {
    const account = await server.newAccount();
    const client = clientFor(account.key);
    for (let i = 0; i < 22; i++) {
      clock.advance(1);
      expect((await client.GET('/v1/me/credits')).response.status).toBe(200);
    }
    // What exists before the walk starts; the walk's own requests are newer than its first page.
    const expected = (await server.store.listUsage(account.accountId, { limit: 1000 })).map((r) => r.id);
    expect(expected).toHaveLength(22);

    const records = await collect(allUsage(client, { limit: 4 }));
    expect(records.map((r) => r.id)).toEqual(expected);
    const times = records.map((r) => Date.parse(r.created_at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(new Set(records.map((r) => r.id)).size).toBe(records.length);
  });

  it('keeps the credential_id filter on every page', async () => {
    const account = await server.newAccount();
    const client = clientFor(account.key);
    const { data } = await client.POST('/v2/api-keys', { body: { name: 'second' } });
    const second = clientFor(data!.api_key);
    for (let i = 0; i < 5; i++) {
      clock.advance(1);
      await client.GET('/v1/me/credits');
      await second.GET('/v1/me/credits');
    }
    const records = await collect(allUsage(client, { credential_id: data!.api_key_id, limit: 2 }));
    expect(records).toHaveLength(5);
    expect(records.every((r) => r.credential_id === data!.api_key_id)).toBe(true);
  });
});

describe('allEvents', () => {
  it('yields every event of a type exactly once, newest first, across pages, narrowed by type', async () => {
    const account = await server.newAccount(100);
    const client = clientFor(account.key);
    for (let i = 0; i < 6; i++) expect((await client.POST('/v2/api-keys', { body: { name: `key ${i}` } })).response.status).toBe(201);
    const events = await collect(allEvents(client, { type: 'key.created', limit: 4 }));
    expect(events).toHaveLength(7);
    expect(new Set(events.map((event) => event.id)).size).toBe(7);
    const names = events.map((event) => (event.type === 'key.created' ? event.data.api_key.name : undefined));
    expect(names).toEqual(['key 5', 'key 4', 'key 3', 'key 2', 'key 1', 'key 0', 'Default key']);
  });
});

describe('allLedgerEntries', () => {
  it('yields every entry exactly once, newest first, across pages, each balance_after the running sum', async () => {
    const account = await server.newAccount(100);
    const client = clientFor(account.key);
    for (let i = 0; i < 9; i++) {
      const { response } = await client.POST('/v1/tools/inspect_domain', { body: { domain: 'example.com' } });
      expect(response.status).toBe(200);
    }
    const entries = await collect(allLedgerEntries(client, { limit: 4 }));
    expect(entries.map((e) => e.kind)).toEqual([...Array.from({ length: 9 }, () => 'charge'), 'grant']);
    expect(new Set(entries.map((e) => e.id)).size).toBe(10);
    expect(entries.map((e) => e.balance_after)).toEqual([73, 76, 79, 82, 85, 88, 91, 94, 97, 100]);
    const { data } = await client.GET('/v1/me/credits');
    expect(entries[0]!.balance_after).toBe(data!.balance);
  });
});
