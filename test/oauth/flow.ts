// What the end-to-end OAuth tests share: a loopback redirect URI that is a real HTTP server (as a native MCP client
// runs one, RFC 8252), dynamic client registration, PKCE, the token endpoint as a client calls it, and one Chromium
// per test file, signed in to the Dashboard with a sign-in link, in which the person approves or denies on the
// consent page.
import { randomBytes } from 'node:crypto';
import { pkce } from '../helpers/oauth.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { issueSignInLink, signInLinkUrl } from '../../server/dashboard-sessions.ts';
import { CHROMIUM, ensureDashboardBuilt } from '../dashboard/browser.ts';
import type { TestServer } from '../helpers/server.ts';

/** A loopback redirect URI served by a real HTTP server: every request it receives, in order. */
export interface Callback {
  redirectUri: string;
  port: number;
  /** The next request to arrive (or one that arrived and was not taken yet). */
  next(): Promise<URL>;
  close(): Promise<void>;
}

export async function startCallbackServer(path = '/callback'): Promise<Callback> {
  const arrived: URL[] = [];
  const waiting: ((url: URL) => void)[] = [];
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', `http://${request.headers.host}`);
    response.writeHead(200, { 'content-type': 'text/plain' }).end('Signed in. You can close this page.');
    if (url.pathname !== path) return;
    const waiter = waiting.shift();
    if (waiter) waiter(url);
    else arrived.push(url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    redirectUri: `http://127.0.0.1:${port}${path}`,
    port,
    next() {
      const url = arrived.shift();
      return url ? Promise.resolve(url) : new Promise((resolve) => waiting.push(resolve));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on at this moment (for a tool that opens its own callback server). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RegisteredClient {
  client_id: string;
  client_name: string;
  redirect_uris: string[];
  [field: string]: unknown;
}

/** RFC 7591 registration of a public client, as an MCP client does it. */
export async function registerClient(base: string, redirectUris: string[], clientName = 'OpenRush e2e agent'): Promise<RegisteredClient> {
  const response = await postRegistration(base, { client_name: clientName, redirect_uris: redirectUris, token_endpoint_auth_method: 'none' });
  const text = await response.text();
  expect(response.status, text).toBe(201);
  return JSON.parse(text) as RegisteredClient;
}

export function postRegistration(base: string, metadata: unknown): Promise<Response> {
  return fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
}

export type Pkce = ReturnType<typeof pkce>;
export { pkce };

/** The authorization request a client sends the browser to. */
export function authorizeUrl(
  base: string,
  params: { client_id: string; redirect_uri: string; challenge: string; state?: string; scope?: string; resource?: string | null },
): string {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: params.client_id,
    redirect_uri: params.redirect_uri,
    code_challenge: params.challenge,
    code_challenge_method: 'S256',
    state: params.state ?? randomBytes(16).toString('base64url'),
  });
  if (params.scope !== undefined) query.set('scope', params.scope);
  if (params.resource !== null) query.set('resource', params.resource ?? `${base}/mcp`);
  return `${base}/oauth/authorize?${query}`;
}

/** A form POST to the token (or revocation) endpoint, as RFC 6749 has clients send it. */
export function postForm(url: string, fields: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  scope?: string;
}

/** Redeems a code; the JSON body and the response (for its status and headers). */
export async function redeemCode(
  base: string,
  fields: { code: string; verifier: string; client_id: string; redirect_uri: string; resource?: string },
): Promise<{ response: Response; body: Record<string, unknown> }> {
  const response = await postForm(`${base}/oauth/token`, {
    grant_type: 'authorization_code',
    code: fields.code,
    code_verifier: fields.verifier,
    client_id: fields.client_id,
    redirect_uri: fields.redirect_uri,
    resource: fields.resource ?? `${base}/mcp`,
  });
  return { response, body: (await response.json()) as Record<string, unknown> };
}

export async function refresh(base: string, fields: { refresh_token: string; client_id: string; resource?: string }) {
  const response = await postForm(`${base}/oauth/token`, {
    grant_type: 'refresh_token',
    refresh_token: fields.refresh_token,
    client_id: fields.client_id,
    resource: fields.resource ?? `${base}/mcp`,
  });
  return { response, body: (await response.json()) as Record<string, unknown> };
}

/** An OAuth error answer (RFC 6749 §5.2): the status, `error`, and never a problem document. */
export async function expectOAuthError(response: Response, status: number, error: string): Promise<Record<string, unknown>> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body.error, text).toBe(error);
  return body;
}

