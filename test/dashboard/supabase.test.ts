// The Supabase way in, in a real browser. No Supabase project can be reached from here, so a small stand-in for
// its auth API (GoTrue) answers on 127.0.0.1: the three calls the page makes (send the email link, read the user,
// sign out), with CORS as Supabase answers a browser. What is real: the server configured for a Supabase project
// (its origin allowed in the page's CSP), @supabase/supabase-js loaded by the page only when asked for, the
// access token (signed with the project's JWT secret, as Supabase signs it) exchanged for the session cookie by
// POST /v1/sessions, and the Supabase session ended after the exchange.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type JWTPayload, SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.ts';
import { expectText, dashboardSuite, openPage, outsideRequests, seriousViolations, type DashboardSession, type PageWorld } from './browser.ts';

const SECRET = 'the-project-jwt-secret-the-project-jwt-secret';
const ANON_KEY = 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl';

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  body: string;
  headers: IncomingMessage['headers'];
}

let session: DashboardSession;
let page: Page;
let base: string;
let supabase: Server;
let supabaseUrl: string;
const seen: Seen[] = [];

async function startStandIn(): Promise<void> {
  supabase = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      res.setHeader('Access-Control-Allow-Origin', req.headers.origin ?? '*');
      res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? '*');
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
      if (req.method === 'OPTIONS') return void res.writeHead(204).end();
      seen.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, body, headers: req.headers });
      res.setHeader('Content-Type', 'application/json');
      if (req.method === 'POST' && url.pathname === '/auth/v1/otp') return void res.writeHead(200).end('{}');
      if (req.method === 'GET' && url.pathname === '/auth/v1/user') {
        return void res.writeHead(200).end(JSON.stringify({ id: 'user-1', aud: 'authenticated', role: 'authenticated', email: 'person@example.com' }));
      }
      if (req.method === 'POST' && url.pathname === '/auth/v1/logout') return void res.writeHead(204).end();
      res.writeHead(404).end('{}');
    });
  });
  await new Promise<void>((resolve) => supabase.listen(0, '127.0.0.1', resolve));
  supabaseUrl = `http://127.0.0.1:${(supabase.address() as AddressInfo).port}`;
}

const suite = dashboardSuite({
  signIn: false,
  server: async () => {
    await startStandIn();
    const defaults = loadConfig({});
    return {
      config: {
        session: { jwtSecret: SECRET, autoprovision: true },
        dashboard: { ...defaults.dashboard, supabase: { url: supabaseUrl, anonKey: ANON_KEY } },
      },
    };
  },
  ready: (opened) => {
    session = opened;
    ({ page } = opened);
    base = opened.server.url;
  },
});

afterAll(async () => {
  await new Promise((done) => (supabase ? supabase.close(done) : done(undefined)));
});

function accessToken(subject: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: subject, aud: 'authenticated', role: 'authenticated', email: 'person@example.com', iat: now, exp: now + 3600 };
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(SECRET));
}

describe('signing in with Supabase', () => {
  it('offers the email link when the server has a Supabase project, and loads supabase-js only when it is used', async () => {
    suite.check();
    await page.goto(`${base}/dashboard/sign-in`);
    await page.getByRole('heading', { name: 'Sign in with email' }).waitFor();
    const scriptsBefore = session.requests.filter((url) => url.endsWith('.js'));
    expect(seen).toEqual([]);
    expect(await seriousViolations(page)).toEqual([]);

    await page.getByLabel('Email address').fill('person@example.com');
    await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
    await expectText(page.getByRole('status'), 'Check your email');
    // The library came in now, from this server, as its own file.
    const scriptsAfter = session.requests.filter((url) => url.endsWith('.js'));
    expect(scriptsAfter.length).toBeGreaterThan(scriptsBefore.length);
    expect(scriptsAfter.every((url) => url.startsWith(`${base}/dashboard/assets/`))).toBe(true);
    // Supabase was asked to email a link that comes back to this server's sign-in page.
    const otp = seen.find((request) => request.path === '/auth/v1/otp')!;
    expect(otp).toBeDefined();
    expect(JSON.parse(otp.body)).toMatchObject({ email: 'person@example.com' });
    expect(otp.query.get('redirect_to')).toBe(`${base}/dashboard/sign-in`);
    expect(otp.headers.apikey).toBe(ANON_KEY);
  });

  it('exchanges the access token the email link brings back for the session cookie, then ends the Supabase session; the browser keeps only the cookie', async () => {
    suite.check();
    const token = await accessToken(randomUUID());
    await page.goto(`${base}/dashboard/sign-in#access_token=${token}&expires_in=3600&refresh_token=refresh-1&token_type=bearer&type=magiclink`);
    await page.waitForURL(`${base}/dashboard/api-access`, { timeout: 10_000 });
    await openPage(page, base, '/dashboard/api-access');
    const cookie = (await session.context.cookies(base)).find((item) => item.name === 'openrush_session');
    expect(cookie).toMatchObject({ httpOnly: true });
    // The page's requests are the new session's: a new account (autoprovisioned) with no keys yet.
    await expectText(page.locator('main'), 'No API keys yet');
    // The Supabase session was ended after the exchange (its refresh token revoked).
    await expect.poll(() => seen.some((request) => request.path === '/auth/v1/logout')).toBe(true);
    const logout = seen.find((request) => request.path === '/auth/v1/logout')!;
    expect(logout.headers.authorization).toBe(`Bearer ${token}`);
    // Nothing of Supabase's is kept by the page, and the token never went into a URL of this server.
    const stored = await page.evaluate(() => {
      const world = globalThis as unknown as { localStorage: { length: number; key(i: number): string | null } } & PageWorld;
      return Array.from({ length: world.localStorage.length }, (_, i) => world.localStorage.key(i));
    });
    expect(stored.filter((key) => key?.startsWith('sb-'))).toEqual([]);
    expect(session.requests.filter((url) => url.startsWith(base) && url.includes(token))).toEqual([]);
  });

  it('comes back to the page that sent the person to sign in (kept by the sign-in page; the email link brings no ?next=)', async () => {
    suite.check();
    await page.goto(`${base}/dashboard/sign-in?next=${encodeURIComponent('/dashboard/setup')}`);
    await page.getByRole('heading', { name: 'Sign in with email' }).waitFor();
    await expectText(page.getByTestId('return-to'), '/dashboard/setup');
    // The email link comes back to the plain sign-in address Supabase allows (here in the same browser).
    const token = await accessToken(randomUUID());
    await page.goto(`${base}/dashboard/sign-in#access_token=${token}&expires_in=3600&refresh_token=refresh-2&token_type=bearer&type=magiclink`);
    await page.waitForURL(`${base}/dashboard/setup`, { timeout: 10_000 });
  });

  it('talked to no origin but this server and the configured Supabase project, and the page raised no error', () => {
    suite.check();
    const outside = outsideRequests(session.requests, base);
    expect(outside.length).toBeGreaterThan(0);
    expect(outside.filter((url) => new URL(url).origin !== supabaseUrl)).toEqual([]);
    expect(session.pageErrors).toEqual([]);
  });
});
