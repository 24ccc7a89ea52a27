// `openrush serve` as an operator meets it (issue 9): a port it cannot have, flags, --help, bad configuration.
// Every run is the real CLI in a process of its own on a real SQLite file.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type CliRun, killCliProcesses, runCli, serveCli, startCli } from './helpers/cli-process.ts';
import { freePort } from './helpers/prism.ts';

const tempDirs: string[] = [];
function databaseEnv(): { DATABASE_URL: string } {
  const dir = mkdtempSync(join(tmpdir(), 'openrush-serve-'));
  tempDirs.push(dir);
  return { DATABASE_URL: `sqlite:${join(dir, 'x.db')}` };
}

afterEach(() => killCliProcesses());
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A clear refusal: the exit code, one line on stderr that says `what`, no stack trace, nothing served. */
function expectOneLine(result: CliRun, code: number, what: RegExp): void {
  expect(result.code, result.stderr).toBe(code);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^openrush: /);
  expect(lines[0]).toMatch(what);
  expect(result.stderr + result.stdout).not.toMatch(/\n\s+at |node:internal|\.ts:\d+/);
  expect(result.stdout).not.toContain('openrush listening');
}

function listeningLine(stdout: string): { host: string; port: number } {
  const line = stdout.split('\n').find((text) => text.includes('openrush listening'));
  expect(line, stdout).toBeDefined();
  return JSON.parse(line!) as { host: string; port: number };
}

describe('serve cannot listen', () => {
  let occupied: Server;
  afterEach(() => occupied?.close());

  it('on a port already in use: exit 1, one clear line, no "listening"', async () => {
    occupied = createServer();
    const port = await new Promise<number>((done) => occupied.listen(0, () => done((occupied.address() as { port: number }).port)));
    const result = await runCli(['serve'], { ...databaseEnv(), PORT: String(port) });
    expectOneLine(result, 1, new RegExp(`port ${port}.*already in use`));
  });

  it('on an address this machine does not have: exit 1, one clear line', async () => {
    const result = await runCli(['serve', '--host', '192.0.2.1', '--port', String(await freePort())], databaseEnv());
    expectOneLine(result, 1, /192\.0\.2\.1.*(not an address of this machine|EADDRNOTAVAIL)/);
  });
});

describe('serve flags and HOST', () => {
  it('--port and --host choose where it listens, over PORT and HOST', async () => {
    const port = await freePort();
    const started = startCli(['serve', '--port', String(port), '--host', '127.0.0.1'], { ...databaseEnv(), PORT: '1', HOST: '0.0.0.0', LOG_LEVEL: 'info' });
    for (let i = 0; i < 200 && !started.output.stdout.includes('openrush listening'); i++) {
      if (started.child.exitCode !== null) break;
      await new Promise((done) => setTimeout(done, 100));
    }
    expect(listeningLine(started.output.stdout)).toMatchObject({ host: '127.0.0.1', port });
    // The starter banner's example calls the server where it really listens.
    expect(started.output.stdout).toContain(`curl http://127.0.0.1:${port}/v1/me/credits`);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    started.child.kill('SIGTERM');
    expect((await started.exited).code).toBe(0);
  });

  it('HOST binds one interface', async () => {
    const serving = await serveCli({ ...databaseEnv(), HOST: '127.0.0.1' });
    expect(listeningLine(serving.output.stdout)).toMatchObject({ host: '127.0.0.1' });
    serving.child.kill('SIGTERM');
    expect((await serving.exited).code).toBe(0);
  });

  it.each([
    [['serve', '--prot', '4301'], /--prot/],
    [['serve', 'now'], /now/],
    [['serve', '--port'], /--port/],
    [['migrate', '--force'], /--force/],
    [['credits', 'grant', 'acct_x', '5', '--yes'], /--yes/],
  ])('%j is refused with exit 2 and the usage, and starts nothing', async (args, what) => {
    const result = await runCli(args, databaseEnv());
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(what);
    expect(result.stderr).toMatch(/Usage: openrush/);
    expect(result.stdout).not.toContain('openrush listening');
  });

  it.each([
    [['serve', '--help'], /Usage: openrush serve/, /--port/],
    [['serve', '-h'], /Usage: openrush serve/, /HOST/],
    [['migrate', '--help'], /Usage: openrush migrate/, /DATABASE_URL/],
    [['accounts', '--help'], /Usage: openrush accounts create/, /--credits/],
    [['accounts', 'create', '--help'], /Usage: openrush accounts create/, /--json/],
    [['credits', '--help'], /Usage: openrush credits grant/, /ACCOUNT_ID/],
    [['help', 'serve'], /Usage: openrush serve/, /--host/],
    [['--help'], /Usage: openrush <command>/, /serve/],
  ])('%j prints help and exits 0 without serving', async (args, usage, mentions) => {
    const result = await runCli(args, databaseEnv());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(usage);
    expect(result.stdout).toMatch(mentions);
    expect(result.stdout).not.toContain('openrush listening');
    expect(result.stdout).not.toMatch(/or_[0-9A-Za-z]{38}/);
  });
});

