// API access in a real browser (Debian's Chromium, playwright-core) against a real server with the built app, on
// the test database (SQLite, or PostgreSQL with OPENRUSH_TEST_STORE=postgres): the keys listed, a key made in the
// page and used from outside the browser, revoked, disabled and enabled, rotated, a create the server refuses, a
// 429 shown from its problem document, no request leaving the server's origin, an axe-core scan, screenshots.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { apiKeysOf, KEY_PATTERN, type Problem } from '../helpers/api-keys.ts';
import {
  expectFocused,
  expectHidden,
  expectText,
  expectVisible,
  dashboardSuite,
  openPage,
  outsideRequests,
  screenshot,
  seriousViolations,
  useKey,
  type DashboardSession,
  type PageWorld,
} from './browser.ts';

let session: DashboardSession;
let page: Page;
let base: string;

// A setup that fails (no Chromium, say) fails each test with its error, rather than leaving them counted as skipped.
const suite = dashboardSuite({
  ready: (opened) => {
    session = opened;
    ({ page } = opened);
    base = opened.server.url;
  },
});

function row(name: string) {
  return page.getByRole('row').filter({ has: page.getByRole('rowheader', { name, exact: true }) });
}

/** Makes a key through the page's form; returns the raw key the page shows once. */
async function createInPage(name: string, fill: (page: Page) => Promise<void> = async () => undefined): Promise<string> {
  await page.getByLabel('Name', { exact: true }).fill(name);
  await fill(page);
  await page.getByRole('button', { name: 'Create key' }).click();
  const raw = page.getByTestId('raw-key');
  await raw.waitFor();
  return (await raw.innerText()).trim();
}

async function status(key: string): Promise<number> {
  return (await fetch(`${base}/v1/me/credits`, { headers: { Authorization: `Bearer ${key}` } })).status;
}

