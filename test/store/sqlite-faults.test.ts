// SQLite under faults, on real files and a real HTTP port: another process holding the write lock, a database that
// cannot grow, a writer thread that dies. Every "try again" fault is a 503 with Retry-After (never a 500), nothing is
// half-written, no wait for a lock happens on the event loop, and the server goes on once the fault is gone.
// SQLite only, whatever OPENRUSH_TEST_STORE says: these are SQLite's faults (PostgreSQL's outage is
// test/server/database-outage.test.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOpenRushClient, type RetryEvent } from '../../client/index.ts';
import type { SqliteStore } from '../../server/store/sqlite.ts';
import { LOCK_WAIT_MS } from '../../server/store/sqlite-driver.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';
import { openTestStore } from '../helpers/stores.ts';

const INSPECT = '/v1/tools/inspect_domain';

let server: TestServer;
let file: string;
const holders: ChildProcess[] = [];

beforeAll(async () => {
  server = await startTestServer({ database: openTestStore('sqlite'), credits: 1_000 });
  const [main] = await server.database.query<{ file: string }>('pragma database_list');
  file = main!.file;
});
afterEach(() => {
  for (const child of holders.splice(0)) child.kill('SIGKILL');
});
afterAll(async () => {
  await server?.close();
});

/**
 * Another process takes the write lock (BEGIN IMMEDIATE) on the server's file and keeps it until release() (or
 * until the test ends): the operator CLI granting credits, a backup, a second server started by mistake.
 */
