// `npm run bench [-- --json] [-- --quick]`: the cost of the fully authenticated, validated and metered path, side
// by side in one run with bare Express, the validator alone, and the Prism mock; on an empty database and on one
// with many keys and usage records.
//
// Every server runs in a child process of its own; autocannon (the load generator) runs in this process, so on a
// 2-core machine each has a core. Only 127.0.0.1 is loaded. Each measurement is a warm-up run (thrown away), then
// measured runs (3 by default, 1 with --quick), each figure the median of the runs; the first warm-up of a fresh
// server process is longer (a cold process spends far more CPU per request while V8 optimises). "CPU µs/request" is
// the server process's user + system CPU time over a measured run divided by the requests it answered in it: the
// steadiest number on a shared machine, where req/s and latencies move with whatever else runs. The seeded file is
// compared with an empty one served beside it, their runs interleaved, so both see the same minutes of the host.
//
// After each real-server run the bench checks, and fails loudly otherwise, that the usage records written equal the
// responses the server sent (one for one), that the credits charged are 3 per answered inspect_domain call, and
// that the account's ledger sums to its balance.
//
// --json prints one JSON object on stdout (the human-readable lines go to stderr): `ratios.credits_over_bare`,
// `ratios.inspect_over_bare`, `ratios.credits_over_prism`, …, and per target `cpu_us_per_req`, `rps`, `p50_ms`,
// `p99_ms`, `non2xx`. --quick: short runs and a small seed, for iterating; not for numbers anyone quotes.
// --only=GROUPS: a subset of the targets (see ONLY below).
//
// Environment (all optional): BENCH_DURATION (s per run), BENCH_RUNS, BENCH_WARMUP (s), BENCH_FIRST_WARMUP (s), BENCH_CONNECTIONS (32),
// BENCH_KEYS (100000), BENCH_USAGE (1000000), BENCH_SEED_SECONDS (120: usage records stop there, however many are
// written), BENCH_CPU_PROF (a folder: the real servers write `node --cpu-prof` profiles there), TEST_DATABASE_URL
// (also runs the real server on a fresh PostgreSQL schema).
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
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
import { activityPlans, hotPathPlans, seedSqlite } from './seed.ts';
import type { ServerMessage } from './server.ts';
import { packPackages } from '../scripts/check-packages.ts';
import { benchDashboard, CHROMIUM, type DashboardBench, ensureDashboardBuilt, signInLink } from './dashboard.ts';

const ARGS = new Set(process.argv.slice(2));
const JSON_OUTPUT = ARGS.has('--json');
const QUICK = ARGS.has('--quick');
// --only=bare,sqlite (any of bare, validator, sqlite, installed, seeded, prism, postgres, activity, dashboard): run only those groups, for
// comparisons where the rest would only add time (e.g. before/after runs interleaved on a busy machine).
const ONLY = [...ARGS].find((arg) => arg.startsWith('--only='))?.slice('--only='.length).split(',');
const runs = (group: string) => !ONLY || ONLY.includes(group);

function setting(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${text}"`);
  return value;
}

const DURATION = setting('BENCH_DURATION', QUICK ? 3 : 6);
// Each target is measured RUNS times back to back and every figure is the median of the runs (as the issue measured:
// "medians of 3–15 runs"): on a shared 2-core VM one run can land in a slow phase of the host.
const RUNS = setting('BENCH_RUNS', QUICK ? 1 : 3);
const WARMUP = setting('BENCH_WARMUP', QUICK ? 1 : 3);
const FIRST_WARMUP = setting('BENCH_FIRST_WARMUP', QUICK ? 3 : 8);
const CONNECTIONS = setting('BENCH_CONNECTIONS', 32);
const SEED_KEYS = setting('BENCH_KEYS', QUICK ? 10_000 : 100_000);
const SEED_USAGE = setting('BENCH_USAGE', QUICK ? 100_000 : 1_000_000);
const SEED_SECONDS = setting('BENCH_SEED_SECONDS', 120);
const CPU_PROF = process.env.BENCH_CPU_PROF;
const PG_URL = process.env.TEST_DATABASE_URL;
const root = resolve(import.meta.dirname, '..');

/** The issue's bars, read from the results (SQLite, empty database, unless said). */
const TARGETS = {
  credits_over_bare: 0.5,
  inspect_over_bare: 0.4,
  over_prism: 3,
  p99_ms: 15,
  seeded_cpu_over_empty: 1.1,
  deep_page_over_first_page: 2,
  installed_cpu_over_repository: 1.1,
  // Issue 16: the Dashboard's first page interactive within 1 s (median of cold loads), its first load ≤ 150 KB of
  // gzipped JavaScript.
  dashboard_interactive_ms: 1000,
  dashboard_first_load_js_gzip_bytes: 150 * 1024,
  /** Issue 16: Activity's first page and the 30-day aggregates, median latency on the seeded database. */
  activity_p50_ms: 50,
  /** Issue 16: the server's resident memory growth while it streams a CSV export of 100,000 records. */
  export_rss_growth_mib: 50,
};

