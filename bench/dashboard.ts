// The Dashboard's first load (issue 16: "the Dashboard's first page is interactive in ≤ 1 s from a local server in
// headless Chromium", and "first load ≤ 150 KB of gzipped JavaScript"), run by `npm run bench` (group `dashboard`).
//
// The real server (bench/server.ts `real sqlite FILE`, NODE_ENV=production) serves the built app from dist/dashboard
// (built here when stale). The browser signs in once through a sign-in link, as a person does; then each load is
// cold: a new browser context (empty HTTP cache, no service worker, nothing in memory) holding only the session
// cookie. A load is timed from the navigation's start (the Navigation Timing origin, performance.now() = 0) to
// the moment the page's main content is rendered with data from the API — the first row of the page's table —
// recorded in the page by a MutationObserver installed before any page script runs (Playwright's init script, run
// by the DevTools protocol, not subject to the page's CSP). React attaches its event handlers as it renders, so
// the page is interactive at that moment. Median of several loads per page: the landing page (/dashboard → API
// access) and Activity (its own chunk, uPlot, five queries).
import { gzipSync } from 'node:zlib';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { issueSignInLink, signInLinkUrl } from '../server/dashboard-sessions.ts';
import { systemClock } from '../server/clock.ts';
import { openSqliteStore } from '../server/store/sqlite.ts';
import { build, isStale } from '../scripts/build.ts';

export const CHROMIUM = '/usr/bin/chromium';
const DIST = resolve(import.meta.dirname, '../dist/dashboard');

export interface PageLoads {
  path: string;
  /** What counts as "rendered with data". */
  selector: string;
  loads_ms: number[];
  median_ms: number;
  /** When the app's shell first rendered (its header: the JavaScript loaded and ran), median over the same loads. */
  shell_median_ms: number;
}

export interface DashboardBench {
  loads: number;
  pages: PageLoads[];
  /** The JavaScript of the first load (index.html's entry script and its modulepreloads), gzipped at level 6. */
  first_load_js_gzip_bytes: number;
  first_load_js_bytes: number;
  /** Every other JavaScript file (loaded with a page when first opened), gzipped. */
  lazy_js_gzip_bytes: Record<string, number>;
}

/** index.html's scripts and modulepreloads: what the browser loads before the first page renders. */
export function firstLoadScripts(dir = DIST): string[] {
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  const paths = [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*rel="modulepreload"[^>]*\shref)="([^"]+\.js)"/g)].map((match) => match[1]!);
  return [...new Set(paths)].map((path) => join(dir, path.replace(/^\/dashboard\//, '').replace(/^\.\//, '')));
}

function gzipBytes(file: string): number {
  return gzipSync(readFileSync(file), { level: 6 }).length;
}

export function ensureDashboardBuilt(): void {
  if (isStale('client')) build('client');
  if (isStale('dashboard')) build('dashboard');
}

export function dashboardSizes(): Pick<DashboardBench, 'first_load_js_gzip_bytes' | 'first_load_js_bytes' | 'lazy_js_gzip_bytes'> {
  const first = firstLoadScripts();
  const all = readdirSync(join(DIST, 'assets'))
    .filter((name) => name.endsWith('.js'))
    .map((name) => join(DIST, 'assets', name));
  const lazy: Record<string, number> = {};
  for (const file of all) if (!first.includes(file)) lazy[file.slice(DIST.length + 1)] = gzipBytes(file);
  return {
    first_load_js_gzip_bytes: first.reduce((sum, file) => sum + gzipBytes(file), 0),
    first_load_js_bytes: first.reduce((sum, file) => sum + statSync(file).size, 0),
    lazy_js_gzip_bytes: lazy,
  };
}


const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** Makes a sign-in link for `accountId` in the SQLite `file` (as `openrush dashboard link` does). */
export async function signInLink(file: string, accountId: string, baseUrl: string): Promise<string> {
  const store = openSqliteStore(file);
  try {
    const { token } = await issueSignInLink({ store, clock: systemClock }, accountId);
    return signInLinkUrl(baseUrl, token);
  } finally {
    await store.close();
  }
}

// Installed before the page's own scripts: notes when each watched selector first matches.
const WATCH = `(() => {
  const marks = (window.__openrushMarks = {});
  const selectors = __SELECTORS__;
  const check = () => {
    for (const selector of selectors) if (!(selector in marks) && document.querySelector(selector)) marks[selector] = performance.now();
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
})();`;

export async function benchDashboard(baseUrl: string, link: string, loads: number): Promise<DashboardBench> {
  const pages = [
    { path: '/dashboard', selector: 'main table tbody tr' },
    { path: '/dashboard/activity', selector: 'table.records tbody tr' },
  ];
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    // Sign in once through the link, as a person would; keep only the cookie it leaves.
    const signing = await browser.newContext();
    const page = await signing.newPage();
    await page.goto(link);
    await page.waitForURL(/\/dashboard\/api-access/, { timeout: 30_000 });
    const state = await signing.storageState();
    await signing.close();
    if (!state.cookies.some((cookie) => cookie.name === 'openrush_session')) throw new Error('signing in through the link left no session cookie');

    const SHELL = 'header.topbar';
    const script = WATCH.replace('__SELECTORS__', JSON.stringify([SHELL, ...pages.map((entry) => entry.selector)]));
    const results: PageLoads[] = pages.map((entry) => ({ ...entry, loads_ms: [], median_ms: 0, shell_median_ms: 0 }));
    const shells = new Map<PageLoads, number[]>(results.map((result) => [result, []]));
    // One warm-up load of each (the server's first requests compile its code paths), not counted.
    for (let round = -1; round < loads; round++) {
      for (const result of results) {
        const context = await browser.newContext({ storageState: { cookies: state.cookies, origins: [] }, viewport: { width: 1360, height: 900 } });
        await context.addInitScript(script);
        const tab = await context.newPage();
        await tab.goto(`${baseUrl}${result.path}`, { waitUntil: 'commit' });
        const handle = await tab
          .waitForFunction((selector) => (globalThis as unknown as { __openrushMarks: Record<string, number> }).__openrushMarks[selector], result.selector, { timeout: 30_000 })
          .catch(async (error: unknown) => {
            throw new Error(`${result.path}: no ${result.selector} within 30 s (at ${tab.url()}: ${(await tab.locator('main').innerText().catch(() => '')).slice(0, 300)})`, { cause: error });
          });
        const ms = (await handle.jsonValue()) as number;
        const shell = (await tab.evaluate((selector) => (globalThis as unknown as { __openrushMarks: Record<string, number> }).__openrushMarks[selector], SHELL)) ?? ms;
        if (round >= 0) {
          result.loads_ms.push(Math.round(ms));
          shells.get(result)!.push(Math.round(shell));
        }
        await context.close();
      }
    }
    for (const result of results) {
      result.median_ms = median(result.loads_ms);
      result.shell_median_ms = median(shells.get(result)!);
    }
    return { loads, pages: results, ...dashboardSizes() };
  } finally {
    await browser.close();
  }
}
