// The docs page as a reader sees it: built from the contract (scripts/docs.ts) into a temporary folder, served from
// 127.0.0.1 by `npm run docs:serve`'s server, opened in Debian's headless Chromium (driven by playwright-core).
// It holds that every operation of the bundled contract is on the page with its own curl and TypeScript client
// samples, and that the page makes no request to any host but 127.0.0.1 (data: and blob: URLs stay in the page).
//
// Redoc 3 renders one route at a time (hash routing: #/credits, #/api-keys/listapikeys, …), not the whole contract
// on load (the sections below the one shown appear only as the reader scrolls): so the test goes through the sidebar
// as a reader does, each tag and then each of its operations, and reads the section each route renders. A section
// shows one sample at a time behind a language dropdown: the test picks "curl", reads it, picks "TypeScript client",
// reads that. An accessibility scan (axe-core) of the overview and of one operation of each tag, in the light and the
// dark theme (Redoc follows the system's colour scheme), finds no serious or critical violation.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import axe from 'axe-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDocs } from '../../scripts/docs.ts';
import { serveDocs } from '../../scripts/docs-serve.ts';

const root = resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface Operation {
  method: string;
  path: string;
  operationId: string;
  summary: string;
}
const bundle = JSON.parse(readFileSync(join(root, 'generated/openapi.json'), 'utf8')) as Record<string, any>;
const operations: Operation[] = Object.entries<Record<string, any>>(bundle['paths']).flatMap(([path, item]) =>
  METHODS.filter((method) => item[method]).map((method) => ({
    method,
    path,
    operationId: String(item[method].operationId),
    summary: String(item[method].summary),
  })),
);

interface RenderedOperation {
  id: string;
  title: string;
  curl: string;
  typescript: string;
}

let work: string;
let server: Server;
let browser: Browser;
let page: Page;
let base: string;
const requests: string[] = [];
const pageErrors: string[] = [];

// A setup that fails (no Chromium, say) fails each test with its error, rather than leaving them counted as skipped.
let setupError: unknown;
beforeAll(async () => {
  try {
    await setUp();
  } catch (error) {
    setupError = error;
  }
}, 60_000);

async function setUp(): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`The docs page test needs Debian's Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it).`);
  }
  work = mkdtempSync(join(tmpdir(), 'openrush-docs-page-'));
  const file = join(work, 'index.html');
  buildDocs(file);
  server = await serveDocs(file, 0);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('request', (request) => requests.push(request.url()));
  page.on('pageerror', (error) => pageErrors.push(error.message));
}

afterAll(async () => {
  await browser?.close();
  await new Promise((done) => (server ? server.close(done) : done(undefined)));
  if (work) rmSync(work, { recursive: true, force: true });
});

const LANGUAGES = { curl: 'curl', typescript: 'TypeScript client' } as const;

/** An operation's section (rendered once its route is shown), with its curl and TypeScript client samples. */
async function readOperation(id: string): Promise<RenderedOperation> {
  const section = page.locator(`[data-item-kind="httpItem"][id="${id}"]`);
  // The route is the operation's, and its section is rendered: a section further down the tag can be in the page
  // before its content is (Redoc renders it as the reader scrolls), so the heading is waited for, not just read.
  await page.waitForFunction((hash) => (globalThis as unknown as { location: { hash: string } }).location.hash === hash, `#/${id}`, { timeout: 10_000 });
  await section.waitFor({ timeout: 10_000 });
  const heading = section.locator('h2').first();
  await heading.waitFor({ state: 'visible', timeout: 10_000 });
  await expect.poll(async () => (await heading.innerText()).trim(), { timeout: 10_000 }).not.toBe('');
  const title = (await heading.innerText()).trim();
  const samples = section.locator('[data-testid="right-panel"]').filter({ has: page.locator('[data-testid="source-code"]') }).first();
  const code = samples.locator('[data-testid="source-code"]').first();
  // The samples' language dropdown (the panel's other dropdown picks the server); it shows the language last picked
  // on any operation, so each sample is picked explicitly.
  const language = samples.locator('[data-testid="dropdown"] > button', { hasText: /^(curl|TypeScript client)$/ });
  const read = async (label: string, marker: string): Promise<string> => {
    if ((await code.count()) === 0 || (await language.count()) !== 1) return '';
    if ((await language.innerText()).trim() !== label) {
      await language.click();
      // The dropdown's menu (Redoc may render it outside the panel): the visible one, just opened.
      const choice = page.locator('[role="menuitem"]:visible', { hasText: new RegExp(`^${label}$`) }).first();
      if (!(await choice.waitFor({ timeout: 2_000 }).then(() => true, () => false))) return '';
      await choice.click();
    }
    await samples.locator('[data-testid="source-code"]', { hasText: marker }).waitFor({ timeout: 2_000 }).catch(() => undefined);
    return code.innerText();
  };
  const curl = await read(LANGUAGES.curl, 'curl -X');
  const typescript = await read(LANGUAGES.typescript, 'createOpenRushClient');
  return { id, title, curl, typescript };
}

// Bounds against a page that hangs, not timings: the walk clicks through every operation (about 0.6 s each here,
// several times that on a CI machine running other test files beside it), the scan runs axe on each tag, twice.
const OPERATIONS_BOUND = 30_000 + operations.length * 3_000;
const SCAN_BOUND = 180_000;

