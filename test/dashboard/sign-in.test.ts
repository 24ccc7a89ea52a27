// The sign-in page in a real browser: a link's token is taken from the fragment (never sent in a URL, so never
// in a server log, a proxy or a Referer), removed from the address bar, exchanged with POST /v1/sessions; a link
// the server refuses shows the problem's detail and how to get a new link.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Problem } from '../helpers/api-keys.ts';
import { jsonInit } from '../helpers/server.ts';
import { expectText, openDashboard, outsideRequests, screenshot, seriousViolations, type DashboardSession } from './browser.ts';

let session: DashboardSession;
let page: Page;
let base: string;

let setupError: unknown;
beforeAll(async () => {
  try {
    session = await openDashboard();
    page = session.page;
    base = session.server.url;
  } catch (error) {
    setupError = error;
  }
}, 120_000);

afterAll(async () => {
  await session?.close();
});

describe('sign-in page', () => {
  it('offers the ways in: the sign-in link and how to get one', async () => {
    if (setupError) throw setupError;
    await page.goto(`${base}/dashboard/sign-in`);
    await page.getByRole('heading', { level: 1, name: 'Sign in to the OpenRush Dashboard' }).waitFor();
    await expectText(page.locator('main'), 'openrush dashboard link');
    await screenshot(page, 'sign-in');
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('takes a refused link’s token out of the address bar, never sends it in a URL, and shows the server’s detail and how to get a new link', async () => {
    if (setupError) throw setupError;
    const token = 'orsl_NotARealTokenNotARealToken0000';
    const requestsBefore = session.requests.length;
    await page.goto(`${base}/dashboard/sign-in#token=${token}`);
    await page.getByRole('heading', { level: 1, name: 'This sign-in link did not work' }).waitFor();
    expect(page.url()).toBe(`${base}/dashboard/sign-in`);
    expect(await page.evaluate(() => window.location.hash)).toBe('');
    await expectText(page.locator('main'), 'openrush dashboard link');
    // The token went in a request body only, never in a URL.
    const urls = session.requests.slice(requestsBefore);
    expect(urls.filter((url) => url.includes(token))).toEqual([]);

    // The page shows what the API answers for this token (asked again outside the browser).
    const answer = await session.server.call('/v1/sessions', jsonInit({ sign_in_link: token }, { key: null }));
    expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const refused = (await answer.json()) as Problem;
    expect(refused.status).toBe(401);
    await expectText(page.getByRole('alert'), refused.detail);
    await screenshot(page, 'sign-in-refused');
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('made no request to any other origin, and the page raised no error', () => {
    if (setupError) throw setupError;
    expect(outsideRequests(session.requests, base)).toEqual([]);
    expect(session.pageErrors).toEqual([]);
  });
});
