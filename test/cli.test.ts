// The operator CLI, run as an operator runs it: `node bin/openrush.js …` in its own process, on a real SQLite file.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../server/store/sqlite.ts';
import { openTestStore } from './helpers/stores.ts';
import { freePort } from './helpers/prism.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const ROOT = resolve(import.meta.dirname, '..');
const KEY = /or_[0-9A-Za-z]{38}/;
const KEYS = new RegExp(KEY.source, 'g');
const ACCOUNT_ID = /acct_[0-9A-HJKMNP-TV-Z]{26}/;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const tempDirs: string[] = [];
const children: ChildProcess[] = [];

function tempDatabase(): string {
  const dir = mkdtempSync(join(tmpdir(), 'openrush-cli-'));
  tempDirs.push(dir);
  return join(dir, 'x.db');
}

/** Starts the CLI with a clean environment: only what an operator would set. */
function start(file: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['bin/openrush.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), DATABASE_URL: `sqlite:${file}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = new Promise<Run>((done) => {
    child.on('close', (code, signal) => done({ code, signal, ...output }));
  });
  return { child, output, exited };
}

function run(file: string, ...args: string[]): Promise<Run> {
  return start(file, args).exited;
}

async function balanceOf(url: string, key: string): Promise<number> {
  const response = await fetch(`${url}/v1/me/credits`, { headers: { Authorization: `Bearer ${key}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { balance: number }).balance;
}

afterEach(() => {
  // A failed test must not leave a server running.
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('accounts and credits', () => {
  const file = tempDatabase();
  let server: TestServer;
  let created: Run;
  let account: { account_id: string; key: string };

  beforeAll(async () => {
    created = await run(file, 'accounts', 'create', '--name', 'Acme', '--credits', '25', '--json');
    account = JSON.parse(created.stdout) as typeof account;
    // The real app on the same file: what the CLI wrote is what the API serves.
    server = await startTestServer({ database: { ...openTestStore('sqlite'), store: openSqliteStore(file) }, sharedDatabase: true });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('accounts create --json prints one JSON object with the account id and a working key', async () => {
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout.trim().split('\n')).toHaveLength(1);
    expect(Object.keys(account).sort()).toEqual(['account_id', 'key']);
    expect(account.account_id).toMatch(new RegExp(`^${ACCOUNT_ID.source}$`));
    expect(account.key).toMatch(/^or_[0-9A-Za-z]{38}$/);
    expect(await balanceOf(server.url, account.key)).toBe(25);
  });

  it('accounts create without --json prints the account id and key for a person', async () => {
    const result = await run(file, 'accounts', 'create', '--name', 'Person readable');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toMatch(/^\s*[{[]/);
    const accountId = ACCOUNT_ID.exec(result.stdout)?.[0];
    const keys = result.stdout.match(KEYS) ?? [];
    expect(accountId).toBeDefined();
    expect(new Set(keys).size).toBe(1);
    // The printed key belongs to the printed account.
    const response = await fetch(`${server.url}/v1/me/api-credentials`, { headers: { Authorization: `Bearer ${keys[0]}` } });
    expect(response.status).toBe(200);
    const credentials = (await response.json()) as Array<{ account_id: string }>;
    expect(credentials.map((credential) => credential.account_id)).toEqual([accountId]);
  });

  it('credits grant adds to the balance; bad input exits non-zero, says why, and changes nothing', async () => {
    const granted = await run(file, 'credits', 'grant', account.account_id, '10');
    expect(granted.code, granted.stderr).toBe(0);
    expect(await balanceOf(server.url, account.key)).toBe(35);
    expect(await server.store.sumLedger(account.account_id)).toBe(35);

    const db = new Database(file, { readonly: true });
    try {
      const ledgerRows = () => (db.prepare('select count(*) as n from credit_ledger').get() as { n: number }).n;
      const before = ledgerRows();
      const refused = await Promise.all([
        run(file, 'credits', 'grant', 'nope', '10'),
        run(file, 'credits', 'grant', account.account_id, '-1'),
        run(file, 'credits', 'grant', account.account_id, 'abc'),
      ]);
      for (const result of refused) {
        expect(result.code).not.toBe(0);
        expect(result.code).not.toBeNull();
        expect(result.stderr.trim().length).toBeGreaterThan(0);
        expect(result.stdout).not.toMatch(/granted/i);
      }
      expect(refused[0]!.stderr).toContain('nope');
      expect(ledgerRows()).toBe(before);
    } finally {
      db.close();
    }
    expect(await balanceOf(server.url, account.key)).toBe(35);
    expect(await server.store.sumLedger(account.account_id)).toBe(35);
  });

  it('credits grant refuses to take a balance past the contract maximum, writing nothing; up to it, the API still answers', async () => {
    const maximum = Number.MAX_SAFE_INTEGER; // CreditBalance.balance.maximum in the contract
    const made = await run(file, 'accounts', 'create', '--name', 'Rich', '--credits', '500', '--json');
    expect(made.code, made.stderr).toBe(0);
    const rich = JSON.parse(made.stdout) as { account_id: string; key: string };

    const past = await run(file, 'credits', 'grant', rich.account_id, String(maximum - 400));
    expect(past.code).toBe(1);
    expect(past.stderr).toContain(`past ${maximum}`);
    expect(past.stderr).toContain('nothing was granted');
    expect(past.stdout).toBe('');
    expect(await balanceOf(server.url, rich.key)).toBe(500);
    expect(await server.store.sumLedger(rich.account_id)).toBe(500);

    const toTheTop = await run(file, 'credits', 'grant', rich.account_id, String(maximum - 500));
    expect(toTheTop.code, toTheTop.stderr).toBe(0);
    expect(await balanceOf(server.url, rich.key)).toBe(maximum); // the response is validated against the contract
    const oneMore = await run(file, 'credits', 'grant', rich.account_id, '1');
    expect(oneMore.code).toBe(1);
    expect(await balanceOf(server.url, rich.key)).toBe(maximum);
    expect(await server.store.sumLedger(rich.account_id)).toBe(maximum);
  });
});

describe('migrate', () => {
  it('exits 0 on an empty file, and again on a migrated one', async () => {
    const file = tempDatabase();
    writeFileSync(file, '');
    const first = await run(file, 'migrate');
    expect(first.code, first.stderr).toBe(0);
    const second = await run(file, 'migrate');
    expect(second.code, second.stderr).toBe(0);

    const db = new Database(file, { readonly: true });
    try {
      const tables = (db.prepare("select name from sqlite_master where type = 'table'").all() as Array<{ name: string }>).map((row) => row.name);
      expect(tables).toEqual(expect.arrayContaining(['accounts', 'credentials', 'credit_ledger', 'usage_records']));
    } finally {
      db.close();
    }
  });
});

describe('serve', () => {
  /** Starts `serve` and waits (bounded) until it answers /healthz and has said it listens. */
  async function serve(file: string) {
    const port = await freePort();
    const started = start(file, ['serve'], { PORT: String(port), LOG_LEVEL: 'info' });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (started.child.exitCode !== null) throw new Error(`serve exited early: ${started.output.stderr}`);
      const healthy = await fetch(`${url}/healthz`).then((response) => response.ok, () => false);
      // The starter banner is written before the server listens, the "listening" log line after.
      if (healthy && started.output.stdout.includes('openrush listening')) break;
      if (Date.now() > deadline) throw new Error(`serve never became healthy: ${started.output.stdout}${started.output.stderr}`);
      await new Promise((done) => setTimeout(done, 100));
    }
    return { ...started, url };
  }

  async function stop(server: Awaited<ReturnType<typeof serve>>): Promise<Run> {
    server.child.kill('SIGTERM');
    return server.exited;
  }

  it('prints a starter key on an empty database only, and exits 0 on SIGTERM', async () => {
    const file = tempDatabase();

    const first = await serve(file);
    const keys = [...new Set(first.output.stdout.match(KEYS) ?? [])];
    expect(keys).toHaveLength(1);
    const starterKey = keys[0]!;
    expect(await balanceOf(first.url, starterKey)).toBe(500);
    const firstRun = await stop(first);
    expect(firstRun.code, firstRun.stderr).toBe(0);
    // Shown to the operator, never written into a log line.
    const logLines = firstRun.stdout.split('\n').filter((line) => line.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.some((line) => line.includes(starterKey))).toBe(false);
    expect(firstRun.stderr).not.toContain(starterKey);

    const second = await serve(file);
    expect(second.output.stdout).not.toMatch(KEY);
    // Same database: the starter key still works.
    expect(await balanceOf(second.url, starterKey)).toBe(500);
    const secondRun = await stop(second);
    expect(secondRun.code, secondRun.stderr).toBe(0);
    expect(secondRun.stdout).not.toMatch(KEY);
  });
});

it('an unknown command exits 2 with the usage text', async () => {
  const result = await run(tempDatabase(), 'frobnicate');
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('frobnicate');
  expect(result.stderr).toMatch(/Usage: openrush/);
  expect(result.stderr).toMatch(/accounts create/);
});