/** What the person chooses on the consent page (its labels, as a person reads them). */
export interface ConsentChoices {
  /** Scopes to untick (all that were asked for are ticked at first). */
  untick?: string[];
  /** 'READ_ONLY' instead of the default RESTRICTED to the ticked scopes. */
  permissionMode?: 'READ_ONLY';
  /** A budget of this many credits in the first period offered. */
  budget?: number;
}

/**
 * One Chromium for a test file. `signedIn` gives a browser context holding a Dashboard session for an account
 * (signed in as a person does, with a one-time sign-in link); `approve` and `deny` go from a client's
 * authorization URL through the consent page to wherever the browser is sent back.
 */
export class ConsentBrowser {
  private constructor(private readonly browser: Browser) {}

  static async launch(): Promise<ConsentBrowser> {
    ensureDashboardBuilt();
    return new ConsentBrowser(await chromium.launch({ executablePath: CHROMIUM, headless: true }));
  }

  async signedIn(server: Pick<TestServer, 'url' | 'store' | 'clock'>, accountId: string): Promise<BrowserContext> {
    const context = await this.browser.newContext();
    const page = await context.newPage();
    const { token } = await issueSignInLink({ store: server.store, clock: server.clock }, accountId);
    await page.goto(signInLinkUrl(server.url, token));
    await page.waitForURL(`${server.url}/dashboard/api-access`, { timeout: 15_000 });
    await page.close();
    return context;
  }

  /** Opens the authorization URL, waits for the consent page, applies the choices and clicks Approve. */
  async approve(context: BrowserContext, url: string | URL, choices: ConsentChoices = {}): Promise<URL> {
    return this.decide(context, url, 'Approve', choices);
  }

  async deny(context: BrowserContext, url: string | URL): Promise<URL> {
    return this.decide(context, url, 'Deny', {});
  }

  /** Opens the authorization URL and returns the consent page as it stands (for tests that look at it). */
  async open(context: BrowserContext, url: string | URL): Promise<Page> {
    const page = await context.newPage();
    await page.goto(String(url));
    return page;
  }

  private async decide(context: BrowserContext, url: string | URL, button: 'Approve' | 'Deny', choices: ConsentChoices): Promise<URL> {
    const redirectUri = new URL(String(url)).searchParams.get('redirect_uri')!;
    const page = await context.newPage();
    try {
      const sentBack = page.waitForRequest((request) => request.url().startsWith(redirectUri), { timeout: 20_000 });
      await page.goto(String(url));
      const decide = page.getByRole('button', { name: button, exact: true });
      await decide.waitFor({ state: 'visible', timeout: 15_000 });
      for (const scope of choices.untick ?? []) await page.getByRole('checkbox', { name: new RegExp(`^${scope}:`) }).uncheck();
      if (choices.permissionMode === 'READ_ONLY') await page.getByLabel('Permissions', { exact: true }).selectOption('2');
      if (choices.budget !== undefined) {
        await page.getByLabel('Budget in credits').fill(String(choices.budget));
        await page.getByLabel('Budget period').selectOption({ index: 1 });
      }
      await decide.click();
      return new URL((await sentBack).url());
    } finally {
      await page.close();
    }
  }

  async close(): Promise<void> {
    await this.browser.close();
  }
}
