// The contract suite as shipped code: named checks, each a request and what the contract promises about the answer.
// `openrush verify` runs them against any deployment through `prism proxy` (which reports every request or response
// that breaks the contract in an `sl-violations` header); test/contract.test.ts runs the same checks against the
// Prism mock and the real server, so the two never drift apart.
//
// A check never spends credits unless `metered` is set, and never leaves a key active: the keys it makes are named
// as the run's own, and it revokes them before it ends, whatever happens (`runChecks` sweeps up after a failure).
// A check passes only on the target's own answers (see UPSTREAM_HEADER) and, where it can, on facts only the
// target can know: the X-Request-Id it was sent, a key it made, a change read back.
import { randomBytes } from 'node:crypto';
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from '../generated/openapi.d.ts';
import { type ContractDocument, loadContract } from './contract.ts';
import { oauthScopes } from './oauth/scopes.ts';

type Problem = components['schemas']['Problem'];
type ApiClient = Client<paths>;

export class CheckFailure extends Error {
  override name = 'CheckFailure';
}

/**
 * Thrown by a check whose promise the target has turned off on purpose (OAuth for /mcp, `OPENRUSH_OAUTH=off`),
 * once the check has seen that it is consistently off: the check holds, reported as not applicable with the reason.
 */
export class NotApplicable extends Error {
  override name = 'NotApplicable';
}

function ensure(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CheckFailure(message);
}

function sameKeys(value: unknown, keys: string[], what: string): void {
  const actual = Object.keys((value ?? {}) as object).sort();
  const expected = [...keys].sort();
  ensure(
    JSON.stringify(actual) === JSON.stringify(expected),
    `${what} has fields [${actual.join(', ')}], the contract says [${expected.join(', ')}]`,
  );
}

function status(response: Response, expected: number, what: string, body?: unknown): void {
  ensure(
    response.status === expected,
    `${what}: expected ${expected}, got ${response.status}${body === undefined ? '' : ` ${JSON.stringify(body).slice(0, 300)}`}`,
  );
}

export interface CheckContext {
  /** Authenticated with the API key under test. */
  client: ApiClient;
  /** Without a credential. */
  anonymous: ApiClient;
  /** Authenticated with another key (one the check made), its answers checked like the others'. */
  withKey(apiKey: string): ApiClient;
  /** The API key under test. */
  apiKey: string;
  /** The name of everything this run creates ("openrush verify <start time>"): its own, never an example's. */
  label: string;
  /**
   * The deployment's own base URL, as verify was given it (no trailing slash): the URLs the target hands out (the
   * protected-resource metadata's `resource`, its issuer) must name it, whatever sits between (the proxy).
   */
  targetUrl: string;
  /** Fetches from elsewhere than the target (an external authorization server's metadata). */
  fetch: typeof fetch;
}

export interface ContractCheck {
  name: string;
  /** Spends credits of the deployment: only run when asked for. */
  metered?: boolean;
  /**
   * Sends a deliberately invalid request (a blank name, no credential): Prism's report about the request is
   * expected, not a breach; its report about the answer still is.
   */
  invalidRequest?: boolean;
  /**
   * Its promise is about what the target keeps (a key it made, a revocation, a usage record, a request id): a mock
   * of the contract, which answers its examples and stores nothing, fails it.
   */
  deployment?: boolean;
  run(context: CheckContext): Promise<void>;
}

const KEY_PATTERN = /^or_[0-9A-Za-z]{38}$/;
const TOKEN_PREFIX = /^or_[0-9A-Za-z]{6}\.\.\.$/;
const CREDENTIAL_FIELDS = ['account_id', 'created_at', 'expires_at', 'id', 'is_active', 'last_used_at', 'name', 'prefix'];
const INSPECT = '/v1/tools/inspect_domain';
/** The most pages the usage check follows before it stops (it proves the cursor works, not the whole history). */
const USAGE_PAGES = 3;
/** The v2 key status of a revoked key (the contract's `ApiKeyStatus`). */
const REVOKED = 3;

/** An API key with the fields the contract lists (`ApiKey`'s required list, or `ApiKeyWithSecret`'s). */
function expectApiKey(key: unknown, fields: string[]): void {
  sameKeys(key, fields, 'API key');
  const { token_prefix, status: keyStatus, constraints } = key as { token_prefix: string; status: number; constraints: object };
  ensure(TOKEN_PREFIX.test(token_prefix), `token_prefix "${token_prefix}" is not or_ + 6 characters + ...`);
  ensure([1, 2, 3, 4].includes(keyStatus), `status ${keyStatus} is not one of the contract's`);
  sameKeys(constraints, ['budget', 'expires_at', 'rate_limit'], 'constraints');
}

/** A fresh request id for a request: the target echoes it (a mock or a proxy answering in its place cannot). */
function newRequestId(): string {
  return `verify_${randomBytes(12).toString('hex')}`;
}

/**
 * A problem answer of the target itself to the request sent with `requestId`: problem+json, and both the
 * `X-Request-Id` header and the problem's `request_id` are the id the request carried (the contract says a safe
 * id sent by the client is the request's id), which only the target that received the request can know.
 */
function expectOwnProblem(response: Response, body: unknown, expectedStatus: number, what: string, requestId: string): Problem {
  status(response, expectedStatus, what, body);
  ensure(/^application\/problem\+json/.test(response.headers.get('content-type') ?? ''), `${what}: not application/problem+json`);
  const problem = body as Problem | undefined;
  ensure(problem?.status === expectedStatus && typeof problem.type === 'string' && typeof problem.title === 'string', `${what}: not a ${expectedStatus} problem document`);
  const header = response.headers.get('x-request-id');
  ensure(header === requestId, `${what}: X-Request-Id is "${header}", not the "${requestId}" the request carried`);
  ensure(problem.request_id === requestId, `${what}: the problem's request_id is "${problem.request_id}", not the "${requestId}" the request carried`);
  return problem;
}

/** A key that is refused: 401, as the target's own problem. */
async function expectRefused(client: ApiClient, what: string): Promise<void> {
  const requestId = newRequestId();
  const { error, response } = await client.GET('/v1/me/credits', { headers: { 'X-Request-Id': requestId } });
  expectOwnProblem(response, error, 401, what, requestId);
}

/** A key that works. */
async function expectAccepted(client: ApiClient, what: string): Promise<void> {
  const { data, response } = await client.GET('/v1/me/credits');
  status(response, 200, what, data);
}

/** A key of the check's own, revoked when `work` is done, whatever happens. */
async function withTemporaryV1Key(client: ApiClient, name: string, work: (created: components['schemas']['ApiCredentialCreated'], response: Response) => Promise<void>): Promise<void> {
  const { data, response } = await client.POST('/v1/me/api-credentials', { body: { name } });
  const id = data?.api_credential?.id;
  try {
    status(response, 201, 'POST /v1/me/api-credentials', data);
    await work(data!, response);
  } finally {
    if (typeof id === 'string') await client.POST('/v1/me/api-credentials/{credential_id}/revoke', { params: { path: { credential_id: id } } });
  }
}

async function withTemporaryV2Key(client: ApiClient, body: components['schemas']['ApiKeyCreate'], work: (created: components['schemas']['ApiKeyWithSecret'], response: Response) => Promise<void>): Promise<void> {
  const { data, response } = await client.POST('/v2/api-keys', { body });
  const id = data?.api_key_id;
  try {
    status(response, 201, 'POST /v2/api-keys', data);
    await work(data!, response);
  } finally {
    if (typeof id === 'string') await client.POST('/v2/api-keys/{api_key_id}/revoke', { params: { path: { api_key_id: id } } });
  }
}

