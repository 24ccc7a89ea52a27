// OAuth across instances, end to end: two real servers, each with its own store (its own connections) and its own
// memory, on ONE database — a SQLite file, or a PostgreSQL schema with OPENRUSH_TEST_STORE=postgres — behind one
// public URL (B is told A's URL, as every instance behind a load balancer is told the public one), the person
// approving in Chromium on A's consent page. What happens at the token endpoint alone (a code redeemed at the other
// instance, exactly one 200 when both are sent one code or one refresh token) is core's
// test/server/oauth-race.test.ts; here: what the agent then meets on /mcp at either instance — the token works on
// both, a lost race revokes the grant on both, a key revoked on one instance stops its token on the other.
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../server/config.ts';
import { KeyStatus } from '../../server/credentials.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { openTestStore, TEST_STORE } from '../helpers/stores.ts';
import { authorizeUrl, type Callback, ConsentBrowser, pkce, redeemCode, registerClient, startCallbackServer } from './flow.ts';

// Each test drives Chromium through the consent page (and the conformance suite a child process): on the shared
// two-core machine that can take longer than the default 20 s; nothing here asserts a duration.
vi.setConfig({ testTimeout: 90_000 });

let a: TestServer;
let b: TestServer;
let browser: ConsentBrowser;
let person: BrowserContext;
let callback: Callback;

beforeAll(async () => {
  const config = { authFailuresPerMinute: 100_000, oauth: { ...loadConfig({}).oauth, registrationsPerHour: 10_000 } };
  const database = openTestStore();
  a = await startTestServer({ database, config });
  b = await startTestServer({ database: { ...database, store: database.openAnother() }, sharedDatabase: true, config: { ...config, publicUrl: a.url } });
  browser = await ConsentBrowser.launch();
  person = await browser.signedIn(a, a.account.accountId);
  callback = await startCallbackServer();
});
afterAll(async () => {
  await callback?.close();
  await browser?.close();
  await b?.close();
  await a?.close();
});

/** A code approved by the person through instance A. */
async function codeFromA() {
  const client = await registerClient(a.url, [callback.redirectUri]);
  const pair = pkce();
  await browser.approve(person, authorizeUrl(a.url, { client_id: client.client_id, redirect_uri: callback.redirectUri, challenge: pair.challenge }));
  const landed = await callback.next();
  expect(landed.searchParams.get('error'), landed.href).toBeNull();
  const code = landed.searchParams.get('code')!;
  // Both instances are one public URL: the resource is A's (= B's public) /mcp.
  const redeemAt = (server: TestServer) =>
    redeemCode(server.url, { code, verifier: pair.verifier, client_id: client.client_id, redirect_uri: callback.redirectUri, resource: `${a.url}/mcp` });
  return { client, code, redeemAt };
}

function listTools(server: TestServer, token: string): Promise<Response> {
  return fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
}

describe(`two instances on one ${TEST_STORE} database`, () => {
  it('a code approved through one instance and redeemed at the other gives a token /mcp takes at both', async () => {
    const { redeemAt } = await codeFromA();
    const { response, body } = await redeemAt(b);
    expect(response.status, JSON.stringify(body)).toBe(200);
    const token = body.access_token as string;
    expect((await listTools(a, token)).status).toBe(200);
    expect((await listTools(b, token)).status).toBe(200);
  });

  it('one code sent to both instances at once: the losing presentation is a replay, so the winner\'s token is refused on both and the key is revoked', async () => {
    const { client, redeemAt } = await codeFromA();
    const answers = await Promise.all([redeemAt(a), redeemAt(b)]);
    const statuses = answers.map(({ response }) => response.status).sort();
    expect(statuses, JSON.stringify(answers.map(({ body }) => body))).toEqual([200, 400]);
    const winner = answers.find(({ response }) => response.status === 200)!;
    const loser = answers.find(({ response }) => response.status === 400)!;
    expect(loser.body.error).toBe('invalid_grant');
    // The second presentation of a code is a replay: the key it was exchanged for is revoked, on every instance.
    for (const server of [a, b]) expect((await listTools(server, winner.body.access_token as string)).status).toBe(401);
    const keys = ((await (await a.call('/v2/api-keys?limit=200')).json()) as { data: { status: number; oauth_client: { client_id: string } | null }[] }).data;
    expect(keys.filter((key) => key.oauth_client?.client_id === client.client_id).map((key) => key.status)).toEqual([KeyStatus.REVOKED]);
  });

  it('a grant key revoked on one instance stops its token on the other at the next request', async () => {
    const { client, redeemAt } = await codeFromA();
    const { body } = await redeemAt(a);
    const token = body.access_token as string;
    expect((await listTools(b, token)).status).toBe(200);
    const keys = ((await (await a.call('/v2/api-keys?limit=200')).json()) as { data: { api_key_id: string; oauth_client: { client_id: string } | null }[] }).data;
    const key = keys.find((candidate) => candidate.oauth_client?.client_id === client.client_id)!;
    expect((await a.call(`/v2/api-keys/${key.api_key_id}/revoke`, { method: 'POST' })).status).toBe(200);
    expect((await listTools(b, token)).status).toBe(401);
  });
});
