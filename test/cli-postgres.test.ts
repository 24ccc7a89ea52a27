// The operator CLI on PostgreSQL, run as an operator runs it: `node bin/openrush.js …` with
// DATABASE_URL=postgres://…?options=-c search_path=<schema>. Each test gets a database of its own on the server at
// TEST_DATABASE_URL, so that no other test file's schemas are in it (see the last test for why that matters).
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS } from './helpers/stores.ts';
import { killCliProcesses, runCli, serveCli, type ServingCli } from './helpers/cli-process.ts';

const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;
const describeWithPostgres = TEST_DATABASE_URL ? describe : describe.skip;
const TITLE = TEST_DATABASE_URL ? 'openrush on PostgreSQL' : 'openrush on PostgreSQL — NOT RUN: TEST_DATABASE_URL is not set';

const INSPECT = '/v1/tools/inspect_domain';
const TABLES = ['accounts', 'credentials', 'credit_ledger', 'idempotency_records', 'key_spend', 'rate_limits', 'schema_migrations', 'schema_migrations_lock', 'usage_records', 'sign_in_links', 'dashboard_sessions'];

const databases: string[] = [];

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  parsed.search = '';
  return parsed.toString();
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

interface Place {
  /** The database (without options), for the test's own queries. */
  databaseUrl: string;
  schema: string;
  /** What the operator sets: the schema chosen through the connection string. */
  DATABASE_URL: string;
}

/** A fresh database with a fresh, empty schema in it; DATABASE_URL selects the schema with search_path. */
async function freshPlace(...schemas: string[]): Promise<Place[]> {
  const database = `openrush_cli_${randomBytes(5).toString('hex')}`;
  await sql(TEST_DATABASE_URL!, `create database ${database}`);
  databases.push(database);
  const databaseUrl = withDatabase(TEST_DATABASE_URL!, database);
  const places: Place[] = [];
  for (const schema of schemas) {
    await sql(databaseUrl, `create schema ${schema}`);
    places.push({ databaseUrl, schema, DATABASE_URL: `${databaseUrl}?options=-c%20search_path%3D${schema}` });
  }
  return places;
}

async function tablesIn(place: Place): Promise<Record<string, number>> {
  const rows = await sql<{ schema: string; table: string }>(
    place.databaseUrl,
    `select table_schema as schema, table_name as table from information_schema.tables
     where table_schema not in ('pg_catalog', 'information_schema') and table_name = any($1)`,
    [TABLES],
  );
  const counts: Record<string, number> = {};
  for (const row of rows) counts[`${row.schema}.${row.table}`] = (counts[`${row.schema}.${row.table}`] ?? 0) + 1;
  return counts;
}

const exactlyOnceIn = (schema: string) => Object.fromEntries(TABLES.map((table) => [`${schema}.${table}`, 1]));

interface Answer {
  status: number | undefined;
  connection: string | undefined;
  body: string;
}

/**
 * A tool call the server has certainly accepted and is still working on: the headers are sent with
 * `Expect: 100-continue` (the server's "100 Continue" proves it read them), the body only when `finish` is called.
 */
function heldToolCall(url: string, key: string, agent: http.Agent, domain: string) {
  const body = JSON.stringify({ domain });
  const request = http.request(`${url}${INSPECT}`, {
    method: 'POST',
    agent,
    headers: {
      Authorization: `Bearer ${key}`,
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      Expect: '100-continue',
    },
  });
  const accepted = new Promise<void>((resolve) => request.once('continue', () => resolve()));
  const answer = new Promise<Answer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer within 15 s')), 15_000);
    request.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.once('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.once('aborted', () => reject(new Error(`response cut short after ${text.length} characters`)));
      response.once('end', () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode, connection: response.headers.connection, body: text });
      });
    });
  });
  // Kept from failing the test run on its own: the test awaits it.
  answer.catch(() => undefined);
  request.flushHeaders();
  return {
    accepted,
    answer,
    /** Half the body now, so the request is mid-flight in the server when the rest comes. */
    writeHalf: () => request.write(body.slice(0, Math.floor(body.length / 2))),
    finish: () => request.end(body.slice(Math.floor(body.length / 2))),
  };
}

