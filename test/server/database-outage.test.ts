// PostgreSQL goes away under load and comes back: the server answers 503 problems meanwhile (never a 500, never a
// dropped connection, never a crash), recovers by itself, and neither loses nor doubles a charge. Runs on a
// cluster of its own: stopping the shared one at TEST_DATABASE_URL would break the files running next to this one.
// Two servers share the outage: the app in this process, and `openrush serve` in its own process, where a crash
// would show as an exit rather than as an error the test runner caught.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killCliProcesses, runCli, serveCli, type ServingCli } from '../helpers/cli-process.ts';
import { startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';
import { openTestStore } from '../helpers/stores.ts';

const POSTGRES_AVAILABLE = Boolean(process.env.TEST_DATABASE_URL);
const describeWithPostgres = POSTGRES_AVAILABLE ? describe : describe.skip;
const TITLE = POSTGRES_AVAILABLE
  ? 'a PostgreSQL outage under load'
  : 'a PostgreSQL outage under load — NOT RUN: needs PostgreSQL, signalled by TEST_DATABASE_URL';

const INSPECT = '/v1/tools/inspect_domain';
const CREDITS = '/v1/me/credits';
const INITIAL_CREDITS = 100_000;
const PRICE = 3;
const TICK_MS = 50;

type Phase = 'up' | 'down' | 'back';

interface Outcome {
  phase: Phase;
  path: string;
  status?: number;
  /** The fetch failed: a dropped or refused connection, a truncated body, or no answer in time. */
  error?: string;
  contentType?: string | null;
  retryAfter?: string | null;
  requestIdHeader?: string | null;
  body?: string;
}

interface Target {
  name: string;
  url: string;
  key: string;
  accountId: string;
  /** Where its tables are: a database URL and the schema in it. */
  databaseUrl: string;
  schema: string;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function until(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

async function connect(url: string, schema?: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, options: schema ? `-c search_path=${schema}` : undefined });
  // This test's own connections are cut by the outage too; that must not end the test run.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function query<T extends pg.QueryResultRow>(target: Pick<Target, 'databaseUrl' | 'schema'>, text: string, values: unknown[] = []): Promise<T[]> {
  const client = await connect(target.databaseUrl, target.schema);
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Makes the request and fills in `outcome` with what came back, or how it failed. */
async function fetchInto(outcome: Outcome, baseUrl: string, init: RequestInit = {}): Promise<Outcome> {
  try {
    // Longer than the pool's 5 s connection timeout: a request that outlives this one hangs.
    const response = await fetch(baseUrl + outcome.path, { ...init, signal: AbortSignal.timeout(15_000) });
    outcome.contentType = response.headers.get('content-type');
    outcome.retryAfter = response.headers.get('retry-after');
    outcome.requestIdHeader = response.headers.get('x-request-id');
    outcome.body = await response.text();
    outcome.status = response.status;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    outcome.error = `${(error as Error).name}: ${(error as Error).message}${cause?.code ? ` (${cause.code})` : ''}`;
  }
  return outcome;
}

/** A client that keeps calling GET /v1/me/credits and the metered tool every TICK_MS, noting every outcome. */
function startLoad(target: Target, phase: () => Phase) {
  const outcomes: Outcome[] = [];
  const extra: Array<Promise<Outcome>> = [];
  let stopped = false;
  const call = async (path: string, init: RequestInit = {}): Promise<Outcome> => {
    const outcome: Outcome = { phase: phase(), path };
    outcomes.push(outcome);
    const headers = new Headers(init.headers);
    headers.set('Authorization', `Bearer ${target.key}`);
    return fetchInto(outcome, target.url, { ...init, headers });
  };
  const done = (async () => {
    // Bounded: 1,200 ticks take a minute at least, far more than the test needs.
    for (let tick = 0; tick < 1_200 && !stopped; tick++) {
      await Promise.all([call(CREDITS), call(INSPECT, jsonInit({ domain: `shop${tick}.example.co.uk` }))]);
      await sleep(TICK_MS);
    }
  })();
  return {
    outcomes,
    /** One request outside the loop (a probe), noted with the others: every 200 the client saw counts. */
    call: (path: string) => call(path),
    /** A few more tool calls at once, besides the loop's. */
    burst(calls: number): void {
      for (let index = 0; index < calls; index++) extra.push(call(INSPECT, jsonInit({ domain: `burst${index}.example.org` })));
    },
    answered: (which: Phase) => outcomes.filter((outcome) => outcome.phase === which && (outcome.status ?? outcome.error)),
    async stop(): Promise<Outcome[]> {
      stopped = true;
      await Promise.all([done, ...extra]);
      return outcomes;
    },
  };
}

function describeOutcome(outcome: Outcome): string {
  return JSON.stringify({ ...outcome, body: outcome.body?.slice(0, 300) });
}

function expectUnavailableProblem(outcome: Outcome, { retryAfter = true } = {}): void {
  const detail = describeOutcome(outcome);
  expect(outcome.error, detail).toBeUndefined();
  expect(outcome.status, detail).toBe(503);
  expect(outcome.contentType, detail).toMatch(/^application\/problem\+json\b/);
  if (retryAfter) expect(outcome.retryAfter, detail).toMatch(/^\d+$/);
  const problem = JSON.parse(outcome.body ?? '') as { type: string; status: number; request_id: string };
  expect(problem.type, detail).toMatch(/service_unavailable$/);
  expect(problem.status, detail).toBe(503);
  expect(problem.request_id, detail).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  expect(problem.request_id, detail).toBe(outcome.requestIdHeader);
}

/** Every answer is a 200 or a complete 503 service_unavailable problem that says when to retry. */
function expectOkOrUnavailable(outcomes: Outcome[]): void {
  for (const outcome of outcomes) {
    expect(outcome.error, describeOutcome(outcome)).toBeUndefined();
    if (outcome.status === 200) continue;
    expectUnavailableProblem(outcome);
  }
}

const count = (outcomes: Outcome[], path: string, status: number) =>
  outcomes.filter((outcome) => outcome.path === path && outcome.status === status).length;

/** An unauthenticated GET (health checks), not part of the load. */
function probe(url: string, path: string): Promise<Outcome> {
  return fetchInto({ phase: 'down', path }, url);
}

const IN_PROCESS = 'in-process server';
const CLI_SERVE = 'openrush serve';

describeWithPostgres(TITLE, () => {
  let cluster: PostgresCluster;
  let server: TestServer;
  let cli: ServingCli;
  const targets = new Map<string, { target: Target; load: ReturnType<typeof startLoad> }>();
  let phase: Phase = 'up';
  const lockHolders: pg.Client[] = [];
  const loads = () => [...targets.values()].map(({ load }) => load);
  const of = (name: string) => targets.get(name)!;

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    // `openrush serve` gets a database of its own: its migrations look for their tables in every schema.
    const cliDatabaseUrl = cluster.url.replace(/\/postgres$/, '/openrush_cli');
    await query({ databaseUrl: cluster.url, schema: 'public' }, 'create database openrush_cli');

    server = await startTestServer({
      // A schema of its own and a pool of 4: openPostgresStore(url, { schema, poolSize }), as for every test server.
      database: openTestStore('postgres', cluster.url),
      // The cluster is thrown away whole; dropping the schema would need it to be up.
      sharedDatabase: true,
      credits: INITIAL_CREDITS,
    });
    const [{ schema }] = (await query<{ schema: string }>(
      { databaseUrl: cluster.url, schema: 'public' },
      "select table_schema as schema from information_schema.tables where table_name = 'accounts' and table_schema like 'test_%'",
    )) as [{ schema: string }];

    cli = await serveCli({ DATABASE_URL: cliDatabaseUrl, OPENRUSH_DB_POOL_SIZE: '4' });
    expect(cli.starterAccountId && cli.starterKey, cli.output.stdout).toBeTruthy();
    const granted = await runCli(['credits', 'grant', cli.starterAccountId!, String(INITIAL_CREDITS - 500)], { DATABASE_URL: cliDatabaseUrl });
    expect(granted.code, granted.stderr).toBe(0);

    for (const target of [
      { name: IN_PROCESS, url: server.url, key: server.account.key, accountId: server.account.accountId, databaseUrl: cluster.url, schema },
      { name: CLI_SERVE, url: cli.url, key: cli.starterKey!, accountId: cli.starterAccountId!, databaseUrl: cliDatabaseUrl, schema: 'public' },
    ]) {
      targets.set(target.name, { target, load: startLoad(target, () => phase) });
    }
    await until('the load to get through with the database up', 10_000, () => loads().every((load) => count(load.outcomes, INSPECT, 200) >= 3));
  }, 90_000);

  afterAll(async () => {
    await Promise.all(loads().map((load) => load.stop()));
    await Promise.all(lockHolders.map((client) => client.end().catch(() => undefined)));
    killCliProcesses();
    await server?.close();
    await cluster?.destroy();
  });

  describe('while PostgreSQL is down', () => {
    beforeAll(async () => {
      // Each account row locked by another session: charges wait on it, so the outage certainly cuts connections
      // that are checked out in the middle of a transaction, not only idle ones.
      for (const { target, load } of targets.values()) {
        const holder = await connect(target.databaseUrl, target.schema);
        lockHolders.push(holder);
        await holder.query('begin');
        await holder.query('select 1 from accounts where id = $1 for update', [target.accountId]);
        load.burst(3);
      }
      await until('three charges of each server to wait on the lock', 10_000, async () => {
        const waiting = await query<{ datname: string; n: number }>(
          { databaseUrl: cluster.url, schema: 'public' },
          "select datname, count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' group by datname",
        );
        return waiting.filter((row) => row.n >= 3).length === targets.size;
      });

      await cluster.stop();
      phase = 'down';
      await until('requests answered while the database is down', 15_000, () => loads().every((load) => load.answered('down').length >= 8));
    }, 60_000);

    it.each([IN_PROCESS, CLI_SERVE])('%s: 503 problems with Retry-After, never a 500 or a dropped connection; /readyz 503, /healthz 200', async (name) => {
      const { target, load } = of(name);
      // A probe for the load balancer: Retry-After is for API clients.
      expectUnavailableProblem(await probe(target.url, '/readyz'), { retryAfter: false });
      const healthz = await probe(target.url, '/healthz');
      expect(healthz.status, describeOutcome(healthz)).toBe(200);
      expect(JSON.parse(healthz.body!)).toEqual({ status: 'ok' });

      for (const outcome of load.answered('down')) expectUnavailableProblem(outcome);
      // The requests cut in the middle of their transaction too.
      expectOkOrUnavailable(load.outcomes.filter((outcome) => outcome.status ?? outcome.error));
    });

    it('openrush serve keeps running: a connection cut while checked out does not crash the process', () => {
      expect({ exitCode: cli.child.exitCode, signal: cli.child.signalCode, stderr: cli.output.stderr.slice(0, 2000) }).toEqual({
        exitCode: null,
        signal: null,
        stderr: '',
      });
    });
  });

  describe('once PostgreSQL is back', () => {
    beforeAll(async () => {
      await cluster.start();
      phase = 'back';
    }, 60_000);

    it.each([IN_PROCESS, CLI_SERVE])('%s answers 200 again within 20 s, by itself', async (name) => {
      const { target, load } = of(name);
      try {
        await until('/readyz and the API to answer 200 again', 20_000, async () => {
          const [readyz, credits] = await Promise.all([probe(target.url, '/readyz'), load.call(CREDITS)]);
          return readyz.status === 200 && credits.status === 200;
        });
        // The load itself gets through again, not only the probes.
        const mark = load.outcomes.length;
        await until('the load to get 200s again', 10_000, () => count(load.outcomes.slice(mark), INSPECT, 200) >= 3 && count(load.outcomes.slice(mark), CREDITS, 200) >= 3);
      } finally {
        await load.stop();
      }
      expectOkOrUnavailable(load.outcomes);
      // After recovery nothing fails any more.
      expect(load.outcomes.slice(-6).map((outcome) => outcome.status)).toEqual([200, 200, 200, 200, 200, 200]);
    }, 40_000);

    it.each([IN_PROCESS, CLI_SERVE])('%s: nothing charged twice or lost; balance = ledger sum, every 200 the client saw is in the usage', async (name) => {
      const { target, load } = of(name);
      // Quiet first (stopping twice is harmless), or the counts below would race the load.
      const outcomes = await load.stop();
      const context = (what: unknown) => JSON.stringify(what);
      const response = await fetch(`${target.url}${CREDITS}`, { headers: { Authorization: `Bearer ${target.key}` } });
      expect(response.status).toBe(200);
      const { balance } = (await response.json()) as { balance: number };

      const [ledger] = await query<{ sum: number; charges: number; usages: number; dangling: number }>(
        target,
        `select coalesce(sum(amount), 0)::int as sum,
                count(*) filter (where kind = 'charge')::int as charges,
                count(distinct usage_id) filter (where kind = 'charge')::int as usages,
                count(*) filter (where kind = 'charge' and usage_id not in (select id from usage_records))::int as dangling
         from credit_ledger where account_id = $1`,
        [target.accountId],
      );
      expect(ledger!.sum, context(ledger)).toBe(balance);

      const usage = await query<{ endpoint: string; status_code: number; n: number; charged: number }>(
        target,
        `select endpoint, status_code, count(*)::int as n, coalesce(sum(credits_charged), 0)::int as charged
         from usage_records where account_id = $1 group by endpoint, status_code`,
        [target.accountId],
      );
      const recorded = (endpoint: string, status: number) => usage.find((row) => row.endpoint === endpoint && row.status_code === status)?.n ?? 0;
      const charged = usage.reduce((sum, row) => sum + row.charged, 0);
      // Every credit that left the balance is one charge in the ledger, tied to its own usage record, and the reverse.
      expect(INITIAL_CREDITS - balance, context(usage)).toBe(charged);
      expect({ charges: ledger!.charges, usages: ledger!.usages, dangling: ledger!.dangling }, context(ledger)).toEqual({
        charges: charged / PRICE,
        usages: charged / PRICE,
        dangling: 0,
      });
      expect(charged, context(usage)).toBe(recorded(INSPECT, 200) * PRICE);

      // Every 200 the client saw is recorded (the balance check above is one more GET). A call may be recorded
      // although its client got a 503 (the commit went through, its answer did not), but never more than that.
      for (const path of [INSPECT, CREDITS]) {
        const seen = count(outcomes, path, 200) + (path === CREDITS ? 1 : 0);
        const unavailable = count(outcomes, path, 503);
        expect(recorded(path, 200), context({ path, seen, unavailable, usage })).toBeGreaterThanOrEqual(seen);
        expect(recorded(path, 200), context({ path, seen, unavailable, usage })).toBeLessThanOrEqual(seen + unavailable);
      }
    });
  });
});
