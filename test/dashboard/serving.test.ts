// How the server serves the Dashboard, read over HTTP from a real server (test database: SQLite or PostgreSQL)
// and from the built files: the CSP and other headers on every answer, index.html for every app route and never
// cached, hashed assets cached for good, no inline script and nothing from another origin in the page, a clear
// page when the app is not built, no usage record for loading it, and the first load's size budget.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../scripts/build.ts';
import { loadConfig } from '../../server/config.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureDashboardBuilt, ROOT } from './browser.ts';

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
// The consent page too (an agent's OAuth sign-in lands there): never cached, never framed (frame-ancestors 'none'
// in the CSP: no other site can overlay it and trick a click on Approve).
const APP_ROUTES = [
  '/dashboard',
  '/dashboard/',
  '/dashboard/api-access',
  '/dashboard/activity',
  '/dashboard/billing',
  '/dashboard/setup',
  '/dashboard/sign-in',
  '/dashboard/consent?authorization=Xq3b8c9dE0fG1hI2jK3lM4nO5pQ6rS7tU8vW9xY0zAB',
];
/** The issue's budget for the first load: gzipped JavaScript. */
const FIRST_LOAD_BUDGET_BYTES = 150 * 1024;

let server: TestServer;
const built = join(ROOT, DASHBOARD_DIR);

beforeAll(async () => {
  ensureDashboardBuilt();
  server = await startTestServer();
}, 120_000);

afterAll(async () => {
  await server?.close();
});

function expectPageHeaders(response: Response): void {
  expect(response.headers.get('content-security-policy')).toBe(CSP);
  expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
}

