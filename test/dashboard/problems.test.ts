// What the page shows when the API answers with a problem it cannot help: a 503 from a database that cannot be
// reached shows the problem's title, status and detail, with a way to try again that works once the database is
// back. (A 429 is in api-access.test.ts; 401 sends the page to sign-in, in sign-in.test.ts.)
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../server/store/types.ts';
import { faultyStore } from '../helpers/faulty-store.ts';
import { expectText, expectVisible, dashboardSuite, seriousViolations, screenshot, type DashboardSession } from './browser.ts';
import type { Problem } from '../helpers/api-keys.ts';

let session: DashboardSession;
let page: Page;
let base: string;
let failing = false;

const suite = dashboardSuite({
  server: () => {
    const { database } = faultyStore((real: Store) => ({
      listApiKeys: (...args: Parameters<Store['listApiKeys']>) =>
        failing ? Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })) : real.listApiKeys(...args),
    }));
    return { database };
  },
  ready: (opened) => {
    session = opened;
    ({ page } = opened);
    base = opened.server.url;
  },
});

describe('problems the page cannot help', () => {
  it('a 503 shows its detail, and Try again works once the database is back', async () => {
    suite.check();
    failing = true;
    const answer = await session.server.call('/v2/api-keys');
    expect(answer.status).toBe(503);
    const problem = (await answer.json()) as Problem;

    await page.goto(`${base}/dashboard/api-access`);
    // The page reads the keys twice (the table, and the connected agents among them): both say why.
    for (const region of ['Keys', 'Connected agents']) {
      const shown = page.getByRole('region', { name: region }).getByRole('alert').filter({ hasText: '503' });
      await expectText(shown, problem.detail);
      await expectText(shown, problem.title);
    }
    const alert = page.getByRole('region', { name: 'Keys' }).getByRole('alert');
    await screenshot(page, 'api-access-503');
    expect(await seriousViolations(page)).toEqual([]);

    failing = false;
    // One Try again reads both again.
    await alert.getByRole('button', { name: 'Try again' }).click();
    await expectVisible(page.getByRole('table', { name: 'API keys, newest first' }));
    await expectText(page.getByRole('region', { name: 'Connected agents' }), 'No agent is connected');
    expect(await page.getByRole('alert').count()).toBe(0);
  });
});
