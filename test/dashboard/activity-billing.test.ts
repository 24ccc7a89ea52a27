// Activity and Billing in a real browser (Debian's Chromium, playwright-core) against a real server with the built
// app, on the test database (SQLite, or PostgreSQL with OPENRUSH_TEST_STORE=postgres): a tool called from outside
// the browser found in Activity (row and details), its charge in Billing's ledger linked back to it, the chart's
// accessible summary moved by its credits; Activity filtered (kept in the URL across a reload) showing only the
// matching records, and its CSV export equal to the API's records for the same filters; per-key budgets; "Buy
// credits" saying how credits are granted; a 429 shown from its problem document; axe-core; screenshots.
import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import { loadContract } from '../../server/contract.ts';
import { apiKeysOf, type ApiKeyWithSecret, type Problem } from '../helpers/api-keys.ts';
import { faultyStore } from '../helpers/faulty-store.ts';
import { jsonInit } from '../helpers/server.ts';
import { expectFocused, expectText, expectVisible, dashboardSuite, openPage, outsideRequests, screenshot, seriousViolations, type DashboardSession, useKey } from './browser.ts';
import { parseCsv } from '../../server/verify.ts';

type UsageRecord = components['schemas']['UsageRecord'];
type LedgerEntry = components['schemas']['LedgerEntry'];

let session: DashboardSession;
let page: Page;
let base: string;
/** A second key of the account, with a monthly budget: the "agent" whose calls the pages show. */
let agent: ApiKeyWithSecret;
const BUDGET = 100;

const suite = dashboardSuite({
  ready: async (opened) => {
    session = opened;
    ({ page } = opened);
    base = opened.server.url;
    agent = await apiKeysOf(session.server).created(session.server.account.key, {
      name: 'Agent',
      constraints: { budget: { period: 3, amount: BUDGET } },
    });
  },
});

async function callTool(key: string, domain: string): Promise<{ status: number; requestId: string }> {
  const response = await fetch(`${base}/v1/tools/inspect_domain`, jsonInit({ domain }, { headers: { Authorization: `Bearer ${key}` } }));
  await response.arrayBuffer();
  return { status: response.status, requestId: response.headers.get('x-request-id') ?? '' };
}

const MCP_ACCEPT = 'application/json, text/event-stream';
async function mcp(key: string, body: unknown, accept = MCP_ACCEPT): Promise<number> {
  const response = await fetch(`${base}/mcp`, jsonInit(body, { headers: { Authorization: `Bearer ${key}`, Accept: accept, 'MCP-Protocol-Version': '2025-06-18' } }));
  await response.arrayBuffer();
  return response.status;
}

/** Every record the API gives for these filters (following its Link pages), newest first. */
async function apiRecords(query: Record<string, string>): Promise<UsageRecord[]> {
  const records: UsageRecord[] = [];
  let next: string | undefined = `/v1/me/usage?${new URLSearchParams({ ...query, limit: '500' })}`;
  while (next) {
    const response = await session.server.call(next);
    expect(response.status).toBe(200);
    records.push(...((await response.json()) as UsageRecord[]));
    next = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get('link') ?? '')?.[1];
  }
  return records;
}

/** The numbers of the chart's text summary: "Last 30 days: 12 requests (API 10, MCP 2) and 33 credits (API 30, MCP 3)." */
async function chartSummary(): Promise<{ requests: number; credits: number; apiCredits: number; mcpCredits: number }> {
  const summary = page.locator('#usage-chart-summary');
  await summary.waitFor();
  // Digits only: thousands separators out (1,234 → 1234), the list's commas kept.
  const text = (await summary.innerText()).replace(/(\d)[,.\u202f\u00a0](?=\d{3}\b)/g, '$1');
  const match = /([0-9]+) requests \(API ([0-9]+), MCP ([0-9]+)\) and ([0-9]+) credits \(API ([0-9]+), MCP ([0-9]+)\)/.exec(text);
  expect(match, text).not.toBeNull();
  const [, requests, , , credits, apiCredits, mcpCredits] = match!.map(Number);
  return { requests: requests!, credits: credits!, apiCredits: apiCredits!, mcpCredits: mcpCredits! };
}

/** The record ids of Activity's table, top to bottom. */
async function shownIds(): Promise<string[]> {
  return page.locator('table.records tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-record-id') ?? ''));
}