async function holdWriteLock(): Promise<{ release(): Promise<void> }> {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const code = `
    const db = new (require(${JSON.stringify(driver)}))(${JSON.stringify(file)});
    db.exec('begin immediate');
    process.stdout.write('locked\\n');
    process.stdin.once('data', () => { db.exec('commit'); db.close(); process.stdout.write('released\\n'); process.exit(0); });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  holders.push(child);
  const said = (word: string) =>
    new Promise<void>((done, fail) => {
      let text = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes(word)) done();
      });
      child.once('exit', (exitCode) => (text.includes(word) ? done() : fail(new Error(`lock holder exited (${exitCode}) before "${word}"`))));
    });
  await said('locked');
  return {
    async release() {
      const released = said('released');
      child.stdin!.write('go\n');
      await released;
    },
  };
}

async function timed(request: Promise<Response>): Promise<{ status: number; ms: number; body: string }> {
  const started = performance.now();
  const response = await request;
  const body = await response.text();
  return { status: response.status, ms: performance.now() - started, body };
}

async function balanceOf(key: string): Promise<number> {
  const response = await server.call('/v1/me/credits', { key });
  expect(response.status).toBe(200);
  return ((await response.json()) as { balance: number }).balance;
}

async function expectUnavailable(response: Response): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(503);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(JSON.parse(text)).toMatchObject({
    status: 503,
    type: expect.stringMatching(/\/service_unavailable$/),
    // The store's 503 (the lock not had in time, the disk full), not the metering's (the usage record not written).
    detail: expect.stringMatching(/database cannot take this request/),
  });
  // Nothing of SQLite's own words reaches the client.
  expect(text).not.toMatch(/SQLITE|sqlite|database is locked/);
}

const sqliteStore = () => server.store as SqliteStore;
/** The server's own Kysely connection (the one key management writes on): only to limit its file's size. */
const mainConnection = () => (server.store as unknown as { database: BetterSqlite3.Database }).database;

describe('another process holds the write lock', () => {
  it('a key-management write waits without stalling the server: /healthz and /readyz (a query) answer at once, the write is a 503 with Retry-After past the bound, and nothing was created', async () => {
    const account = await server.newAccount();
    const lock = await holdWriteLock();
    // Released once the store's write has given up (not at a time guessed from when the request was sent: on a
    // loaded machine the server may start waiting late, and the lock would go before the bound), so that the
    // call's usage record (written after the answer is decided) is.
    const store = server.store;
    const createCredential = store.createCredential;
    let gaveUp!: () => void;
    const givenUp = new Promise<void>((done) => (gaveUp = done));
    store.createCredential = (...args) => createCredential.apply(store, args).catch((error: unknown) => {
      gaveUp();
      throw error;
    });
    try {
      const write = timed(server.call('/v2/api-keys', jsonInit({ name: 'while locked' }, { key: account.key })));
      const released = givenUp.then(() => lock.release());
      // While the write waits for the lock, the probes (which read the database: /readyz runs a query) answer at
      // once. (Calls with a key are recorded, and a record is a write: they wait for the lock too, on the writer
      // thread; see the metered call below.)
      const probes: Array<{ path: string; status: number; ms: number }> = [];
      const waitingSince = performance.now();
      while (performance.now() - waitingSince < LOCK_WAIT_MS - 1_000) {
        for (const path of ['/healthz', '/readyz']) {
          const { status, ms } = await timed(server.call(path, { key: null }));
          probes.push({ path, status, ms });
        }
        await new Promise((done) => setTimeout(done, 200));
      }
      for (const probe of probes) {
        expect(probe.status, probe.path).toBe(200);
        // Generous for a loaded machine; a wait for the lock on the event loop takes LOCK_WAIT_MS (5 s).
        expect(probe.ms, `${probe.path} took ${Math.round(probe.ms)} ms while the lock was held`).toBeLessThan(1_000);
      }
      expect(probes.length).toBeGreaterThanOrEqual(8);

      const refused = await write;
      await released;
      expect(refused.status, refused.body).toBe(503);
      // The store's 503 (the lock not had in time), not the metering's (the usage record not written).
      expect(JSON.parse(refused.body).detail).toMatch(/database cannot take this request/);
      expect(refused.ms).toBeGreaterThanOrEqual(LOCK_WAIT_MS - 100);
    } finally {
      store.createCredential = createCredential;
      holders.at(-1)?.kill('SIGKILL');
    }
    const list = await server.call('/v2/api-keys', { key: account.key });
    const names = ((await list.json()) as { data: Array<{ name: string }> }).data.map((key) => key.name);
    expect(names).not.toContain('while locked');
  }, 30_000);

  it('the 503 carries Retry-After, and the same request succeeds once the lock is released', async () => {
    const account = await server.newAccount();
    const lock = await holdWriteLock();
    const released = new Promise((done) => setTimeout(done, LOCK_WAIT_MS + 500)).then(() => lock.release());
    const response = await server.call('/v2/api-keys', jsonInit({ name: 'first try' }, { key: account.key, headers: { 'Idempotency-Key': 'faults-1' } }));
    await released;
    await expectUnavailable(response);
    const again = await server.call('/v2/api-keys', jsonInit({ name: 'first try' }, { key: account.key, headers: { 'Idempotency-Key': 'faults-1' } }));
    expect(again.status, await again.clone().text()).toBe(201);
  });

  it('@openrush/client retries an idempotent create on the 503 and it is created once, after the lock is released', async () => {
    const account = await server.newAccount();
    const retries: RetryEvent[] = [];
    const openrush = createOpenRushClient({ baseUrl: server.url, apiKey: account.key, retryDelayMs: 5, onRetry: (event) => retries.push(event) });
    const lock = await holdWriteLock();
    const created = openrush.POST('/v2/api-keys', { body: { name: 'retried' } });
    // Released after the first attempt has been refused, before the client's retry (Retry-After: 1).
    setTimeout(() => void lock.release(), LOCK_WAIT_MS + 300);
    const { data, error, response } = await created;
    expect(error, JSON.stringify(error)).toBeUndefined();
    expect(response.status).toBe(201);
    expect(data?.name).toBe('retried');
    expect(retries.map((retry) => retry.status)).toContain(503);
    const list = await openrush.GET('/v2/api-keys', { params: { query: { limit: 100 } } });
    expect(list.data?.data.filter((key) => key.name === 'retried')).toHaveLength(1);
  });

  it('a metered call waits for the lock on the writer thread, not the event loop, and is charged once it is released', async () => {
    const account = await server.newAccount(100);
    const lock = await holdWriteLock();
    const call = timed(server.call(INSPECT, jsonInit({ domain: 'example.com' }, { key: account.key })));
    await new Promise((done) => setTimeout(done, 300));
    const health = await timed(server.call('/healthz', { key: null }));
    expect(health.status).toBe(200);
    expect(health.ms).toBeLessThan(1_000);
    await lock.release();
    const answered = await call;
    expect(answered.status, answered.body).toBe(200);
    expect(await balanceOf(account.key)).toBeLessThan(100);
  });
});

describe('the database cannot grow (SQLITE_FULL)', () => {
  it('a write that needs space is a 503 with Retry-After, nothing of it is written, and it succeeds once there is space', async () => {
    const account = await server.newAccount();
    const connection = mainConnection();
    const pages = Number(connection.pragma('page_count', { simple: true }));
    connection.pragma(`max_page_count = ${pages}`);
    let response: Response;
    try {
      // Keys until one needs a page the file may not have.
      const body = { name: 'x'.repeat(120) };
      response = await server.call('/v2/api-keys', jsonInit(body, { key: account.key, headers: { 'Idempotency-Key': 'full-1' } }));
      // Past the first failure, a few more: each is refused whole, none leaves its idempotency record behind.
      for (let i = 0; i < 200 && response.status === 201; i++) {
        response = await server.call('/v2/api-keys', jsonInit(body, { key: account.key, headers: { 'Idempotency-Key': `full-${i + 2}` } }));
      }
    } finally {
      connection.pragma('max_page_count = 1073741823');
    }
    await expectUnavailable(response);
    // The refused create left neither its key nor its idempotency record: the same Idempotency-Key now creates it.
    const [{ keys }] = (await server.database.query<{ keys: number }>(
      `select count(*) as keys from credentials where account_id = '${account.accountId}'`,
    )) as [{ keys: number }];
    const [{ records }] = (await server.database.query<{ records: number }>(
      `select count(*) as records from idempotency_records where account_id = '${account.accountId}'`,
    )) as [{ records: number }];
    expect(records).toBe(keys - 1); // the account's first key was made without one
    const again = await server.call('/v2/api-keys', jsonInit({ name: 'after' }, { key: account.key, headers: { 'Idempotency-Key': 'full-after' } }));
    expect(again.status).toBe(201);
  });
});

describe('the writer thread dies', () => {
  it('is started again, and later metered calls are recorded and charged', async () => {
    const account = await server.newAccount(100);
    const before = await balanceOf(account.key);
    await sqliteStore().stopWriterThreadForTest('exit');
    for (let i = 0; i < 3; i++) {
      const response = await server.call(INSPECT, jsonInit({ domain: 'example.com' }, { key: account.key }));
      expect(response.status, await response.clone().text()).toBe(200);
    }
    const after = await balanceOf(account.key);
    expect(after).toBeLessThan(before);
    const [{ n }] = (await server.database.query<{ n: number }>(`select count(*) as n from usage_records where account_id = '${account.accountId}' and endpoint = '${INSPECT}'`)) as [{ n: number }];
    expect(n).toBe(3);
    expect(sqliteStore().groupCommitStats().writerRestarts).toBeGreaterThanOrEqual(1);
  });

  it('killed with a batch in flight: the call is answered as the database says, recorded and charged exactly once', async () => {
    const account = await server.newAccount(100);
    const before = await balanceOf(account.key);
    const lock = await holdWriteLock();
    // The batch waits for the lock inside the thread; the thread is killed meanwhile, and the lock released.
    const call = timed(server.call(INSPECT, jsonInit({ domain: 'example.com' }, { key: account.key })));
    await new Promise((done) => setTimeout(done, 300));
    const killed = sqliteStore().stopWriterThreadForTest('terminate');
    await new Promise((done) => setTimeout(done, 200));
    await lock.release();
    await killed;
    const answered = await call;
    expect(answered.status, answered.body).toBe(200);
    const [{ n }] = (await server.database.query<{ n: number }>(`select count(*) as n from usage_records where account_id = '${account.accountId}' and endpoint = '${INSPECT}'`)) as [{ n: number }];
    expect(n).toBe(1);
    const after = await balanceOf(account.key);
    const charged = before - after;
    expect(charged).toBeGreaterThan(0);
    const [{ total }] = (await server.database.query<{ total: number }>(`select sum(amount) as total from credit_ledger where account_id = '${account.accountId}' and kind = 'charge'`)) as [{ total: number }];
    expect(-total).toBe(charged);
  });

  it('stopped between a COMMIT and its answer: the new thread finds the batch written, and the call is answered 200, charged once', async () => {
    const account = await server.newAccount(100);
    const before = await balanceOf(account.key);
    const stopped = sqliteStore().stopWriterThreadForTest('after-next-commit');
    const response = await server.call(INSPECT, jsonInit({ domain: 'example.com' }, { key: account.key }));
    await stopped;
    expect(response.status, await response.clone().text()).toBe(200);
    const [{ n }] = (await server.database.query<{ n: number }>(`select count(*) as n from usage_records where account_id = '${account.accountId}' and endpoint = '${INSPECT}'`)) as [{ n: number }];
    expect(n).toBe(1);
    const [{ entries }] = (await server.database.query<{ entries: number }>(`select count(*) as entries from credit_ledger where account_id = '${account.accountId}' and kind = 'charge'`)) as [{ entries: number }];
    expect(entries).toBe(1);
    expect(await balanceOf(account.key)).toBeLessThan(before);
  });
});