describe('bad configuration is one clear line and exit 2', () => {
  it.each([
    [{ PORT: 'abc' }, ['serve'], /PORT/],
    [{ PORT: '70000' }, ['serve'], /PORT/],
    [{ PORT: '' }, ['serve'], /PORT/],
    [{ PORT: '3000.5' }, ['serve'], /PORT/],
    [{}, ['serve', '--port', 'abc'], /--port/],
    [{ DATABASE_URL: 'mysql://localhost/x' }, ['serve'], /DATABASE_URL/],
    [{ DATABASE_URL: 'sqlite:' }, ['migrate'], /DATABASE_URL/],
    [{ OPENRUSH_DB_POOL_SIZE: 'many' }, ['serve'], /OPENRUSH_DB_POOL_SIZE/],
    [{ OPENRUSH_AUTH_FAILURES_PER_MINUTE: '-1' }, ['serve'], /OPENRUSH_AUTH_FAILURES_PER_MINUTE/],
    [{ LOG_LEVEL: 'loud' }, ['serve'], /LOG_LEVEL/],
    [{ OPENRUSH_CORS_ORIGINS: 'not a url' }, ['serve'], /OPENRUSH_CORS_ORIGINS/],
    [{ OPENRUSH_TRUST_PROXY: 'yes' }, ['serve'], /OPENRUSH_TRUST_PROXY/],
    [{ OPENRUSH_TRUST_PROXY: '10.0.0.0/33' }, ['serve'], /OPENRUSH_TRUST_PROXY/],
    [{ OPENRUSH_REQUEST_TIMEOUT_MS: '30s' }, ['serve'], /OPENRUSH_REQUEST_TIMEOUT_MS/],
    [{ OPENRUSH_HEADERS_TIMEOUT_MS: '60000' }, ['serve'], /OPENRUSH_HEADERS_TIMEOUT_MS/],
    [{ OPENRUSH_MAX_CONNECTIONS: '0' }, ['serve'], /OPENRUSH_MAX_CONNECTIONS/],
  ])('%j with %j', async (env, args, what) => {
    const result = await runCli(args, { ...databaseEnv(), ...env });
    expectOneLine(result, 2, what);
  });

  it('a database that cannot be reached is one clear line and exit 1', async () => {
    const port = await freePort();
    const result = await runCli(['serve'], { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/nowhere` });
    expectOneLine(result, 1, /database/i);
  });
});

describe('OPENRUSH_TRUST_PROXY', () => {
  const warning = (stdout: string) =>
    stdout.split('\n').filter((line) => line.includes('"trust_proxy":true') && line.includes('X-Forwarded-For'));

  it('true (every hop trusted): serve warns once, at warn level, and still serves', async () => {
    const serving = await serveCli({ ...databaseEnv(), OPENRUSH_TRUST_PROXY: 'true' });
    const lines = warning(serving.output.stdout);
    expect(lines, serving.output.stdout).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40 });
    serving.child.kill('SIGTERM');
    expect((await serving.exited).code).toBe(0);
  });

  it.each(['1', '10.0.0.0/8,loopback'])('%s (a hop count or the proxies\' addresses): no warning', async (value) => {
    const serving = await serveCli({ ...databaseEnv(), OPENRUSH_TRUST_PROXY: value });
    expect(warning(serving.output.stdout)).toEqual([]);
    serving.child.kill('SIGTERM');
    expect((await serving.exited).code).toBe(0);
  });
});
