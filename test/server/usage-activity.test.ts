// What the Dashboard's Activity reads: GET /v1/me/usage's filters, the CSV export and the aggregates, against a real
// server on a real database (a SQLite file, or PostgreSQL with OPENRUSH_TEST_STORE=postgres).
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { createIdGenerator } from '../../server/ids.ts';
import type { UsageRow } from '../../server/store/types.ts';
import { EXPORT_BATCH, usageCsvColumns } from '../../server/usage.ts';
import { TestClock } from '../helpers/clock.ts';
import { countingStore } from '../helpers/counting-store.ts';
import { faultyStore } from '../helpers/faulty-store.ts';
import { migrationConnection } from '../helpers/stores.ts';
import { StoreUnavailableError } from '../../server/store/errors.ts';
import * as m007 from '../../server/store/migrations/007_usage_rollups.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';
import { parseCsv } from '../../server/verify.ts';

type UsageRecord = components['schemas']['UsageRecord'];
type UsageAggregates = components['schemas']['UsageAggregates'];
type UsageBucket = components['schemas']['UsageBucket'];
type Problem = components['schemas']['Problem'];

const HOUR = 3_600_000;
const DAY = 86_400_000;
const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const MCP_ACCEPT = 'application/json, text/event-stream';


/** A record as its CSV row would show it: null as '', numbers as text. */
function asCells(record: UsageRecord, columns: string[]): string[] {
  return columns.map((column) => {
    const value = (record as Record<string, unknown>)[column];
    return value === null ? '' : String(value);
  });
}

async function allRecords(server: TestServer, key: string, query: string): Promise<UsageRecord[]> {
  const records: UsageRecord[] = [];
  let next: string | undefined = `/v1/me/usage?limit=500&${query}`;
  while (next) {
    const response = await server.call(next, { key });
    expect(response.status, await response.clone().text()).toBe(200);
    records.push(...((await response.json()) as UsageRecord[]));
    next = /<([^>]+)>; rel="next"/.exec(response.headers.get('link') ?? '')?.[1];
  }
  return records;
}

/** The buckets a recount of records gives, in the contract's order. */
function recount(records: UsageRecord[], interval: 'hour' | 'day', groupOf: (r: UsageRecord) => string | null): UsageBucket[] {
  const width = interval === 'hour' ? HOUR : DAY;
  const buckets = new Map<string, UsageBucket>();
  for (const record of records) {
    const start = new Date(Math.floor(Date.parse(record.created_at) / width) * width).toISOString();
    const group = groupOf(record);
    const key = `${start}|${group ?? ''}`;
    const bucket = buckets.get(key) ?? { start, group, requests: 0, errors: 0, credits: 0 };
    bucket.requests += 1;
    bucket.errors += record.status_code >= 400 ? 1 : 0;
    bucket.credits += record.credits_charged;
    buckets.set(key, bucket);
  }
  return [...buckets.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, bucket]) => bucket);
}

async function expectRangeRefused(response: Response, pointer: string): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(400);
  const problem = JSON.parse(text) as Problem;
  expect(problem.type).toMatch(/validation_failed$/);
  expect(problem.errors?.map((error) => error.pointer)).toEqual([pointer]);
}