interface Call {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
}
const INSPECT: Call = { name: 'POST inspect_domain', method: 'POST', path: INSPECT_PATH, body: INSPECT_BODY };
const CREDITS: Call = { name: 'GET credits', method: 'GET', path: CREDITS_PATH };
const usagePage = (startingAfter?: string): Call => ({
  name: startingAfter ? 'GET usage, deep page' : 'GET usage, first page',
  method: 'GET',
  path: `/v1/me/usage?limit=500${startingAfter ? `&starting_after=${startingAfter}` : ''}`,
});

interface Measurement {
  cpu_us_per_req: number | null;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** Answers that were not 2xx, plus connection errors and timeouts: any of these makes the row meaningless. */
  non2xx: number;
  /** Requests answered in the measured runs. */
  requests: number;
  /** req/s of each run, to show the spread behind the median. */
  runs_rps: number[];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const targets: Record<string, Measurement> = {};
/** Issue 16's Activity numbers: latencies of single requests (ms), and the CSV export's stream. */
const activity: { latency_ms: Record<string, { p50: number; p90: number; requests: number; target: boolean }>; export?: Record<string, number> } = {
  latency_ms: {},
};
const checks: string[] = [];
const failures: string[] = [];
let dashboard: DashboardBench | undefined;
const log = (line: string) => (JSON_OUTPUT ? process.stderr : process.stdout).write(`${line}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

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
  /** The server's process id, when it is a child of this one (its resident memory is read from /proc). */
  pid?: number;
  /** CPU microseconds (user + system) the server process has used so far. */
  cpu(): Promise<number>;
  stop(): Promise<Extract<ServerMessage, { stopped: true }> | undefined>;
}

const warmed = new WeakSet<Target>();

interface Run {
  cpu: number | null;
  rps: number;
  p50: number;
  p99: number;
  failed: number;
  requests: number;
}

async function warm(target: Target, call: Call, key: string | undefined): Promise<void> {
  const warmUp = warmed.has(target) ? WARMUP : Math.max(WARMUP, FIRST_WARMUP);
  warmed.add(target);
  if (warmUp > 0) await hammer(target.url, call, key, warmUp);
}

async function runOnce(target: Target, call: Call, key: string | undefined): Promise<Run> {
  const cpuBefore = await target.cpu();
  const run = await hammer(target.url, call, key, DURATION);
  const cpuAfter = await target.cpu();
  const requests = run['2xx'] + run.non2xx;
  return {
    cpu: requests > 0 ? (cpuAfter - cpuBefore) / requests : null,
    rps: run.requests.average,
    p50: run.latency.p50,
    p99: run.latency.p99,
    failed: run.non2xx + run.errors + run.timeouts,
    requests,
  };
}

function summarize(name: string, call: Call, runs: Run[]): Measurement {
  const cpus = runs.flatMap((run) => (run.cpu === null ? [] : [run.cpu]));
  const measurement: Measurement = {
    cpu_us_per_req: cpus.length ? Math.round(median(cpus)) : null,
    rps: Math.round(median(runs.map((run) => run.rps))),
    p50_ms: median(runs.map((run) => run.p50)),
    p99_ms: median(runs.map((run) => run.p99)),
    non2xx: runs.reduce((sum, run) => sum + run.failed, 0),
    requests: runs.reduce((sum, run) => sum + run.requests, 0),
    runs_rps: runs.map((run) => Math.round(run.rps)),
  };
  targets[name] = measurement;
  log(
    `  ${name.padEnd(24)} ${call.name.padEnd(22)} ${fmt(measurement.rps).padStart(7)} req/s  p50 ${measurement.p50_ms} ms  ` +
      `p99 ${measurement.p99_ms} ms  server CPU ${measurement.cpu_us_per_req ?? 'n/a'} µs/req` +
      `${RUNS > 1 ? `  (median of ${RUNS} runs: ${measurement.runs_rps.map(fmt).join(' / ')} req/s)` : ''}` +
      `${measurement.non2xx ? `  (${measurement.non2xx} NOT 2xx/errors!)` : ''}`,
  );
  return measurement;
}

async function measure(name: string, target: Target, call: Call, key: string | undefined): Promise<Measurement> {
  await warm(target, call, key);
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await runOnce(target, call, key));
  return summarize(name, call, runs);
}

/**
 * Several servers measured on the same call with their runs interleaved (A, B, A, B, …), so that a slow phase of
 * the host weighs on each of them alike: for comparisons that must show the code, not the minute it ran in.
 */
async function measureSideBySide(call: Call, sides: Array<{ name: string; target: Target; key: string | undefined }>): Promise<void> {
  for (const side of sides) await warm(side.target, call, side.key);
  const runs = sides.map((): Run[] => []);
  for (let i = 0; i < RUNS; i++) {
    for (const [index, side] of sides.entries()) runs[index]!.push(await runOnce(side.target, call, side.key));
  }
  sides.forEach((side, index) => summarize(side.name, call, runs[index]!));
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

/** Packs the server package and installs it alone in a new project under `dir` (as packages.test.ts does); its path. */
function installPackedServer(dir: string): string {
  const project = join(dir, 'installed');
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'bench-consumer', private: true, type: 'module' }));
  const { server } = packPackages(dir);
  const version = (JSON.parse(readFileSync(join(root, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string }).version;
  execFileSync('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', server, `better-sqlite3@${version}`], { cwd: project, stdio: 'ignore' });
  // The native module this repository's install built (no install scripts ran above).
  cpSync(join(root, 'node_modules/better-sqlite3/build'), join(project, 'node_modules/better-sqlite3/build'), { recursive: true });
  return project;
}

async function startServer(args: string[], env: Record<string, string> = {}): Promise<Target> {
  const profile = CPU_PROF && args[0] === 'real' ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [];
  const child: ChildProcess = fork(join(root, 'bench/server.ts'), args, {
    cwd: root,
    execArgv: ['--import', 'tsx', ...profile],
    env: { ...process.env, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let cpuWaiting: ((micros: number) => void) | undefined;
  let stopped: ((message: Extract<ServerMessage, { stopped: true }>) => void) | undefined;
  const port = await new Promise<number>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`bench server ${args.join(' ')} did not start within 60 s`)), 60_000);
    child.on('message', (message: ServerMessage) => {
      if ('ready' in message) {
        clearTimeout(timer);
        ready(message.port);
      }
      if ('cpu' in message) cpuWaiting?.(message.cpu.user + message.cpu.system);
      if ('stopped' in message) stopped?.(message);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`bench server ${args.join(' ')} exited with ${code}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    cpu: () =>
      new Promise<number>((answer) => {
        cpuWaiting = answer;
        child.send({ cpu: true });
      }),
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done(undefined);
        let report: Extract<ServerMessage, { stopped: true }> | undefined;
        stopped = (message) => (report = message);
        const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.once('exit', () => {
          clearTimeout(kill);
          done(report);
        });
        child.send({ stop: true });
      }),
  };
}