/** The key under test as the target lists it (its prefix is the start of the key): its id and account. */
async function keyUnderTest(client: ApiClient, apiKey: string): Promise<components['schemas']['ApiCredential']> {
  const { data, response } = await client.GET('/v1/me/api-credentials');
  status(response, 200, 'GET /v1/me/api-credentials', data);
  const prefix = `${apiKey.slice(0, 9)}...`;
  const found = data!.find((credential) => credential.prefix === prefix && credential.is_active);
  ensure(found, `the key in use (${prefix}) is not listed as active`);
  return found;
}

/** An instant `ms` milliseconds after (or before) a timestamp of the target, as RFC 3339. */
function shifted(timestamp: string, ms: number): string {
  return new Date(Date.parse(timestamp) + ms).toISOString();
}

/** A number the run picks, so a value read back is the target's own, never an example's. */
function pick(low: number, high: number): number {
  return low + (randomBytes(4).readUInt32BE(0) % (high - low + 1));
}

/** RFC 4180 rows: CRLF line ends, quoted cells with "" for a quote. A bare LF stays inside its cell. Also the tests' reader. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c !== '"') cell += c;
      else if (text[i + 1] === '"') (cell += '"'), i++;
      else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\r' && text[i + 1] === '\n') row.push(cell), rows.push(row), (row = []), (cell = ''), i++;
    else cell += c;
  }
  if (cell !== '' || row.length > 0) rows.push([...row, cell]);
  return rows;
}

/** A field of a usage record as the export writes it (the contract's rule): empty for null, a formula defused with '. */
function csvText(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

/** A value as JSON with its objects' keys sorted, to compare two answers whatever order their fields come in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

const MCP_METADATA = '/.well-known/oauth-protected-resource/mcp';
const ROOT_METADATA = '/.well-known/oauth-protected-resource';
const OAUTH_OFF = 'OAuth for /mcp is off on the target (no protected-resource metadata): API keys only';

/**
 * The target's protected-resource metadata of /mcp, or `off` when OAuth for /mcp is turned off there: the
 * operation's own `404` problem (a `404` from anything else, say a server that answers 404 to everything, fails).
 */
async function mcpResourceMetadata(anonymous: ApiClient): Promise<'off' | Awaited<ReturnType<ApiClient['GET']>> & { data?: components['schemas']['ProtectedResourceMetadata'] }> {
  const requestId = newRequestId();
  const answer = await anonymous.GET(MCP_METADATA, { headers: { 'X-Request-Id': requestId } });
  if (answer.response.status !== 404) return answer;
  expectOwnProblem(answer.response, answer.error, 404, `GET ${MCP_METADATA}`, requestId);
  return 'off';
}

/** A path of the target that OAuth off must leave without a document: its own `404` problem. */
async function expectNoDocument(anonymous: ApiClient, path: typeof ROOT_METADATA | '/.well-known/oauth-authorization-server'): Promise<void> {
  const requestId = newRequestId();
  const { error, response } = await anonymous.GET(path, { headers: { 'X-Request-Id': requestId } });
  expectOwnProblem(response, error, 404, `GET ${path} (${MCP_METADATA} answers 404)`, requestId);
}

/** The auth-params of a `WWW-Authenticate` challenge (RFC 9110 §11.2), by lower-case name. */
function challengeParams(challenge: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [, name, quoted, token] of challenge.matchAll(/([A-Za-z0-9_-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    params[name!.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : token!;
  }
  return params;
}

/** Where an issuer's metadata is (RFC 8414 §3.1): the well-known segment between the host and the issuer's path. */
function authorizationServerMetadataUrl(issuer: string): string {
  const url = new URL(issuer);
  return `${url.origin}/.well-known/oauth-authorization-server${url.pathname.replace(/\/+$/, '')}`;
}

const HOUR_MS = 3_600_000;
const INTERVAL_MS = { hour: HOUR_MS, day: 24 * HOUR_MS } as const;
/** The most ledger pages the ledger check follows (it proves the chain and the cursor, not the whole history). */
const LEDGER_PAGES = 6;
/** Entries per ledger page: one, so that even the shortest ledger with a charge (a grant and the charge) is paged. */
const LEDGER_PAGE = 1;
/** How often the ledger check reads the newest entry and the balance again when an entry came in between. */
const LEDGER_READS = 3;

export function contractChecks(): ContractCheck[] {
  const contract = loadContract() as unknown as { components: { examples: Record<string, { value: any }> }; paths: Record<string, any> };
  const examples = contract.components.examples;
  const inspection = examples['DomainInspection']!.value;
  const inspectPrice: number = contract.paths[INSPECT].post['x-openrush-credits'];
  // Every field of a usage record: the contract's required list (UsageRecord allows no other).
  const schemas = (contract.components as unknown as { schemas: Record<string, { required?: string[] }> }).schemas;
  /** A schema's required list: every field of an object the contract allows no other field on. */
  const required = (schema: string): string[] => schemas[schema]?.required ?? [];
  // Every field of a usage record: the contract's required list (UsageRecord allows no other), in its order (the CSV's).
  const usageFields = required('UsageRecord');
  const keyFields = required('ApiKey');
  const keyWithSecretFields = required('ApiKeyWithSecret');
  const scopes = oauthScopes(contract as unknown as ContractDocument).map((scope) => scope.scope);

  return [
    {
      name: 'GET /v1/capabilities answers without a credential, with the X-Request-Id sent',
      deployment: true,
      async run({ anonymous }) {
        const requestId = newRequestId();
        const { data, response } = await anonymous.GET('/v1/capabilities', { headers: { 'X-Request-Id': requestId } });
        status(response, 200, 'GET /v1/capabilities', data);
        ensure(Array.isArray(data?.tools) && Array.isArray(data?.sources), 'capabilities lack tools[] or sources[]');
        const header = response.headers.get('x-request-id');
        ensure(header === requestId, `X-Request-Id is "${header}", not the "${requestId}" the request carried`);
      },
    },
    {
      name: 'POST /v1/capabilities answers the same as GET',
      async run({ anonymous }) {
        const get = await anonymous.GET('/v1/capabilities');
        const post = await anonymous.POST('/v1/capabilities', { body: {} });
        status(post.response, 200, 'POST /v1/capabilities', post.data);
        ensure(JSON.stringify(post.data) === JSON.stringify(get.data), 'POST /v1/capabilities differs from GET');
      },
    },
    {
      name: 'capabilities list inspect_domain at its contract price',
      async run({ anonymous }) {
        const { data } = await anonymous.GET('/v1/capabilities');
        const tool = data?.tools.find((t) => t.path === INSPECT);
        ensure(tool, `no tool at ${INSPECT}`);
        ensure(tool.name === 'inspect_domain' && tool.method === 'POST', `the tool at ${INSPECT} is ${tool.method} ${tool.name}`);
        ensure(tool.credits_per_call === inspectPrice, `inspect_domain costs ${tool.credits_per_call}, the contract says ${inspectPrice}`);
        ensure(data!.sources.some((source) => source.id === tool.source), `source ${tool.source} is not listed`);
      },
    },
    {
      name: "POST /mcp answers tools/list with the contract's tools, as JSON-RPC",
      async run({ client }) {
        const { data, response } = await client.POST('/mcp', {
          body: { jsonrpc: '2.0', id: 1, method: 'tools/list' },
          headers: { Accept: 'application/json, text/event-stream' },
        });
        status(response, 200, 'POST /mcp tools/list', data);
        ensure(data?.jsonrpc === '2.0' && data.id === 1, `not the JSON-RPC answer to request 1: ${JSON.stringify(data).slice(0, 200)}`);
        const tools = (data.result as { tools?: Array<{ name: string; inputSchema?: { type?: string } }> } | undefined)?.tools ?? [];
        ensure(tools.find((tool) => tool.name === 'inspect_domain')?.inputSchema?.type === 'object', 'tools/list lacks inspect_domain with an object input schema');
      },
    },
    {
      name: 'POST /mcp without a credential is a 401 whose WWW-Authenticate names the protected-resource metadata and a scope',
      invalidRequest: true,
      deployment: true,
      async run({ anonymous, targetUrl }) {
        const requestId = newRequestId();
        const { error, response } = await anonymous.POST('/mcp', {
          body: { jsonrpc: '2.0', id: 1, method: 'tools/list' },
          headers: { Accept: 'application/json, text/event-stream', 'X-Request-Id': requestId },
        });
        expectOwnProblem(response, error, 401, 'POST /mcp without a credential', requestId);
        const challenge = response.headers.get('www-authenticate') ?? '';
        ensure(/^Bearer\b/.test(challenge), `POST /mcp without a credential: WWW-Authenticate is "${challenge}", not a Bearer challenge`);
        const params = challengeParams(challenge);
        if ((await mcpResourceMetadata(anonymous)) === 'off') {
          // OAuth off: nothing to follow, and a 401 must not send clients to a document that is not there.
          ensure(params['resource_metadata'] === undefined, `the 401 names resource_metadata="${params['resource_metadata']}", but ${MCP_METADATA} answers 404`);
          throw new NotApplicable(OAUTH_OFF);
        }
        const expected = `${targetUrl}${MCP_METADATA}`;
        ensure(params['resource_metadata'] === expected, `the 401's WWW-Authenticate is "${challenge}": resource_metadata is not "${expected}" (RFC 9728 §5.1)`);
        const asked = (params['scope'] ?? '').split(' ').filter(Boolean);
        ensure(
          asked.length > 0 && asked.every((scope) => scopes.includes(scope)),
          `the 401's WWW-Authenticate is "${challenge}": its scope is not among the contract's scopes (${scopes.join(' ')})`,
        );
      },
    },
    {
      name: "GET /.well-known/oauth-protected-resource/mcp (and at the root) describes the target's /mcp, naming an authorization server",
      deployment: true,
      async run({ anonymous, targetUrl }) {
        const atMcp = await mcpResourceMetadata(anonymous);
        if (atMcp === 'off') {
          await expectNoDocument(anonymous, ROOT_METADATA);
          throw new NotApplicable(OAUTH_OFF);
        }
        const atRoot = await anonymous.GET(ROOT_METADATA);
        const resource = `${targetUrl}/mcp`;
        for (const [path, { data, response }] of [[MCP_METADATA, atMcp], [ROOT_METADATA, atRoot]] as const) {
          status(response, 200, `GET ${path}`, data);
          ensure(data!.resource === resource, `${path}: resource is "${data!.resource}", not "${resource}", the target's /mcp (RFC 9728 §3.3)`);
          const servers = data!.authorization_servers;
          ensure(Array.isArray(servers) && servers.length > 0, `${path}: authorization_servers is ${JSON.stringify(servers)}: an MCP client has nowhere to sign in`);
          ensure(servers.every((server) => /^https?:\/\/[^/]/.test(server)), `${path}: authorization_servers ${JSON.stringify(servers)} are not all http(s) URLs`);
          ensure(JSON.stringify(data!.bearer_methods_supported) === '["header"]', `${path}: bearer_methods_supported is ${JSON.stringify(data!.bearer_methods_supported)}`);
          const listed = data!.scopes_supported ?? [];
          ensure(scopes.every((scope) => listed.includes(scope)), `${path}: scopes_supported is ${JSON.stringify(listed)}, without all of the contract's ${JSON.stringify(scopes)}`);
        }
        ensure(canonical(atRoot.data) === canonical(atMcp.data), `${ROOT_METADATA} and ${MCP_METADATA} answer different documents`);
      },
    },
    {
      name: "the authorization server's metadata (RFC 8414) names its own issuer, PKCE S256, a registration endpoint and the iss parameter",
      deployment: true,
      async run({ anonymous, targetUrl, fetch: fetchElsewhere }) {
        const metadata = await mcpResourceMetadata(anonymous);
        if (metadata === 'off') {
          await expectNoDocument(anonymous, '/.well-known/oauth-authorization-server');
          throw new NotApplicable(OAUTH_OFF);
        }
        status(metadata.response, 200, `GET ${MCP_METADATA}`, metadata.data);
        const issuer = metadata.data!.authorization_servers?.[0];
        ensure(typeof issuer === 'string' && /^https?:\/\/[^/]/.test(issuer), `${MCP_METADATA} names no authorization server: ${JSON.stringify(metadata.data!.authorization_servers)}`);
        const url = authorizationServerMetadataUrl(issuer);
        let server: Record<string, unknown> | undefined;
        if (url.startsWith(`${targetUrl}/`)) {
          // This server's own: through the proxy, held to the contract like every other answer.
          const own = await anonymous.GET(url.slice(targetUrl.length) as '/.well-known/oauth-authorization-server');
          status(own.response, 200, `GET ${url}`, own.data);
          server = own.data as Record<string, unknown>;
        } else {
          // Another authorization server (OPENRUSH_AUTHORIZATION_SERVER): its metadata is not this contract's, read directly.
          const answer = await fetchElsewhere(url, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(10_000) }).catch((error: unknown) => {
            throw new CheckFailure(`GET ${url}: ${String((error as Error).cause ?? error)}`);
          });
          const body = await answer.text();
          status(answer, 200, `GET ${url}`, body.slice(0, 300));
          try {
            server = JSON.parse(body) as Record<string, unknown>;
          } catch {
            throw new CheckFailure(`GET ${url} is not JSON: ${body.slice(0, 100)}`);
          }
        }
        ensure(server?.['issuer'] === issuer, `${url}: issuer is ${JSON.stringify(server?.['issuer'])}, not "${issuer}", the issuer its metadata was fetched for (RFC 8414 §3.3)`);
        const methods = server['code_challenge_methods_supported'];
        ensure(Array.isArray(methods) && methods.includes('S256'), `${url}: code_challenge_methods_supported is ${JSON.stringify(methods)}, without S256 (MCP clients refuse to go on without PKCE)`);
        const registration = server['registration_endpoint'];
        ensure(typeof registration === 'string' && /^https?:\/\/[^/]/.test(registration), `${url}: registration_endpoint is ${JSON.stringify(registration)}: a client cannot register itself (RFC 7591)`);
        ensure(server['authorization_response_iss_parameter_supported'] === true, `${url}: authorization_response_iss_parameter_supported is ${JSON.stringify(server['authorization_response_iss_parameter_supported'])}, not true (RFC 9207)`);
      },
    },
    {
      name: 'GET /healthz answers ok',
      async run({ anonymous }) {
        const { data, response } = await anonymous.GET('/healthz');
        status(response, 200, 'GET /healthz', data);
        ensure(data?.status === 'ok', `GET /healthz answered ${JSON.stringify(data)}`);
      },
    },
    {
      name: 'GET /v1/me/credits gives a non-negative integer balance',
      async run({ client }) {
        const { data, response } = await client.GET('/v1/me/credits');
        status(response, 200, 'GET /v1/me/credits', data);
        ensure(Number.isInteger(data?.balance) && data!.balance >= 0, `balance ${JSON.stringify(data?.balance)}`);
      },
    },
    {
      name: 'a request without a credential is a 401 problem with WWW-Authenticate',
      invalidRequest: true,
      deployment: true,
      async run({ anonymous }) {
        const requestId = newRequestId();
        const { error, response } = await anonymous.GET('/v1/me/credits', { headers: { 'X-Request-Id': requestId } });
        expectOwnProblem(response, error, 401, 'GET /v1/me/credits without a credential', requestId);
        ensure(/^Bearer\b/.test(response.headers.get('www-authenticate') ?? ''), 'no WWW-Authenticate: Bearer header');
      },
    },
    {
      name: 'an invalid body is a 400 validation problem',
      invalidRequest: true,
      deployment: true,
      async run({ client }) {
        // A blank name: refused before anything is created.
        const requestId = newRequestId();
        const { error, response } = await client.POST('/v1/me/api-credentials', { body: { name: ' ' }, headers: { 'X-Request-Id': requestId } });
        const problem = expectOwnProblem(response, error, 400, 'POST /v1/me/api-credentials with a blank name', requestId);
        ensure(problem.type.endsWith('/validation_failed'), `problem type ${problem.type}`);
      },
    },
    {
      name: 'GET /v1/me/api-credentials lists credentials without secrets',
      deployment: true,
      async run({ client, apiKey }) {
        const { data, response } = await client.GET('/v1/me/api-credentials');
        status(response, 200, 'GET /v1/me/api-credentials', data);
        for (const credential of data!) sameKeys(credential, CREDENTIAL_FIELDS, 'API credential');
        const prefix = `${apiKey.slice(0, 9)}...`;
        ensure(data!.some((c) => c.prefix === prefix && c.is_active), `the key in use (${prefix}) is not listed as active`);
      },
    },
    {
      name: 'POST /v1/me/api-credentials returns the key once, with no-store; revoke deactivates it',
      deployment: true,
      async run({ client, withKey, label }) {
        await withTemporaryV1Key(client, label, async (created, response) => {
          ensure(response.headers.get('cache-control') === 'no-store', `Cache-Control is "${response.headers.get('cache-control')}"`);
          ensure(KEY_PATTERN.test(created.key), 'the new key does not look like or_ + 38 base62 characters');
          ensure(created.api_credential.prefix === `${created.key.slice(0, 9)}...`, 'prefix is not the start of the key');
          ensure(created.api_credential.is_active, 'a new credential is not active');
          ensure(created.api_credential.name === label, `the credential is named "${created.api_credential.name}", not "${label}" as asked`);
          const listed = await client.GET('/v1/me/api-credentials');
          ensure(listed.data?.some((c) => c.id === created.api_credential.id && c.is_active), 'the new credential is not listed as active');
          await expectAccepted(withKey(created.key), 'GET /v1/me/credits with the new key');
          const revoked = await client.POST('/v1/me/api-credentials/{credential_id}/revoke', {
            params: { path: { credential_id: created.api_credential.id } },
          });
          status(revoked.response, 200, 'POST /v1/me/api-credentials/{id}/revoke', revoked.data);
          ensure(revoked.data?.id === created.api_credential.id, `revoke answered credential ${revoked.data?.id}, not ${created.api_credential.id}`);
          ensure(revoked.data?.is_active === false, 'a revoked credential is still active');
          await expectRefused(withKey(created.key), 'GET /v1/me/credits with the revoked key');
        });
      },
    },
    {
      name: 'GET /v1/me/usage lists records with every field of the seed, and its pages end',
      deployment: true,
      async run({ client, apiKey }) {
        // Any authenticated request leaves a record, so there are records of the key in use to list.
        const credentials = await client.GET('/v1/me/api-credentials');
        const inUse = credentials.data?.find((c) => c.prefix === `${apiKey.slice(0, 9)}...`)?.id;
        const seen = new Set<string>();
        const credentialsSeen = new Set<string | null>();
        let startingAfter: string | undefined;
        for (let page = 1; page <= USAGE_PAGES; page++) {
          const { data, response } = await client.GET('/v1/me/usage', {
            params: { query: { limit: 2, ...(startingAfter ? { starting_after: startingAfter } : {}) } },
          });
          status(response, 200, 'GET /v1/me/usage', data);
          ensure(data!.length > 0 && data!.length <= 2, `a page of limit 2 has ${data!.length} records`);
          for (const record of data!) {
            sameKeys(record, usageFields, 'usage record');
            ensure(!seen.has(record.id), `record ${record.id} came twice: the cursor does not move on`);
            seen.add(record.id);
            credentialsSeen.add(record.credential_id);
          }
          const link = response.headers.get('link');
          if (!link || !/rel="next"/.test(link)) break;
          startingAfter = data!.at(-1)!.id;
        }
        ensure(inUse && credentialsSeen.has(inUse), `none of the newest ${seen.size} records is of the key in use (${inUse ?? 'not listed'})`);
      },
    },
    {
      name: 'POST /v1/tools/inspect_domain answers a DomainInspection (spends credits)',
      metered: true,
      deployment: true,
      async run({ client }) {
        const before = await client.GET('/v1/me/credits');
        const requestId = newRequestId();
        const { data, response } = await client.POST(INSPECT, { body: { domain: inspection.input }, headers: { 'X-Request-Id': requestId } });
        status(response, 200, `POST ${INSPECT}`, data);
        ensure(JSON.stringify(data) === JSON.stringify(inspection), `inspect_domain answered ${JSON.stringify(data)}`);
        const after = await client.GET('/v1/me/credits');
        const spent = (before.data?.balance ?? NaN) - (after.data?.balance ?? NaN);
        ensure(spent === inspectPrice, `the balance went from ${before.data?.balance} to ${after.data?.balance}, not down by the price, ${inspectPrice}`);
        // The charge is in the ledger, naming the call's usage record and the request id it was sent with.
        const ledger = await client.GET('/v1/me/credits/ledger', { params: { query: { limit: 10 } } });
        status(ledger.response, 200, 'GET /v1/me/credits/ledger', ledger.data);
        const charge = ledger.data!.find((entry) => entry.request_id === requestId);
        ensure(charge?.kind === 'charge' && charge.amount === -inspectPrice, `the ledger has no charge of ${inspectPrice} for request ${requestId}: ${JSON.stringify(charge)}`);
        const usage = await client.GET('/v1/me/usage', { params: { query: { tool: 'inspect_domain', limit: 10 } } });
        status(usage.response, 200, 'GET /v1/me/usage?tool=inspect_domain', usage.data);
        const record = usage.data!.find((entry) => entry.request_id === requestId);
        ensure(record?.credits_charged === inspectPrice, `the usage record of request ${requestId} is ${JSON.stringify(record)}`);
        ensure(charge.usage_id === record.id, `the charge of request ${requestId} names usage record ${charge.usage_id}, not ${record.id}, the call's`);
      },
    },
    {
      name: 'GET /v2/api-keys answers a page in the seed shape',
      async run({ client }) {
        const { data, response } = await client.GET('/v2/api-keys', { params: { query: { limit: 5 } } });
        status(response, 200, 'GET /v2/api-keys', data);
        sameKeys(data, ['data', 'has_more', 'object'], 'API key list');
        ensure(data!.object === 'list' && typeof data!.has_more === 'boolean', 'not a list object');
        ensure(data!.data.length > 0 && data!.data.length <= 5, `a page of limit 5 has ${data!.data.length} keys`);
        for (const key of data!.data) expectApiKey(key, keyFields);
      },
    },
    {
      name: 'v2 API keys: create, get, update, rotate and revoke a key of its own',
      deployment: true,
      async run({ client, withKey, label }) {
        const example = examples['ApiKeyCreate']!.value;
        // The contract's example, under this run's own name, with an expiry that stays in the future.
        const body = { ...example, name: label, constraints: { ...example.constraints, expires_at: '2099-01-01T00:00:00Z' } };
        await withTemporaryV2Key(client, body, async (created, response) => {
          ensure(response.headers.get('cache-control') === 'no-store', 'POST /v2/api-keys without Cache-Control: no-store');
          expectApiKey(created, keyWithSecretFields);
          ensure(KEY_PATTERN.test(created.api_key), 'the new key does not look like or_ + 38 base62 characters');
          ensure(created.name === label, `the key is named "${created.name}", not "${label}" as asked`);
          const path = { api_key_id: created.api_key_id };
          const got = await client.GET('/v2/api-keys/{api_key_id}', { params: { path } });
          status(got.response, 200, 'GET /v2/api-keys/{id}', got.data);
          expectApiKey(got.data, keyFields);
          ensure(got.data!.api_key_id === created.api_key_id && got.data!.name === label, `GET /v2/api-keys/{id} answered key ${got.data!.api_key_id} "${got.data!.name}", not the key just created`);
          const renamed = `${label} (updated)`;
          const patched = await client.PATCH('/v2/api-keys/{api_key_id}', { params: { path }, body: { ...examples['ApiKeyUpdate']!.value, name: renamed } });
          status(patched.response, 200, 'PATCH /v2/api-keys/{id}', patched.data);
          expectApiKey(patched.data, keyFields);
          const reread = await client.GET('/v2/api-keys/{api_key_id}', { params: { path } });
          ensure(reread.data?.name === renamed, `after PATCH the key is named "${reread.data?.name}", not "${renamed}"`);
          const rotated = await client.POST('/v2/api-keys/{api_key_id}/rotate', { params: { path }, body: { grace_period_seconds: 0 } });
          status(rotated.response, 200, 'POST /v2/api-keys/{id}/rotate', rotated.data);
          ensure(rotated.response.headers.get('cache-control') === 'no-store', 'rotate without Cache-Control: no-store');
          expectApiKey(rotated.data, keyWithSecretFields);
          ensure(rotated.data!.api_key !== created.api_key, 'rotate answered the same secret');
          await expectRefused(withKey(created.api_key), 'GET /v1/me/credits with the secret rotated away (no grace period)');
          await expectAccepted(withKey(rotated.data!.api_key), 'GET /v1/me/credits with the rotated secret');
          const revoked = await client.POST('/v2/api-keys/{api_key_id}/revoke', { params: { path } });
          status(revoked.response, 200, 'POST /v2/api-keys/{id}/revoke', revoked.data);
          expectApiKey(revoked.data, keyFields);
          ensure(revoked.data!.status === REVOKED, `a revoked key has status ${revoked.data!.status}`);
          await expectRefused(withKey(rotated.data!.api_key), 'GET /v1/me/credits with the revoked key');
        });
      },
    },
    {
      name: 'GET /v1/me answers the account of the key under test, signed in with that key, and GET /v1/me/api-key shows that key',
      deployment: true,
      async run({ client, apiKey }) {
        const key = await keyUnderTest(client, apiKey);
        const { data, response } = await client.GET('/v1/me');
        status(response, 200, 'GET /v1/me', data);
        sameKeys(data, required('Account'), 'account');
        ensure(data!.credential_id === key.id, `credential_id is ${JSON.stringify(data!.credential_id)}, not ${key.id}, the key in use`);
        ensure(data!.id === key.account_id, `the account is ${data!.id}, not ${key.account_id}, the key's own`);
        ensure(
          data!.auth_source === 'api_key' && data!.sign_in_method === 'api_key',
          `auth_source ${data!.auth_source} and sign_in_method ${data!.sign_in_method} for a request made with an API key`,
        );
        ensure(data!.session_expires_at === null, `session_expires_at is ${data!.session_expires_at} for an API key`);
        const view = await client.GET('/v1/me/api-key');
        status(view.response, 200, 'GET /v1/me/api-key', view.data);
        ensure(
          view.data!.api_key_id === key.id && view.data!.token_prefix === key.prefix,
          `GET /v1/me/api-key shows the key ${view.data!.api_key_id} (${view.data!.token_prefix}), not the one in use, ${key.id} (${key.prefix})`,
        );
      },
    },
    {
      name: "GET /v1/me/api-key and the free tool get_key_status show a key's own constraints and live counters",
      deployment: true,
      async run({ client, withKey, label }) {
        const example = examples['ApiKeyCreate']!.value;
        // A budget and a rate limit of this run's own choosing, so what is read back is the target's, not an example's.
        const budget = { period: example.constraints.budget.period as 1 | 2 | 3, amount: pick(1000, 999_999) };
        const rpm = pick(50, 99);
        const body = { ...example, name: label, constraints: { expires_at: '2099-01-01T00:00:00Z', budget, rate_limit: { requests_per_minute: rpm } } };
        await withTemporaryV2Key(client, body, async (created) => {
          const key = withKey(created.api_key);
          const { data: view, response } = await key.GET('/v1/me/api-key');
          status(response, 200, 'GET /v1/me/api-key', view);
          sameKeys(view, required('KeyStatus'), 'key view');
          ensure(view!.api_key_id === created.api_key_id && view!.name === label, `GET /v1/me/api-key answered key ${view!.api_key_id} "${view!.name}", not the calling key`);
          const made = [created.token_prefix, created.status, created.project_scope, created.permission_mode, created.access, created.constraints.expires_at];
          const shown = [view!.token_prefix, view!.status, view!.project_scope, view!.permission_mode, view!.access, view!.expires_at];
          ensure(canonical(shown) === canonical(made), `the key view says ${canonical(shown)}, the key was made ${canonical(made)}`);
          const spend = view!.budget;
          ensure(spend?.period === budget.period && spend.amount === budget.amount, `the budget is ${JSON.stringify(spend)}, not the ${budget.amount} credits asked for`);
          ensure(spend.spent === 0 && spend.remaining === spend.amount - spend.spent, `budget: spent ${spend.spent}, remaining ${spend.remaining} of ${spend.amount}, for a key that spent nothing`);
          const madeAt = Date.parse(created.created_at);
          ensure(Date.parse(spend.period_start) <= madeAt && madeAt < Date.parse(spend.resets_at), `the budget period [${spend.period_start}, ${spend.resets_at}) does not hold the key's creation, ${created.created_at}`);
          const window = view!.rate_limit;
          ensure(window?.requests_per_minute === rpm, `the rate limit is ${JSON.stringify(window)}, not the ${rpm} requests a minute asked for`);
          ensure(window.remaining === rpm - 1, `after its first request the key has ${window.remaining} of ${rpm} requests left, not ${rpm - 1}`);
          const header = /\br=(\d+)/.exec(response.headers.get('ratelimit') ?? '')?.[1];
          ensure(header === undefined || Number(header) === window.remaining, `rate_limit.remaining is ${window.remaining}, the RateLimit header says r=${header}`);
          // The tool: the same view, one more request counted (a new window, if one began in between: its first).
          const tool = await key.POST('/v1/tools/get_key_status', { body: {} });
          status(tool.response, 200, 'POST /v1/tools/get_key_status', tool.data);
          const { rate_limit: toolWindow, ...toolRest } = tool.data!;
          const { rate_limit: _window, ...viewRest } = view!;
          ensure(canonical(toolRest) === canonical(viewRest), `get_key_status answered ${canonical(toolRest)}, GET /v1/me/api-key ${canonical(viewRest)}`);
          const sameWindow = toolWindow !== null && Date.parse(toolWindow.resets_at) - Date.parse(window.resets_at) < 1000;
          const left = sameWindow ? window.remaining - 1 : rpm - 1;
          ensure(toolWindow?.requests_per_minute === rpm && toolWindow.remaining === left, `get_key_status's rate limit is ${JSON.stringify(toolWindow)}, not ${left} of ${rpm} requests left`);
        });
      },
    },
    {
      name: 'GET /v1/me/credits/ledger chains each balance_after to the entry before, the newest to the balance, and its pages end',
      deployment: true,
      async run({ client }) {
        // The newest entry's balance_after is the balance: the ledger's newest entry, the balance, and the newest
        // entry again. When an entry came in between (another client of the account was charged), all three are
        // read again, up to LEDGER_READS times; when none did, the two must agree.
        for (let read = 1; ; read++) {
          const newest = await client.GET('/v1/me/credits/ledger', { params: { query: { limit: 1 } } });
          status(newest.response, 200, 'GET /v1/me/credits/ledger', newest.data);
          const credits = await client.GET('/v1/me/credits');
          status(credits.response, 200, 'GET /v1/me/credits', credits.data);
          const again = await client.GET('/v1/me/credits/ledger', { params: { query: { limit: 1 } } });
          status(again.response, 200, 'GET /v1/me/credits/ledger', again.data);
          if (newest.data![0]?.id !== again.data![0]?.id && read < LEDGER_READS) continue;
          const after = again.data![0]?.balance_after ?? 0;
          ensure(after === credits.data!.balance, `the newest entry's balance_after is ${after}, GET /v1/me/credits says ${credits.data!.balance}`);
          break;
        }
        const seen = new Set<string>();
        let newer: components['schemas']['LedgerEntry'] | undefined;
        let startingAfter: string | undefined;
        let ended = false;
        for (let page = 1; page <= LEDGER_PAGES && !ended; page++) {
          const { data, response } = await client.GET('/v1/me/credits/ledger', {
            params: { query: { limit: LEDGER_PAGE, ...(startingAfter ? { starting_after: startingAfter } : {}) } },
          });
          status(response, 200, 'GET /v1/me/credits/ledger', data);
          ensure(data!.length <= LEDGER_PAGE, `a page of limit ${LEDGER_PAGE} has ${data!.length} entries`);
          for (const entry of data!) {
            sameKeys(entry, required('LedgerEntry'), 'ledger entry');
            ensure(!seen.has(entry.id), `entry ${entry.id} came twice: the cursor does not move on`);
            seen.add(entry.id);
            if (entry.kind === 'grant') ensure(entry.amount > 0 && entry.usage_id === null && entry.request_id === null, `grant ${entry.id}: amount ${entry.amount}, usage record ${entry.usage_id}`);
            else ensure(entry.amount < 0 && entry.usage_id !== null, `charge ${entry.id}: amount ${entry.amount}, usage record ${entry.usage_id}`);
            if (newer) {
              ensure(
                newer.balance_after === entry.balance_after + newer.amount,
                `entry ${newer.id} has balance_after ${newer.balance_after}, not ${entry.balance_after} (the next older entry's) + ${newer.amount}`,
              );
            }
            newer = entry;
          }
          const link = response.headers.get('link');
          ended = !link || !/rel="next"/.test(link);
          if (!ended) {
            ensure(data!.length > 0, 'an empty ledger page links to a next one');
            startingAfter = data!.at(-1)!.id;
          }
        }
        // The whole ledger was read: its oldest entry started from nothing (the entries add up to the balance).
        if (ended && newer) ensure(newer.balance_after === newer.amount, `the oldest entry ${newer.id} leaves ${newer.balance_after}, not its own amount, ${newer.amount}`);
      },
    },
    {
      name: 'GET /v1/me/usage filters by status class and time range, and refuses a range that ends before it starts',
      deployment: true,
      async run({ client, apiKey }) {
        const key = await keyUnderTest(client, apiKey);
        const requestId = newRequestId();
        const refused = await client.GET('/v1/me/usage', {
          params: { query: { from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' } },
          headers: { 'X-Request-Id': requestId },
        });
        const problem = expectOwnProblem(refused.response, refused.error, 400, 'GET /v1/me/usage with to before from', requestId);
        ensure(problem.type.endsWith('/validation_failed'), `problem type ${problem.type}`);
        // The refusal is a usage record of the key in use, found by the request id it was sent.
        const mine = { credential_id: key.id };
        const errors = await client.GET('/v1/me/usage', { params: { query: { ...mine, status_class: '4xx', limit: 20 } } });
        status(errors.response, 200, 'GET /v1/me/usage?status_class=4xx', errors.data);
        for (const record of errors.data!) ensure(record.status_code >= 400 && record.status_code < 500, `status_class=4xx listed record ${record.id} of status ${record.status_code}`);
        const own = errors.data!.find((record) => record.request_id === requestId);
        ensure(own, `status_class=4xx does not list the 400 answered to request ${requestId}`);
        ensure(own.status_code === 400 && own.endpoint === '/v1/me/usage', `the record of request ${requestId} says ${own.method} ${own.endpoint} ${own.status_code}`);
        // [from, to): the instant of that record, a millisecond after it.
        const at = own.created_at;
        const ranges: Array<{ from?: string; to?: string; holds: boolean }> = [
          { from: at, to: shifted(at, 1), holds: true },
          { to: at, holds: false },
          { from: shifted(at, 1), holds: false },
        ];
        for (const { holds, ...range } of ranges) {
          const what = `GET /v1/me/usage?${new URLSearchParams(range)}`;
          const { data, response } = await client.GET('/v1/me/usage', { params: { query: { ...mine, ...range, limit: 20 } } });
          status(response, 200, what, data);
          for (const record of data!) {
            const made = Date.parse(record.created_at);
            const inside = (range.from === undefined || made >= Date.parse(range.from)) && (range.to === undefined || made < Date.parse(range.to));
            ensure(inside, `${what} listed record ${record.id}, made at ${record.created_at}`);
          }
          ensure(data!.some((record) => record.id === own.id) === holds, `${what} ${holds ? 'does not list' : 'lists'} record ${own.id}, made at ${at}`);
        }
      },
    },
    {
      name: "GET /v1/me/usage/export answers CSV in the contract's columns, its rows the records GET /v1/me/usage lists for the same filter",
      deployment: true,
      async run({ client, apiKey }) {
        const key = await keyUnderTest(client, apiKey);
        // An MCP request inside the range, which the filter (channel=api) leaves out, then one more request so
        // that it is not the newest.
        const mcp = await client.POST('/mcp', { body: { jsonrpc: '2.0', id: 1, method: 'tools/list' }, headers: { Accept: 'application/json, text/event-stream' } });
        status(mcp.response, 200, 'POST /mcp tools/list', mcp.data);
        await client.GET('/v1/me/credits');
        // A narrow filter: the key in use, between two of its recent records (the newest left out: every request
        // in the range has been answered, so its record is there for both reads), over the API only.
        const recent = await client.GET('/v1/me/usage', { params: { query: { credential_id: key.id, limit: 10 } } });
        status(recent.response, 200, 'GET /v1/me/usage', recent.data);
        ensure(recent.data!.length > 2, `the key in use has ${recent.data!.length} records`);
        const filter = { credential_id: key.id, channel: 'api' as const, from: recent.data!.at(-1)!.created_at, to: recent.data![0]!.created_at };
        const listed = await client.GET('/v1/me/usage', { params: { query: { ...filter, limit: 500 } } });
        status(listed.response, 200, 'GET /v1/me/usage', listed.data);
        ensure(listed.data!.length > 0 && listed.data!.length < 500, `GET /v1/me/usage lists ${listed.data!.length} records between ${filter.from} and ${filter.to}`);
        ensure(recent.data!.some((record) => record.channel === 'mcp') && listed.data!.every((record) => record.channel === 'api'), 'the range has no MCP request left out by channel=api');
        const exported = await client.GET('/v1/me/usage/export', { params: { query: filter }, parseAs: 'text' });
        status(exported.response, 200, 'GET /v1/me/usage/export', exported.error);
        const type = exported.response.headers.get('content-type') ?? '';
        ensure(/^text\/csv\b/.test(type), `GET /v1/me/usage/export answered Content-Type "${type}"`);
        const disposition = exported.response.headers.get('content-disposition') ?? '';
        ensure(/^attachment;\s*filename="[^"]+\.csv"$/.test(disposition), `Content-Disposition is "${disposition}", not an attachment named *.csv`);
        const text = exported.data as unknown as string;
        ensure(text.endsWith('\r\n'), 'the CSV does not end its last line with CRLF');
        const [header = [], ...rows] = parseCsv(text);
        ensure(header.join(',') === usageFields.join(','), `the header row is ${header.join(',')}; UsageRecord's required list is ${usageFields.join(',')}`);
        ensure(rows.length === listed.data!.length, `the export has ${rows.length} rows, GET /v1/me/usage lists ${listed.data!.length} records for the same filter`);
        listed.data!.forEach((record, index) => {
          usageFields.forEach((field, column) => {
            const cell = rows[index]![column];
            const expected = csvText((record as Record<string, unknown>)[field]);
            ensure(cell === expected, `row ${index + 1} (record ${record.id}): ${field} is ${JSON.stringify(cell)}, GET /v1/me/usage says ${JSON.stringify(expected)}`);
          });
        });
      },
    },
    {
      name: "GET /v1/me/usage/aggregates adds up to its totals in aligned buckets, a new key's buckets equal to a recount of its records",
      deployment: true,
      async run({ client, withKey, label }) {
        const example = examples['ApiKeyCreate']!.value;
        const body = { ...example, name: label, constraints: { ...example.constraints, expires_at: '2099-01-01T00:00:00Z' } };
        await withTemporaryV2Key(client, body, async (created) => {
          // A few requests with a key nobody else holds, one of them refused (a range that ends before it starts).
          const key = withKey(created.api_key);
          const statuses = [
            (await key.GET('/v1/me')).response.status,
            (await key.GET('/v1/me/api-key')).response.status,
            (await key.GET('/v1/me/usage', { params: { query: { from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' } } })).response.status,
          ];
          ensure(statuses[2]! >= 400, `GET /v1/me/usage with to before from answered ${statuses[2]}`);
          const recount = await client.GET('/v1/me/usage', { params: { query: { credential_id: created.api_key_id, limit: 500 } } });
          status(recount.response, 200, 'GET /v1/me/usage', recount.data);
          const recorded = recount.data!.map((record) => record.status_code).sort();
          ensure(canonical(recorded) === canonical([...statuses].sort()), `the new key's records have statuses ${recorded.join(', ')}; its requests were answered ${statuses.join(', ')}`);
          for (const interval of ['hour', 'day'] as const) {
            const width = INTERVAL_MS[interval];
            const what = `aggregates by ${interval}`;
            const { data, response } = await client.GET('/v1/me/usage/aggregates', {
              params: { query: { interval, group_by: 'api_key', from: created.created_at } },
            });
            status(response, 200, `GET /v1/me/usage/aggregates?interval=${interval}`, data);
            sameKeys(data, required('UsageAggregates'), 'usage aggregates');
            ensure(data!.interval === interval && data!.group_by === 'api_key', `${what}: interval ${data!.interval}, group_by ${data!.group_by}`);
            const from = Date.parse(data!.from);
            const to = Date.parse(data!.to);
            ensure(
              from % width === 0 && to % width === 0 && from <= Date.parse(created.created_at) && from < to,
              `${what} cover [${data!.from}, ${data!.to}), not whole ${interval}s from ${created.created_at}`,
            );
            const sums = { requests: 0, errors: 0, credits: 0 };
            const ours: Array<[string, number, number, number]> = [];
            let previous: { start: number; groups: Set<string | null> } | undefined;
            for (const bucket of data!.buckets) {
              sameKeys(bucket, required('UsageBucket'), 'usage bucket');
              const start = Date.parse(bucket.start);
              ensure(start % width === 0 && start >= from && start < to, `${what}: a bucket starts at ${bucket.start}, not at a whole ${interval} of the range`);
              ensure(!previous || start >= previous.start, `${what}: bucket ${bucket.start} comes after a later one: not oldest first`);
              if (!previous || start > previous.start) previous = { start, groups: new Set() };
              ensure(!previous.groups.has(bucket.group), `${what}: two buckets of ${bucket.start} for ${bucket.group}`);
              ensure(bucket.group !== null || previous.groups.size === 0, `${what}: the null group of ${bucket.start} is not first`);
              previous.groups.add(bucket.group);
              sums.requests += bucket.requests;
              sums.errors += bucket.errors;
              sums.credits += bucket.credits;
              if (bucket.group === created.api_key_id) ours.push([new Date(start).toISOString(), bucket.requests, bucket.errors, bucket.credits]);
            }
            ensure(canonical(sums) === canonical(data!.totals), `${what}: the buckets add up to ${canonical(sums)}, the totals say ${canonical(data!.totals)}`);
            // The recount: the new key's records, per interval.
            const counted = new Map<number, [string, number, number, number]>();
            for (const record of recount.data!) {
              const start = Math.floor(Date.parse(record.created_at) / width) * width;
              const bucket = counted.get(start) ?? [new Date(start).toISOString(), 0, 0, 0];
              counted.set(start, [bucket[0], bucket[1] + 1, bucket[2] + (record.status_code >= 400 ? 1 : 0), bucket[3] + record.credits_charged]);
            }
            const expected = [...counted.entries()].sort(([a], [b]) => a - b).map(([, bucket]) => bucket);
            ensure(canonical(ours) === canonical(expected), `${what}: the new key's buckets [start, requests, errors, credits] are ${canonical(ours)}; its records say ${canonical(expected)}`);
          }
        });
      },
    },
    {
      name: 'GET /v1/sessions/options answers without a credential, with sign-in links on',
      async run({ anonymous }) {
        const { data, response } = await anonymous.GET('/v1/sessions/options');
        status(response, 200, 'GET /v1/sessions/options', data);
        sameKeys(data, required('SignInOptions'), 'sign-in options');
        ensure(data!.sign_in_link === true, `sign_in_link is ${JSON.stringify(data!.sign_in_link)}`);
      },
    },
  ];
}

export interface CheckResult {
  name: string;
  ok: boolean;
  skipped?: boolean;
  /** Why the check's promise does not apply to the target (it holds: the target is consistently without it). */
  notApplicable?: string;
  error?: string;
}

/**
 * The header the upstream tap adds to every answer of the target. Prism proxy passes the target's headers on; an
 * answer without it is Prism's own (a 401 for a missing credential, a mock answer in place of a 501), not the
 * target's, and a check must never pass on it.
 */
export const UPSTREAM_HEADER = 'x-openrush-verify-upstream';

/** What a check's requests broke, and which breaches earlier checks of the run already reported. */
interface Findings {
  lines: string[];
  /**
   * Breaches (one per `sl-violations` entry: request, place in the document, rule) reported under earlier checks
   * of the run: not repeated, and not held against a later check that merely met them again.
   */
  reported: Set<string>;
}

/** One `sl-violations` entry as a breach: array positions left out, so the same breach in a longer list is the same. */
function breachKey(where: string, entry: { location?: unknown[]; code?: unknown; message?: unknown }): string {
  const place = (entry.location ?? []).map((part) => (/^\d+$/.test(String(part)) ? '*' : String(part))).join('.');
  return `${where} ${place} ${String(entry.code ?? entry.message)}`;
}

/** A client that records every `sl-violations` header Prism sends back, and every answer that is not the target's. */
function checkedClient(
  baseUrl: string,
  apiKey: string | undefined,
  findings: Findings,
  options: { fetch?: typeof fetch; ignoreRequestViolations?: boolean; upstreamMark?: string },
): ApiClient {
  const fetchImpl = options.fetch;
  const client = createClient<paths>({ baseUrl, ...(fetchImpl ? { fetch: fetchImpl } : {}) });
  const middleware: Middleware = {
    onRequest({ request }) {
      if (apiKey) request.headers.set('Authorization', `Bearer ${apiKey}`);
      return request;
    },
    onResponse({ request, response }) {
      const where = `${request.method} ${new URL(request.url).pathname}`;
      // Never deduplicated: a check that saw Prism's answer instead of the target's has not seen the target.
      if (options.upstreamMark !== undefined && response.headers.get(UPSTREAM_HEADER) !== options.upstreamMark) {
        const line = `not the target's answer: ${where} was answered ${response.status} by prism proxy itself, not by the target`;
        if (!findings.lines.includes(line)) findings.lines.push(line);
      }
      const found = response.headers.get('sl-violations');
      if (!found) return;
      let entries: Array<{ location?: unknown[] }> | undefined;
      try {
        const parsed = JSON.parse(found) as unknown;
        if (Array.isArray(parsed)) entries = parsed as typeof entries;
      } catch {
        // not JSON ("Too many violations! …"): reported as it is
      }
      if (!entries) {
        if (!findings.reported.has(`${where} ${found}`)) findings.lines.push(`contract violation: ${where}: ${found}`);
        findings.reported.add(`${where} ${found}`);
        return;
      }
      const breaches = options.ignoreRequestViolations ? entries.filter((entry) => entry.location?.[0] !== 'request') : entries;
      const fresh = breaches.filter((entry) => !findings.reported.has(breachKey(where, entry)));
      for (const entry of fresh) findings.reported.add(breachKey(where, entry));
      if (fresh.length > 0) findings.lines.push(`contract violation: ${where}: ${JSON.stringify(fresh)}`);
    },
  };
  client.use(middleware);
  return client;
}

/** A report may quote a response; an API key in it (a new key, a rotated secret) is never printed whole. */
export function redactKeys(text: string): string {
  return text.replace(/or_[0-9A-Za-z]{38}/g, (key) => `${key.slice(0, 9)}…[redacted]`);
}

export interface CheckTarget {
  /** Where the checks go: `prism proxy` in front of the target (see `startVerifyProxy`), or the target itself. */
  baseUrl: string;
  apiKey: string;
  /** The value of `UPSTREAM_HEADER` on the target's own answers; when set, any other answer fails the check. */
  upstreamMark?: string;
  /** The name of what the run creates; `verifyLabel()` by default. */
  label?: string;
  /** The deployment's own base URL, when `baseUrl` is a proxy in front of it (see `CheckContext.targetUrl`). */
  targetUrl?: string;
  fetch?: typeof fetch;
}

/** The name of everything one run creates: the run's own, so an account's owner sees where it came from. */
export function verifyLabel(now = new Date()): string {
  return `openrush verify ${now.toISOString()}`;
}

/**
 * Runs one check. It passes only if Prism saw no breach and every answer came from the target. `reported` holds
 * the breaches earlier checks of the run already printed: a breach is reported once, under the first check that met it.
 */
export async function runCheck(check: ContractCheck, target: CheckTarget, reported: Set<string> = new Set()): Promise<CheckResult> {
  const findings: Findings = { lines: [], reported };
  const options = {
    ignoreRequestViolations: check.invalidRequest ?? false,
    ...(target.upstreamMark !== undefined ? { upstreamMark: target.upstreamMark } : {}),
    ...(target.fetch ? { fetch: target.fetch } : {}),
  };
  const context: CheckContext = {
    client: checkedClient(target.baseUrl, target.apiKey, findings, options),
    anonymous: checkedClient(target.baseUrl, undefined, findings, options),
    // Another key's requests are meant to be valid: Prism's report on them counts in full.
    withKey: (apiKey) => checkedClient(target.baseUrl, apiKey, findings, { ...options, ignoreRequestViolations: false }),
    apiKey: target.apiKey,
    label: target.label ?? verifyLabel(),
    targetUrl: (target.targetUrl ?? target.baseUrl).replace(/\/+$/, ''),
    fetch: target.fetch ?? fetch,
  };
  let failure: string | undefined;
  let notApplicable: string | undefined;
  try {
    await check.run(context);
  } catch (error) {
    if (error instanceof NotApplicable) notApplicable = error.message;
    else failure = error instanceof CheckFailure ? error.message : `${(error as Error).name}: ${(error as Error).message}`;
  }
  if (failure === undefined && findings.lines.length === 0) return { name: check.name, ok: true, ...(notApplicable ? { notApplicable } : {}) };
  return { name: check.name, ok: false, error: redactKeys([...(failure === undefined ? [] : [failure]), ...findings.lines].join('\n')) };
}

/**
 * Revokes whatever the run made that is still active (a check that failed midway may not have reached its own
 * revoke): the v1 credentials and v2 keys named `label`. Returns how many it revoked.
 */
export async function revokeLeftovers(target: Pick<CheckTarget, 'baseUrl' | 'apiKey' | 'fetch'>, label: string): Promise<number> {
  const client = createClient<paths>({ baseUrl: target.baseUrl, headers: { Authorization: `Bearer ${target.apiKey}` }, ...(target.fetch ? { fetch: target.fetch } : {}) });
  const ours = (name: string | undefined) => name === label || name?.startsWith(`${label} `);
  let revoked = 0;
  const { data: credentials } = await client.GET('/v1/me/api-credentials');
  for (const credential of Array.isArray(credentials) ? credentials : []) {
    if (!ours(credential.name) || !credential.is_active) continue;
    await client.POST('/v1/me/api-credentials/{credential_id}/revoke', { params: { path: { credential_id: credential.id } } });
    revoked++;
  }
  // v2 keys made by this run are among the newest: a few pages reach them.
  let startingAfter: string | undefined;
  for (let page = 0; page < 10; page++) {
    const { data } = await client.GET('/v2/api-keys', { params: { query: { limit: 100, ...(startingAfter ? { starting_after: startingAfter } : {}) } } });
    if (!data || !Array.isArray(data.data)) break;
    for (const key of data.data) {
      if (!ours(key.name) || key.status === REVOKED) continue;
      await client.POST('/v2/api-keys/{api_key_id}/revoke', { params: { path: { api_key_id: key.api_key_id } } });
      revoked++;
    }
    if (!data.has_more || data.data.length === 0) break;
    startingAfter = data.data.at(-1)!.api_key_id;
  }
  return revoked;
}

export async function runChecks(target: CheckTarget & { metered?: boolean }): Promise<CheckResult[]> {
  const label = target.label ?? verifyLabel();
  const reported = new Set<string>();
  const results: CheckResult[] = [];
  try {
    for (const check of contractChecks()) {
      if (check.metered && !target.metered) {
        results.push({ name: check.name, ok: true, skipped: true });
        continue;
      }
      results.push(await runCheck(check, { ...target, label }, reported));
    }
  } finally {
    await revokeLeftovers(target, label).catch(() => 0);
  }
  return results;
}