describe('aggregates reconcile with the records and the ledger', () => {
  // Calls at known times: a clock of the test's, three days back, so that the reads made afterwards fall outside the range.
  const day0 = Math.floor((Date.now() - 3 * DAY) / DAY) * DAY;
  const clock = new TestClock(day0 + 10 * HOUR + 30 * 60_000);
  let server: TestServer;
  let session: string;
  let keys: string[] = [];
  let accountId: string;

  beforeAll(async () => {
    server = await startTestServer({
      clock,
      config: { session: { jwksUrl: undefined, jwksFile: undefined, jwtSecret: SECRET, issuer: undefined, autoprovision: true } },
    });
    const now = Math.floor(Date.now() / 1000);
    const sub = randomUUID();
    session = await new SignJWT({ sub, aud: 'authenticated', role: 'authenticated', iat: now, exp: now + 3600 })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(SECRET));
    // A person's session makes the account; it gets credits and two keys.
    expect((await server.call('/v1/me/credits', { key: session })).status).toBe(200);
    accountId = (await server.store.sessionAccount(sub))!.id;
    await server.store.grantCredits({ ledgerId: createIdGenerator(clock)('led'), eventId: createIdGenerator(clock)('evt'), accountId, amount: 1000, note: 'test', createdAt: clock.now().toISOString() });
    for (const name of ['first', 'second']) {
      const created = await server.call('/v1/me/api-credentials', jsonInit({ name }, { key: session }));
      expect(created.status).toBe(201);
      keys.push(((await created.json()) as { key: string }).key);
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  const inspect = (key: string, body: unknown = { domain: 'example.com' }) => server.call('/v1/tools/inspect_domain', jsonInit(body, { key }));
  const mcpCall = (key: string, args: unknown) =>
    server.call(
      '/mcp',
      jsonInit({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'inspect_domain', arguments: args } }, { key, headers: { Accept: MCP_ACCEPT } }),
    );

  it('charged, free and failed calls, over the API and MCP, with two keys and a session: the aggregates equal a recount', async () => {
    const [first, second] = keys as [string, string];
    expect((await inspect(first)).status).toBe(200);
    expect((await inspect(first)).status).toBe(200);
    expect((await inspect(second)).status).toBe(200);
    expect((await inspect(session)).status).toBe(200);
    expect((await server.call('/v1/me/credits', { key: first })).status).toBe(200);
    expect((await inspect(first, { domain: 42 })).status).toBe(400);
    expect((await server.call('/v1/me/usage?starting_after=log_01KW1WT7EG77ENFRVVXT8TCAPB', { key: session })).status).toBe(400);
    clock.advance(2 * HOUR);
    expect((await mcpCall(second, { domain: 'example.org' })).status).toBe(200);
    expect((await mcpCall(first, { domain: 42 })).status).toBe(200); // a refused tool call is a JSON-RPC answer
    clock.advance(DAY);
    expect((await inspect(second)).status).toBe(200);
    expect((await server.call('/v1/me/nothing-here', { key: second })).status).toBe(404);
    // The reads below are made later, outside the range.
    clock.advance(2 * DAY);

    const from = new Date(day0).toISOString();
    const to = new Date(day0 + 2 * DAY).toISOString();
    const range = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
    const records = await allRecords(server, session, range);
    // Everything the test did, and nothing else: 12 calls, the session's first read and key creations before them.
    expect(records.filter((r) => r.endpoint === '/v1/tools/inspect_domain' || r.channel === 'mcp')).toHaveLength(8);
    expect(new Set(records.map((r) => r.channel))).toEqual(new Set(['api', 'mcp']));
    expect(new Set(records.map((r) => r.auth_source))).toEqual(new Set(['api_key', 'session']));
    expect(records.filter((r) => r.status_code >= 400).length).toBeGreaterThanOrEqual(3);
    expect(records.reduce((sum, r) => sum + r.credits_charged, 0)).toBe(6 * 3);

    const groups: Array<[string, (r: UsageRecord) => string | null]> = [
      ['', () => null],
      ['&group_by=channel', (r) => r.channel],
      ['&group_by=tool', (r) => r.tool],
      ['&group_by=api_key', (r) => r.credential_id],
    ];
    for (const interval of ['hour', 'day'] as const) {
      for (const [param, groupOf] of groups) {
        const response = await server.call(`/v1/me/usage/aggregates?${range}&interval=${interval}${param}`, { key: session });
        expect(response.status, await response.clone().text()).toBe(200);
        const answer = (await response.json()) as UsageAggregates;
        expect(answer).toMatchObject({ from, to, interval, group_by: param ? param.split('=')[1] : null });
        expect(answer.buckets, `${interval}${param}`).toEqual(recount(records, interval, groupOf));
        expect(answer.totals).toEqual({
          requests: records.length,
          errors: records.filter((r) => r.status_code >= 400).length,
          credits: 18,
        });
      }
    }
    // The ledger's charges over the same range.
    const [charged] = await server.database.query<{ total: string | number | null }>(
      `select -sum(amount) as total from credit_ledger where account_id = '${accountId}' and kind = 'charge' and created_at >= '${from}' and created_at < '${to}'`,
    );
    expect(Number(charged!.total)).toBe(18);
  });

  it('the range: rounded to the interval, 30 days by default, to <= from and more than 744 intervals refused', async () => {
    const at = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
    const now = clock.now().getTime();
    const byDefault = (await (await server.call('/v1/me/usage/aggregates', { key: session })).json()) as UsageAggregates;
    const end = Math.floor(now / DAY) * DAY + DAY;
    expect(byDefault).toMatchObject({ from: new Date(end - 30 * DAY).toISOString(), to: new Date(end).toISOString(), interval: 'day', group_by: null });
    // The default range holds every call of the test.
    expect(byDefault.totals.credits).toBe(18);
    const rounded = (await (
      await server.call(`/v1/me/usage/aggregates?interval=hour&from=${at(day0 + 10 * HOUR + 59_000)}&to=${at(day0 + 12 * HOUR + 1)}`, {
        key: session,
      })
    ).json()) as UsageAggregates;
    expect(rounded).toMatchObject({ from: new Date(day0 + 10 * HOUR).toISOString(), to: new Date(day0 + 13 * HOUR).toISOString() });
    expect(rounded.buckets.map((b) => b.start)).toEqual([new Date(day0 + 10 * HOUR).toISOString(), new Date(day0 + 12 * HOUR).toISOString()]);

    await expectRangeRefused(await server.call(`/v1/me/usage/aggregates?from=${at(day0)}&to=${at(day0)}`, { key: session }), '/to');
    await expectRangeRefused(await server.call(`/v1/me/usage/aggregates?from=${at(day0)}&to=${at(day0 - 1)}`, { key: session }), '/to');
    // 744 hours pass, 745 do not; by day, 744 days pass.
    expect((await server.call(`/v1/me/usage/aggregates?interval=hour&from=${at(day0)}&to=${at(day0 + 744 * HOUR)}`, { key: session })).status).toBe(200);
    await expectRangeRefused(await server.call(`/v1/me/usage/aggregates?interval=hour&from=${at(day0)}&to=${at(day0 + 745 * HOUR)}`, { key: session }), '/to');
    expect((await server.call(`/v1/me/usage/aggregates?from=${at(day0)}&to=${at(day0 + 744 * DAY)}`, { key: session })).status).toBe(200);
    await expectRangeRefused(await server.call(`/v1/me/usage/aggregates?interval=hour&from=${at(day0 - 40 * DAY)}`, { key: session }), '/from');
    await expectRangeRefused(await server.call(`/v1/me/usage?from=${at(day0)}&to=${at(day0)}`, { key: session }), '/to');
    // Any RFC 3339 form the contract accepts is read as the instant it names: an offset, a leap second.
    const offsetFrom = new Date(day0).toISOString().replace('T00', 'T02').replace('.000Z', '+02:00');
    const leapTo = `${new Date(day0).toISOString().slice(0, 11)}23:59:60Z`;
    const written = await allRecords(server, session, `from=${encodeURIComponent(offsetFrom)}&to=${encodeURIComponent(leapTo)}`);
    expect(written.length).toBeGreaterThan(5);
    expect(written).toEqual(await allRecords(server, session, `from=${at(day0)}&to=${at(day0 + DAY)}`));
    await expectRangeRefused(await server.call(`/v1/me/usage/export?from=${at(day0 + 1)}&to=${at(day0)}`, { key: session }), '/to');
  });

  it('retention deletes old records and keeps their rollups', async () => {
    const range = `from=${encodeURIComponent(new Date(day0).toISOString())}&to=${encodeURIComponent(new Date(day0 + 2 * DAY).toISOString())}`;
    const before = (await (await server.call(`/v1/me/usage/aggregates?${range}`, { key: session })).json()) as UsageAggregates;
    await server.store.maintain(new Date(day0 + 3 * DAY), { retentionDays: 1 });
    expect(await allRecords(server, session, range)).toEqual([]);
    const after = (await (await server.call(`/v1/me/usage/aggregates?${range}`, { key: session })).json()) as UsageAggregates;
    expect(after).toEqual(before);
    expect(after.totals.requests).toBeGreaterThan(0);
  });
});

describe('filters, the export, and the rollups of random records', () => {
  let server: TestServer;
  let counting: ReturnType<typeof countingStore>;
  const base = Date.now() - 10 * DAY;

  beforeAll(async () => {
    counting = countingStore();
    server = await startTestServer({ database: counting.database });
  });
  afterAll(async () => {
    await server?.close();
  });

  /** Records written through the real store (its group-committed writer), with their charges. */
  async function write(accountId: string, rows: Array<Partial<UsageRow> & { at: number }>): Promise<UsageRow[]> {
    const clock = new TestClock(base);
    const ids = createIdGenerator(clock);
    const written: UsageRow[] = [];
    // In time order, so ids and times agree as the server's do.
    for (const { at, ...fields } of [...rows].sort((a, b) => a.at - b.at)) {
      clock.advance(at - clock.now().getTime());
      const record = {
        id: ids('log'),
        account_id: accountId,
        credential_id: null,
        auth_source: 'session',
        endpoint: '/v1/me/credits',
        method: 'GET',
        status_code: 200,
        response_time_ms: 1,
        request_bytes: 0,
        response_bytes: 10,
        dataforseo_cost_usd: 0,
        credits_charged: 0,
        error_type: null,
        error_message: null,
        created_at: clock.now().toISOString(),
        channel: 'api',
        tool: null,
        rpc_method: null,
        request_id: null,
        oauth_client_id: null,
        ...fields,
      } as UsageRow;
      written.push(record);
    }
    await Promise.all(
      written.map((record) =>
        server.store.recordUsage(record, record.credits_charged > 0 ? { charge: { ledgerId: ids('led'), eventId: ids('evt'), amount: record.credits_charged } } : {}),
      ),
    );
    return written;
  }

  const recordArbitrary = (credentials: string[]) =>
    fc.record({
      at: fc.integer({ min: base, max: base + 3 * DAY }),
      channel: fc.constantFrom('api' as const, 'mcp' as const),
      tool: fc.constantFrom(null, 'inspect_domain', 'get_key_status'),
      status_code: fc.constantFrom(200, 201, 204, 302, 400, 401, 402, 404, 429, 500, 503),
      credential_id: fc.constantFrom(null, ...credentials),
      credits_charged: fc.constantFrom(0, 0, 3, 7),
    });

  it('filters combine, page by Link keeping them, and select what they say (random records, random filters)', async () => {
    const account = await server.newAccount(1_000_000);
    const other = await server.newAccount(0);
    const credentials = [account.credentialId, other.credentialId];
    const rows = await write(account.accountId, fc.sample(recordArbitrary(credentials), 120));
    const newestFirst = [...rows].sort((a, b) => (a.created_at < b.created_at || (a.created_at === b.created_at && a.id < b.id) ? 1 : -1));
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            channel: fc.constantFrom('api', 'mcp'),
            tool: fc.constantFrom('inspect_domain', 'get_key_status'),
            status_class: fc.constantFrom('2xx', '3xx', '4xx', '5xx'),
            credential_id: fc.constantFrom(...credentials),
            from: fc.integer({ min: base - HOUR, max: base + 3 * DAY }),
            span: fc.integer({ min: 1, max: 3 * DAY }),
            limit: fc.integer({ min: 1, max: 40 }),
          },
          { requiredKeys: ['limit', 'span'] },
        ),
        async ({ span, limit, from, ...filters }) => {
          const query = new URLSearchParams({ limit: String(limit) });
          for (const [name, value] of Object.entries(filters)) query.set(name, String(value));
          if (from !== undefined) {
            query.set('from', new Date(from).toISOString());
            query.set('to', new Date(from + span).toISOString());
          }
          const expected = newestFirst.filter(
            (r) =>
              (filters.channel === undefined || r.channel === filters.channel) &&
              (filters.tool === undefined || r.tool === filters.tool) &&
              (filters.status_class === undefined || String(r.status_code)[0] === filters.status_class[0]) &&
              (filters.credential_id === undefined || r.credential_id === filters.credential_id) &&
              (from === undefined || (Date.parse(r.created_at) >= from && Date.parse(r.created_at) < from + span)),
          );
          // Walk the pages by their Link, as a client would.
          const seen: string[] = [];
          let next: string | undefined = `/v1/me/usage?${query}`;
          while (next) {
            const response = await server.call(next, { key: account.key });
            expect(response.status, await response.clone().text()).toBe(200);
            const page = (await response.json()) as UsageRecord[];
            expect(page.length).toBeLessThanOrEqual(limit);
            seen.push(...page.map((r) => r.id));
            next = /<([^>]+)>; rel="next"/.exec(response.headers.get('link') ?? '')?.[1];
            if (next) for (const [name, value] of query) if (name !== 'limit') expect(new URL(next, server.url).searchParams.get(name)).toBe(value);
          }
          // The requests the test makes are newer than every written record: only the filter with no time range sees them.
          expect(seen.filter((id) => rows.some((r) => r.id === id))).toEqual(expected.map((r) => r.id));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('the rollups written with the records equal a recount of them, per hour and group (random records)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(recordArbitrary(['cred_01KW1WT6F8KK8E8PW71NXT39GC', 'cred_01KW1WT6F8KK8E8PW71NXT39GD']), { minLength: 1, maxLength: 60 }), async (sample) => {
        const account = await server.newAccount(1_000_000);
        const rows = (await write(account.accountId, sample)) as unknown as UsageRecord[];
        for (const [groupBy, groupOf] of [
          [undefined, () => null],
          ['channel', (r: UsageRecord) => r.channel],
          ['tool', (r: UsageRecord) => r.tool],
          ['credential', (r: UsageRecord) => r.credential_id],
        ] as const) {
          for (const interval of ['hour', 'day'] as const) {
            const answer = await server.store.usageAggregates(account.accountId, {
              from: new Date(base - DAY).toISOString(),
              to: new Date(base + 5 * DAY).toISOString(),
              interval,
              limit: 100_000,
              ...(groupBy ? { groupBy } : {}),
            });
            expect(answer).toEqual(recount(rows, interval, groupOf));
          }
        }
      }),
      { numRuns: 12 },
    );
  });

  it('migration 007 backfills the rollups of the records already there, exactly', async () => {
    const account = await server.newAccount(1_000_000);
    const rows = await write(account.accountId, fc.sample(recordArbitrary([account.credentialId]), 80));
    const query = { from: new Date(base - DAY).toISOString(), to: new Date(base + 5 * DAY).toISOString(), interval: 'hour' as const, groupBy: 'credential' as const, limit: 100_000 };
    const written = await server.store.usageAggregates(account.accountId, query);
    expect(written).toEqual(recount(rows as unknown as UsageRecord[], 'hour', (r) => r.credential_id));
    // Undo 007 with its own down() and run its up() again over the records that are there (by hand: the migrator
    // runs no migration older than the newest applied): its backfill must give the same rollups.
    const kysely = await migrationConnection(server.database);
    try {
      await m007.down(kysely);
      await m007.up(kysely);
    } finally {
      await kysely.destroy();
    }
    const again = server.database.openAnother();
    try {
      expect(await again.usageAggregates(account.accountId, query)).toEqual(written);
    } finally {
      await again.close();
    }
  });

  it('an answer past the contract\'s 100,000 buckets is a 400 that says what to narrow, not a body the contract refuses', async () => {
    const account = await server.newAccount(0);
    const start = Math.floor(base / HOUR) * HOUR;
    const hours = Array.from({ length: 744 }, (_, i) => `('${new Date(start + i * HOUR).toISOString()}')`).join(', ');
    const keys = Array.from({ length: 135 }, (_, i) => `('cred_${String(i).padStart(26, '0')}')`).join(', ');
    // 744 hours × 135 keys = 100,440 rollups, written straight into the table (the store would need 100,440 records).
    await server.database.query(
      `insert into usage_rollups (account_id, hour, channel, tool, credential_id, failed, requests, errors, credits) ` +
        `select '${account.accountId}', h.column1, 'api', '', k.column1, 0, 1, 0, 0 from (values ${hours}) h, (values ${keys}) k`,
    );
    const range = `from=${encodeURIComponent(new Date(start).toISOString())}&to=${encodeURIComponent(new Date(start + 744 * HOUR).toISOString())}`;
    await expectRangeRefused(await server.call(`/v1/me/usage/aggregates?interval=hour&group_by=api_key&${range}`, { key: account.key }), '/group_by');
    // By day the same range is 31 × 135 buckets.
    const byDay = await server.call(`/v1/me/usage/aggregates?interval=day&group_by=api_key&${range}`, { key: account.key });
    expect(byDay.status).toBe(200);
    // …and the refused request itself, made now (inside the range), a 400.
    expect(((await byDay.json()) as UsageAggregates).totals).toEqual({ requests: 744 * 135 + 1, errors: 1, credits: 0 });
  });

  it('the export: every selected record, newest first, as RFC 4180 CSV with the contract columns, formulas defused', async () => {
    const account = await server.newAccount(1_000_000);
    const hostile = ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2', '@SUM(A1)', '\tTab', '\rCR', 'comma, "quote"\r\nnew line', 'plain'];
    const rows = await write(account.accountId, [
      ...hostile.map((text, i) => ({ at: base + i * 1000, status_code: 400, error_type: 'validation_failed', error_message: text })),
      ...Array.from({ length: 2 * EXPORT_BATCH + 17 }, (_, i) => ({ at: base + HOUR + i * 100, channel: (i % 3 === 0 ? 'mcp' : 'api') as 'api' | 'mcp', tool: i % 2 ? 'inspect_domain' : null })),
    ]);
    const response = await server.call('/v1/me/usage/export', { key: account.key });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="openrush-usage.csv"');
    const text = await response.text();
    const [header, ...lines] = parseCsv(text);
    const columns = usageCsvColumns();
    expect(header).toEqual(columns);
    expect(columns.at(0)).toBe('id');
    const listed = await allRecords(server, account.key, '');
    // The export came before the listing: every listed record but the listing's own pages and the export itself.
    const exported = listed.filter((r) => rows.some((row) => row.id === r.id));
    expect(lines.length).toBe(rows.length);
    expect(lines).toEqual(
      exported.map((r) => {
        const cells = asCells(r, columns);
        const message = columns.indexOf('error_message');
        if (/^[=+\-@\t\r]/.test(cells[message]!)) cells[message] = `'${cells[message]}`;
        return cells;
      }),
    );
    // Each hostile text, defused where it starts with a formula character, and intact otherwise.
    const messages = lines.map((line) => line[columns.indexOf('error_message')]).filter(Boolean);
    expect(messages.sort()).toEqual(
      ['\'=HYPERLINK("http://evil.example","x")', "'+1+1", "'-2", "'@SUM(A1)", "'\tTab", "'\rCR", 'comma, "quote"\r\nnew line', 'plain'].sort(),
    );
    // Recorded once, like any request: status 200 and the bytes sent.
    const own = listed.filter((r) => r.endpoint === '/v1/me/usage/export');
    expect(own).toHaveLength(1);
    expect(own[0]).toMatchObject({ status_code: 200, method: 'GET', response_bytes: Buffer.byteLength(text) });
  });

  it('the export takes the same filters, and names the range in its file name', async () => {
    const account = await server.newAccount(1_000_000);
    await write(account.accountId, fc.sample(recordArbitrary([account.credentialId]), 200));
    const query = `channel=mcp&status_class=4xx&from=${encodeURIComponent(new Date(base).toISOString())}&to=${encodeURIComponent(new Date(base + 2 * DAY).toISOString())}`;
    const response = await server.call(`/v1/me/usage/export?${query}`, { key: account.key });
    expect(response.headers.get('content-disposition')).toBe(
      `attachment; filename="openrush-usage-${new Date(base).toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '')}-${new Date(base + 2 * DAY)
        .toISOString()
        .replace(/\.\d+Z$/, 'Z')
        .replace(/[-:]/g, '')}.csv"`,
    );
    const [, ...lines] = parseCsv(await response.text());
    const listed = await allRecords(server, account.key, query);
    expect(listed.length).toBeGreaterThan(0);
    expect(lines.map((line) => line[0])).toEqual(listed.map((r) => r.id));
  });

  it('a client that goes away stops the export: no more store queries, and the server goes on answering', async () => {
    const account = await server.newAccount(1_000_000);
    const total = 40 * EXPORT_BATCH;
    await write(
      account.accountId,
      Array.from({ length: total }, (_, i) => ({ at: base + i * 10, error_message: 'x'.repeat(200) })),
    );
    const before = counting.calls('listUsage');
    const url = new URL('/v1/me/usage/export', server.url);
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(url, { headers: { Authorization: `Bearer ${account.key}` } }, (res) => {
        expect(res.statusCode).toBe(200);
        // Read one chunk, then stop reading and hang up.
        res.once('data', () => {
          res.pause();
          setTimeout(() => {
            req.destroy();
            resolve();
          }, 300);
        });
      });
      req.on('error', (error) => (error.message.includes('socket hang up') ? resolve() : reject(error)));
      req.end();
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const queried = counting.calls('listUsage') - before;
    // 40 batches would be 41 queries; the client read one chunk and left while the socket buffers held a few.
    expect(queried).toBeGreaterThan(0);
    expect(queried).toBeLessThan(20);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(counting.calls('listUsage') - before).toBe(queried);
    // Recorded once, as answered (200), with the bytes it had sent.
    const records = (await (await server.call('/v1/me/usage?limit=5', { key: account.key })).json()) as UsageRecord[];
    const exportRecord = records.find((r) => r.endpoint === '/v1/me/usage/export');
    expect(exportRecord).toMatchObject({ status_code: 200 });
    expect(exportRecord!.response_bytes).toBeGreaterThan(0);
  });
});

describe('the export when the database fails', () => {
  let server: TestServer;
  let failAfter = 0;
  beforeAll(async () => {
    const { database } = faultyStore((real) => ({
      listUsage: async (accountId, page) => {
        if (failAfter-- <= 0) throw new StoreUnavailableError('the database went away');
        return real.listUsage(accountId, page);
      },
    }));
    server = await startTestServer({ database });
    // Enough records for a few batches (every request below is one more).
    for (let i = 0; i < 3 * EXPORT_BATCH; i += 100) {
      await Promise.all(Array.from({ length: 100 }, () => server.call('/v1/me/credits')));
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  it('before the first chunk: a 503 problem, not a file to save', async () => {
    failAfter = 0;
    const response = await server.call('/v1/me/usage/export');
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.headers.get('content-disposition')).toBeNull();
  });

  it('after it: the download is cut short, never a complete-looking file', async () => {
    failAfter = 1;
    const response = await server.call('/v1/me/usage/export');
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
  });
});