describe('API access', () => {
  it('lists every key of the account with its prefix, status, permissions, project and dates', async () => {
    suite.check();
    await openPage(page, base, '/dashboard');
    // /dashboard opens on API access.
    await expect.poll(() => new URL(page.url()).pathname).toBe('/dashboard/api-access');
    expect(await page.getByRole('link', { name: 'API access' }).getAttribute('aria-current')).toBe('page');
    const [starter] = (await apiKeysOf(session.server).page(session.server.account.key)).data;
    const starterRow = page.getByRole('row').filter({ hasText: starter!.token_prefix });
    expect(await starterRow.count()).toBe(1);
    const text = await starterRow.innerText();
    expect(text).toContain(starter!.name);
    expect(text).toContain('Active');
    expect(text).toContain('Full access');
    expect(text).toContain('All projects');
  });

  it('creates a key, shows it once with the warning and a copy button; the key works outside the browser and its last use shows after a reload', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    const key = await createInPage('CI deploy');
    expect(key).toMatch(KEY_PATTERN);
    await expectText(page.getByRole('note'), 'returned only once');
    await page.getByRole('button', { name: 'Copy key' }).click();
    await expectVisible(page.getByText('Copied', { exact: true }));
    expect(await page.evaluate(() => (globalThis as unknown as PageWorld).navigator.clipboard.readText())).toBe(key);
    await expectText(row('CI deploy'), 'Never');

    // Used from outside the browser: a plain fetch with the key the page showed.
    expect(await status(key)).toBe(200);
    await page.reload();
    await openPage(page, base, '/dashboard/api-access');
    // Shown once: after the reload the raw key is nowhere on the page.
    expect(await page.content()).not.toContain(key);
    expect(await row('CI deploy').locator('[data-field="last_used_at"]').innerText()).not.toBe('Never');
    const [made] = (await apiKeysOf(session.server).page(session.server.account.key)).data.filter((item) => item.name === 'CI deploy');
    expect(made!.last_used_at).not.toBeNull();
  });

  it('revokes a key after a confirmation, and the next call with it is refused', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    const key = await createInPage('To revoke');
    await page.getByRole('button', { name: 'I have copied it' }).click();
    expect(await status(key)).toBe(200);

    await row('To revoke').getByRole('button', { name: 'Revoke To revoke' }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke “To revoke”?' });
    await expectVisible(dialog);
    // Its warning is readable in full: nothing cut off at the dialog's edge.
    await expectText(dialog, 'This cannot be undone.');
    expect(await dialog.evaluate((element) => (element as unknown as { scrollWidth: number; clientWidth: number }).scrollWidth <= (element as unknown as { clientWidth: number }).clientWidth)).toBe(true);
    // Cancelling changes nothing.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expectHidden(dialog);
    expect(await status(key)).toBe(200);

    await row('To revoke').getByRole('button', { name: 'Revoke To revoke' }).click();
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await expectText(row('To revoke'), 'Revoked');
    expect(await status(key)).toBe(401);
  });

  it('shows only the keys of one status when asked', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    await page.getByLabel('Show').selectOption({ label: 'Revoked only' });
    await expect.poll(() => page.getByRole('rowheader').allInnerTexts()).toEqual(['To revoke']);
    await page.getByLabel('Show').selectOption({ label: 'Expired only' });
    await expectText(page.locator('main'), 'No keys with this status.');
    await page.getByLabel('Show').selectOption({ label: 'All keys' });
    await expect.poll(async () => (await page.getByRole('rowheader').allInnerTexts()).length).toBeGreaterThan(2);
  });

  it('disables and enables a key', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    const key = await createInPage('Switch');
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await row('Switch').getByRole('button', { name: 'Disable Switch' }).click();
    await expectText(row('Switch'), 'Disabled');
    expect(await status(key)).toBe(401);
    await row('Switch').getByRole('button', { name: 'Enable Switch' }).click();
    await expectText(row('Switch'), 'Active');
    expect(await status(key)).toBe(200);
  });

  it('rotates a key: the new secret is shown once and works; with no grace period the old one stops at once', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    const old = await createInPage('Rotated');
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await row('Rotated').getByRole('button', { name: 'Rotate Rotated' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rotate “Rotated”?' });
    await dialog.getByLabel('The old secret keeps working for').selectOption({ label: 'No time: it stops at once' });
    await dialog.getByRole('button', { name: 'Rotate key' }).click();
    const fresh = (await page.getByTestId('raw-key').innerText()).trim();
    expect(fresh).toMatch(KEY_PATTERN);
    expect(fresh).not.toBe(old);
    expect(await status(fresh)).toBe(200);
    expect(await status(old)).toBe(401);
  });

  it('makes a restricted key with a project, a budget, a rate limit and an expiry, and lists its constraints', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    await createInPage('Marketing agent', async (form) => {
      await form.getByLabel('Permissions').selectOption({ label: 'Restricted' });
      await form.getByLabel('Tools', { exact: true }).selectOption('use');
      await form.getByLabel('API keys').selectOption('none');
      await form.getByLabel('Project (empty: all projects)').fill('proj_marketing');
      await form.getByLabel('Expires (empty: never)').fill('2099-01-01T12:00');
      await form.getByLabel('Budget in credits').fill('250');
      await form.getByLabel('Budget period').selectOption({ label: 'Monthly' });
      await form.getByLabel('Rate limit, requests per minute (empty: none)').fill('30');
    });
    await page.getByRole('button', { name: 'I have copied it' }).click();
    const [made] = (await apiKeysOf(session.server).page(session.server.account.key)).data.filter((item) => item.name === 'Marketing agent');
    expect(made).toMatchObject({
      permission_mode: 3,
      project_scope: { single: { project_id: 'proj_marketing' } },
      constraints: { budget: { period: 3, amount: 250 }, rate_limit: { requests_per_minute: 30 } },
    });
    expect(made!.access).toMatchObject({ tools: 'use' });
    expect(new Date(made!.constraints.expires_at!).getUTCFullYear()).toBe(2099);
    const text = await row('Marketing agent').innerText();
    expect(text).toContain('proj_marketing');
    expect(text).toContain('250 credits monthly');
    expect(text).toContain('30 requests/min');
    expect(text).toContain('Restricted');
  });

  it('shows the problem detail of a create the server refuses (a restricted key cannot make a full-access key)', async () => {
    suite.check();
    const keys = apiKeysOf(session.server);
    const restricted = await keys.created(session.server.account.key, {
      name: 'Restricted admin',
      permission_mode: 3,
      access: { api_keys: 'write', credits: 'read' },
    });
    const body = { name: 'Escalated', permission_mode: 1 };
    const refused = (await (await keys.create(restricted.api_key, body)).json()) as Problem;
    expect(refused.status).toBe(403);

    await useKey(session, restricted.api_key);
    try {
      await openPage(page, base, '/dashboard/api-access');
      await page.getByLabel('Name', { exact: true }).fill('Escalated');
      await page.getByLabel('Permissions').selectOption({ label: 'Full access' });
      await page.getByRole('button', { name: 'Create key' }).click();
      const alert = page.getByRole('alert');
      await expectText(alert, refused.detail);
      await expectText(alert, '403');
      expect(await page.getByTestId('raw-key').count()).toBe(0);
      await screenshot(page, 'api-access-refused');
    } finally {
      await useKey(session, null);
    }
  });

  it('shows what the server refuses of a signed-in person too, in its words (an expiry in the past)', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    const body = { name: 'Already expired', constraints: { expires_at: '2020-01-01T12:00:00.000Z' } };
    const refused = (await (await apiKeysOf(session.server).create(session.server.account.key, body)).json()) as Problem;
    expect(refused.status).toBe(400);
    await page.getByLabel('Name', { exact: true }).fill('Already expired');
    await page.getByLabel('Expires (empty: never)').fill('2020-01-01T12:00');
    await page.getByRole('button', { name: 'Create key' }).click();
    await expectText(page.getByRole('alert'), refused.detail);
    expect(await page.getByTestId('raw-key').count()).toBe(0);
    expect(await row('Already expired').count()).toBe(0);
  });

  it('pages through the keys, 25 at a time, newest first', async () => {
    suite.check();
    const keys = apiKeysOf(session.server);
    for (let i = 0; i < 26; i++) await keys.created(session.server.account.key, { name: `Batch ${String(i).padStart(2, '0')}` });
    await openPage(page, base, '/dashboard/api-access');
    const names = () => page.getByRole('rowheader').allInnerTexts();
    const first = await names();
    expect(first).toHaveLength(25);
    expect(first[0]).toBe('Batch 25');
    await page.getByRole('button', { name: 'Older keys' }).click();
    await expect.poll(async () => (await names())[0]).toBe('Batch 00');
    const second = await names();
    expect(second.filter((name) => first.includes(name))).toEqual([]);
    // The account's other keys are on this page, the starter key last.
    expect(second.at(-1)).toBe('Default key');
    await page.getByRole('button', { name: 'Newer keys' }).click();
    await expect.poll(async () => (await names())[0]).toBe('Batch 25');
    expect(await names()).toEqual(first);
    expect(await page.getByRole('button', { name: 'Newer keys' }).isDisabled()).toBe(true);
  });

  it('switches between light and dark, and keeps the choice', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    const background = () => page.evaluate(() => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string }; document: { body: unknown } }).getComputedStyle((globalThis as unknown as { document: { body: unknown } }).document.body).backgroundColor);
    expect(await background()).toBe('rgb(255, 255, 255)');
    await page.getByLabel('Theme').selectOption('dark');
    expect(await background()).toBe('rgb(20, 22, 27)');
    await page.reload();
    await openPage(page, base, '/dashboard/api-access');
    expect(await background()).toBe('rgb(20, 22, 27)');
    await page.getByLabel('Theme').selectOption('system');
    expect(await background()).toBe('rgb(255, 255, 255)');
  });

  it('shows a 429 from the API with its problem detail', async () => {
    suite.check();
    const limited = await apiKeysOf(session.server).created(session.server.account.key, {
      name: 'Slow',
      constraints: { rate_limit: { requests_per_minute: 1 } },
    });
    // The one request of this minute, spent outside the browser.
    expect(await status(limited.api_key)).toBe(200);
    const refused = (await (await fetch(`${base}/v2/api-keys`, { headers: { Authorization: `Bearer ${limited.api_key}` } })).json()) as Problem;
    expect(refused.status).toBe(429);
    await useKey(session, limited.api_key);
    try {
      await page.goto(`${base}/dashboard/api-access`);
      const alert = page.getByRole('alert').filter({ hasText: '429' });
      await expectText(alert, refused.detail);
      await expectVisible(alert.getByRole('button', { name: 'Try again' }));
    } finally {
      await useKey(session, null);
    }
  });

  it('passes an axe-core scan with no serious or critical violation, in light and dark', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    await screenshot(page, 'api-access');
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByRole('button', { name: /^Revoke / }).first().click();
    await expectVisible(page.getByRole('dialog'));
    expect(await seriousViolations(page), 'with the confirmation open').toEqual([]);
    await screenshot(page, 'api-access-revoke-dialog');
    await page.keyboard.press('Escape');
    await expectHidden(page.getByRole('dialog'));
  }, 45_000);

  it('is usable from the keyboard: skip link, navigation, focus moved to the new page', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/api-access');
    await page.keyboard.press('Tab');
    await expectFocused(page.getByRole('link', { name: 'Skip to content' }));
    await page.keyboard.press('Tab');
    await expectFocused(page.getByRole('link', { name: 'API access' }));
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await expectFocused(page.getByRole('link', { name: 'Setup' }));
    await page.keyboard.press('Enter');
    await expectFocused(page.getByRole('heading', { level: 1, name: 'Setup' }));
    expect(new URL(page.url()).pathname).toBe('/dashboard/setup');
  });

  it('made no request to any other origin, and the page raised no error', () => {
    suite.check();
    expect(session.requests.length).toBeGreaterThan(0);
    expect(outsideRequests(session.requests, base)).toEqual([]);
    expect(session.pageErrors).toEqual([]);
  });
});
