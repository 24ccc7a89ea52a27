// The OAuth consent page in a real browser (Debian's Chromium, playwright-core) against a real server on the test
// database (SQLite, or PostgreSQL with OPENRUSH_TEST_STORE=postgres). An MCP client is played by this file: a client
// registered in the store with a loopback redirect URI, where a small HTTP server of the test listens (as Claude
// Code's does), and the browser sent to /oauth/authorize as the client would send it. What a person sees: who asks
// and where it sends them back, the scopes; their choices become the grant's key; Approve and Deny send the browser
// back with a code or error=access_denied (with state and iss); the agent then appears under Connected agents and
// Disconnect revokes its key; a decided, unknown or missing authorization says to start again from the agent; a
// person who is not signed in signs in and comes back to the consent, which never approves by itself.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueSignInLink, signInLinkUrl } from '../../server/dashboard-sessions.ts';
import { supportedScopes } from '../../server/oauth/grants.ts';
import { apiKeysOf } from '../helpers/api-keys.ts';
import {
  dashboardSuite,
  expectHidden,
  expectText,
  expectVisible,
  openPage,
  outsideRequests,
  screenshot,
  seriousViolations,
  type DashboardSession,
} from './browser.ts';

const CLIENT_NAME = 'Consent Test Agent';
const START_AGAIN = 'This request to connect an agent is no longer valid';

let session: DashboardSession;
let page: Page;
let base: string;
let clientId: string;

/** The client's loopback redirect URI: what the browser brought back there. */
let callback: Server;
let redirectUri: string;
const arrived: URL[] = [];

beforeAll(async () => {
  callback = createServer((req, res) => {
    const url = new URL(req.url ?? '/', redirectUri);
    // The browser also asks this origin for /favicon.ico: only the redirect URI counts.
    if (url.pathname !== '/callback') return void res.writeHead(404).end();
    arrived.push(url);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><html lang="en"><title>Agent</title><h1>You can close this window.</h1></html>');
  });
  await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
  redirectUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`;
});

const suite = dashboardSuite({
  ready: async (opened) => {
    session = opened;
    ({ page } = opened);
    base = opened.server.url;
    // A registered client, as POST /oauth/register stores one (each test server has a database of its own).
    clientId = 'orc_01KW1WT5G0S1V3Q93S90MB6D3B';
    await opened.server.store.insertOAuthClient({
      id: clientId,
      name: CLIENT_NAME,
      client_uri: null,
      redirect_uris: JSON.stringify([redirectUri]),
      software_id: null,
      software_version: null,
      source: 'registered',
      metadata_expires_at: null,
      created_at: opened.server.clock.now().toISOString(),
    });
  },
});

afterAll(async () => {
  await new Promise((done) => (callback ? callback.close(done) : done(undefined)));
});

function base64url(bytes: Buffer): string {
  return bytes.toString('base64url');
}

/** What an MCP client sends the browser to: a fresh state and PKCE pair each time. */
function authorization() {
  const verifier = base64url(randomBytes(32));
  const state = base64url(randomBytes(12));
  const url = new URL(`${base}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: base64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
    state,
    scope: 'tools:use',
    resource: `${base}/mcp`,
  }).toString();
  return { url: url.toString(), verifier, state };
}

async function oauthKeys() {
  const { data } = await apiKeysOf(session.server).page(session.server.account.key, { limit: 200 });
  return data.filter((key) => key.oauth_client?.client_id === clientId);
}

/** Waits for the browser to arrive at the client's redirect URI (the n-th time), and returns its query. */
async function arrival(count: number): Promise<URLSearchParams> {
  await expect.poll(() => arrived.length, { timeout: 10_000 }).toBe(count);
  await page.waitForURL((url) => url.toString().startsWith(redirectUri), { timeout: 10_000 });
  return arrived[count - 1]!.searchParams;
}