async function bounded<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * SIGTERM while `calls` tool calls are in flight: they must all be answered in full (and charged once), no new
 * connection is accepted meanwhile, and the process exits 0 by itself soon after the last answer.
 */
async function sigtermWithCallsInFlight(server: ServingCli, place: Place, agent: http.Agent, calls: number) {
  const held = Array.from({ length: calls }, (_, index) => heldToolCall(server.url, server.starterKey!, agent, `held${index}.example.co.uk`));
  await bounded('every call accepted', Promise.all(held.map((call) => call.accepted)), 10_000);
  for (const call of held) call.writeHalf();

  server.child.kill('SIGTERM');
  // The process waits for its requests in flight, and takes no new connection meanwhile.
  await new Promise((done) => setTimeout(done, 300));
  expect(server.child.exitCode).toBeNull();
  const refused = await fetch(`${server.url}/healthz`).then(
    (response) => `answered ${response.status}`,
    (error: { cause?: { code?: string } }) => error.cause?.code,
  );
  expect(refused).toBe('ECONNREFUSED');

  for (const call of held) call.finish();
  const answers = await Promise.all(held.map((call) => call.answer));
  const answeredAt = Date.now();
  for (const [index, answer] of answers.entries()) {
    expect(answer.status, answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ hostname: `held${index}.example.co.uk`, domain: 'example.co.uk' });
  }

  const run = await bounded('the process to exit by itself after the last answer', server.exited, 10_000);
  const exitedAfterMs = Date.now() - answeredAt;
  expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({ code: 0, signal: null, stderr: '' });

  // Each answered call is charged once and recorded, as the usage of any other request.
  const accountId = server.starterAccountId!;
  const schema = place.schema;
  const [ledger] = await sql<{ balance: number; sum: number; charges: number }>(
    place.databaseUrl,
    `select (select balance from ${schema}.accounts where id = $1)::int as balance, sum(amount)::int as sum,
            count(*) filter (where kind = 'charge')::int as charges
     from ${schema}.credit_ledger where account_id = $1`,
    [accountId],
  );
  expect(ledger).toEqual({ balance: 500 - 3 * calls, sum: 500 - 3 * calls, charges: calls });
  const [usage] = await sql<{ n: number }>(
    place.databaseUrl,
    `select count(*)::int as n from ${schema}.usage_records where account_id = $1 and endpoint = $2 and status_code = 200`,
    [accountId, INSPECT],
  );
  expect(usage!.n).toBe(calls);
  return { answers, exitedAfterMs };
}

/** The connections the server held are gone once it has exited (the backends end a moment later). */
async function expectNoConnectionsLeft(place: Place, applicationName: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const [row] = await sql<{ n: number }>(TEST_DATABASE_URL!, 'select count(*)::int as n from pg_stat_activity where application_name = $1', [applicationName]);
    if (row!.n === 0) return;
    if (Date.now() > deadline) expect(row!.n, `connections of ${applicationName} still open`).toBe(0);
    await new Promise((done) => setTimeout(done, 100));
  }
}

