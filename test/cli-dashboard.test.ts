// Sign-in links as an operator meets them: `npm start` (openrush serve) prints one beside the starter key, and
// `openrush dashboard link [--account ID]` prints another; each opens a Dashboard session once. The real CLI in
// processes of its own, on a SQLite file (or, with OPENRUSH_TEST_STORE=postgres, a fresh schema at TEST_DATABASE_URL).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ACCOUNT_ID, killCliProcesses, runCli, serveCli, type ServingCli } from './helpers/cli-process.ts';
import { newPostgresSchema, TEST_DATABASE_URL, TEST_STORE } from './helpers/stores.ts';

const LINK = /(http:\/\/[^\s/]+|https:\/\/[^\s/]+)\/dashboard\/sign-in#token=(orsl_[0-9A-Za-z]{43})/;
const tempDirs: string[] = [];

afterEach(() => killCliProcesses());
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** An empty database, as DATABASE_URL. */
async function emptyDatabase(): Promise<{ DATABASE_URL: string }> {
  if (TEST_STORE === 'postgres') {
    const schema = newPostgresSchema();
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(`create schema ${schema}`).finally(() => client.end());
    return { DATABASE_URL: `${TEST_DATABASE_URL}${TEST_DATABASE_URL!.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}` };
  }
  const dir = mkdtempSync(join(tmpdir(), 'openrush-dashboard-'));
  tempDirs.push(dir);
  return { DATABASE_URL: `sqlite:${join(dir, 'openrush.db')}` };
}

/** Redeems a link's token at the server, as the sign-in page would (here without a browser: no Origin). */
function redeem(server: ServingCli, token: string): Promise<Response> {
  return fetch(`${server.url}/v1/sessions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ sign_in_link: token }) });
}

describe('sign-in links from the CLI', () => {
  // Two servers, or five CLI runs and a server, each a process of its own: more than the default 20 s on a busy machine.
  it('serve prints a working link beside the starter key, once, and never logs it', { timeout: 120_000 }, async () => {
    const env = { ...(await emptyDatabase()), LOG_LEVEL: 'info' };
    const server = await serveCli(env, 60_000);
    expect(server.starterKey).toBeDefined();
    const banner = server.output.stdout.split('\n').filter((line) => !line.startsWith('{')).join('\n');
    const [, base, token] = LINK.exec(banner) ?? [];
    expect(banner, banner).toMatch(LINK);
    expect(base).toBe(`http://localhost:${new URL(server.url).port}`);
    const first = await redeem(server, token!);
    expect(first.status).toBe(201);
    expect(((await first.json()) as { account_id: string }).account_id).toBe(server.starterAccountId);
    const second = await redeem(server, token!);
    expect(second.status).toBe(401);
    expect(((await second.json()) as { detail: string }).detail).toBe('This sign-in link was already used. Run `openrush dashboard link` for a new one.');
    const logLines = server.output.stdout.split('\n').filter((line) => line.startsWith('{')).join('\n') + server.output.stderr;
    expect(logLines).toContain('"url":"/v1/sessions"');
    expect(logLines).not.toContain(token!.slice(5));
    server.child.kill('SIGTERM');
    await server.exited;

    // A restart on the same database makes no account and prints no link.
    const again = await serveCli(env, 60_000);
    expect(again.output.stdout).not.toMatch(LINK);
  });

  it('dashboard link: the only account, or the one named; with several, a clear error naming them', { timeout: 120_000 }, async () => {
    const env = await emptyDatabase();
    const none = await runCli(['dashboard', 'link'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^openrush: there is no account yet/);

    const made = await runCli(['accounts', 'create', '--name', 'First', '--json'], env);
    const first = (JSON.parse(made.stdout) as { account_id: string }).account_id;
    const only = await runCli(['dashboard', 'link'], { ...env, PORT: '4321' });
    expect(only.code, only.stderr).toBe(0);
    expect(only.stdout).toContain(`Sign-in link for account ${first} (it works once, for 15 minutes)`);
    const [, base, onlyToken] = LINK.exec(only.stdout) ?? [];
    expect(base).toBe('http://localhost:4321');

    const second = (JSON.parse((await runCli(['accounts', 'create', '--name', 'Second', '--json'], env)).stdout) as { account_id: string }).account_id;
    const ambiguous = await runCli(['dashboard', 'link'], env);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/^openrush: there are 2 accounts: choose one with --account ACCOUNT_ID/);
    expect(ambiguous.stderr).toContain(`${first} (First)`);
    expect(ambiguous.stderr).toContain(`${second} (Second)`);
    expect(ambiguous.stdout).not.toMatch(LINK);

    const unknown = await runCli(['dashboard', 'link', '--account', 'acct_01KW1WT6F8KK8E8PW71NXT39GC'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^openrush: no account acct_01KW1WT6F8KK8E8PW71NXT39GC/);

    const named = await runCli(['dashboard', 'link', '--account', second], { ...env, OPENRUSH_PUBLIC_URL: 'https://openrush.example.com' });
    expect(named.code, named.stderr).toBe(0);
    const [, publicBase, namedToken] = LINK.exec(named.stdout) ?? [];
    expect(publicBase).toBe('https://openrush.example.com');
    expect(ACCOUNT_ID.exec(named.stdout)?.[0]).toBe(second);

    // Both links work, each once, each for its own account, at a server on the same database.
    const server = await serveCli(env, 60_000);
    const signedIn = await redeem(server, namedToken!);
    expect(signedIn.status).toBe(201);
    expect(((await signedIn.json()) as { account_id: string }).account_id).toBe(second);
    const onlyAnswer = await redeem(server, onlyToken!);
    expect(((await onlyAnswer.json()) as { account_id: string }).account_id).toBe(first);
    expect((await redeem(server, namedToken!)).status).toBe(401);
  });

  it('dashboard --help describes the command', async () => {
    const help = await runCli(['dashboard', '--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: openrush dashboard link \[--account ACCOUNT_ID\]/);
  });
});