describe('docs page in headless Chromium', () => {
  const rendered = new Map<string, RenderedOperation>();

  it('shows every operation of the contract with its own curl and TypeScript client samples', async () => {
    if (setupError) throw setupError;
    await page.goto(base, { waitUntil: 'load' });
    const menu = page.locator('[data-component-name="Menu/MenuItem"].menu-item-type-group > a');
    await menu.first().waitFor({ timeout: 10_000 });
    const tags = await menu.evaluateAll((links) => links.map((link) => link.getAttribute('href') ?? ''));
    expect(tags.length, 'the sidebar lists the contract’s tags').toBeGreaterThan(0);
    for (const tag of tags) {
      // A reader clicks a tag in the sidebar: it opens on that tag's operations; then clicks each of them (Redoc
      // renders the sections below the one shown only as the reader scrolls to them).
      await page.locator(`[data-component-name="Menu/MenuItem"].menu-item-type-group > a[href="${tag}"]`).click();
      // The group opens on the tag's operations, linked as `#/tag/operation`.
      const links = page.locator(`[data-component-name="Menu/MenuItem"] > a[href^="#${tag}/"]`);
      await links.first().waitFor({ timeout: 10_000 });
      for (const href of await links.evaluateAll((elements) => elements.map((element) => element.getAttribute('href') ?? ''))) {
        await page.locator(`[data-component-name="Menu/MenuItem"] > a[href="${href}"]`).click();
        const operation = await readOperation(href.replace(/^#\//, ''));
        rendered.set(operation.title, operation);
      }
    }
    mkdirSync(join(root, 'test-results'), { recursive: true });
    await page.screenshot({ path: join(root, 'test-results/docs-page.png') });

    const missing = operations.filter((operation) => !rendered.has(operation.summary));
    expect(missing.map((operation) => `${operation.operationId} (${operation.summary})`), 'operations not on the page').toEqual([]);
    for (const operation of operations) {
      const { curl, typescript, id } = rendered.get(operation.summary)!;
      const name = `${operation.operationId} (#/${id})`;
      // Its own samples: the curl names this method and this path, the TypeScript client calls this method on this
      // path (the path's parameters filled in by the curl, kept as a template by the client).
      const concretePath = new RegExp(`^${operation.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
      const [, curlMethod, curlUrl] = curl.match(/curl -X (\S+) '([^']+)'/) ?? [];
      expect(curlUrl, `${name}: a curl sample`).toBeDefined();
      expect(curlMethod, `${name}: curl method`).toBe(operation.method.toUpperCase());
      expect(new URL(curlUrl!).pathname, `${name}: curl path`).toMatch(concretePath);
      expect(typescript, `${name}: a TypeScript client sample`).toContain(`import { createOpenRushClient } from '@openrush/client';`);
      expect(typescript, `${name}: TypeScript call`).toContain(`openrush.${operation.method.toUpperCase()}('${operation.path}'`);
    }
    expect(rendered.size, 'no operation on the page that the contract lacks').toBe(operations.length);
    expect(pageErrors, 'errors thrown in the page').toEqual([]);
  }, OPERATIONS_BOUND);

  it('has no serious or critical accessibility violation (axe-core), light and dark', async () => {
    if (setupError) throw setupError;
    const found: string[] = [];
    for (const colorScheme of ['light', 'dark'] as const) {
      const reader = await browser.newPage({ viewport: { width: 1400, height: 1000 }, colorScheme });
      reader.on('request', (request) => requests.push(request.url()));
      const scan = async (where: string) => {
        await reader.evaluate(axe.source);
        const { violations } = await reader.evaluate(() => (globalThis as unknown as { axe: typeof axe }).axe.run());
        for (const violation of violations) {
          if (violation.impact !== 'serious' && violation.impact !== 'critical') continue;
          const nodes = violation.nodes.slice(0, 3).map((node) => `${node.target.join(' ')}: ${node.failureSummary ?? ''}`);
          found.push(`${colorScheme} ${where}: ${violation.id} (${violation.impact}) ${nodes.join(' | ')}`);
        }
      };
      await reader.goto(base, { waitUntil: 'load' });
      const menu = reader.locator('[data-component-name="Menu/MenuItem"].menu-item-type-group > a');
      await menu.first().waitFor({ timeout: 10_000 });
      await scan('overview');
      for (const tag of await menu.evaluateAll((links) => links.map((link) => link.getAttribute('href') ?? ''))) {
        await reader.locator(`[data-component-name="Menu/MenuItem"].menu-item-type-group > a[href="${tag}"]`).click();
        // The tag's own link is `#/credits` or `/credits` (as Redoc renders it); its operations are `#/credits/…`.
        const first = reader.locator(`[data-component-name="Menu/MenuItem"] > a[href^="#/${tag.replace(/^#?\//, '')}/"]`).first();
        await first.waitFor({ timeout: 10_000 });
        const href = (await first.getAttribute('href')) ?? '';
        await first.click();
        await reader.locator(`[data-item-kind="httpItem"][id="${href.replace(/^#\//, '')}"]`).waitFor({ timeout: 10_000 });
        await scan(href);
      }
      await reader.close();
    }
    expect(found, 'serious or critical accessibility violations').toEqual([]);
  }, SCAN_BOUND);

  it('makes no request that leaves 127.0.0.1', () => {
    if (setupError) throw setupError;
    expect(requests.length, 'the page was loaded').toBeGreaterThan(0);
    const outside = requests.filter((url) => {
      const { protocol, hostname } = new URL(url);
      if (protocol === 'data:' || protocol === 'blob:') return false;
      return hostname !== '127.0.0.1';
    });
    expect(outside, 'requests to other hosts').toEqual([]);
  });
});