describeWithPostgres(TITLE, () => {
  afterEach(() => {
    // A failed test must not leave a server running.
    killCliProcesses();
  });
  afterAll(async () => {
    for (const database of databases.splice(0)) await sql(TEST_DATABASE_URL!, `drop database if exists ${database} with (force)`);
  });

  it('serve on postgres://…?options=-c search_path=…: migrates that schema, makes the starter account, serves /healthz and the starter key', async () => {
    const [place] = (await freshPlace('tenant_a')) as [Place];
    const server = await serveCli({ DATABASE_URL: place.DATABASE_URL });
    expect(server.starterKey, server.output.stdout).toBeDefined();
    expect(server.starterAccountId, server.output.stdout).toBeDefined();

    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    const credits = await fetch(`${server.url}/v1/me/credits`, { headers: { Authorization: `Bearer ${server.starterKey}` } });
    expect(credits.status).toBe(200);
    expect(await credits.json()).toMatchObject({ balance: 500 });

    // Everything in the schema the connection string named, nothing in public.
    expect(await tablesIn(place)).toEqual(exactlyOnceIn('tenant_a'));
    const [account] = await sql<{ id: string }>(place.databaseUrl, 'select id from tenant_a.accounts');
    expect(account!.id).toBe(server.starterAccountId);

    server.child.kill('SIGTERM');
    const run = await bounded('exit after SIGTERM', server.exited, 10_000);
    expect(run.code, run.stderr).toBe(0);
  });

  it('SIGTERM with tool calls in flight (clients that close their connections): every call answered in full, then exit 0 and the pool closed', async () => {
    const [place] = (await freshPlace('tenant_b')) as [Place];
    const applicationName = `openrush-cli-test-${randomBytes(4).toString('hex')}`;
    const server = await serveCli({ DATABASE_URL: `${place.DATABASE_URL}&application_name=${applicationName}` });
    const agent = new http.Agent({ keepAlive: false });
    try {
      const { answers, exitedAfterMs } = await sigtermWithCallsInFlight(server, place, agent, 5);
      expect(answers).toHaveLength(5);
      // Nothing (a timer, a pool connection) keeps the process alive once the last request is answered.
      expect(exitedAfterMs).toBeLessThan(3_000);
      await expectNoConnectionsLeft(place, applicationName);
    } finally {
      agent.destroy();
    }
  });

  it('SIGTERM with tool calls in flight on keep-alive connections (load balancers, fetch): answered in full, then exit 0 within 3 s', async () => {
    const [place] = (await freshPlace('tenant_c')) as [Place];
    const server = await serveCli({ DATABASE_URL: place.DATABASE_URL });
    const agent = new http.Agent({ keepAlive: true });
    try {
      const { answers, exitedAfterMs } = await sigtermWithCallsInFlight(server, place, agent, 5);
      // A connection left open after its last answer keeps the server, and so the process, alive (and invites the
      // client to send more requests to a server that is shutting down).
      expect(exitedAfterMs, `answered with Connection: ${answers.map((answer) => answer.connection).join(', ')}`).toBeLessThan(3_000);
    } finally {
      agent.destroy();
    }
  });

  it('migrate twice at once on a fresh schema: both exit 0, and every table exists once', async () => {
    const [place] = (await freshPlace('tenant_d')) as [Place];
    const runs = await Promise.all([runCli(['migrate'], { DATABASE_URL: place.DATABASE_URL }), runCli(['migrate'], { DATABASE_URL: place.DATABASE_URL })]);
    for (const run of runs) expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });

    expect(await tablesIn(place)).toEqual(exactlyOnceIn('tenant_d'));
    const migrations = await sql<{ name: string }>(place.databaseUrl, 'select name from tenant_d.schema_migrations order by name');
    expect(migrations.map((row) => row.name)).toEqual(MIGRATIONS);
    // Usage partitions for the months around now, made once.
    const [partitions] = await sql<{ n: number }>(
      place.databaseUrl,
      "select count(*)::int as n from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_namespace s on s.oid = c.relnamespace where s.nspname = 'tenant_d' and c.relname like 'usage_records_%'",
    );
    expect(partitions!.n).toBeGreaterThanOrEqual(5);
  });

  it('migrate on a fresh schema of a database where another schema is already migrated (one database, two tenants)', async () => {
    const [first, second] = (await freshPlace('tenant_e', 'tenant_f')) as [Place, Place];
    const migrated = await runCli(['migrate'], { DATABASE_URL: first.DATABASE_URL });
    expect(migrated.code, migrated.stderr).toBe(0);

    const run = await runCli(['migrate'], { DATABASE_URL: second.DATABASE_URL });
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await tablesIn(second)).toEqual({ ...exactlyOnceIn('tenant_e'), ...exactlyOnceIn('tenant_f') });
  });
});
