// `openrush verify` against real servers: a correct one passes (and is left as it was found: no credits spent, no
// key left active, nothing named after the contract's examples), and every check fails against a server that
// breaks that check's promise. The broken servers are the real server behind a relay that rewrites one answer;
// one `prism proxy`, started as verify starts it, sits in front of the relay for every breakage.
import { readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { reportResults, startVerifyProxy, verifyCommand } from '../server/ci-commands.ts';
import { loadConfig } from '../server/config.ts';
import { loadContract } from '../server/contract.ts';
import { findPrism } from '../server/prism.ts';
import { type CheckResult, contractChecks, redactKeys, runCheck, runChecks } from '../server/verify.ts';
import { killCliProcesses, runCli } from './helpers/cli-process.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

interface Sent {
  method: string;
  /** Path and query. */
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}
/** Answers a request in place of the real server, or undefined to let the real server answer. */
type Breakage = (sent: Sent, forward: (sent: Sent) => Promise<Answer>) => Promise<Answer | undefined>;

let server: TestServer;
/** The same server with OAuth for /mcp turned off (OPENRUSH_OAUTH=off). */
let oauthOff: TestServer;
/** Where the relay sends what it does not answer itself. */
let upstream: TestServer;
let relay: Server;
let relayUrl: string;
let proxy: Awaited<ReturnType<typeof startVerifyProxy>>;
let breakage: Breakage | undefined;

/**
 * Sends a request on to the server with the `Host` it came with (the relay's, as a load balancer would), so the
 * URLs the server hands out (the protected-resource metadata, its issuer) name the relay: verify's target.
 */
function forward(sent: Sent): Promise<Answer> {
  const { hostname, port } = new URL(upstream.url);
  return new Promise((done, fail) => {
    const req = request({ hostname, port, method: sent.method, path: sent.url, headers: sent.headers }, (res) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (value !== undefined && !['content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive'].includes(name)) {
          headers[name] = Array.isArray(value) ? value.join(', ') : value;
        }
      }
      readBody(res).then((body) => done({ status: res.statusCode!, headers, body: body.toString() }), fail);
    });
    req.on('error', fail);
    req.end(sent.body.length > 0 ? sent.body : undefined);
  });
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => done(Buffer.concat(chunks)));
    req.on('error', fail);
  });
}

/** Rewrites a JSON answer. */
function rewrite(answer: Answer, change: (body: any) => unknown): Answer {
  return { ...answer, body: JSON.stringify(change(JSON.parse(answer.body))) };
}

const is = (sent: Sent, method: string, path: RegExp) => sent.method === method && path.test(sent.url.split('?')[0]!);