describe('Activity and Billing', () => {
  it('a tool called from outside the browser shows in Activity with its details, moves the chart, and its charge in Billing links back to it', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/activity');
    const before = await chartSummary();

    const call = await callTool(agent.api_key, 'shop.example.co.uk');
    expect(call.status).toBe(200);
    const [record] = await apiRecords({ credential_id: agent.api_key_id, tool: 'inspect_domain' });
    expect(record!.request_id).toBe(call.requestId);

    await openPage(page, base, '/dashboard/activity');
    const after = await chartSummary();
    // The page's own requests (its session's) are recorded too: requests grow by at least the call.
    expect(after.credits).toBe(before.credits + 3);
    expect(after.apiCredits).toBe(before.apiCredits + 3);
    expect(after.requests).toBeGreaterThan(before.requests);

    const row = page.locator(`tr[data-record-id="${record!.id}"]`);
    await expectVisible(row);
    const text = await row.innerText();
    expect(text).toContain('POST /v1/tools/inspect_domain');
    expect(text).toContain('Agent');
    expect(text).toContain('200');

    await row.getByRole('button', { name: /^Details of/ }).click();
    const details = page.getByRole('region', { name: 'Request details' });
    await expectFocused(details.getByRole('heading', { name: 'Request details' }));
    const shown = await details.innerText();
    for (const expected of [record!.request_id!, record!.id, agent.api_key_id, 'inspect_domain', `${record!.request_bytes} in`, `${record!.response_bytes} out`]) {
      expect(shown).toContain(expected);
    }
    expect(new URL(page.url()).searchParams.get('record')).toBe(record!.id);

    // Bury the record below the first page of Activity, so that opening it from the ledger has to look it up.
    for (let i = 0; i < 55; i++) expect((await session.server.call('/v1/me/credits')).status).toBe(200);

    await openPage(page, base, '/dashboard/billing');
    const balance = (await (await session.server.call('/v1/me/credits')).json()) as { balance: number };
    await expectText(page.locator('.balance'), balance.balance.toLocaleString('en-US'));
    const ledger = (await (await session.server.call('/v1/me/credits/ledger?limit=5')).json()) as LedgerEntry[];
    const charge = ledger.find((entry) => entry.usage_id === record!.id)!;
    expect(charge.amount).toBe(-3);
    const chargeRow = page.locator(`tr[data-ledger-id="${charge.id}"]`);
    await expectVisible(chargeRow);
    const chargeText = await chargeRow.innerText();
    expect(chargeText).toContain('Charge');
    expect(chargeText).toContain('−3');
    expect(chargeText).toContain(charge.balance_after.toLocaleString('en-US'));
    expect(chargeText).toContain(call.requestId);

    // The agent's budget: 3 of 100 spent this month.
    const budgetRow = page.locator(`tr[data-key-id="${agent.api_key_id}"]`);
    await expectText(budgetRow, 'Monthly');
    await expect.poll(async () => (await budgetRow.locator('td').allInnerTexts()).slice(1, 4).map((cell) => cell.trim())).toEqual(['3', String(BUDGET), String(BUDGET - 3)]);

    await chargeRow.getByRole('link', { name: /View request/ }).click();
    await expect.poll(() => new URL(page.url()).pathname).toBe('/dashboard/activity');
    expect(await shownIds()).not.toContain(record!.id);
    const opened = page.getByRole('region', { name: 'Request details' });
    await expectText(opened, record!.id);
    expect(await opened.innerText()).toContain(call.requestId);
  });

  it('filters Activity by channel and status class, keeps the filters in the URL across a reload, and exports exactly the API\'s records for them as CSV', async () => {
    suite.check();
    const key = agent.api_key;
    // MCP: two refused (406: not accepting event streams), one answered; the API: one refused (400) and one answered.
    expect(await mcp(key, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, 'application/json')).toBe(406);
    expect(await mcp(key, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, 'application/json')).toBe(406);
    expect(await mcp(key, { jsonrpc: '2.0', id: 3, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'test', version: '1' } } })).toBe(200);
    expect((await callTool(key, '')).status).toBe(400);
    expect((await callTool(key, 'example.org')).status).toBe(200);
    // …and a request of the agent's that calls no tool.
    expect((await session.server.call('/v1/me/credits', { key })).status).toBe(200);

    await openPage(page, base, '/dashboard/activity');
    await page.getByLabel('Channel').selectOption('mcp');
    await page.getByLabel('Status').selectOption('4xx');
    await expect.poll(() => new URL(page.url()).search).toBe('?channel=mcp&status_class=4xx');
    const expected = await apiRecords({ channel: 'mcp', status_class: '4xx' });
    expect(expected.length).toBe(2);
    await expect.poll(shownIds).toEqual(expected.map((record) => record.id));
    for (const text of await page.locator('table.records tbody tr').allInnerTexts()) {
      expect(text).toContain('MCP');
      expect(text).toContain('406');
    }

    // A reload (or a shared link) shows the same view.
    await page.reload();
    await expect.poll(shownIds).toEqual(expected.map((record) => record.id));
    expect(await page.getByLabel('Channel').inputValue()).toBe('mcp');
    expect(await page.getByLabel('Status').inputValue()).toBe('4xx');

    // The export of this view: the contract's columns, and exactly the records the API lists for the same filters.
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export CSV' }).click();
    const file = await download;
    const rows = parseCsv(await readFile((await file.path())!, 'utf8'));
    const columns = (loadContract().components!.schemas!.UsageRecord as { required: string[] }).required;
    expect(rows[0]).toEqual(columns);
    expect(rows.slice(1).map((row) => row[columns.indexOf('id')])).toEqual(expected.map((record) => record.id));
    for (const row of rows.slice(1)) {
      expect(row[columns.indexOf('channel')]).toBe('mcp');
      expect(row[columns.indexOf('status_code')]).toBe('406');
    }
    await expectText(page.getByRole('status').filter({ hasText: 'Saved' }), 'Saved');

    // Another filter: the API channel, 4xx, the agent's key: the refused tool call only.
    await page.getByLabel('Channel').selectOption('api');
    await page.getByLabel('Key').selectOption(agent.api_key_id);
    const apiRefused = await apiRecords({ channel: 'api', status_class: '4xx', credential_id: agent.api_key_id });
    expect(apiRefused.map((record) => record.status_code)).toEqual([400]);
    await expect.poll(shownIds).toEqual(apiRefused.map((record) => record.id));

    // The tool and a time range: the agent's inspect_domain calls over the API in the last hour.
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Tool', { exact: true }).selectOption('inspect_domain');
    await page.getByLabel('Time', { exact: true }).selectOption('1h');
    await expect.poll(() => new URL(page.url()).searchParams.get('range')).toBe('1h');
    const toolCalls = await apiRecords({ channel: 'api', credential_id: agent.api_key_id, tool: 'inspect_domain', from: new Date(Date.now() - 3_600_000).toISOString() });
    expect(toolCalls.length).toBeGreaterThanOrEqual(2);
    await expect.poll(shownIds).toEqual(toolCalls.map((record) => record.id));
    for (const text of await page.locator('table.records tbody tr').allInnerTexts()) expect(text).toContain('tool inspect_domain');

    // A filter nothing matches: the empty state says so (no table).
    await page.getByLabel('Status').selectOption('5xx');
    expect(await apiRecords({ channel: 'api', status_class: '5xx', credential_id: agent.api_key_id })).toEqual([]);
    await expectText(page.locator('.state-empty'), 'No requests match these filters.');
    expect(await page.locator('table.records').count()).toBe(0);

    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => new URL(page.url()).search).toBe('');
  });

  it('"Buy credits" takes $10 steps and says how credits are granted on this server', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/billing');
    const amount = page.getByLabel('Amount in US dollars ($10 steps)');
    await amount.fill('25');
    expect(await page.getByRole('button', { name: 'Buy credits' }).isDisabled()).toBe(true);
    await expectText(page.locator('.inline-error'), '$10, $20, $30');
    await amount.fill('30');
    await page.getByRole('button', { name: 'Buy credits' }).click();
    const notice = page.locator('.buy-notice');
    await expectText(notice, 'No purchase flow is configured');
    expect(await notice.innerText()).toContain(`openrush credits grant ${session.server.account.accountId} CREDITS`);
  });

  it('Billing sets a low-balance alert; the charge that crosses it shows in Activity\'s events, which filter by type in the URL', async () => {
    suite.check();
    const { balance } = (await (await session.server.call('/v1/me/credits')).json()) as { balance: number };
    await openPage(page, base, '/dashboard/billing');
    await page.getByLabel('Alert below (credits)').fill(String(balance));
    await page.getByRole('button', { name: 'Save alert' }).click();
    await expectText(page.getByText(/a "Balance low" event is written/), `below ${balance.toLocaleString()} credits`);
    expect(await (await session.server.call('/v1/me/credits/low-balance-alert')).json()).toEqual({ threshold: balance });

    expect((await callTool(agent.api_key, 'alert.example.com')).status).toBe(200);
    await openPage(page, base, '/dashboard/activity?event_type=credits.low');
    const rows = page.locator('table.events tbody tr');
    await expectVisible(rows);
    expect(await rows.evaluateAll((all) => all.map((row) => row.getAttribute('data-event-type')))).toEqual(['credits.low']);
    expect(await rows.first().innerText()).toMatch(/Balance low[\s\S]*below the alert at/);
    expect(await rows.first().innerText()).toContain('Agent');

    await page.getByLabel('Event', { exact: true }).selectOption('key.created');
    await expect.poll(() => new URL(page.url()).searchParams.get('event_type')).toBe('key.created');
    await expect.poll(() => rows.evaluateAll((all) => all.map((row) => row.getAttribute('data-event-type')))).not.toContain('credits.low');
    const created = await rows.evaluateAll((all) => all.map((row) => row.getAttribute('data-event-type')));
    expect(new Set(created)).toEqual(new Set(['key.created']));
    expect(await page.locator('table.events').innerText()).toContain('Agent');

    await openPage(page, base, '/dashboard/billing');
    await page.getByRole('button', { name: 'Remove alert' }).click();
    await expectText(page.getByText('No alert is set.'), 'No alert is set.');
    expect(await (await session.server.call('/v1/me/credits/low-balance-alert')).json()).toEqual({ threshold: null });
  });

  it('shows a 429 from the API with its problem detail on both pages', async () => {
    suite.check();
    const limited = await apiKeysOf(session.server).created(session.server.account.key, {
      name: 'Slow',
      constraints: { rate_limit: { requests_per_minute: 1 } },
    });
    expect((await session.server.call('/v1/me/credits', { key: limited.api_key })).status).toBe(200);
    const refused = (await (await session.server.call('/v1/me/credits', { key: limited.api_key })).json()) as Problem;
    expect(refused.status).toBe(429);
    // A credential header wins over the session cookie: the pages now ask as this key.
    await useKey(session, limited.api_key);
    try {
      for (const path of ['/dashboard/activity', '/dashboard/billing']) {
        await page.goto(`${base}${path}`);
        const alert = page.getByRole('alert').filter({ hasText: '429' });
        // The problem's detail as the server wrote it; only its count of seconds to wait may have moved on.
        const detail = new RegExp(refused.detail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/[0-9]+/g, '[0-9]+'));
        await expect.poll(async () => ((await alert.count()) > 0 ? alert.first().innerText() : ''), { timeout: 10_000 }).toMatch(detail);
        await expectVisible(alert.getByRole('button', { name: 'Try again' }));
      }
    } finally {
      await useKey(session, null);
    }
  });

  it('passes an axe-core scan with no serious or critical violation in light and dark, from the keyboard too; screenshots', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/activity');
    await page.getByRole('button', { name: 'Show the numbers per day' }).click();
    await page.locator('table.records tbody tr').first().getByRole('button', { name: /^Details of/ }).press('Enter');
    await expectFocused(page.getByRole('heading', { name: 'Request details' }));
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'activity');

    await openPage(page, base, '/dashboard/billing');
    await page.getByLabel('Amount in US dollars ($10 steps)').fill('20');
    await page.getByLabel('Amount in US dollars ($10 steps)').press('Enter');
    await expectVisible(page.locator('.buy-notice'));
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, 'billing');
  });

  it('sent no request outside the server\'s origin and threw no error in the page', async () => {
    suite.check();
    expect(outsideRequests(session.requests, base)).toEqual([]);
    expect(session.pageErrors).toEqual([]);
  });
});