/** The <script src> and <link href> URLs of the built index.html, and whether it has any inline script. */
function pageParts(html: string) {
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
  return {
    inlineScripts: scripts.filter(([, attributes, body]) => !/\bsrc=/.test(attributes!) || body!.trim() !== ''),
    scriptUrls: scripts.map(([, attributes]) => /\bsrc="([^"]+)"/.exec(attributes!)?.[1]).filter((url): url is string => url !== undefined),
    preloadUrls: [...html.matchAll(/<link\b[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g)].map(([, url]) => url!),
    urls: [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map(([, url]) => url!),
    inlineStyles: /<style\b|\sstyle="/.test(html),
  };
}

describe('serving the Dashboard', () => {
  it('answers every app route with index.html, never cached, with the CSP, no-referrer and nosniff', async () => {
    const index = readFileSync(join(built, 'index.html'), 'utf8');
    for (const path of APP_ROUTES) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type'), path).toMatch(/^text\/html/);
      expect(response.headers.get('cache-control'), path).toBe('no-store');
      expectPageHeaders(response);
      expect(await response.text(), path).toBe(index);
    }
    const head = await fetch(`${server.url}/dashboard/setup`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-security-policy')).toBe(CSP);
  });

  it('serves hashed assets cached for good, and a missing asset is a 404, not the page', async () => {
    const { scriptUrls, urls } = pageParts(readFileSync(join(built, 'index.html'), 'utf8'));
    expect(scriptUrls.length).toBeGreaterThan(0);
    for (const url of urls) {
      const response = await fetch(`${server.url}${url}`);
      expect(response.status, url).toBe(200);
      expect(response.headers.get('cache-control'), url).toBe('public, max-age=31536000, immutable');
      expectPageHeaders(response);
    }
    const missing = await fetch(`${server.url}/dashboard/assets/index-00000000.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('cache-control')).toBe('no-store');
    expect(await missing.text()).not.toContain('<div id="root">');
    // Nothing outside assets/ is reachable through it.
    for (const path of ['/dashboard/assets/..%2f..%2fpackage.json', '/dashboard/assets/%2e%2e/index.html', '/dashboard/assets/../../package.json']) {
      const response = await fetch(`${server.url}${path}`);
      expect(await response.text(), path).not.toContain('"name": "openrush"');
    }
  });

  it('refuses other methods with 405 and Allow: GET, HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const response = await fetch(`${server.url}/dashboard/api-access`, { method });
      expect(response.status, method).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD');
    }
  });

  it('the page has no inline script or style and loads nothing from another origin', () => {
    const html = readFileSync(join(built, 'index.html'), 'utf8');
    const parts = pageParts(html);
    expect(parts.inlineScripts.map(([whole]) => whole)).toEqual([]);
    expect(parts.inlineStyles).toBe(false);
    for (const url of parts.urls) expect(url, 'a same-origin path').toMatch(/^\/dashboard\/assets\//);
  });

  it('loading the Dashboard leaves no usage record, even with a key sent', async () => {
    const before = await server.database.countRows('usage_records');
    for (const path of ['/dashboard', '/dashboard/api-access']) {
      expect((await server.call(path)).status).toBe(200);
    }
    expect(await server.database.countRows('usage_records')).toBe(before);
    // An API call right after is recorded as always (the count is not stuck).
    expect((await server.call('/v1/me/credits')).status).toBe(200);
    await expect.poll(() => server.database.countRows('usage_records')).toBe(before + 1);
  });

  it('says how to build it when the app is not built (503), with the same headers', async () => {
    const bare = await startTestServer({ dashboard: { dir: join(ROOT, 'test-results/no-dashboard-here') } });
    try {
      expect(existsSync(join(ROOT, 'test-results/no-dashboard-here/index.html'))).toBe(false);
      for (const path of ['/dashboard', '/dashboard/setup']) {
        const response = await fetch(`${bare.url}${path}`);
        expect(response.status).toBe(503);
        expect(response.headers.get('cache-control')).toBe('no-store');
        expectPageHeaders(response);
        expect(await response.text()).toContain('npm run build');
      }
      // The API is not affected.
      expect((await bare.call('/v1/me/credits')).status).toBe(200);
    } finally {
      await bare.close();
    }
  });

  it('allows the configured Supabase project in connect-src, and nothing else', async () => {
    const base = loadConfig({});
    const supabase = await startTestServer({
      config: { dashboard: { ...base.dashboard, supabase: { url: 'https://abcdefghijklmnop.supabase.co', anonKey: 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl' } } },
    });
    try {
      const csp = (await fetch(`${supabase.url}/dashboard`)).headers.get('content-security-policy');
      expect(csp).toBe(CSP.replace("connect-src 'self'", "connect-src 'self' https://abcdefghijklmnop.supabase.co"));
    } finally {
      await supabase.close();
    }
  });
});

describe('the built Dashboard', () => {
  it(`loads at most ${FIRST_LOAD_BUDGET_BYTES / 1024} KB of gzipped JavaScript first, without the Supabase library or the chart library`, () => {
    const { scriptUrls, preloadUrls } = pageParts(readFileSync(join(built, 'index.html'), 'utf8'));
    const firstLoad = [...new Set([...scriptUrls, ...preloadUrls])].map((url) => join(built, url.replace(/^\/dashboard\//, '')));
    const sizes = firstLoad.map((file) => gzipSync(readFileSync(file), { level: 9 }).length);
    const total = sizes.reduce((sum, size) => sum + size, 0);
    expect(total, `first load: ${firstLoad.map((file, i) => `${file} ${sizes[i]} B`).join(', ')}`).toBeLessThanOrEqual(FIRST_LOAD_BUDGET_BYTES);
    const text = firstLoad.map((file) => readFileSync(file, 'utf8')).join('\n');
    // React's production build (a development build is larger and logs to the console).
    expect(text.includes('Download the React DevTools'), 'React development build in the first load').toBe(false);
    // Markers of the two libraries loaded later: supabase-js's auth client, uPlot's plot overlay class.
    expect(text.includes('GoTrueClient'), 'supabase-js in the first load').toBe(false);
    expect(text.includes('u-over'), 'uPlot in the first load').toBe(false);
  });
});