beforeAll(async () => {
  // Each run of verify is refused on purpose a few times (no credential, revoked keys); many runs in a minute from
  // one address would otherwise be blocked as guessing keys.
  server = await startTestServer({ credits: 10_000, config: { authFailuresPerMinute: 10_000 } });
  const defaults = loadConfig({});
  oauthOff = await startTestServer({ credits: 10_000, config: { authFailuresPerMinute: 10_000, oauth: { ...defaults.oauth, enabled: false } } });
  upstream = server;
  relay = createServer((req, res) => {
    void (async () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === 'string' && !['connection', 'content-length', 'transfer-encoding'].includes(name)) headers[name] = value;
      }
      const sent: Sent = { method: req.method!, url: req.url!, headers, body: await readBody(req) };
      const answer = (await breakage?.(sent, forward)) ?? (await forward(sent));
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    })().catch((error: unknown) => {
      res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((done) => relay.listen(0, '127.0.0.1', done));
  relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
  proxy = await startVerifyProxy(findPrism()!, relayUrl);
});
afterAll(async () => {
  killCliProcesses();
  await proxy?.stop();
  relay?.closeAllConnections();
  await new Promise((done) => relay?.close(done));
  await server?.close();
  await oauthOff?.close();
});
beforeEach(() => {
  breakage = undefined;
  upstream = server;
});

async function balance(): Promise<number> {
  return ((await (await server.call('/v1/me/credits')).json()) as { balance: number }).balance;
}

/** Every key and credential of the account other than its own first one: name and whether it still works. */
async function madeByVerify(): Promise<Array<{ name: string; active: boolean }>> {
  const credentials = (await (await server.call('/v1/me/api-credentials')).json()) as Array<{ id: string; name: string; is_active: boolean }>;
  const keys = (await (await server.call('/v2/api-keys?limit=100')).json()) as { data: Array<{ token_prefix: string; name: string; status: number }> };
  const own = `${server.account.key.slice(0, 9)}...`;
  return [
    ...credentials.filter((c) => c.id !== server.account.credentialId).map((c) => ({ name: c.name, active: c.is_active })),
    ...keys.data.filter((k) => k.token_prefix !== own).map((k) => ({ name: k.name, active: k.status === 1 })),
  ];
}

/** Runs verify's checks through the shared proxy (the relay is the target) and prints them as `openrush verify` does. */
async function verifyThroughRelay(options: { metered?: boolean } = {}): Promise<{ code: number; out: string; err: string; failed: string[]; results: CheckResult[] }> {
  let out = '';
  let err = '';
  const stdout = new PassThrough().on('data', (chunk: Buffer) => (out += chunk.toString()));
  const stderr = new PassThrough().on('data', (chunk: Buffer) => (err += chunk.toString()));
  const results = await runChecks({ baseUrl: proxy.url, targetUrl: relayUrl, upstreamMark: proxy.upstreamMark, apiKey: upstream.account.key, metered: options.metered ?? true });
  const code = reportResults(results, { stdout, stderr });
  return { code, out, err, failed: results.filter((r) => !r.ok).map((r) => r.name), results };
}

/** Runs one check through the shared proxy against the relay. */
function checkThroughRelay(name: string): Promise<CheckResult> {
  return runCheck(contractChecks().find((check) => check.name === name)!, { baseUrl: proxy.url, targetUrl: relayUrl, upstreamMark: proxy.upstreamMark, apiKey: upstream.account.key });
}

const NAMES = contractChecks().map((check) => check.name);
const OAUTH_CHALLENGE = 'POST /mcp without a credential is a 401 whose WWW-Authenticate names the protected-resource metadata and a scope';
const OAUTH_RESOURCE = "GET /.well-known/oauth-protected-resource/mcp (and at the root) describes the target's /mcp, naming an authorization server";
const OAUTH_SERVER = "the authorization server's metadata (RFC 8414) names its own issuer, PKCE S256, a registration endpoint and the iss parameter";
const OAUTH_CHECKS = [OAUTH_CHALLENGE, OAUTH_RESOURCE, OAUTH_SERVER];
const VERIFY_NAME = /^openrush verify \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z( \(updated\))?$/;

describe('openrush verify', () => {
  it("README's verify section counts the checks there are", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const unmetered = contractChecks().filter((check) => !check.metered).length;
    expect(readme).toContain(`There are ${NAMES.length} checks (${unmetered} without \`--metered\`).`);
    expect(readme).toContain(`# All ${unmetered} checks hold.`);
  });

  it('never prints an API key whole in a report', () => {
    const report = redactKeys(`expected 201, got 200 {"key":"${server.account.key}"}`);
    expect(report).not.toContain(server.account.key);
    expect(report).toContain(`${server.account.key.slice(0, 9)}…[redacted]`);
  });

  it('passes against a real server, spending no credits and leaving what it made named as its own and revoked', async () => {
    const before = await balance();
    const run = await runCli(['verify', '--base-url', server.url, '--api-key', server.account.key], {}, 90_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`All ${NAMES.length - 1} checks hold.`);
    expect(run.stdout).not.toContain(server.account.key);
    expect(run.stdout).toMatch(/skipped: spends credits/);
    expect(await balance()).toBe(before);
    const made = await madeByVerify();
    expect(made.length).toBeGreaterThan(0);
    for (const thing of made) expect(thing).toEqual({ name: expect.stringMatching(VERIFY_NAME), active: false });
  }, 120_000);

  it('with --metered also calls the metered tool, spending its price once, and still leaves nothing of its own active', async () => {
    const before = await balance();
    const run = await runCli(['verify', '--base-url', server.url, '--api-key', server.account.key, '--metered'], {}, 90_000);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`All ${NAMES.length} checks hold.`);
    expect(await balance()).toBe(before - 3);
    for (const thing of await madeByVerify()) expect(thing).toEqual({ name: expect.stringMatching(VERIFY_NAME), active: false });
  }, 120_000);

  it('says so and exits non-zero when the deployment cannot be reached', async () => {
    const run = await runCli(['verify', '--base-url', 'http://127.0.0.1:9', '--api-key', server.account.key], {}, 60_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
  }, 90_000);

  it('fails against the Prism mock of the contract, saying the target keeps nothing', async () => {
    let out = '';
    let err = '';
    const stdout = new PassThrough().on('data', (chunk: Buffer) => (out += chunk.toString()));
    const stderr = new PassThrough().on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await verifyCommand(['--base-url', inject('mockUrl'), '--api-key', server.account.key], { stdout, stderr });
    expect(code).toBe(1);
    for (const check of contractChecks().filter((c) => c.deployment && !c.metered)) expect(out).toContain(`FAIL ${check.name}`);
    expect(err).toMatch(/the target answers like a mock of the contract/);
    expect(out).not.toMatch(/All \d+ checks hold/);
  }, 60_000);

  it('fails every check against a server that answers 404 to everything', async () => {
    breakage = async () => ({ status: 404, headers: { 'Content-Type': 'text/plain' }, body: 'Not Found' });
    const run = await verifyThroughRelay();
    expect(run.code).toBe(1);
    expect(run.failed).toEqual(NAMES);
  }, 60_000);

  it("fails every check when Prism answers in the target's place (the target answers 501, Prism mocks instead)", async () => {
    breakage = async () => ({ status: 501, headers: { 'Content-Type': 'text/plain' }, body: 'Not Implemented' });
    const run = await verifyThroughRelay();
    expect(run.code).toBe(1);
    expect(run.failed).toEqual(NAMES);
    expect(run.out).toMatch(/not the target's answer: GET \/v1\/capabilities was answered 200 by prism proxy itself/);
  }, 60_000);

  it('prints a contract violation once, under the check whose request caused it', async () => {
    // Three checks read GET /v1/capabilities; its answer breaks the contract (a price that is not an integer).
    breakage = async (sent, next) =>
      is(sent, 'GET', /^\/v1\/capabilities$/)
        ? rewrite(await next(sent), (body) => ({ ...body, tools: body.tools.map((t: object) => ({ ...t, credits_per_call: 'free' })) }))
        : undefined;
    const run = await verifyThroughRelay({ metered: false });
    expect(run.code).toBe(1);
    expect(run.out.match(/contract violation: GET \/v1\/capabilities/g)).toHaveLength(1);
    const first = run.out.indexOf(`FAIL ${NAMES[0]}`);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(run.out.indexOf('contract violation: GET /v1/capabilities')).toBeGreaterThan(first);
    expect(run.out.indexOf('contract violation: GET /v1/capabilities')).toBeLessThan(run.out.indexOf(NAMES[1]!));
  }, 60_000);

  it('revokes what it made even when a check fails before its own revoke', async () => {
    // The v2 revoke fails twice: neither the lifecycle check's revoke nor its own clean-up's reaches the server;
    // the end-of-run sweep must revoke the key.
    let failures = 0;
    breakage = async (sent) => {
      if (failures >= 2 || !is(sent, 'POST', /^\/v2\/api-keys\/[^/]+\/revoke$/)) return undefined;
      failures++;
      return { status: 503, headers: { 'Content-Type': 'text/plain' }, body: 'Service Unavailable' };
    };
    const run = await verifyThroughRelay({ metered: false });
    expect(run.code).toBe(1);
    expect(run.failed).toEqual(['v2 API keys: create, get, update, rotate and revoke a key of its own']);
    for (const thing of await madeByVerify()) expect(thing).toEqual({ name: expect.stringMatching(VERIFY_NAME), active: false });
  }, 60_000);
});

const contract = loadContract() as unknown as { components: { examples: Record<string, { value: any }> } };

/** For each check, a server that breaks its promise, and nothing else that check relies on. */
const BREAKAGES: Record<string, Breakage> = {
  'GET /v1/capabilities answers without a credential, with the X-Request-Id sent': async (sent, next) =>
    is(sent, 'GET', /^\/v1\/capabilities$/) ? { ...(await next(sent)), headers: { 'content-type': 'application/json', 'x-request-id': 'req_always_the_same' } } : undefined,
  'POST /v1/capabilities answers the same as GET': async (sent, next) =>
    is(sent, 'POST', /^\/v1\/capabilities$/) ? rewrite(await next(sent), (body) => ({ ...body, tools: body.tools.slice(1) })) : undefined,
  'capabilities list inspect_domain at its contract price': async (sent, next) =>
    /^\/v1\/capabilities/.test(sent.url)
      ? rewrite(await next(sent), (body) => ({ ...body, tools: body.tools.map((t: { credits_per_call: number }) => ({ ...t, credits_per_call: t.credits_per_call + 1 })) }))
      : undefined,
  "POST /mcp answers tools/list with the contract's tools, as JSON-RPC": async (sent, next) =>
    is(sent, 'POST', /^\/mcp$/) && sent.headers['authorization']
      ? rewrite(await next(sent), (body) => ({ ...body, result: { ...body.result, tools: body.result.tools.filter((t: { name: string }) => t.name !== 'inspect_domain') } }))
      : undefined,
  // The 401 on /mcp is the plain challenge: an MCP client has no way to find where to sign in.
  [OAUTH_CHALLENGE]: async (sent, next) => {
    if (!is(sent, 'POST', /^\/mcp$/) || sent.headers['authorization']) return undefined;
    const answer = await next(sent);
    return { ...answer, headers: { ...answer.headers, 'www-authenticate': 'Bearer realm="openrush"' } };
  },
  // The metadata names the API's base URL as the resource (as before this issue), not /mcp.
  [OAUTH_RESOURCE]: async (sent, next) =>
    is(sent, 'GET', /^\/\.well-known\/oauth-protected-resource(\/mcp)?$/)
      ? rewrite(await next(sent), (body) => ({ ...body, resource: body.resource.replace(/\/mcp$/, '') }))
      : undefined,
  // The authorization server's metadata names another issuer than the one it was fetched for (a mix-up).
  [OAUTH_SERVER]: async (sent, next) =>
    is(sent, 'GET', /^\/\.well-known\/oauth-authorization-server$/) ? rewrite(await next(sent), (body) => ({ ...body, issuer: 'https://as.example' })) : undefined,
  'GET /healthz answers ok': async (sent, next) =>
    is(sent, 'GET', /^\/healthz$/) ? { ...(await next(sent)), status: 503 } : undefined,
  // The first balance read is below zero (the later ones, the metered check's, are left alone).
  'GET /v1/me/credits gives a non-negative integer balance': (() => {
    let broken = false;
    return async (sent, next) => {
      if (broken || !is(sent, 'GET', /^\/v1\/me\/credits$/) || sent.headers['authorization'] !== `Bearer ${server.account.key}`) return undefined;
      broken = true;
      return rewrite(await next(sent), (body) => ({ ...body, balance: -5 }));
    };
  })(),
  // The case: without a credential the server says 404, never 401.
  'a request without a credential is a 401 problem with WWW-Authenticate': async (sent, next) =>
    is(sent, 'GET', /^\/v1\/me\/credits$/) && !sent.headers['authorization']
      ? { ...(await next({ ...sent, url: '/v1/no-such-thing' })) }
      : undefined,
  'an invalid body is a 400 validation problem': async (sent, next) => {
    if (!is(sent, 'POST', /^\/v1\/me\/api-credentials$/) || JSON.parse(sent.body.toString()).name.trim() !== '') return undefined;
    return { ...rewrite(await next(sent), (body) => ({ ...body, status: 422 })), status: 422 };
  },
  'POST /v1/me/api-credentials returns the key once, with no-store; revoke deactivates it': (() => {
    // Revoke answers "inactive" but leaves the credential working (the first time for each credential).
    const faked = new Set<string>();
    return async (sent, next) => {
      const match = /^\/v1\/me\/api-credentials\/([^/]+)\/revoke$/.exec(sent.url);
      if (sent.method !== 'POST' || !match || faked.has(match[1]!)) return undefined;
      faked.add(match[1]!);
      const list = await next({ ...sent, method: 'GET', url: '/v1/me/api-credentials', body: Buffer.alloc(0) });
      const credential = (JSON.parse(list.body) as Array<{ id: string }>).find((c) => c.id === match[1]);
      return { ...list, body: JSON.stringify({ ...credential, is_active: false }) };
    };
  })(),
  'GET /v1/me/api-credentials lists credentials without secrets': async (sent, next) =>
    is(sent, 'GET', /^\/v1\/me\/api-credentials$/)
      ? rewrite(await next(sent), (list) => list.map((c: object) => ({ ...c, key_hash: 'e3b0c44298fc1c149afbf4c8996fb924' })))
      : undefined,
  'GET /v1/me/usage lists records with every field of the seed, and its pages end': async (sent, next) =>
    // The cursor is ignored: every page is the first.
    is(sent, 'GET', /^\/v1\/me\/usage$/) ? next({ ...sent, url: sent.url.replace(/&?starting_after=[^&]*/, '') }) : undefined,
  // A metering that charges nothing: the tool's answer, without the call reaching the server.
  'POST /v1/tools/inspect_domain answers a DomainInspection (spends credits)': async (sent) =>
    is(sent, 'POST', /^\/v1\/tools\/inspect_domain$/)
      ? { status: 200, headers: { 'content-type': 'application/json', 'x-request-id': sent.headers['x-request-id'] ?? 'req_free' }, body: JSON.stringify(contract.components.examples['DomainInspection']!.value) }
      : undefined,
  'GET /v2/api-keys answers a page in the seed shape': async (sent, next) =>
    is(sent, 'GET', /^\/v2\/api-keys$/) && /limit=5\b/.test(sent.url) ? rewrite(await next(sent), (page) => ({ ...page, has_more: 'maybe' })) : undefined,
  // PATCH answers the change but does not make it.
  'v2 API keys: create, get, update, rotate and revoke a key of its own': async (sent, next) => {
    if (!is(sent, 'PATCH', /^\/v2\/api-keys\/[^/]+$/)) return undefined;
    const current = await next({ ...sent, method: 'GET', body: Buffer.alloc(0) });
    return rewrite(current, (key) => ({ ...key, name: JSON.parse(sent.body.toString()).name }));
  },
  // GET /v1/me says a key's request came without one (as for a Dashboard session).
  'GET /v1/me answers the account of the key under test, signed in with that key, and GET /v1/me/api-key shows that key': async (sent, next) =>
    is(sent, 'GET', /^\/v1\/me$/) ? rewrite(await next(sent), (account) => ({ ...account, credential_id: null })) : undefined,
  // The key view does not count the request asking (another key's view: the key under test has no rate limit).
  "GET /v1/me/api-key and the free tool get_key_status show a key's own constraints and live counters": async (sent, next) =>
    is(sent, 'GET', /^\/v1\/me\/api-key$/) && sent.headers['authorization'] !== `Bearer ${server.account.key}`
      ? rewrite(await next(sent), (view) => ({ ...view, rate_limit: view.rate_limit && { ...view.rate_limit, remaining: view.rate_limit.remaining + 1 } }))
      : undefined,
  // The ledger says the balance before each entry, not after it.
  'GET /v1/me/credits/ledger chains each balance_after to the entry before, the newest to the balance, and its pages end': async (sent, next) =>
    is(sent, 'GET', /^\/v1\/me\/credits\/ledger$/)
      ? rewrite(await next(sent), (entries) => entries.map((entry: { amount: number; balance_after: number }) => ({ ...entry, balance_after: entry.balance_after - entry.amount })))
      : undefined,
  // The status class filter is ignored.
  'GET /v1/me/usage filters by status class and time range, and refuses a range that ends before it starts': async (sent, next) =>
    is(sent, 'GET', /^\/v1\/me\/usage$/) && /status_class=/.test(sent.url) ? next({ ...sent, url: sent.url.replace(/&?status_class=[^&]*/, '') }) : undefined,
  // The export leaves out the last column (oauth_client_id), as the contract's example once left out request_id.
  "GET /v1/me/usage/export answers CSV in the contract's columns, its rows the records GET /v1/me/usage lists for the same filter": async (sent, next) => {
    if (!is(sent, 'GET', /^\/v1\/me\/usage\/export$/)) return undefined;
    const answer = await next(sent);
    return { ...answer, body: answer.body.split('\r\n').map((line) => line.replace(/,[^,]*$/, '')).join('\r\n') };
  },
  // The aggregates count no errors.
  "GET /v1/me/usage/aggregates adds up to its totals in aligned buckets, a new key's buckets equal to a recount of its records": async (sent, next) =>
    is(sent, 'GET', /^\/v1\/me\/usage\/aggregates$/)
      ? rewrite(await next(sent), (body) => ({ ...body, buckets: body.buckets.map((b: object) => ({ ...b, errors: 0 })), totals: { ...body.totals, errors: 0 } }))
      : undefined,
  'GET /v1/sessions/options answers without a credential, with sign-in links on': async (sent, next) =>
    is(sent, 'GET', /^\/v1\/sessions\/options$/) ? rewrite(await next(sent), (options) => ({ ...options, sign_in_link: false })) : undefined,
};

/** What verify says about each breakage (the first line under the check's FAIL). */
const SAYS: Record<string, RegExp> = {
  [NAMES[0]!]: /\n {7}X-Request-Id is "req_always_the_same", not the "verify_\w+" the request carried/,
  [NAMES[1]!]: /\n {7}POST \/v1\/capabilities differs from GET/,
  [NAMES[2]!]: /\n {7}inspect_domain costs 4, the contract says 3/,
  [NAMES[3]!]: /\n {7}tools\/list lacks inspect_domain/,
  [OAUTH_CHALLENGE]: /\n {7}the 401's WWW-Authenticate is "Bearer realm="openrush"": resource_metadata is not "http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/,
  [OAUTH_RESOURCE]: /\n {7}\/\.well-known\/oauth-protected-resource\/mcp: resource is "http:\/\/127\.0\.0\.1:(\d+)", not "http:\/\/127\.0\.0\.1:\1\/mcp", the target's \/mcp/,
  [OAUTH_SERVER]: /\n {7}http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-authorization-server: issuer is "https:\/\/as\.example", not "http:\/\/127\.0\.0\.1:\d+", the issuer its metadata was fetched for/,
  [NAMES[7]!]: /\n {7}GET \/healthz: expected 200, got 503/,
  [NAMES[8]!]: /\n {7}balance -5/,
  [NAMES[9]!]: /\n {7}GET \/v1\/me\/credits without a credential: expected 401, got 404/,
  [NAMES[10]!]: /\n {7}POST \/v1\/me\/api-credentials with a blank name: expected 400, got 422/,
  [NAMES[11]!]: /\n {7}API credential has fields \[[^\]]*key_hash/,
  [NAMES[12]!]: /\n {7}GET \/v1\/me\/credits with the revoked key: expected 401, got 200/,
  [NAMES[13]!]: /\n {7}record \w+ came twice: the cursor does not move on/,
  [NAMES[14]!]: /\n {7}the balance went from (\d+) to \1, not down by the price, 3/,
  [NAMES[15]!]: /\n {7}not a list object/,
  [NAMES[16]!]: /\n {7}after PATCH the key is named "openrush verify [^"]+", not "openrush verify [^"]+ \(updated\)"/,
  [NAMES[17]!]: /\n {7}credential_id is null, not cred_\w+, the key in use/,
  [NAMES[18]!]: /\n {7}after its first request the key has (\d+) of \1 requests left, not \d+/,
  [NAMES[19]!]: /\n {7}the newest entry's balance_after is (\d+), GET \/v1\/me\/credits says (?!\1\b)\d+/,
  [NAMES[20]!]: /\n {7}status_class=4xx listed record log_\w+ of status 2\d\d/,
  [NAMES[21]!]: /\n {7}the header row is [a-z_,]+,request_id; UsageRecord's required list is [a-z_,]+,request_id,oauth_client_id/,
  [NAMES[22]!]: /\n {7}aggregates by hour: the new key's buckets \[start, requests, errors, credits\] are \[\[[^\n]*,0,0\]\]; its records say \[\[/,
  [NAMES[23]!]: /\n {7}sign_in_link is false/,
};

describe('openrush verify: every check fails against a server that breaks its promise', () => {
  it('has a broken server for every check', () => {
    expect(Object.keys(BREAKAGES).sort()).toEqual([...NAMES].sort());
    expect(Object.keys(SAYS).sort()).toEqual([...NAMES].sort());
  });

  it.each(NAMES)('%s', async (name) => {
    breakage = BREAKAGES[name];
    const run = await verifyThroughRelay();
    expect(run.code).toBe(1);
    expect(run.out).toContain(`FAIL ${name}\n`);
    expect(run.out.slice(run.out.indexOf(`FAIL ${name}\n`))).toMatch(SAYS[name]!);
    // The breakage is of this check's promise alone: no other check fails with it.
    expect(run.failed).toEqual([name]);
  }, 60_000);
});

/** A stand-in for another authorization server (OPENRUSH_AUTHORIZATION_SERVER): serves `metadata` at RFC 8414's path. */
async function otherAuthorizationServer(metadata: (issuer: string) => object): Promise<{ issuer: string; close(): Promise<void> }> {
  let issuer = '';
  const other = createServer((req, res) => {
    const found = req.url === '/.well-known/oauth-authorization-server/tenant';
    res.writeHead(found ? 200 : 404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(found ? metadata(issuer) : { error: 'not found' }));
  });
  await new Promise<void>((done) => other.listen(0, '127.0.0.1', done));
  issuer = `http://127.0.0.1:${(other.address() as AddressInfo).port}/tenant`;
  return { issuer, close: () => new Promise<void>((done) => other.close(() => done())) };
}

describe('openrush verify: OAuth discovery', () => {
  it('passes against a server with OAuth off, reporting the OAuth checks as not applicable', async () => {
    upstream = oauthOff;
    const run = await verifyThroughRelay({ metered: false });
    expect(run.failed).toEqual([]);
    expect(run.code).toBe(0);
    for (const name of OAUTH_CHECKS) expect(run.out).toContain(`  ok ${name} (not applicable: OAuth for /mcp is off on the target`);
    expect(run.results.filter((result) => result.notApplicable).map((result) => result.name)).toEqual(OAUTH_CHECKS);
    expect(run.out).toContain(`All ${NAMES.length - 1} checks hold (3 not applicable).`);
  }, 60_000);

  it('fails a server with OAuth off whose 401 still sends clients to the metadata', async () => {
    upstream = oauthOff;
    breakage = async (sent, next) => {
      if (!is(sent, 'POST', /^\/mcp$/) || sent.headers['authorization']) return undefined;
      const answer = await next(sent);
      return { ...answer, headers: { ...answer.headers, 'www-authenticate': `Bearer realm="openrush", resource_metadata="${relayUrl}/.well-known/oauth-protected-resource/mcp"` } };
    };
    const result = await checkThroughRelay(OAUTH_CHALLENGE);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^the 401 names resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp", but \/\.well-known\/oauth-protected-resource\/mcp answers 404/);
  }, 30_000);

  it('fails a server that serves the metadata at the root but not at /mcp', async () => {
    breakage = async (sent, next) => (is(sent, 'GET', /^\/\.well-known\/oauth-protected-resource\/mcp$/) ? next({ ...sent, url: '/.well-known/no-such-thing' }) : undefined);
    const result = await checkThroughRelay(OAUTH_RESOURCE);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^GET \/\.well-known\/oauth-protected-resource \(\/\.well-known\/oauth-protected-resource\/mcp answers 404\): expected 404, got 200/);
  }, 30_000);

  it('fails a protected resource that names no authorization server', async () => {
    breakage = async (sent, next) =>
      is(sent, 'GET', /^\/\.well-known\/oauth-protected-resource(\/mcp)?$/) ? rewrite(await next(sent), (body) => ({ ...body, authorization_servers: [] })) : undefined;
    const result = await checkThroughRelay(OAUTH_RESOURCE);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^\/\.well-known\/oauth-protected-resource\/mcp: authorization_servers is \[\]: an MCP client has nowhere to sign in/);
  }, 30_000);

  it.each([
    ['without PKCE S256', { code_challenge_methods_supported: ['plain'] }, /code_challenge_methods_supported is \["plain"\], without S256/],
    ['without a registration endpoint', { registration_endpoint: undefined }, /registration_endpoint is undefined: a client cannot register itself/],
    ['without the iss parameter', { authorization_response_iss_parameter_supported: false }, /authorization_response_iss_parameter_supported is false, not true \(RFC 9207\)/],
  ])("fails an authorization server's metadata %s", async (_what, change, says) => {
    breakage = async (sent, next) =>
      is(sent, 'GET', /^\/\.well-known\/oauth-authorization-server$/) ? rewrite(await next(sent), (body) => ({ ...body, ...change })) : undefined;
    const result = await checkThroughRelay(OAUTH_SERVER);
    expect(result.ok).toBe(false);
    expect(result.error!.split('\n')[0]).toMatch(says);
  }, 30_000);

  it("reads another authorization server's metadata at RFC 8414's path of its issuer, and holds it to the same", async () => {
    const good = await otherAuthorizationServer((issuer) => ({
      issuer,
      authorization_endpoint: `${issuer}/authorize`,
      token_endpoint: `${issuer}/token`,
      registration_endpoint: `${issuer}/register`,
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
    }));
    const bad = await otherAuthorizationServer((issuer) => ({ issuer: `${issuer}/`, code_challenge_methods_supported: ['S256'] }));
    try {
      for (const [other, ok] of [[good, true], [bad, false]] as const) {
        breakage = async (sent, next) =>
          is(sent, 'GET', /^\/\.well-known\/oauth-protected-resource\/mcp$/) ? rewrite(await next(sent), (body) => ({ ...body, authorization_servers: [other.issuer] })) : undefined;
        const result = await checkThroughRelay(OAUTH_SERVER);
        expect(result.error).toBe(ok ? undefined : `${other.issuer.replace('/tenant', '')}/.well-known/oauth-authorization-server/tenant: issuer is "${other.issuer}/", not "${other.issuer}", the issuer its metadata was fetched for (RFC 8414 §3.3)`);
        expect(result.ok).toBe(ok);
      }
    } finally {
      await good.close();
      await bad.close();
    }
  }, 30_000);
});
