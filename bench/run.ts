// `npm run bench`: requests per second and latency of the fully authenticated, validated and metered path, next to
// bare Express and the Prism mock, on an empty database and on one with many keys and usage records.
//
// Every server runs in a child process of its own; autocannon (the load generator) runs in this process, so on a
// 2-core machine each has a core. Only 127.0.0.1 is loaded. Each measurement is a warm-up run (thrown away), then a
// run of BENCH_DURATION seconds with BENCH_CONNECTIONS connections. The first warm-up of a fresh server process is
// longer (BENCH_FIRST_WARMUP): a cold process spends far more CPU per request for its first few thousand requests
// while V8 optimises, which would otherwise fall on whichever call is measured first.
// Between the HTTP runs, bench/store-path.ts times the store's part of a request in-process, on the same database:
// the steadiest answer to "does the cost grow with the data?".
//
// Environment (all optional): BENCH_DURATION (s, 6), BENCH_WARMUP (s, 2), BENCH_FIRST_WARMUP (s, 6), BENCH_CONNECTIONS (20), BENCH_KEYS
// (100000), BENCH_USAGE (1000000), BENCH_SEED_SECONDS (30: usage records stop there, however many are written),
// TEST_DATABASE_URL (also runs the real server on a fresh PostgreSQL schema).
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import autocannon from 'autocannon';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { createAccountWithKey, type NewAccount } from '../server/accounts.ts';
import { systemClock } from '../server/clock.ts';
import { createIdGenerator } from '../server/ids.ts';
import { openPostgresStore } from '../server/store/postgres.ts';
import { openSqliteStore } from '../server/store/sqlite.ts';
import type { Store } from '../server/store/types.ts';
import { BUNDLED_CONTRACT, startPrism } from '../test/helpers/prism.ts';
import { BENCH_BALANCE, CREDITS_PATH, INSPECT_BODY, INSPECT_PATH, INSPECT_RESULT } from './fixtures.ts';
import { hotPathPlans, seedSqlite } from './seed.ts';
import { STORE_PATH_CALLS, STORE_PATH_ROUNDS, type StorePathTiming, timeStorePath } from './store-path.ts';
import type { ServerMessage } from './server.ts';

function setting(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${text}"`);
  return value;
}

const DURATION = setting('BENCH_DURATION', 6);
const WARMUP = setting('BENCH_WARMUP', 2);
const FIRST_WARMUP = setting('BENCH_FIRST_WARMUP', 6);
const CONNECTIONS = setting('BENCH_CONNECTIONS', 20);
const SEED_KEYS = setting('BENCH_KEYS', 100_000);
const SEED_USAGE = setting('BENCH_USAGE', 1_000_000);
const SEED_SECONDS = setting('BENCH_SEED_SECONDS', 30);
const PG_URL = process.env.TEST_DATABASE_URL;
const root = resolve(import.meta.dirname, '..');

interface Call {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
}
const INSPECT: Call = { name: 'POST inspect_domain', method: 'POST', path: INSPECT_PATH, body: INSPECT_BODY };
const CREDITS: Call = { name: 'GET credits', method: 'GET', path: CREDITS_PATH };

interface Measurement {
  scenario: string;
  call: string;
  rps: number;
  p50: number;
  p99: number;
  /** Answers that were not 2xx, and connection errors/timeouts: any of these makes the row meaningless. */
  bad: number;
  /** Answered requests, warm-up included: what the server must have metered. */
  answered: number;
  /** CPU time (user + system) the server process spent per answered request in the measured run, in µs. */
  cpuPerRequest: number | undefined;
}

const results: Measurement[] = [];
const notes: string[] = [];
const storeTimings: Array<{ label: string } & StorePathTiming> = [];

/** The store's part of a request, in-process, with no server running on the database. */
async function timeStore(label: string, store: Store, account: NewAccount, calls = STORE_PATH_CALLS): Promise<void> {
  try {
    const timing = await timeStorePath(store, account, calls);
    storeTimings.push({ label, ...timing });
    log(`  store path, in-process, ${label.padEnd(18)} metered ${fmt(timing.meteredMicros)} µs/call, plain ${fmt(timing.plainMicros)} µs/call`);
  } finally {
    await store.close();
  }
}
const log = (line: string) => process.stdout.write(`${line}\n`);

function headersFor(call: Call, key: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (call.body) headers['content-type'] = 'application/json';
  return headers;
}

async function hammer(url: string, call: Call, key: string | undefined, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: url + call.path,
    method: call.method,
    headers: headersFor(call, key),
    body: call.body,
    connections: CONNECTIONS,
    duration: seconds,
  });
}

