// What the Dashboard's browser tests share: a real server (a real database from test/helpers/stores.ts, SQLite or
// PostgreSQL, a real port) serving the built app (dist/dashboard, built here if stale), Debian's Chromium driven
// by playwright-core, how a browser signs in, every request the browser makes (none may leave the server's
// origin), screenshots, and the axe-core scan.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { build, isStale } from '../../scripts/build.ts';
import { issueSignInLink, signInLinkUrl } from '../../server/dashboard-sessions.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = join(ROOT, 'test-results/dashboard');
const axeSource = (createRequire(import.meta.url)('axe-core') as { source: string }).source;

/**
 * The page's globals, as the callbacks given to page.evaluate see them (they run in the browser; this file is
 * type-checked for Node, without the DOM's types).
 */
export interface PageWorld {
  document: { activeElement: unknown };
  location: { hash: string };
  navigator: { clipboard: { readText(): Promise<string> } };
  axe?: { run(context: unknown, options: object): Promise<{ violations: AxeViolation[] }> };
}

/** Builds the app if dashboard/ (or the client it uses) changed since the last build. */
export function ensureDashboardBuilt(): void {
  if (isStale('client')) build('client');
  if (isStale('dashboard')) build('dashboard');
}

export interface DashboardSession {
  server: TestServer;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Every URL the browser asked for, from the first page on. */
  requests: string[];
  /** Errors thrown in the page, and console errors (a CSP refusal is one). */
  pageErrors: string[];
  close(): Promise<void>;
}

export async function openDashboard(options: Parameters<typeof startTestServer>[0] = {}): Promise<DashboardSession> {
  if (!existsSync(CHROMIUM)) throw new Error(`The Dashboard's browser tests need Debian's Chromium at ${CHROMIUM} (apt-get install chromium).`);
  ensureDashboardBuilt();
  const server = await startTestServer(options);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  const page = await context.newPage();
  const requests: string[] = [];
  const pageErrors: string[] = [];
  context.on('request', (request) => requests.push(request.url()));
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/Failed to load resource: the server responded with a status of (4|5)\d\d/.test(message.text())) {
      pageErrors.push(message.text());
    }
  });
  return {
    server,
    browser,
    context,
    page,
    requests,
    pageErrors,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

type ServerOptions = Parameters<typeof startTestServer>[0];

export interface DashboardSuite {
  /**
   * Throws the setup's error, if it failed (no Chromium, say): each test starts with it, so a broken setup fails
   * every test with its cause rather than leaving them counted as skipped.
   */
  check(): void;
}

/**
 * The setup every Dashboard test file shares, registered as its (or its describe block's) beforeAll and afterAll:
 * a real server (on the test database) with the built app, one Chromium page, signed in to the server's account
 * unless `signIn: false`, closed at the end. `server` gives the server's options (a function when they need work
 * first: a stand-in to start, a wrapped store); `ready` gets the open session (to keep its page and URL in the
 * file's variables, or to make what the tests need) after the sign-in.
 */
export function dashboardSuite(
  options: {
    server?: ServerOptions | (() => ServerOptions | Promise<ServerOptions>);
    signIn?: boolean;
    ready?: (session: DashboardSession) => void | Promise<void>;
  } = {},
): DashboardSuite {
  let session: DashboardSession | undefined;
  let setupError: unknown;
  beforeAll(async () => {
    try {
      const serverOptions = typeof options.server === 'function' ? await options.server() : options.server;
      session = await openDashboard(serverOptions);
      if (options.signIn ?? true) await signIn(session);
      await options.ready?.(session);
    } catch (error) {
      setupError = error ?? new Error('The Dashboard test setup failed');
    }
  }, 120_000);
  afterAll(async () => {
    await session?.close();
  });
  return {
    check() {
      if (setupError) throw setupError;
    },
  };
}

/**
 * Signs the browser in as a person does: a one-time sign-in link for the account, made by the function
 * `openrush dashboard link` and `npm start` print theirs with, opened in the page; it lands on API access with
 * the session in its HttpOnly cookie. Returns the link (to show it cannot be used twice).
 */
export async function signIn(session: DashboardSession, accountId: string = session.server.account.accountId): Promise<string> {
  const { token } = await issueSignInLink({ store: session.server.store, clock: session.server.clock }, accountId);
  const link = signInLinkUrl(session.server.url, token);
  await session.page.goto(link);
  await session.page.waitForURL(`${session.server.url}/dashboard/api-access`, { timeout: 10_000 });
  return link;
}

/**
 * Makes the browser send `key` as its bearer credential on every request (null: stop), over any session cookie
 * (a header credential wins): the page then acts with that key's powers, as it would for an embedder that hands
 * the Dashboard a key. How the tests show what the server refuses a restricted or rate-limited key.
 */
export async function useKey(session: DashboardSession, key: string | null): Promise<void> {
  await session.context.setExtraHTTPHeaders(key ? { Authorization: `Bearer ${key}` } : {});
}

/** Opens a page of the app and waits until it has loaded its data (no loading state left). */
export async function openPage(page: Page, base: string, path: string): Promise<void> {
  await page.goto(`${base}${path}`, { waitUntil: 'load' });
  await page.getByRole('heading', { level: 1 }).waitFor();
  await expect.poll(() => page.locator('.state-loading').count(), { timeout: 10_000 }).toBe(0);
}

/** The requests that went anywhere but the server's own origin (data: and blob: stay in the page). */
export function outsideRequests(requests: string[], origin: string): string[] {
  return requests.filter((url) => {
    const { protocol } = new URL(url);
    if (protocol === 'data:' || protocol === 'blob:') return false;
    return new URL(url).origin !== origin;
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * Runs axe-core in the page, in light and in dark, and returns the serious and critical violations. axe is put
 * into the page with page.evaluate, which runs as the DevTools protocol does, outside the page's CSP (a script
 * tag would be refused by it, as it should be).
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  const found: string[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    if (!(await page.evaluate(() => 'axe' in globalThis))) await page.evaluate(axeSource);
    const violations = await page.evaluate(async () => {
      const world = globalThis as unknown as PageWorld;
      const result = await world.axe!.run(world.document, { resultTypes: ['violations'] });
      return result.violations;
    });
    for (const violation of violations) {
      if (violation.impact === 'serious' || violation.impact === 'critical') {
        found.push(`${scheme}: ${violation.id} (${violation.impact}) ${violation.help}: ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`);
      }
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return found;
}

// Waiting on the page as a person would look at it (playwright-core has no web-first assertions of its own).
const POLL = { timeout: 10_000 };

/** Waits until the element's text contains `text`. */
export async function expectText(locator: Locator, text: string): Promise<void> {
  await expect.poll(async () => ((await locator.count()) > 0 ? locator.first().innerText() : ''), POLL).toContain(text);
}

export async function expectVisible(locator: Locator): Promise<void> {
  await locator.first().waitFor({ state: 'visible', timeout: POLL.timeout });
}

export async function expectHidden(locator: Locator): Promise<void> {
  await locator.first().waitFor({ state: 'hidden', timeout: POLL.timeout });
}

/** Waits until the element has the keyboard focus. */
export async function expectFocused(locator: Locator): Promise<void> {
  await expect.poll(() => locator.evaluate((element) => element === (globalThis as unknown as PageWorld).document.activeElement), POLL).toBe(true);
}