/** Prism, with its CPU time read from /proc (Linux): it is not ours to ask over IPC. */
async function startPrismTarget(): Promise<Target> {
  const prism = await startPrism(['mock', BUNDLED_CONTRACT]);
  const ticks = 100; // USER_HZ, 100 on every Linux this runs on
  return {
    url: prism.url,
    cpu: async () => {
      const fields = readFileSync(`/proc/${prism.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / ticks;
    },
    stop: async () => {
      await prism.stop();
      return undefined;
    },
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

interface Books {
  usage: number;
  balance: number;
  ledger: number;
}

function sqliteBooks(file: string, accountId: string): Books {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const one = (sql: string, ...params: string[]) => Number((db.prepare(sql).get(...params) as { n: number | null }).n ?? 0);
    return {
      usage: one('select count(*) as n from usage_records'),
      balance: one('select balance as n from accounts where id = ?', accountId),
      ledger: one('select sum(amount) as n from credit_ledger where account_id = ?', accountId),
    };
  } finally {
    db.close();
  }
}

async function postgresBooks(url: string, schema: string, accountId: string): Promise<Books> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    const one = async (sql: string, params: string[] = []) => Number((await client.query<{ n: string | null }>(sql, params)).rows[0]?.n ?? 0);
    return {
      usage: await one('select count(*) as n from usage_records'),
      balance: await one('select balance as n from accounts where id = $1', [accountId]),
      ledger: await one('select sum(amount) as n from credit_ledger where account_id = $1', [accountId]),
    };
  } finally {
    await client.end();
  }
}

/**
 * The books after a server has stopped: one usage record per response it sent, 3 credits per inspect_domain call
 * it answered 200, and a ledger that sums to the balance. Failures are collected and fail the run.
 */
function checkBooks(label: string, before: Books, after: Books, report: Extract<ServerMessage, { stopped: true }> | undefined): void {
  if (!report) {
    failures.push(`${label}: the server did not report the responses it sent`);
    return;
  }
  const responses = Object.values(report.responses).reduce((sum, n) => sum + n, 0);
  const paidCalls = report.responses[`POST ${INSPECT_PATH} 200`] ?? 0;
  const written = after.usage - before.usage;
  const charged = before.balance - after.balance;
  const line =
    `${label}: ${fmt(written)} usage records for ${fmt(responses)} responses sent; ${fmt(charged)} credits charged for ` +
    `${fmt(paidCalls)} inspect_domain calls answered 200 (3 each); ledger sum ${fmt(after.ledger)}, balance ${fmt(after.balance)}`;
  checks.push(line);
  log(`  check: ${line}`);
  if (report.groupCommit && report.groupCommit.batches > 0) {
    const { batches, records, writeMs, writerBusyMs } = report.groupCommit;
    const perBatch = (ms: number) => ((ms * 1000) / batches).toFixed(0);
    const batching =
      `${label}: group commit wrote ${fmt(records)} records in ${fmt(batches)} transactions (${(records / batches).toFixed(1)} per batch, ` +
      `${perBatch(writeMs)} µs per batch from handing it over to its outcome back on the event loop` +
      `${writerBusyMs === undefined ? '' : `, ${perBatch(writerBusyMs)} µs of it in the writer thread from BEGIN to COMMIT`})`;
    checks.push(batching);
    log(`  ${batching}`);
  }
  if (written !== responses) failures.push(`${label}: ${written} usage records written for ${responses} responses sent`);
  if (charged !== paidCalls * 3) failures.push(`${label}: ${charged} credits charged for ${paidCalls} paid calls`);
  if (after.ledger !== after.balance) failures.push(`${label}: the ledger sums to ${after.ledger}, the balance is ${after.balance}`);
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);

/** Resident memory of a process, in MiB (Linux /proc). */
function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) / 1024;
}

async function benchActivity(dir: string): Promise<void> {
  const file = join(dir, 'activity.db');
  const account = await benchAccount(openSqliteStore(file));
  log(`\n  Activity: seeding ${fmt(SEED_KEYS)} keys and up to ${fmt(SEED_USAGE)} usage records (at most ~${SEED_SECONDS} s)…`);
  const seeded = seedSqlite(file, {
    benchAccountId: account.accountId,
    benchCredentialId: account.credentialId,
    keys: SEED_KEYS,
    usageRecords: SEED_USAGE,
    usageSeconds: SEED_SECONDS,
  });
  if (seeded.usageRecords < SEED_USAGE) failures.push(`seeding stopped at ${seeded.usageRecords} of ${SEED_USAGE} usage records (BENCH_SEED_SECONDS)`);
  const facts = (() => {
    const db = new BetterSqlite3(file, { readonly: true });
    try {
      const count = (sql: string) => (db.prepare(sql).get(account.accountId) as { n: number }).n;
      const newest = (db.prepare('select max(created_at) as at from usage_records where account_id = ?').get(account.accountId) as { at: string }).at;
      const exportFrom = (
        db.prepare('select created_at as at from usage_records where account_id = ? order by created_at desc, id desc limit 1 offset 99999').get(account.accountId) as
          | { at: string }
          | undefined
      )?.at;
      return {
        records: count('select count(*) as n from usage_records where account_id = ?'),
        keys: count('select count(*) as n from credentials where account_id = ?'),
        rollups: count('select count(*) as n from usage_rollups where account_id = ?'),
        newest,
        exportFrom,
      };
    } finally {
      db.close();
    }
  })();
  log(
    `  seeded ${fmt(seeded.usageRecords)} usage records in ${seeded.seconds.toFixed(1)} s; the bench account has ${fmt(facts.records)} of them ` +
      `(${fmt(facts.keys)} keys, ${fmt(facts.rollups)} rollup rows), newest ${facts.newest}`,
  );
  for (const { query, plan } of activityPlans(file)) log(`  plan: ${query}\n        → ${plan}`);
  if (!facts.exportFrom) throw new Error('the bench account has fewer than 100,000 usage records: raise BENCH_USAGE');

  const server = await startServer(['real', 'sqlite', file]);
  const headers = { authorization: `Bearer ${account.key}` };
  try {
    const week = encodeURIComponent(new Date(Date.parse(facts.newest) - 7 * 86_400_000).toISOString());
    // The issue's bar (≤ 50 ms at the median) is for Activity's chart (30 days by day, by channel) and its first
    // page, filtered or not; the cases marked false are shown for what they cost, not held to it.
    const cases: Array<[string, string, boolean?]> = [
      ['aggregates, 30 days by day, by channel', '/v1/me/usage/aggregates?interval=day&group_by=channel'],
      ['aggregates, 30 days by day', '/v1/me/usage/aggregates?interval=day'],
      ['aggregates, 30 days by day, by key', '/v1/me/usage/aggregates?interval=day&group_by=api_key', false],
      ['aggregates, 7 days by hour, by tool', `/v1/me/usage/aggregates?interval=hour&group_by=tool&from=${week}`, false],
      ['first page (limit=50)', '/v1/me/usage?limit=50'],
      ['first page, channel=mcp', '/v1/me/usage?limit=50&channel=mcp'],
      ['first page, tool=inspect_domain', '/v1/me/usage?limit=50&tool=inspect_domain'],
      ['first page, status_class=4xx', '/v1/me/usage?limit=50&status_class=4xx'],
      ['first page, one key', `/v1/me/usage?limit=50&credential_id=${account.credentialId}`],
      ['first page, last 7 days', `/v1/me/usage?limit=50&from=${week}`],
      ['first page, mcp and 4xx', '/v1/me/usage?limit=50&channel=mcp&status_class=4xx'],
    ];
    const SAMPLES = QUICK ? 30 : 200;
    for (const [name, path, target = true] of cases) {
      const first = await fetch(server.url + path, { headers });
      const body = (await first.json()) as unknown;
      if (first.status !== 200) throw new Error(`${name} answered ${first.status}: ${JSON.stringify(body)}`);
      const answered = Array.isArray(body) ? body.length : (body as { buckets: unknown[] }).buckets.length;
      if (answered === 0) throw new Error(`${name} answered nothing: a bench of an empty answer is worthless`);
      const times: number[] = [];
      for (let i = 0; i < 20 + SAMPLES; i++) {
        const started = performance.now();
        const response = await fetch(server.url + path, { headers });
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`${name} answered ${response.status}`);
        if (i >= 20) times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      const at = (q: number) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]! * 10) / 10;
      activity.latency_ms[name] = { p50: at(0.5), p90: at(0.9), requests: times.length, target };
      log(`  ${name.padEnd(42)} p50 ${at(0.5)} ms  p90 ${at(0.9)} ms  (${answered} ${Array.isArray(body) ? 'records' : 'buckets'})`);
    }

    // The export: exactly the 100,000 newest seeded records, read as fast as this process reads.
    const query = `from=${encodeURIComponent(facts.exportFrom)}&to=${encodeURIComponent(new Date(Date.parse(facts.newest) + 1).toISOString())}`;
    const pid = server.pid!;
    const rssBefore = rssMiB(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssMiB(pid));
    }, 10);
    const started = performance.now();
    const response = await fetch(`${server.url}/v1/me/usage/export?${query}`, { headers });
    if (response.status !== 200) throw new Error(`the export answered ${response.status}: ${await response.text()}`);
    let bytes = 0;
    let lines = 0;
    for await (const chunk of response.body!) {
      bytes += chunk.byteLength;
      for (const byte of chunk) if (byte === 10) lines++;
    }
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, rssMiB(pid));
    if (lines !== 100_001) failures.push(`the export sent ${lines} lines, not 100,001 (a header and 100,000 records)`);
    activity.export = {
      records: lines - 1,
      mib: Math.round((bytes / 2 ** 20) * 10) / 10,
      seconds: Math.round(seconds * 100) / 100,
      records_per_s: Math.round((lines - 1) / seconds),
      rss_before_mib: Math.round(rssBefore),
      rss_peak_mib: Math.round(rssPeak),
      rss_growth_mib: Math.round((rssPeak - rssBefore) * 10) / 10,
    };
    log(`  CSV export: ${JSON.stringify(activity.export)}`);
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const [load] = loadavg();
  const machine = {
    node: process.version,
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? '?',
    memory_gib: Math.round(totalmem() / 2 ** 30),
    load_average_at_start: load === undefined ? null : Math.round(load * 100) / 100,
  };
  log(
    `OpenRush bench${QUICK ? ' (--quick: short runs, small seed)' : ''}: node ${machine.node}, ${machine.cpus} CPU(s) (${machine.cpu_model}), ` +
      `${CONNECTIONS} connections, ${WARMUP} s warm-up (${Math.max(WARMUP, FIRST_WARMUP)} s for a fresh process) + ${RUNS} × ${DURATION} s per ` +
      `measurement, 127.0.0.1 only.`,
  );
  if (load !== undefined && load > 0.7) {
    log(`WARNING: the 1-minute load average is ${load.toFixed(2)}: something else is using the CPUs; req/s and latencies will be low and noisy.`);
  }
  const durability: Record<string, Record<string, string>> = {};
  const dir = mkdtempSync(join(tmpdir(), 'openrush-bench-'));
  try {
    // 1. Bare Express 5: the floor. 2. The validator alone, on this contract, with the server's options.
    for (const kind of ['bare', 'validator'] as const) {
      if (!runs(kind)) continue;
      const label = kind;
      const server = await startServer([kind]);
      await check(server.url, INSPECT, undefined, INSPECT_RESULT);
      await measure(`${label}_inspect`, server, INSPECT, undefined);
      await measure(`${label}_credits`, server, CREDITS, undefined);
      await server.stop();
    }

    // 3. The real server on a fresh SQLite file (WAL, synchronous=FULL), production-like config.
    const file = join(dir, 'openrush.db');
    const account = await benchAccount(openSqliteStore(file));
    if (runs('sqlite')) {
      const before = sqliteBooks(file, account.accountId);
      const server = await startServer(['real', 'sqlite', file]);
      await check(server.url, INSPECT, account.key, INSPECT_RESULT);
      await check(server.url, CREDITS, account.key);
      await measure('sqlite_inspect', server, INSPECT, account.key);
      await measure('sqlite_credits', server, CREDITS, account.key);
      const report = await server.stop();
      if (report) durability.sqlite = report.durability;
      checkBooks('SQLite, empty', before, sqliteBooks(file, account.accountId), report);
    }

    // 3b. The server as users install it (the packed tarball, installed alone in a new project) beside this
    // repository's, on the same file, runs interleaved: what users install must cost what this repository measures.
    if (runs('installed')) {
      const project = installPackedServer(dir);
      const repository = await startServer(['real', 'sqlite', file]);
      const installed = await startServer(['installed', 'sqlite', file, project]);
      for (const [name, call] of [['credits', CREDITS], ['inspect', INSPECT]] as const) {
        await check(installed.url, call, account.key, call === INSPECT ? INSPECT_RESULT : undefined);
        await measureSideBySide(call, [
          { name: `repository_${name}`, target: repository, key: account.key },
          { name: `installed_${name}`, target: installed, key: account.key },
        ]);
      }
      await repository.stop();
      await installed.stop();
    }

    // 4. The same file after seeding many keys and usage records: the cost must not grow with the data.
    if (runs('seeded')) {
      log(`\n  seeding ${fmt(SEED_KEYS)} keys and up to ${fmt(SEED_USAGE)} usage records (at most ~${SEED_SECONDS} s)…`);
      const seeded = seedSqlite(file, {
        benchAccountId: account.accountId,
        benchCredentialId: account.credentialId,
        keys: SEED_KEYS,
        usageRecords: SEED_USAGE,
        usageSeconds: SEED_SECONDS,
      });
      log(
        `  seeded ${fmt(seeded.accounts)} accounts, ${fmt(seeded.keys)} keys, ${fmt(seeded.usageRecords)} usage records, ` +
          `${fmt(seeded.ledgerEntries)} ledger entries in ${seeded.seconds.toFixed(1)} s; file ${(statSync(file).size / 2 ** 20).toFixed(0)} MiB`,
      );
      if (seeded.usageRecords < SEED_USAGE) failures.push(`seeding stopped at ${seeded.usageRecords} of ${SEED_USAGE} usage records (BENCH_SEED_SECONDS)`);
      for (const { query, plan } of hotPathPlans(file)) log(`  plan: ${query}\n        → ${plan}`);
      // A page deep in the bench account's history: past 90% of its records, newest first.
      const deepId = (() => {
        const db = new BetterSqlite3(file, { readonly: true });
        try {
          const { n } = db.prepare('select count(*) as n from usage_records where account_id = ?').get(account.accountId) as { n: number };
          const row = db
            .prepare('select id from usage_records where account_id = ? order by created_at desc, id desc limit 1 offset ?')
            .get(account.accountId, Math.floor(n * 0.9)) as { id: string } | undefined;
          return row?.id;
        } finally {
          db.close();
        }
      })();
      if (!deepId) throw new Error('the seeded database has no usage records of the bench account');
      // The seeded file is compared with an empty one served at the same time, their runs interleaved.
      const emptyFile = join(dir, 'empty-beside-seeded.db');
      const emptyAccount = await benchAccount(openSqliteStore(emptyFile));
      const before = sqliteBooks(file, account.accountId);
      const emptyBefore = sqliteBooks(emptyFile, emptyAccount.accountId);
      const server = await startServer(['real', 'sqlite', file]);
      const emptyServer = await startServer(['real', 'sqlite', emptyFile]);
      await check(server.url, INSPECT, account.key, INSPECT_RESULT);
      await check(emptyServer.url, INSPECT, emptyAccount.key, INSPECT_RESULT);
      for (const [call, suffix] of [[INSPECT, 'inspect'], [CREDITS, 'credits']] as const) {
        await measureSideBySide(call, [
          { name: `sqlite_empty_beside_seeded_${suffix}`, target: emptyServer, key: emptyAccount.key },
          { name: `sqlite_seeded_${suffix}`, target: server, key: account.key },
        ]);
      }
      const emptyReport = await emptyServer.stop();
      checkBooks('SQLite, empty beside seeded', emptyBefore, sqliteBooks(emptyFile, emptyAccount.accountId), emptyReport);
      await check(server.url, usagePage(deepId), account.key);
      await measure('usage_first_page', server, usagePage(), account.key);
      await measure('usage_deep_page', server, usagePage(deepId), account.key);
      const report = await server.stop();
      checkBooks('SQLite, seeded', before, sqliteBooks(file, account.accountId), report);
    }

    // 5. The Prism mock of the contract, same requests.
    if (runs('prism')) {
      const prism = await startPrismTarget();
      try {
        await check(prism.url, INSPECT, account.key);
        await measure('prism_inspect', prism, INSPECT, account.key);
        await measure('prism_credits', prism, CREDITS, account.key);
      } finally {
        await prism.stop();
      }
    }

    // 6. Issue 16, the Dashboard's Activity on a seeded file: the first page of usage (filtered or not) and the
    // 30-day aggregates, one request at a time (the latency a person waits, not throughput under load); then a CSV
    // export of 100,000 records with the server's resident memory sampled while it streams.
    if (runs('activity')) await benchActivity(dir);

    // 7. The Dashboard's first load in headless Chromium (bench/dashboard.ts), from the real server on the same file
    // (seeded, when the seeded group ran): cold loads, signed in through a sign-in link.
    if (runs('dashboard')) {
      if (!existsSync(CHROMIUM)) {
        checks.push(`Dashboard first load: NOT RUN (no Chromium at ${CHROMIUM})`);
      } else {
        ensureDashboardBuilt();
        const server = await startServer(['real', 'sqlite', file]);
        try {
          const loads = QUICK ? 3 : setting('BENCH_DASHBOARD_LOADS', 9);
          dashboard = await benchDashboard(server.url, await signInLink(file, account.accountId, server.url), loads);
          for (const page of dashboard.pages) {
            log(`  dashboard ${page.path}: app shell at ${page.shell_median_ms} ms, first row rendered with data at ${page.median_ms} ms (medians of ${page.loads_ms.length} cold loads: ${page.loads_ms.join(', ')})`);
          }
          log(`  dashboard first-load JavaScript: ${fmt(dashboard.first_load_js_gzip_bytes)} bytes gzipped (${fmt(dashboard.first_load_js_bytes)} raw)`);
        } finally {
          await server.stop();
        }
      }
    }

    // 8. The real server on PostgreSQL, a fresh schema, when there is one to use.
    if (PG_URL && runs('postgres')) {
      const schema = `bench_${randomBytes(6).toString('hex')}`;
      try {
        const pgAccount = await benchAccount(openPostgresStore(PG_URL, { schema }));
        const pgBefore = await postgresBooks(PG_URL, schema, pgAccount.accountId);
        const pgServer = await startServer(['real', 'postgres', schema], { BENCH_PG_URL: PG_URL });
        await check(pgServer.url, INSPECT, pgAccount.key, INSPECT_RESULT);
        await measure('postgres_inspect', pgServer, INSPECT, pgAccount.key);
        await measure('postgres_credits', pgServer, CREDITS, pgAccount.key);
        const pgReport = await pgServer.stop();
        if (pgReport) durability.postgres = pgReport.durability;
        checkBooks('PostgreSQL, empty', pgBefore, await postgresBooks(PG_URL, schema, pgAccount.accountId), pgReport);
      } finally {
        const client = new pg.Client({ connectionString: PG_URL });
        await client.connect();
        await client.query(`drop schema if exists ${schema} cascade`);
        await client.end();
      }
    } else if (!PG_URL) {
      checks.push('PostgreSQL: NOT RUN (TEST_DATABASE_URL is not set)');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  if (Object.keys(activity.latency_ms).length > 0) {
    log('\n| Activity (seeded SQLite, one request at a time) | p50 ms | p90 ms | requests | held to 50 ms |');
    log('| --- | ---: | ---: | ---: | --- |');
    for (const [name, m] of Object.entries(activity.latency_ms)) log(`| ${name} | ${m.p50} | ${m.p90} | ${m.requests} | ${m.target ? 'yes' : 'no'} |`);
  }
  if (activity.export) log(`\nCSV export: ${JSON.stringify(activity.export)}`);
  const rps = (name: string) => targets[name]?.rps;
  const cpu = (name: string) => targets[name]?.cpu_us_per_req;
  const ratios = {
    credits_over_bare: ratio(rps('sqlite_credits'), rps('bare_credits')),
    inspect_over_bare: ratio(rps('sqlite_inspect'), rps('bare_inspect')),
    credits_over_prism: ratio(rps('sqlite_credits'), rps('prism_credits')),
    inspect_over_prism: ratio(rps('sqlite_inspect'), rps('prism_inspect')),
    credits_over_validator: ratio(rps('sqlite_credits'), rps('validator_credits')),
    inspect_over_validator: ratio(rps('sqlite_inspect'), rps('validator_inspect')),
    // Costs (CPU per request), higher = costlier.
    credits_cpu_over_bare: ratio(cpu('sqlite_credits'), cpu('bare_credits')),
    inspect_cpu_over_bare: ratio(cpu('sqlite_inspect'), cpu('bare_inspect')),
    // Against the empty database measured beside the seeded one (interleaved runs).
    seeded_cpu_over_empty_credits: ratio(cpu('sqlite_seeded_credits'), cpu('sqlite_empty_beside_seeded_credits')),
    seeded_cpu_over_empty_inspect: ratio(cpu('sqlite_seeded_inspect'), cpu('sqlite_empty_beside_seeded_inspect')),
    deep_page_over_first_page: ratio(cpu('usage_deep_page'), cpu('usage_first_page')),
    installed_cpu_over_repository_credits: ratio(cpu('installed_credits'), cpu('repository_credits')),
    installed_cpu_over_repository_inspect: ratio(cpu('installed_inspect'), cpu('repository_inspect')),
    postgres_credits_over_bare: ratio(rps('postgres_credits'), rps('bare_credits')),
    postgres_inspect_over_bare: ratio(rps('postgres_inspect'), rps('bare_inspect')),
  };
  const p99 = Math.max(targets.sqlite_credits?.p99_ms ?? Infinity, targets.sqlite_inspect?.p99_ms ?? Infinity);
  const met = {
    credits_over_bare: (ratios.credits_over_bare ?? 0) >= TARGETS.credits_over_bare,
    inspect_over_bare: (ratios.inspect_over_bare ?? 0) >= TARGETS.inspect_over_bare,
    credits_over_prism: (ratios.credits_over_prism ?? 0) >= TARGETS.over_prism,
    inspect_over_prism: (ratios.inspect_over_prism ?? 0) >= TARGETS.over_prism,
    p99_ms: p99 <= TARGETS.p99_ms,
    zero_non2xx: Object.values(targets).every((m) => m.non2xx === 0),
    seeded_cpu_within_10_percent:
      (ratios.seeded_cpu_over_empty_credits ?? Infinity) <= TARGETS.seeded_cpu_over_empty &&
      (ratios.seeded_cpu_over_empty_inspect ?? Infinity) <= TARGETS.seeded_cpu_over_empty,
    deep_page_within_2x: (ratios.deep_page_over_first_page ?? Infinity) <= TARGETS.deep_page_over_first_page,
    ...(Object.keys(activity.latency_ms).length > 0
      ? { activity_p50_within_50_ms: Object.values(activity.latency_ms).every((m) => !m.target || m.p50 <= TARGETS.activity_p50_ms) }
      : {}),
    ...(activity.export ? { export_rss_growth_under_50_mib: activity.export.rss_growth_mib! < TARGETS.export_rss_growth_mib } : {}),
    ...(dashboard
      ? {
          dashboard_interactive_within_1s: dashboard.pages.every((page) => page.median_ms <= TARGETS.dashboard_interactive_ms),
          dashboard_first_load_js_within_150kb: dashboard.first_load_js_gzip_bytes <= TARGETS.dashboard_first_load_js_gzip_bytes,
        }
      : {}),
    installed_cpu_within_10_percent:
      (ratios.installed_cpu_over_repository_credits ?? Infinity) <= TARGETS.installed_cpu_over_repository &&
      (ratios.installed_cpu_over_repository_inspect ?? Infinity) <= TARGETS.installed_cpu_over_repository,
  };
  for (const [name, measurement] of Object.entries(targets)) {
    if (measurement.non2xx > 0) failures.push(`${name}: ${measurement.non2xx} answers were not 2xx (or errors)`);
  }

  log('\n| target | req/s | p50 ms | p99 ms | server CPU µs/request | non-2xx |');
  log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, m] of Object.entries(targets)) {
    log(`| ${name} | ${fmt(m.rps)} | ${m.p50_ms} | ${m.p99_ms} | ${m.cpu_us_per_req ?? 'n/a'} | ${m.non2xx} |`);
  }
  log('\nRatios (req/s unless "cpu"; targets: credits ≥ 0.5× bare, inspect ≥ 0.4×, both ≥ 3× Prism, seeded cpu ≤ 1.1× empty, deep page ≤ 2× first):');
  for (const [name, value] of Object.entries(ratios)) log(`  ${name.padEnd(32)} ${value ?? 'n/a'}`);
  log('\nTargets met:');
  for (const [name, value] of Object.entries(met)) log(`  ${name.padEnd(32)} ${value ? 'yes' : 'NO'}`);
  log(`\nDurability settings read from the running databases: ${JSON.stringify(durability)}`);
  log(`Done in ${((Date.now() - started) / 1000).toFixed(0)} s.`);
  if (failures.length > 0) {
    log(`\nFAILED CHECKS:\n${failures.map((failure) => `  ${failure}`).join('\n')}`);
    process.exitCode = 1;
  }
  if (JSON_OUTPUT) {
    const output = {
      machine,
      settings: { quick: QUICK, connections: CONNECTIONS, runs: RUNS, duration_s: DURATION, warmup_s: WARMUP, seed_keys: SEED_KEYS, seed_usage: SEED_USAGE },
      targets,
      activity,
      ratios,
      targets_met: met,
      dashboard,
      durability,
      checks,
      failures,
    };
    process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
