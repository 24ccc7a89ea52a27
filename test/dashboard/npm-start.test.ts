// As a new user meets the Dashboard: `openrush serve` (what `npm start` runs, from the built dist/) on an empty
// database prints a sign-in link beside the starter key; the link, opened in Chromium as a person would, signs the
// browser in to the starter account's API access; `openrush dashboard link` prints another. On a SQLite file, or
// with OPENRUSH_TEST_STORE=postgres a fresh schema at TEST_DATABASE_URL.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale } from '../../scripts/build.ts';
import { killCliProcesses, runCli, serveCli, type ServingCli } from '../helpers/cli-process.ts';
import { newPostgresSchema, TEST_DATABASE_URL, TEST_STORE } from '../helpers/stores.ts';
import { CHROMIUM, expectText, outsideRequests, screenshot } from './browser.ts';

const LINK = /http:\/\/localhost:\d+\/dashboard\/sign-in#token=orsl_[0-9A-Za-z]+/;
let dir: string | undefined;
let env: Record<string, string>;
let server: ServingCli;
let browser: Browser;

async function emptyDatabase(): Promise<Record<string, string>> {
  if (TEST_STORE === 'postgres') {
    const schema = newPostgresSchema();
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(`create schema ${schema}`).finally(() => client.end());
    return { DATABASE_URL: `${TEST_DATABASE_URL}${TEST_DATABASE_URL!.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}` };
  }
  dir = mkdtempSync(join(tmpdir(), 'openrush-npm-start-'));
  return { DATABASE_URL: `sqlite:${join(dir, 'openrush.db')}` };
}

let setupError: unknown;
beforeAll(async () => {
  try {
    if (!existsSync(CHROMIUM)) throw new Error(`The Dashboard's browser tests need Debian's Chromium at ${CHROMIUM}.`);
    // serve runs the compiled dist/ (server and Dashboard), as npm start does.
    buildIfStale();
    env = await emptyDatabase();
    server = await serveCli(env);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  } catch (error) {
    setupError = error;
  }
}, 180_000);

afterAll(async () => {
  await browser?.close();
  killCliProcesses();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm start, then the printed link in a browser', () => {
  it('signs in to the starter account and shows its key in API access; openrush dashboard link prints another that works', async () => {
    if (setupError) throw setupError;
    const printed = server.output.stdout.split('\n').filter((line) => !line.startsWith('{')).join('\n');
    const link = LINK.exec(printed)?.[0];
    expect(link, printed).toBeDefined();
    const origin = new URL(link!).origin;

    const context = await browser.newContext();
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    context.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(link!);
    await page.waitForURL(`${origin}/dashboard/api-access`, { timeout: 10_000 });
    // The starter key, by its prefix.
    const starterPrefix = `${server.starterKey!.slice(0, 9)}...`;
    await expectText(page.getByRole('table'), starterPrefix);
    await screenshot(page, 'npm-start-api-access');
    expect(outsideRequests(requests, origin)).toEqual([]);
    expect(errors).toEqual([]);

    // The same link a second time (another browser): refused, with how to get a new one.
    const other = await browser.newContext();
    const second = await other.newPage();
    await second.goto(link!);
    await expectText(second.getByRole('alert'), 'This sign-in link was already used.');
    const fresh = await runCli(['dashboard', 'link'], env);
    expect(fresh.code, fresh.stderr).toBe(0);
    const next = LINK.exec(fresh.stdout)?.[0].replace(/^http:\/\/localhost:\d+/, origin);
    expect(next).toBeDefined();
    await second.goto(next!);
    await second.waitForURL(`${origin}/dashboard/api-access`, { timeout: 10_000 });
    await expectText(second.getByRole('table'), starterPrefix);
    await other.close();
    await context.close();
  }, 60_000);
});