describe('Activity and Billing with the database failing under them', () => {
  let broken: DashboardSession | undefined;
  const brokenSuite = dashboardSuite({
    server: () => {
      // The reads these pages make fail as an unreachable database does; signing in still works.
      const down = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' }));
      const { database } = faultyStore({ listUsage: down, usageAggregates: down, listLedger: down });
      return { database };
    },
    ready: (opened) => {
      broken = opened;
    },
  });

  it('shows the 503 problem\'s detail where the list, the chart and the ledger would be', async () => {
    brokenSuite.check();
    const { page: tab, server } = broken!;
    const refused = await server.call('/v1/me/usage');
    expect(refused.status).toBe(503);
    const problem = (await refused.json()) as Problem;
    await tab.goto(`${server.url}/dashboard/activity`);
    const alerts = tab.getByRole('alert').filter({ hasText: '503' });
    await expect.poll(() => alerts.count(), { timeout: 20_000 }).toBe(2);
    for (const text of await alerts.allInnerTexts()) expect(text).toContain(problem.detail);
    await tab.goto(`${server.url}/dashboard/billing`);
    const ledger = tab.getByRole('region', { name: 'Ledger' }).getByRole('alert');
    await expectText(ledger, problem.detail);
    expect(await ledger.innerText()).toContain('503');
    // The balance does not need the failing reads: it still shows.
    await expectText(tab.locator('.balance'), '500');
  });
});
