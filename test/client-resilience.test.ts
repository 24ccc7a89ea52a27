// The client's error, retry and timeout behaviour, against the real server: real 429 and 503 answers, and a tiny
// real proxy that loses connections or answers on cue (test/helpers/flaky-proxy.ts). No mocked fetch.
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  allApiKeys,
  allUsage,
  createOpenRushClient,
  takesIdempotencyKey,
  OpenRushError,
  type OpenRushClientOptions,
  OpenRushTimeoutError,
  type RetryEvent,
  unwrap,
} from '../client/index.ts';
import { loadContract } from '../server/contract.ts';
import type { Store } from '../server/store/types.ts';
import { faultyStore } from './helpers/faulty-store.ts';
import { type FlakyProxy, type Misbehaviour, startFlakyProxy } from './helpers/flaky-proxy.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
const proxies: FlakyProxy[] = [];

beforeAll(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});
afterAll(async () => {
  await server?.close();
});

async function proxyFor(plan: (n: number) => Misbehaviour, target = server.url): Promise<FlakyProxy> {
  const proxy = await startFlakyProxy(target, plan);
  proxies.push(proxy);
  return proxy;
}

/** A client whose retries are recorded and whose backoff is short (Retry-After still rules when sent). */
function recordingClient(baseUrl: string, apiKey: string, options: Partial<OpenRushClientOptions> = {}) {
  const retries: RetryEvent[] = [];
  const client = createOpenRushClient({ baseUrl, apiKey, retryDelayMs: 5, onRetry: (event) => retries.push(event), ...options });
  return { client, retries };
}

const connectionRefused = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }));