interface Target {
  url: string;
  /** CPU microseconds (user + system) the server process has used so far, when it can tell. */
  cpu?: () => Promise<number>;
}

const warmed = new WeakSet<Target>();

async function measure(scenario: string, target: Target, call: Call, key: string | undefined): Promise<Measurement> {
  const { url } = target;
  const warmUp = warmed.has(target) ? WARMUP : Math.max(WARMUP, FIRST_WARMUP);
  warmed.add(target);
  const warm = warmUp > 0 ? await hammer(url, call, key, warmUp) : undefined;
  const cpuBefore = await target.cpu?.();
  const run = await hammer(url, call, key, DURATION);
  const cpuAfter = await target.cpu?.();
  const answered = (r: autocannon.Result | undefined) => (r ? r['2xx'] + r.non2xx : 0);
  const measurement: Measurement = {
    scenario,
    call: call.name,
    rps: run.requests.average,
    p50: run.latency.p50,
    p99: run.latency.p99,
    bad: run.non2xx + run.errors + run.timeouts,
    answered: answered(warm) + answered(run),
    cpuPerRequest: cpuBefore !== undefined && cpuAfter !== undefined && answered(run) > 0 ? (cpuAfter - cpuBefore) / answered(run) : undefined,
  };
  results.push(measurement);
  log(
    `  ${scenario.padEnd(34)} ${call.name.padEnd(20)} ${fmt(measurement.rps).padStart(7)} req/s  ` +
      `p50 ${measurement.p50} ms  p99 ${measurement.p99} ms  server CPU ${cpuText(measurement)}/req${measurement.bad ? `  (${measurement.bad} NOT 2xx/errors!)` : ''}`,
  );
  return measurement;
}

/** One answer, checked, before any load: a benchmark of error responses would be worthless. */
async function check(url: string, call: Call, key: string | undefined, expected?: unknown): Promise<unknown> {
  const response = await fetch(url + call.path, { method: call.method, headers: headersFor(call, key), body: call.body });
  const body: unknown = await response.json();
  if (response.status !== 200) throw new Error(`${call.name} on ${url} answered ${response.status}: ${JSON.stringify(body)}`);
  if (expected !== undefined && !isDeepStrictEqual(body, expected)) {
    throw new Error(`${call.name} on ${url} answered ${JSON.stringify(body)}, expected ${JSON.stringify(expected)}`);
  }
  return body;
}

interface Child extends Target {
  stop(): Promise<void>;
}