describe('the consent page', () => {
  it('names the client, where it sends the browser back and the scopes; approving with a budget and a rate limit sends the browser back with code, state and iss, and the grant is a key with those choices', async () => {
    suite.check();
    const asked = authorization();
    await page.goto(asked.url);
    await page.waitForURL((url) => url.pathname === '/dashboard/consent');
    await page.getByRole('heading', { level: 1, name: `Connect “${CLIENT_NAME}” to your OpenRush account?` }).waitFor();
    await expectText(page.getByTestId('client-name'), CLIENT_NAME);
    expect(await page.getByTestId('redirect-host').innerText()).toBe(new URL(redirectUri).host);
    const scope = supportedScopes().find((info) => info.scope === 'tools:use')!;
    const box = page.getByRole('checkbox', { name: `tools:use: ${scope.description}` });
    expect(await box.isChecked()).toBe(true);
    // Shown is not approved: nothing came back to the client, no key was made.
    expect(arrived).toEqual([]);
    expect(await oauthKeys()).toEqual([]);
    await screenshot(page, 'consent');
    expect(await seriousViolations(page)).toEqual([]);

    await page.getByLabel('Permissions').selectOption({ label: 'Restricted' });
    await page.getByLabel('Budget in credits').fill('50');
    await page.getByLabel('Budget period').selectOption({ label: 'Daily' });
    await page.getByLabel('Rate limit, requests per minute (empty: none)').fill('30');
    await page.getByRole('button', { name: 'Approve' }).click();

    const query = await arrival(1);
    expect(query.get('code')).toMatch(/^orac_[A-Za-z0-9_-]{43}$/);
    expect(query.get('state')).toBe(asked.state);
    expect(query.get('iss')).toBe(base);
    expect(query.get('error')).toBeNull();

    const [grant] = await oauthKeys();
    expect(grant).toMatchObject({
      name: `${CLIENT_NAME} via OAuth`,
      status: 1,
      permission_mode: 3,
      access: { tools: 'use' },
      constraints: { budget: { period: 1, amount: 50 }, rate_limit: { requests_per_minute: 30 } },
      oauth_client: { client_id: clientId, client_name: CLIENT_NAME, redirect_host: new URL(redirectUri).host },
    });

    // The code is the client's to redeem, with its verifier: the grant works.
    const token = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: query.get('code')!, redirect_uri: redirectUri, client_id: clientId, code_verifier: asked.verifier, resource: `${base}/mcp` }),
    });
    expect(token.status).toBe(200);
    expect(((await token.json()) as { access_token: string }).access_token).toMatch(/^orat_/);
  });

  it('the decided authorization, an unknown one and a consent address without one say to start again from the agent', async () => {
    suite.check();
    // Back to the consent page just approved (the browser's Back button): it is decided.
    await page.goBack();
    await page.waitForURL((url) => url.pathname === '/dashboard/consent');
    await page.getByRole('heading', { level: 1, name: START_AGAIN }).waitFor();
    await expectText(page.getByRole('alert'), 'No pending authorization with this id');
    await expectText(page.locator('main'), 'Start again from the agent');
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await screenshot(page, 'consent-start-again');
    expect(await seriousViolations(page)).toEqual([]);

    await page.goto(`${base}/dashboard/consent?authorization=${'A'.repeat(43)}`);
    await page.getByRole('heading', { level: 1, name: START_AGAIN }).waitFor();
    await expectText(page.getByRole('alert'), 'No pending authorization with this id');

    await page.goto(`${base}/dashboard/consent`);
    await page.getByRole('heading', { level: 1, name: START_AGAIN }).waitFor();
    await expectText(page.locator('main'), 'does not name a request to connect an agent');
    expect(arrived.length).toBe(1);
  });

  it('denying sends the browser back with error=access_denied, state and iss, and makes no key', async () => {
    suite.check();
    const before = (await oauthKeys()).length;
    const asked = authorization();
    await page.goto(asked.url);
    await page.getByRole('button', { name: 'Deny' }).click();
    const query = await arrival(2);
    expect(query.get('error')).toBe('access_denied');
    expect(query.get('state')).toBe(asked.state);
    expect(query.get('iss')).toBe(base);
    expect(query.get('code')).toBeNull();
    expect((await oauthKeys()).length).toBe(before);
  });

  it('lists the approved agent under Connected agents on API access and Setup, and Disconnect revokes its key after a confirmation', async () => {
    suite.check();
    const [grant] = await oauthKeys();
    for (const path of ['/dashboard/setup', '/dashboard/api-access']) {
      await openPage(page, base, path);
      const agents = page.getByRole('region', { name: 'Connected agents' });
      const row = agents.getByRole('row').filter({ has: page.getByRole('rowheader', { name: CLIENT_NAME, exact: true }) });
      await expectVisible(row);
      const text = await row.innerText();
      expect(text).toContain(new URL(redirectUri).host);
      expect(text).toContain('tools:use');
      expect(text).toContain('Active');
      expect(text).toContain('Never');
      expect(await seriousViolations(page)).toEqual([]);
    }
    await screenshot(page, 'connected-agents');

    const agents = page.getByRole('region', { name: 'Connected agents' });
    await agents.getByRole('button', { name: `Disconnect ${CLIENT_NAME}` }).click();
    const dialog = page.getByRole('dialog', { name: `Disconnect “${CLIENT_NAME}”?` });
    await expectVisible(dialog);
    // Cancel keeps it.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expectHidden(dialog);
    expect((await oauthKeys())[0]!.status).toBe(1);

    await agents.getByRole('button', { name: `Disconnect ${CLIENT_NAME}` }).click();
    await dialog.getByRole('button', { name: 'Disconnect agent' }).click();
    await expectHidden(dialog);
    await expectText(agents, 'No agent is connected');
    const after = (await oauthKeys()).find((key) => key.api_key_id === grant!.api_key_id);
    expect(after?.status).toBe(3);
  });

  it('a person who is not signed in signs in (the printed link, opened in another tab) and comes back to the consent, which waits for their click', async () => {
    suite.check();
    const context = await session.browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      const first = await context.newPage();
      const asked = authorization();
      await first.goto(asked.url);
      await first.waitForURL((url) => url.pathname === '/dashboard/sign-in');
      const next = new URL(first.url()).searchParams.get('next');
      expect(next).toMatch(/^\/dashboard\/consent\?authorization=[A-Za-z0-9_-]{43}$/);
      await expectText(first.getByTestId('return-to'), next!);
      await screenshot(first, 'sign-in-for-consent');
      expect(await seriousViolations(first)).toEqual([]);

      // The link `openrush dashboard link` prints carries no way back; opened in a new tab, it still comes back.
      const { token } = await issueSignInLink({ store: session.server.store, clock: session.server.clock }, session.server.account.accountId);
      const second = await context.newPage();
      await second.goto(signInLinkUrl(base, token));
      await second.waitForURL(`${base}${next}`, { timeout: 10_000 });
      await second.getByRole('heading', { level: 1, name: `Connect “${CLIENT_NAME}” to your OpenRush account?` }).waitFor();
      await expectVisible(second.getByRole('button', { name: 'Approve' }));
      // The first tab says where the sign-in went.
      await expectText(first.getByRole('status').filter({ hasText: 'another tab' }), 'You signed in in another tab');
      // Signed in and shown is still not approved.
      expect(arrived.length).toBe(2);

      // This time read-only, with the scope unticked: the grant is a READ_ONLY key.
      await second.getByRole('checkbox', { name: /^tools:use/ }).uncheck();
      await second.getByLabel('Permissions').selectOption({ label: 'Read only' });
      await second.getByRole('button', { name: 'Approve' }).click();
      await expect.poll(() => arrived.length, { timeout: 10_000 }).toBe(3);
      expect(arrived[2]!.searchParams.get('state')).toBe(asked.state);
      expect(arrived[2]!.searchParams.get('code')).toMatch(/^orac_/);
      const live = (await oauthKeys()).filter((key) => key.status === 1);
      expect(live).toHaveLength(1);
      expect(live[0]).toMatchObject({ permission_mode: 2, constraints: { budget: null, rate_limit: null } });
    } finally {
      await context.close();
    }
  });

  it('after signing in, goes only to a path of this Dashboard: another origin or a path outside /dashboard/ in ?next= is ignored', async () => {
    suite.check();
    const context = await session.browser.newContext();
    try {
      const tab = await context.newPage();
      for (const next of ['https://evil.example/dashboard/consent', '//evil.example/dashboard/', '/dashboard/../oauth/authorize', '/v1/me', 'javascript:alert(1)']) {
        const { token } = await issueSignInLink({ store: session.server.store, clock: session.server.clock }, session.server.account.accountId);
        await tab.goto(`${base}/dashboard/sign-in?next=${encodeURIComponent(next)}#token=${token}`);
        await tab.waitForURL(`${base}/dashboard/api-access`, { timeout: 10_000 });
      }
      // A Dashboard path is followed.
      const { token } = await issueSignInLink({ store: session.server.store, clock: session.server.clock }, session.server.account.accountId);
      await tab.goto(`${base}/dashboard/sign-in?next=${encodeURIComponent('/dashboard/activity?channel=mcp')}#token=${token}`);
      await tab.waitForURL(`${base}/dashboard/activity?channel=mcp`, { timeout: 10_000 });
    } finally {
      await context.close();
    }
  });

  it('made no request to any origin but the server and the client’s redirect URI, and the page raised no error', () => {
    suite.check();
    expect(outsideRequests(session.requests, base).filter((url) => !url.startsWith(new URL(redirectUri).origin))).toEqual([]);
    expect(session.pageErrors).toEqual([]);
  });
});