describe('errors', () => {
  it('keeps { data, error, response } and unwrap() throws an OpenRushError with the problem and the request id', async () => {
    const account = await server.newAccount();
    const openrush = createOpenRushClient({ baseUrl: server.url, apiKey: account.key });

    const { data, error, response } = await openrush.POST('/v2/api-keys', { body: { name: '' } });
    expect(data).toBeUndefined();
    expect(response.status).toBe(400);
    expect(error).toMatchObject({ status: 400, request_id: response.headers.get('x-request-id') });

    const thrown = await unwrap(openrush.POST('/v2/api-keys', { body: { name: '' } })).catch((caught: unknown) => caught);
    expect(thrown).toBeInstanceOf(OpenRushError);
    const failure = thrown as OpenRushError;
    expect(failure.status).toBe(400);
    expect(failure.type).toMatch(/^https:\/\/openrush\.io\/problems\//);
    expect(failure.title).toBeTruthy();
    expect(failure.detail).toBeTruthy();
    expect(failure.errors?.[0]).toMatchObject({ location: 'body', pointer: '/name' });
    expect(failure.requestId).toMatch(/^req_/);
    expect(failure.requestId).toBe(failure.response?.headers.get('x-request-id'));
    expect(failure.message).toContain(failure.requestId!);
  });

  it('unwrap() returns the data of a success', async () => {
    const openrush = createOpenRushClient({ baseUrl: server.url, apiKey: server.account.key });
    expect(await unwrap(openrush.GET('/v1/me/credits'))).toEqual({ balance: expect.any(Number) });
  });

  it('a refused credential is an OpenRushError 401 with its type', async () => {
    const openrush = createOpenRushClient({ baseUrl: server.url, apiKey: `or_${'a'.repeat(38)}` });
    await expect(unwrap(openrush.GET('/v1/me/credits'))).rejects.toMatchObject({
      name: 'OpenRushError',
      status: 401,
      type: 'https://openrush.io/problems/unauthorized',
    });
  });
});

describe('answers without a body', () => {
  it('a 204 whose answer carries an empty body stream, as Chromium hands it over, is a success (sign-out)', async () => {
    const { issueSignInLink } = await import('../server/dashboard-sessions.ts');
    const { token } = await issueSignInLink({ store: server.store, clock: server.clock }, server.account.accountId);
    const signedIn = await fetch(`${server.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sign_in_link: token }) });
    expect(signedIn.status).toBe(201);
    const cookie = signedIn.headers.get('set-cookie')!.split(';')[0]!;
    // Node's fetch gives a 204 a null body; Chromium gives it an empty stream. The real answer, handed on as Chromium does.
    const asChromium = async (request: Request) => {
      const response = await fetch(request);
      return response.status === 204 ? Object.defineProperty(response, 'body', { value: new ReadableStream({ start: (controller) => controller.close() }) }) : response;
    };
    const client = createOpenRushClient({ baseUrl: server.url, fetch: asChromium, headers: { Cookie: cookie, Origin: server.url } });
    const { error, response } = await client.DELETE('/v1/sessions/current');
    expect(error).toBeUndefined();
    expect(response.status).toBe(204);
  });
});

describe('retries on 503 (a database that cannot be reached)', () => {
  async function serverFailing(times: number) {
    let failures = times;
    let calls = 0;
    const database = faultyStore((real: Store) => ({
      getBalance: (accountId: string) => {
        calls++;
        return failures-- > 0 ? connectionRefused() : real.getBalance(accountId);
      },
    })).database;
    const failing = await startTestServer({ database });
    return { failing, calls: () => calls };
  }

  it('retries a GET after the Retry-After the server sent, and succeeds', async () => {
    const { failing, calls } = await serverFailing(2);
    try {
      const { client, retries } = recordingClient(failing.url, failing.account.key);
      const { data, response } = await client.GET('/v1/me/credits');
      expect(response.status).toBe(200);
      expect(data).toEqual({ balance: 500 });
      expect(calls()).toBe(3);
      // Retry-After: 1 from the server, not the client's 5 ms backoff.
      expect(retries.map((event) => [event.attempt, event.status, event.delayMs])).toEqual([
        [1, 503, 1000],
        [2, 503, 1000],
      ]);
    } finally {
      await failing.close();
    }
  });

  it('stops at the retry budget and returns the last answer', async () => {
    const { failing, calls } = await serverFailing(10);
    try {
      const { client, retries } = recordingClient(failing.url, failing.account.key, { retries: 1 });
      const { error, response } = await client.GET('/v1/me/credits');
      expect(response.status).toBe(503);
      expect(error).toMatchObject({ status: 503, type: 'https://openrush.io/problems/service_unavailable' });
      expect(calls()).toBe(2);
      expect(retries).toHaveLength(1);
    } finally {
      await failing.close();
    }
  });

  it('retries: 0 turns retries off', async () => {
    const { failing, calls } = await serverFailing(1);
    try {
      const { client, retries } = recordingClient(failing.url, failing.account.key, { retries: 0 });
      await expect(unwrap(client.GET('/v1/me/credits'))).rejects.toMatchObject({ status: 503 });
      expect(calls()).toBe(1);
      expect(retries).toEqual([]);
    } finally {
      await failing.close();
    }
  });
});

describe('retries on 429', () => {
  it('a Retry-After longer than maxRetryDelayMs is not waited for: the 429 comes back at once', async () => {
    const account = await server.newAccount();
    const owner = createOpenRushClient({ baseUrl: server.url, apiKey: account.key });
    const limited = await unwrap(
      owner.POST('/v2/api-keys', { body: { name: 'one a minute', constraints: { rate_limit: { requests_per_minute: 1 } } } }),
    );
    const { client, retries } = recordingClient(server.url, limited.api_key, { maxRetryDelayMs: 5_000 });
    expect((await client.GET('/v1/me/credits')).response.status).toBe(200);

    const refused = (await unwrap(client.GET('/v1/me/credits')).catch((caught: unknown) => caught)) as OpenRushError;
    expect(refused).toBeInstanceOf(OpenRushError);
    expect(refused.status).toBe(429);
    expect(Number(refused.response?.headers.get('retry-after'))).toBeGreaterThan(5);
    expect(retries).toEqual([]);
  });

  it('a 429 with a short Retry-After is retried after it', async () => {
    const proxy = await proxyFor((n) =>
      n === 0 ? { status: 429, headers: { 'Retry-After': '1' }, body: { title: 'Too Many Requests', status: 429 } } : 'forward',
    );
    const { client, retries } = recordingClient(proxy.url, server.account.key);
    const { response } = await client.GET('/v1/me/credits');
    expect(response.status).toBe(200);
    expect(proxy.seen).toHaveLength(2);
    expect(retries.map((event) => [event.status, event.delayMs])).toEqual([[429, 1000]]);
  });
});

describe('Retry-After that is not a wait (RFC 9110: delay-seconds or an HTTP-date)', () => {
  const retryDelayMs = 100;
  /** The least the backoff waits before retry n (0 first): half its ceiling, the rest is jitter. */
  const backoffFloor = (n: number) => (retryDelayMs * 2 ** n) / 2;
  const unavailable = (retryAfter: string) => ({
    status: 503,
    headers: { 'Retry-After': retryAfter },
    body: { title: 'Service Unavailable', status: 503 },
  });
  const httpDate = (ms: number) => new Date(ms).toUTCString();

  it.each([
    ['-1', '-1'],
    ['a fraction', '1.5'],
    ['garbage', 'abc'],
    ['empty', ''],
    ['a list', '1, 2'],
    // Not an HTTP-date, though Date.parse would read an hour ahead and the client would give up at once.
    ['an ISO date', new Date(Date.now() + 3_600_000).toISOString()],
    ['a date with a numeric zone', httpDate(Date.now() + 3_600_000).replace('GMT', '+0000')],
    ['zero', '0'],
    ['a past date', httpDate(Date.now() - 3_600_000)],
    ['a past date in the obsolete RFC 850 form', 'Sunday, 06-Nov-94 08:49:37 GMT'],
    ['a past date in the obsolete asctime form', 'Sun Nov  6 08:49:37 1994'],
  ])('%s (%j): the retries keep to the backoff', async (_, retryAfter) => {
    const proxy = await proxyFor((n) => (n < 2 ? unavailable(retryAfter) : 'forward'));
    const { client, retries } = recordingClient(proxy.url, server.account.key, { retryDelayMs });
    const { data } = await client.GET('/v1/me/credits');
    expect(data).toEqual({ balance: expect.any(Number) });
    expect(proxy.seen).toHaveLength(3);
    expect(retries.map((event) => event.status)).toEqual([503, 503]);
    for (const [n, event] of retries.entries()) {
      expect(event.delayMs).toBeGreaterThanOrEqual(backoffFloor(n));
      expect(event.delayMs).toBeLessThanOrEqual(retryDelayMs * 2 ** n);
      // And the server saw the gap (less a millisecond of timer rounding).
      expect(proxy.seen[n + 1]!.at - proxy.seen[n]!.at).toBeGreaterThanOrEqual(backoffFloor(n) - 1);
    }
  });

  // The obsolete forms RFC 9110 still asks recipients to read: RFC 850's, and C's asctime() (which is in GMT too).
  const rfc850Date = (ms: number) => {
    const [day, date, month, year, time] = new Date(ms).toUTCString().split(' ') as [string, string, string, string, string];
    const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
    return `${days.find((name) => name.startsWith(day.slice(0, 3)))}, ${date}-${month}-${year.slice(2)} ${time} GMT`;
  };
  const asctimeDate = (ms: number) => {
    const [day, date, month, year, time] = new Date(ms).toUTCString().split(' ') as [string, string, string, string, string];
    return `${day.slice(0, 3)} ${month} ${date.replace(/^0/, ' ')} ${time} ${year}`;
  };

  it.each([
    ['IMF-fixdate', httpDate],
    ['RFC 850', rfc850Date],
    ['asctime', asctimeDate],
  ])('a future HTTP-date (%s) is waited for', async (_, format) => {
    // Two seconds ahead, to the second: the wait is between one and two seconds.
    const proxy = await proxyFor((n) => (n < 1 ? unavailable(format(Date.now() + 2_000)) : 'forward'));
    const { client, retries } = recordingClient(proxy.url, server.account.key, { retryDelayMs: 5 });
    const { response } = await client.GET('/v1/me/credits');
    expect(response.status).toBe(200);
    expect(proxy.seen).toHaveLength(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(900);
    expect(retries[0]!.delayMs).toBeLessThanOrEqual(2_000);
    expect(proxy.seen[1]!.at - proxy.seen[0]!.at).toBeGreaterThanOrEqual(retries[0]!.delayMs - 1);
  });

  it.each([
    ['delay-seconds past any clock', '9'.repeat(400)],
    ['a date next year', () => httpDate(Date.now() + 366 * 86_400_000)],
  ])('%s, beyond maxRetryDelayMs: the answer comes back at once', async (_, retryAfter) => {
    const value = typeof retryAfter === 'function' ? retryAfter() : retryAfter;
    const proxy = await proxyFor(() => unavailable(value));
    const { client, retries } = recordingClient(proxy.url, server.account.key);
    const { error, response } = await client.GET('/v1/me/credits');
    expect(response.status).toBe(503);
    expect(error).toMatchObject({ status: 503 });
    expect(proxy.seen).toHaveLength(1);
    expect(retries).toEqual([]);
  });
});

describe('retries on network errors', () => {
  it('retries a GET whose connection was dropped', async () => {
    const proxy = await proxyFor((n) => (n < 2 ? 'drop' : 'forward'));
    const { client, retries } = recordingClient(proxy.url, server.account.key);
    const { data } = await client.GET('/v1/me/credits');
    expect(data).toEqual({ balance: expect.any(Number) });
    expect(proxy.seen).toHaveLength(3);
    expect(retries.map((event) => event.attempt)).toEqual([1, 2]);
    expect(retries.every((event) => event.error !== undefined && event.status === undefined)).toBe(true);
  });

  it('gives up after the budget with the network error', async () => {
    const proxy = await proxyFor(() => 'drop');
    const { client } = recordingClient(proxy.url, server.account.key, { retries: 2 });
    await expect(client.GET('/v1/me/credits')).rejects.toThrow();
    expect(proxy.seen).toHaveLength(3);
  });

  it('a create whose answer was lost is sent again with the same Idempotency-Key, and makes one key', async () => {
    const account = await server.newAccount();
    const proxy = await proxyFor((n) => (n === 0 ? 'lose-answer' : 'forward'));
    const { client, retries } = recordingClient(proxy.url, account.key);
    const created = await unwrap(client.POST('/v2/api-keys', { body: { name: 'made once' } }));

    expect(retries).toHaveLength(1);
    expect(proxy.seen.map((request) => request.method)).toEqual(['POST', 'POST']);
    const [first, second] = proxy.seen.map((request) => request.headers['idempotency-key']);
    expect(first).toMatch(/^[0-9a-f-]{32,36}$/);
    expect(second).toBe(first);

    const direct = createOpenRushClient({ baseUrl: server.url, apiKey: account.key });
    const keys = (await unwrap(direct.GET('/v2/api-keys'))).data.filter((key) => key.name === 'made once');
    expect(keys.map((key) => key.api_key_id)).toEqual([created.api_key_id]);
    // The key in the replayed answer is the one that works.
    expect((await createOpenRushClient({ baseUrl: server.url, apiKey: created.api_key }).GET('/v1/me/credits')).response.status).toBe(200);
  });

  it("the caller's own Idempotency-Key is kept, on v1 creates too", async () => {
    const account = await server.newAccount();
    const proxy = await proxyFor((n) => (n === 0 ? 'lose-answer' : 'forward'));
    const { client } = recordingClient(proxy.url, account.key);
    const { response } = await client.POST('/v1/me/api-credentials', {
      body: { name: 'mine' },
      params: { header: { 'Idempotency-Key': 'my-own-key-1' } },
    });
    expect(response.status).toBe(201);
    expect(proxy.seen.map((request) => request.headers['idempotency-key'])).toEqual(['my-own-key-1', 'my-own-key-1']);
    const credentials = await unwrap(createOpenRushClient({ baseUrl: server.url, apiKey: account.key }).GET('/v1/me/api-credentials'));
    expect(credentials.filter((credential) => credential.name === 'mine')).toHaveLength(1);
  });

  it('a charged tool call whose answer is lost is retried under the key the client added, and charged once', async () => {
    const account = await server.newAccount();
    const proxy = await proxyFor((n) => (n === 0 ? 'lose-answer' : 'forward'));
    const { client, retries } = recordingClient(proxy.url, account.key);
    const { data, response } = await client.POST('/v1/tools/inspect_domain', { body: { domain: 'example.com' } });
    expect(response.status).toBe(200);
    expect(data?.domain).toBe('example.com');
    // The server ran and charged the first attempt; the retry got that answer back.
    expect(response.headers.get('idempotent-replayed')).toBe('true');
    expect(retries).toHaveLength(1);
    const [first, second] = proxy.seen.map((request) => request.headers['idempotency-key']);
    expect(first).toMatch(/^[0-9a-f-]{32,36}$/);
    expect(second).toBe(first);
    const balance = await unwrap(createOpenRushClient({ baseUrl: server.url, apiKey: account.key }).GET('/v1/me/credits'));
    expect(balance.balance).toBe(500 - 3);
  });

  it('a rotation whose answer is lost is retried under its key: one rotation, and the secret answered is the one that works', async () => {
    const account = await server.newAccount();
    const direct = createOpenRushClient({ baseUrl: server.url, apiKey: account.key });
    const created = await unwrap(direct.POST('/v2/api-keys', { body: { name: 'to rotate' } }));
    const proxy = await proxyFor((n) => (n === 0 ? 'lose-answer' : 'forward'));
    const { client, retries } = recordingClient(proxy.url, account.key);
    const { data, response } = await client.POST('/v2/api-keys/{api_key_id}/rotate', { params: { path: { api_key_id: created.api_key_id } }, body: { grace_period_seconds: 0 } });
    expect(response.status).toBe(200);
    expect(response.headers.get('idempotent-replayed')).toBe('true');
    expect(retries).toHaveLength(1);
    // Rotated once: the secret in the replayed answer works, the first one does not.
    expect((await createOpenRushClient({ baseUrl: server.url, apiKey: data!.api_key }).GET('/v1/me/credits')).response.status).toBe(200);
    expect((await createOpenRushClient({ baseUrl: server.url, apiKey: created.api_key, retries: 0 }).GET('/v1/me/credits')).response.status).toBe(401);
  });

  it('a POST without an Idempotency-Key is never sent twice (the client adds none to other POSTs)', async () => {
    const account = await server.newAccount();
    const proxy = await proxyFor((n) => (n === 0 ? 'lose-answer' : 'forward'));
    const { client, retries } = recordingClient(proxy.url, account.key);
    // Revoking a v1 credential is not a create, a tool call nor a change of a v2 key.
    const created = await unwrap(createOpenRushClient({ baseUrl: server.url, apiKey: account.key }).POST('/v1/me/api-credentials', { body: { name: 'to revoke' } }));
    await expect(client.POST('/v1/me/api-credentials/{credential_id}/revoke', { params: { path: { credential_id: created.api_credential.id } } })).rejects.toThrow();
    expect(proxy.seen).toHaveLength(1);
    expect(proxy.seen[0]!.headers['idempotency-key']).toBeUndefined();
    expect(retries).toEqual([]);
  });

  it('under load, through a proxy that loses answers and drops requests, every call is answered and charged exactly once', async () => {
    const calls = 40;
    const account = await server.newAccount(1_000);
    // Every third answer lost after the server charged; every seventh request dropped before it got there.
    const proxy = await proxyFor((n) => (n % 7 === 3 ? 'drop' : n % 3 === 0 ? 'lose-answer' : 'forward'));
    const { client, retries } = recordingClient(proxy.url, account.key, { retries: 6 });
    const answers = await Promise.all(
      Array.from({ length: calls }, (_, i) => client.POST('/v1/tools/inspect_domain', { body: { domain: `site${i}.example.com` } })),
    );
    expect(answers.map(({ response }) => response.status)).toEqual(answers.map(() => 200));
    answers.forEach(({ data }, i) => expect(data?.hostname).toBe(`site${i}.example.com`));
    expect(retries.length).toBeGreaterThan(0);
    // One key per call, sent again on each retry: 40 keys, each charged once.
    const keys = new Set(proxy.seen.map((request) => request.headers['idempotency-key']));
    expect(keys.size).toBe(calls);
    const charges = (await server.store.listLedger(account.accountId, { limit: 500 })).filter((entry) => entry.kind === 'charge');
    expect(charges).toHaveLength(calls);
    expect(await server.store.getBalance(account.accountId)).toBe(1_000 - calls * 3);
    expect(await server.store.sumLedger(account.accountId)).toBe(1_000 - calls * 3);
  });

  it('every operation of the contract taking an Idempotency-Key gets one from the client, and no other', () => {
    const contract = loadContract();
    const operations = Object.entries(contract.paths).flatMap(([path, item]) => Object.entries(item).map(([method, operation]) => ({ method, path, operation })));
    const takes = ({ operation }: (typeof operations)[number]) => JSON.stringify(operation.parameters ?? []).includes('#/components/parameters/IdempotencyKey');
    const takingKey = operations.filter(takes);
    expect(takingKey.length).toBeGreaterThan(5);
    for (const { method, path } of takingKey) expect(takesIdempotencyKey(method, path), `${method} ${path}`).toBe(true);
    // Beyond those, only the free tools (which ignore it): no other request is given a key, and so retried.
    const beyond = operations.filter((entry) => takesIdempotencyKey(entry.method, entry.path) && !takes(entry));
    expect(beyond.map(({ path, operation }) => [path, operation['x-openrush-credits']])).toEqual(beyond.map(({ path }) => [path, 0]));
  });
});

describe('timeouts', () => {
  it('an attempt that gets no answer is abandoned and retried', async () => {
    const proxy = await proxyFor((n) => (n === 0 ? 'hang' : 'forward'));
    // Long enough that the second attempt (a real answer, on a loaded machine) never times out too.
    const { client, retries } = recordingClient(proxy.url, server.account.key, { timeoutMs: 3_000 });
    const { response } = await client.GET('/v1/me/credits');
    expect(response.status).toBe(200);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error).toBeInstanceOf(OpenRushTimeoutError);
  });

  it('without retries the call rejects with an OpenRushTimeoutError', async () => {
    const proxy = await proxyFor(() => 'hang');
    const { client } = recordingClient(proxy.url, server.account.key, { timeoutMs: 300, retries: 0 });
    const failure = await client.GET('/v1/me/credits').catch((caught: unknown) => caught);
    expect(failure).toBeInstanceOf(OpenRushTimeoutError);
    expect((failure as Error).message).toContain('/v1/me/credits');
    expect(proxy.seen).toHaveLength(1);
  });

  /** The call's outcome and how long it took; a call still pending after `guardMs` fails the test instead of hanging it. */
  async function settle(call: Promise<unknown>, guardMs = 15_000) {
    const started = performance.now();
    let guard: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      call.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      new Promise<{ hung: true }>((resolve) => (guard = setTimeout(() => resolve({ hung: true }), guardMs))),
    ]);
    clearTimeout(guard);
    return { outcome, elapsedMs: performance.now() - started };
  }

  it('covers the body: an answer whose body stalls after the headers rejects with an OpenRushTimeoutError', async () => {
    const proxy = await proxyFor(() => 'stall-body');
    const { client } = recordingClient(proxy.url, server.account.key, { timeoutMs: 500, retries: 0 });
    const { outcome, elapsedMs } = await settle(client.GET('/v1/me/credits'));
    expect(outcome).not.toHaveProperty('hung');
    expect(outcome).toHaveProperty('error');
    const failure = (outcome as { error: unknown }).error as OpenRushTimeoutError;
    expect(failure).toBeInstanceOf(OpenRushTimeoutError);
    // The caller can tell that the server did answer, and how: the status came, the body did not.
    expect(failure.status).toBe(200);
    expect(failure.message).toContain('/v1/me/credits');
    expect(elapsedMs).toBeGreaterThanOrEqual(499);
    expect(proxy.seen).toHaveLength(1);
  });

  it('an attempt whose body stalls is abandoned and retried like any other timeout', async () => {
    const proxy = await proxyFor((n) => (n === 0 ? 'stall-body' : 'forward'));
    const { client, retries } = recordingClient(proxy.url, server.account.key, { timeoutMs: 3_000 });
    const { outcome } = await settle(client.GET('/v1/me/credits'));
    expect(outcome).toEqual({ value: expect.objectContaining({ data: { balance: expect.any(Number) } }) });
    expect(proxy.seen).toHaveLength(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error).toBeInstanceOf(OpenRushTimeoutError);
    expect((retries[0]!.error as OpenRushTimeoutError).status).toBe(200);
  });

  it('an error answer whose body stalls times out too (its problem document is read within the attempt)', async () => {
    const proxy = await proxyFor(() => 'stall-body');
    const { client } = recordingClient(proxy.url, `or_${'a'.repeat(38)}`, { timeoutMs: 500, retries: 0 });
    const { outcome } = await settle(unwrap(client.GET('/v1/me/credits')));
    expect(outcome).toEqual({ error: expect.any(OpenRushTimeoutError) });
    expect(((outcome as { error: OpenRushTimeoutError }).error).status).toBe(401);
  });

  it('a charged tool call whose body stalls times out, is retried under its key, and is charged once', async () => {
    const account = await server.newAccount();
    const proxy = await proxyFor((n) => (n === 0 ? 'stall-body' : 'forward'));
    const { client, retries } = recordingClient(proxy.url, account.key, { timeoutMs: 500 });
    const { data, response } = await client.POST('/v1/tools/inspect_domain', { body: { domain: 'example.com' } });
    expect(response.status).toBe(200);
    expect(data?.domain).toBe('example.com');
    expect(response.headers.get('idempotent-replayed')).toBe('true');
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error).toBeInstanceOf(OpenRushTimeoutError);
    expect(await server.store.getBalance(account.accountId)).toBe(500 - 3);
  });

  it('without retries, a charged tool call whose body stalls times out with the status the server answered', async () => {
    const account = await server.newAccount();
    const proxy = await proxyFor(() => 'stall-body');
    const { client } = recordingClient(proxy.url, account.key, { timeoutMs: 500, retries: 0 });
    const { outcome } = await settle(client.POST('/v1/tools/inspect_domain', { body: { domain: 'example.com' } }));
    expect(outcome).toEqual({ error: expect.any(OpenRushTimeoutError) });
    // 200: the server answered, so the call was charged; the caller learns that from the error.
    expect(((outcome as { error: OpenRushTimeoutError }).error).status).toBe(200);
    expect(proxy.seen).toHaveLength(1);
  });

  it.each(['hang', 'stall-body'] as const)('holds for a fetch option that ignores its signal (%s)', async (stall) => {
    const proxy = await proxyFor(() => stall);
    const deaf = (request: Request) => globalThis.fetch(request.url, { headers: request.headers });
    const { client } = recordingClient(proxy.url, server.account.key, { timeoutMs: 500, retries: 0, fetch: deaf });
    const { outcome } = await settle(client.GET('/v1/me/credits'));
    expect(outcome).toEqual({ error: expect.any(OpenRushTimeoutError) });
  });

  it("the caller's own signal aborts a stalled body and is never retried", async () => {
    const proxy = await proxyFor(() => 'stall-body');
    const { client, retries } = recordingClient(proxy.url, server.account.key, { timeoutMs: 0 });
    const controller = new AbortController();
    const call = client.GET('/v1/me/credits', { signal: controller.signal });
    while (proxy.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.abort();
    const { outcome } = await settle(call);
    expect(outcome).toEqual({ error: expect.objectContaining({ name: 'AbortError' }) });
    expect(proxy.seen).toHaveLength(1);
    expect(retries).toEqual([]);
  });

  it.each(['hang', 'stall-body'] as const)('fires even when the garbage collector runs while the attempt waits (%s)', async (stall) => {
    // AbortSignal.timeout()/any() and a Request's signal are weakly held: a collection mid-flight used to leave
    // the attempt waiting forever. A process of its own, to run the collector (--expose-gc) every few milliseconds.
    const proxy = await proxyFor(() => stall);
    const code = `const { createOpenRushClient } = await import(process.env.CLIENT_MODULE);
      const openrush = createOpenRushClient({ baseUrl: process.env.BASE_URL, apiKey: 'or_x', timeoutMs: 1000, retries: 0 });
      const collecting = setInterval(() => globalThis.gc(), 20);
      try { await openrush.GET('/v1/me/credits'); console.log('answered'); }
      catch (error) { console.log(error.name); }
      finally { clearInterval(collecting); }`;
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', code], {
      env: { ...process.env, CLIENT_MODULE: new URL('../client/index.ts', import.meta.url).href, BASE_URL: proxy.url },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    // Bounded, so that a regression fails here instead of hanging the run.
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(killer);
    expect({ code: exitCode, output: output.trim() }).toEqual({ code: 0, output: 'OpenRushTimeoutError' });
  });

  it("the caller's own signal aborts the call and is never retried", async () => {
    const proxy = await proxyFor(() => 'hang');
    const { client, retries } = recordingClient(proxy.url, server.account.key, { timeoutMs: 0 });
    const controller = new AbortController();
    const call = client.GET('/v1/me/credits', { signal: controller.signal });
    while (proxy.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort();
    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
    expect(proxy.seen).toHaveLength(1);
    expect(retries).toEqual([]);
  });
});

describe('page iterators', () => {
  it('stop on a Prism mock of the contract, which answers the same example page every time', async () => {
    // The mock sends one example page, whatever the cursor; with a next link, a naive walk would never end.
    const mock = createOpenRushClient({ baseUrl: inject('mockUrl'), apiKey: server.account.key, retries: 0 });
    const firstPage = await unwrap(mock.GET('/v1/me/usage', { params: { query: { limit: 2 } } }));
    const records: string[] = [];
    for await (const record of allUsage(mock, { limit: 2 })) records.push(record.id);
    expect(records).toEqual(firstPage.map((record) => record.id));
    const keys: string[] = [];
    for await (const key of allApiKeys(mock, { limit: 2 })) keys.push(key.api_key_id);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
