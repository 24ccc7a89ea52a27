// The sign-in page in a real browser: a link's token is taken from the fragment (never sent in a URL, so never
// in a server log, a proxy or a Referer), removed from the address bar, exchanged with POST /v1/sessions; a link
// the server refuses shows the problem's detail and how to get a new link.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { Problem } from '../helpers/api-keys.ts';
import { jsonInit } from '../helpers/server.ts';
import { expectText, dashboardSuite, openPage, outsideRequests, screenshot, seriousViolations, signIn, type DashboardSession, type PageWorld } from './browser.ts';

let session: DashboardSession;
let page: Page;
let base: string;

// Not signed in at first: signing in is what these tests are about.
const suite = dashboardSuite({
  signIn: false,
  ready: (opened) => {
    session = opened;
    ({ page } = opened);
    base = opened.server.url;
  },
});

describe('sign-in page', () => {
  it('offers the ways in: the sign-in link and how to get one', async () => {
    suite.check();
    await page.goto(`${base}/dashboard/sign-in`);
    await page.getByRole('heading', { level: 1, name: 'Sign in to the OpenRush Dashboard' }).waitFor();
    await expectText(page.locator('main'), 'openrush dashboard link');
    await screenshot(page, 'sign-in');
    expect(await seriousViolations(page)).toEqual([]);
  });

  it('takes a refused link’s token out of the address bar, never sends it in a URL, and shows the server’s detail and how to get a new link', async () => {
    suite.check();
    const token = 'orsl_NotARealTokenNotARealToken0000';
    const requestsBefore = session.requests.length;
    await page.goto(`${base}/dashboard/sign-in#token=${token}`);
    await page.getByRole('heading', { level: 1, name: 'This sign-in link did not work' }).waitFor();
    expect(page.url()).toBe(`${base}/dashboard/sign-in`);
    expect(await page.evaluate(() => (globalThis as unknown as PageWorld).location.hash)).toBe('');
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

  it('signs in through the printed link: the session is an HttpOnly cookie no page script can read, it survives a reload, and the page’s requests are recorded as auth_source session', async () => {
    suite.check();
    const link = await signIn(session);
    expect(new URL(link).hash).toMatch(/^#token=orsl_/);
    // Landed on API access, without the token in the address bar.
    expect(page.url()).toBe(`${base}/dashboard/api-access`);
    await openPage(page, base, '/dashboard/api-access');
    const cookies = await session.context.cookies(base);
    const cookie = cookies.find((item) => item.name === 'openrush_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    const stored = await page.evaluate(() => {
      const world = globalThis as unknown as { document: { cookie: string }; localStorage: { length: number; key(i: number): string | null; getItem(k: string): string | null }; sessionStorage: { length: number } };
      const local: string[] = [];
      for (let i = 0; i < world.localStorage.length; i++) local.push(`${world.localStorage.key(i)}=${world.localStorage.getItem(world.localStorage.key(i)!)}`);
      return { cookie: world.document.cookie, local, session: world.sessionStorage.length };
    });
    expect(stored.cookie).not.toContain('openrush_session');
    expect(stored.local.filter((entry) => /orss_|orsl_|or_[0-9A-Za-z]{20}/.test(entry))).toEqual([]);
    expect(stored.session).toBe(0);

    await page.reload();
    await openPage(page, base, '/dashboard/api-access');
    expect(await page.getByRole('table').count()).toBe(1);
    // The shell names the account signed in to (GET /v1/me).
    await expectText(page.getByRole('banner'), 'Test account');

    const recorded = await session.server.database.query<{ auth_source: string; credential_id: string | null }>(
      "select auth_source, credential_id from usage_records where endpoint = '/v2/api-keys'",
    );
    expect(recorded.filter((record) => record.auth_source === 'session' && record.credential_id === null).length).toBeGreaterThan(0);
  });

  it('refuses the same link the second time, with the server’s reason', async () => {
    suite.check();
    const link = await signIn(session);
    await page.goto(link);
    await page.getByRole('heading', { level: 1, name: 'This sign-in link did not work' }).waitFor();
    await expectText(page.getByRole('alert'), 'This sign-in link was already used.');
    await expectText(page.locator('main'), 'openrush dashboard link');
  });

  it('signs out: the session ends on the server (a kept copy of the cookie is refused) and the pages go to sign-in', async () => {
    suite.check();
    await signIn(session);
    await openPage(page, base, '/dashboard/setup');
    const kept = (await session.context.cookies(base)).find((item) => item.name === 'openrush_session')!;
    const withKeptCookie = () => fetch(`${base}/v1/me/credits`, { headers: { Cookie: `openrush_session=${kept.value}` } });
    expect((await withKeptCookie()).status).toBe(200);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${base}/dashboard/sign-in?signed-out=1`);
    await expectText(page.getByRole('status'), 'You are signed out.');
    expect((await session.context.cookies(base)).find((item) => item.name === 'openrush_session')).toBeUndefined();
    expect((await withKeptCookie()).status).toBe(401);

    // Any page now sends the browser to sign in, with the way back to it.
    await page.goto(`${base}/dashboard/api-access`);
    await page.waitForURL(`${base}/dashboard/sign-in?expired=1&next=%2Fdashboard%2Fapi-access`);
    await expectText(page.getByRole('status'), 'Sign in to continue');
  });

  it('made no request to any other origin, and the page raised no error', () => {
    suite.check();
    expect(outsideRequests(session.requests, base)).toEqual([]);
    expect(session.pageErrors).toEqual([]);
  });
});