async function startServer(args: string[], env: Record<string, string> = {}): Promise<Child> {
  const child: ChildProcess = fork(join(root, 'bench/server.ts'), args, {
    cwd: root,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let cpuWaiting: ((micros: number) => void) | undefined;
  const port = await new Promise<number>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`bench server ${args.join(' ')} did not start within 60 s`)), 60_000);
    child.on('message', (message: ServerMessage) => {
      if ('ready' in message) {
        clearTimeout(timer);
        ready(message.port);
      }
      if ('cpu' in message) cpuWaiting?.(message.cpu.user + message.cpu.system);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`bench server ${args.join(' ')} exited with ${code}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    cpu: () =>
      new Promise<number>((answer) => {
        cpuWaiting = answer;
        child.send({ cpu: true });
      }),
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.once('exit', () => {
          clearTimeout(kill);
          done();
        });
        child.send({ stop: true });
      }),
  };
}

async function benchAccount(store: Store): Promise<NewAccount> {
  await store.migrate();
  const account = await createAccountWithKey(
    { store, ids: createIdGenerator(systemClock), clock: systemClock },
    { name: 'Bench account', credits: BENCH_BALANCE, keyName: 'Bench key' },
  );
  await store.close();
  return account;
}

function sqliteCounts(file: string, accountId: string): { usage: number; keys: number; ledger: number; balance: number } {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const count = (sql: string, ...params: string[]) => Number((db.prepare(sql).get(...params) as { n: number }).n);
    return {
      usage: count('select count(*) as n from usage_records'),
      keys: count('select count(*) as n from credentials'),
      ledger: count('select count(*) as n from credit_ledger'),
      balance: count('select balance as n from accounts where id = ?', accountId),
    };
  } finally {
    db.close();
  }
}

/** Every answered request must have left its usage record, and every tool call its 3 credits. */
function meteringNote(label: string, before: { usage: number; balance: number }, after: { usage: number; balance: number }, measured: Measurement[]) {
  const answered = measured.reduce((sum, m) => sum + m.answered, 0);
  const inspectCalls = measured.filter((m) => m.call === INSPECT.name).reduce((sum, m) => sum + m.answered, 0);
  const written = after.usage - before.usage;
  const charged = before.balance - after.balance;
  notes.push(
    `${label}: ${written} usage records written for ${answered} answered requests (+ the checks and requests in flight ` +
      `when each run stopped); ${charged} credits charged for ${inspectCalls} answered tool calls (3 each = ${inspectCalls * 3}).`,
  );
  if (written < answered || charged < inspectCalls * 3) throw new Error(`${label}: metering does not add up (see above)`);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const cpuText = (m: Measurement) => (m.cpuPerRequest === undefined ? 'n/a' : `${fmt(m.cpuPerRequest)} µs`);
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
const find = (scenario: string, call: Call) => results.find((m) => m.scenario === scenario && m.call === call.name);

async function main(): Promise<void> {
  const started = Date.now();
  log(
    `OpenRush bench: node ${process.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'}), ` +
      `${CONNECTIONS} connections, ${WARMUP} s warm-up (${Math.max(WARMUP, FIRST_WARMUP)} s for a fresh process) + ${DURATION} s ` +
      `per measurement, 127.0.0.1 only.\n`,
  );
  const [load] = loadavg();
  if (load !== undefined && load > 0.7) {
    log(`WARNING: the 1-minute load average is ${load.toFixed(2)} before starting: something else is using the CPUs, so these numbers will be low and noisy.\n`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'openrush-bench-'));
  try {
    // 1. Bare Express 5: the floor.
    const bare = await startServer(['bare']);
    await check(bare.url, INSPECT, undefined, INSPECT_RESULT);
    await measure('bare Express 5', bare, INSPECT, undefined);
    await measure('bare Express 5', bare, CREDITS, undefined);
    await bare.stop();

    // 2. The real server, SQLite file (WAL), production-like config, fresh database.
    const file = join(dir, 'openrush.db');
    const account = await benchAccount(openSqliteStore(file));
    let server = await startServer(['real', 'sqlite', file]);
    await check(server.url, INSPECT, account.key, INSPECT_RESULT);
    await check(server.url, CREDITS, account.key);
    let before = sqliteCounts(file, account.accountId);
    const empty = [
      await measure('real, SQLite, empty', server, INSPECT, account.key),
      await measure('real, SQLite, empty', server, CREDITS, account.key),
    ];
    await server.stop();
    let after = sqliteCounts(file, account.accountId);
    meteringNote('SQLite, empty', before, after, empty);
    await timeStore('SQLite, empty', openSqliteStore(file), account);
    notes.push(`SQLite, empty: the database held ${before.keys} key and ${before.usage} usage records at the start, ${after.usage} at the end.`);

    // 3. The same, after seeding many keys and usage records into the same file.
    log(`\n  seeding ${SEED_KEYS} keys and up to ${SEED_USAGE} usage records (at most ~${SEED_SECONDS} s)…`);
    const seeded = seedSqlite(file, {
      benchAccountId: account.accountId,
      benchCredentialId: account.credentialId,
      keys: SEED_KEYS,
      usageRecords: SEED_USAGE,
      usageSeconds: SEED_SECONDS,
    });
    log(
      `  seeded ${seeded.accounts} accounts, ${seeded.keys} keys, ${seeded.usageRecords} usage records, ` +
        `${seeded.ledgerEntries} ledger entries in ${seeded.seconds.toFixed(1)} s; file ${(statSync(file).size / 2 ** 20).toFixed(0)} MiB\n`,
    );
    before = sqliteCounts(file, account.accountId);
    notes.push(
      `SQLite, seeded: ${before.keys} keys (${Math.round(SEED_KEYS * 0.1)} of them the bench account's), ${before.usage} usage records ` +
        `(about half the bench account's), ${before.ledger} ledger entries, ${seeded.accounts + 1} accounts.`,
    );
    for (const { query, plan } of hotPathPlans(file)) notes.push(`plan: ${query}\n        → ${plan}`);
    await timeStore('SQLite, seeded', openSqliteStore(file), account);
    before = sqliteCounts(file, account.accountId);
    server = await startServer(['real', 'sqlite', file]);
    await check(server.url, INSPECT, account.key, INSPECT_RESULT);
    const full = [
      await measure('real, SQLite, seeded', server, INSPECT, account.key),
      await measure('real, SQLite, seeded', server, CREDITS, account.key),
    ];
    await server.stop();
    after = sqliteCounts(file, account.accountId);
    meteringNote('SQLite, seeded', before, after, full);

    // 4. The Prism mock of the contract, same request.
    const prism = await startPrism(['mock', BUNDLED_CONTRACT]);
    try {
      await check(prism.url, INSPECT, account.key);
      await measure('Prism mock', prism, INSPECT, account.key);
    } finally {
      await prism.stop();
    }

    // 5. The real server on PostgreSQL, a fresh schema, when there is one to use.
    if (PG_URL) {
      const schema = `bench_${randomBytes(6).toString('hex')}`;
      try {
        const pgAccount = await benchAccount(openPostgresStore(PG_URL, { schema }));
        const balance = async () => {
          const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
          await client.connect();
          try {
            const usage = await client.query<{ n: string }>('select count(*) as n from usage_records');
            const account = await client.query<{ n: string }>('select balance as n from accounts where id = $1', [pgAccount.accountId]);
            return { usage: Number(usage.rows[0]!.n), balance: Number(account.rows[0]!.n) };
          } finally {
            await client.end();
          }
        };
        const pgServer = await startServer(['real', 'postgres', schema], { BENCH_PG_URL: PG_URL });
        await check(pgServer.url, INSPECT, pgAccount.key, INSPECT_RESULT);
        const pgBefore = await balance();
        const onPg = [
          await measure('real, PostgreSQL, empty', pgServer, INSPECT, pgAccount.key),
          await measure('real, PostgreSQL, empty', pgServer, CREDITS, pgAccount.key),
        ];
        await pgServer.stop();
        meteringNote('PostgreSQL, empty', pgBefore, await balance(), onPg);
        await timeStore('PostgreSQL, empty', openPostgresStore(PG_URL, { schema }), pgAccount, STORE_PATH_CALLS / 2);
        notes.push('PostgreSQL: the database server runs on the same 2 cores as the API server and the load generator.');
      } finally {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        await client.query(`drop schema if exists ${schema} cascade`);
        await client.end();
      }
    } else {
      notes.push('PostgreSQL: NOT RUN (TEST_DATABASE_URL is not set; e.g. `.ci/postgres.sh start /tmp/openrush-pg 5433`).');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  log('\n| scenario | request | req/s | p50 ms | p99 ms | server CPU per request |');
  log('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const m of results) {
    log(`| ${m.scenario} | ${m.call} | ${fmt(m.rps)} | ${m.p50} | ${m.p99} | ${cpuText(m)} |${m.bad ? ` ${m.bad} not 2xx!` : ''}`);
  }

  const rps = (scenario: string, call: Call) => find(scenario, call)?.rps ?? 0;
  log('\nRatios (req/s):');
  for (const call of [INSPECT, CREDITS]) {
    log(`  ${call.name}: bare Express / real (SQLite, empty) = ${ratio(rps('bare Express 5', call), rps('real, SQLite, empty', call))}`);
  }
  log(`  POST inspect_domain: real (SQLite, empty) / Prism mock = ${ratio(rps('real, SQLite, empty', INSPECT), rps('Prism mock', INSPECT))}`);
  for (const call of [INSPECT, CREDITS]) {
    log(`  ${call.name}: seeded / empty (SQLite) = ${ratio(rps('real, SQLite, seeded', call), rps('real, SQLite, empty', call))}`);
  }
  if (PG_URL) {
    for (const call of [INSPECT, CREDITS]) {
      log(`  ${call.name}: PostgreSQL / SQLite (empty) = ${ratio(rps('real, PostgreSQL, empty', call), rps('real, SQLite, empty', call))}`);
    }
  }
  if (storeTimings.length > 0) {
    log(
      `\nThe store's part of a request, in-process (median of ${STORE_PATH_ROUNDS} rounds of ${fmt(STORE_PATH_CALLS)} calls, half that on PostgreSQL; ` +
        'metered: key by hash + balance + charge, ledger entry and usage record in one transaction; plain: key + balance + usage record):',
    );
    log('| database | metered µs/call | plain µs/call |');
    log('| --- | ---: | ---: |');
    for (const t of storeTimings) log(`| ${t.label} | ${fmt(t.meteredMicros)} | ${fmt(t.plainMicros)} |`);
    const emptyStore = storeTimings.find((t) => t.label === 'SQLite, empty');
    const seededStore = storeTimings.find((t) => t.label === 'SQLite, seeded');
    if (emptyStore && seededStore) {
      log(
        `  seeded / empty (µs per call, higher = costlier): metered ${ratio(seededStore.meteredMicros, emptyStore.meteredMicros)}, ` +
          `plain ${ratio(seededStore.plainMicros, emptyStore.plainMicros)}`,
      );
    }
  }
  log('\nNotes:');
  for (const note of notes) log(`  ${note}`);
  const bad = results.filter((m) => m.bad > 0);
  log(`\nDone in ${((Date.now() - started) / 1000).toFixed(0)} s.`);
  if (bad.length > 0) {
    log(`Some runs had non-2xx answers or errors: ${bad.map((m) => `${m.scenario} ${m.call}`).join(', ')}.`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
