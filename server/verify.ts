// The contract suite as shipped code: named checks, each a request and what the contract promises about the answer.
// `openrush verify` runs them against any deployment through `prism proxy` (which reports every request or response
// that breaks the contract in an `sl-violations` header); test/contract.test.ts runs the same checks against the
// Prism mock and the real server, so the two never drift apart.
//
// A check never spends credits unless `metered` is set, and never leaves a key behind: the keys it makes are its
// own, and it revokes them before it ends, whatever happens.
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from '../generated/openapi.d.ts';
import { loadContract } from './contract.ts';

type Problem = components['schemas']['Problem'];
type ApiClient = Client<paths>;

export class CheckFailure extends Error {
  override name = 'CheckFailure';
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
  baseUrl: string;
  /** Whether the target is a mock (answers are the contract's examples, nothing is stored). */
  mock: boolean;
}

export interface ContractCheck {
  name: string;
  /** Spends credits of the deployment: only run when asked for. */
  metered?: boolean;
  /**
   * Sends a deliberately invalid request. `prism proxy --errors` would refuse it itself, so it goes straight to the
   * deployment (`directUrl`), and Prism's report about the request (on a mock) is expected, not a breach.
   */
  invalidRequest?: boolean;
  run(context: CheckContext): Promise<void>;
}

const KEY_PATTERN = /^or_[0-9A-Za-z]{38}$/;
const TOKEN_PREFIX = /^or_[0-9A-Za-z]{6}\.\.\.$/;
const CREDENTIAL_FIELDS = ['account_id', 'created_at', 'expires_at', 'id', 'is_active', 'last_used_at', 'name', 'prefix'];
const USAGE_FIELDS = [
  'account_id', 'auth_source', 'channel', 'created_at', 'credential_id', 'credits_charged', 'dataforseo_cost_usd',
  'endpoint', 'error_message', 'error_type', 'id', 'method', 'request_bytes', 'response_bytes', 'response_time_ms',
  'rpc_method', 'status_code', 'tool',
];
const API_KEY_FIELDS = [
  'access', 'api_key_id', 'constraints', 'created_at', 'created_by_id', 'last_used_at', 'legacy_key_id', 'legacy_token_family',
  'name', 'owner', 'permission_mode', 'project_scope', 'status', 'token_prefix', 'updated_at', 'updated_by_id',
];
const INSPECT = '/v1/tools/inspect_domain';
/** The most pages the usage check follows before it stops (it proves the cursor works, not the whole history). */
const USAGE_PAGES = 3;

function expectApiKey(key: unknown, withSecret = false): void {
  sameKeys(key, withSecret ? [...API_KEY_FIELDS, 'api_key'] : API_KEY_FIELDS, 'API key');
  const { token_prefix, status: keyStatus, constraints } = key as { token_prefix: string; status: number; constraints: object };
  ensure(TOKEN_PREFIX.test(token_prefix), `token_prefix "${token_prefix}" is not or_ + 6 characters + ...`);
  ensure([1, 2, 3, 4].includes(keyStatus), `status ${keyStatus} is not one of the contract's`);
  sameKeys(constraints, ['budget', 'expires_at', 'rate_limit'], 'constraints');
}

/** A key of the check's own, revoked when `work` is done, whatever happens. */
async function withTemporaryV1Key(client: ApiClient, name: string, work: (created: components['schemas']['ApiCredentialCreated'], response: Response) => Promise<void>): Promise<void> {
  const { data, response } = await client.POST('/v1/me/api-credentials', { body: { name } });
  status(response, 201, 'POST /v1/me/api-credentials', data);
  try {
    await work(data!, response);
  } finally {
    await client.POST('/v1/me/api-credentials/{credential_id}/revoke', { params: { path: { credential_id: data!.api_credential.id } } });
  }
}

async function withTemporaryV2Key(client: ApiClient, body: components['schemas']['ApiKeyCreate'], work: (created: components['schemas']['ApiKeyWithSecret'], response: Response) => Promise<void>): Promise<void> {
  const { data, response } = await client.POST('/v2/api-keys', { body });
  status(response, 201, 'POST /v2/api-keys', data);
  try {
    await work(data!, response);
  } finally {
    await client.POST('/v2/api-keys/{api_key_id}/revoke', { params: { path: { api_key_id: data!.api_key_id } } });
  }
}

export function contractChecks(): ContractCheck[] {
  const contract = loadContract() as unknown as { components: { examples: Record<string, { value: any }> }; paths: Record<string, any> };
  const examples = contract.components.examples;
  const inspection = examples['DomainInspection']!.value;
  const inspectPrice: number = contract.paths[INSPECT].post['x-openrush-credits'];

  return [
    {
      name: 'GET /v1/capabilities answers without a credential',
      async run({ anonymous }) {
        const { data, response } = await anonymous.GET('/v1/capabilities');
        status(response, 200, 'GET /v1/capabilities', data);
        ensure(Array.isArray(data?.tools) && Array.isArray(data?.sources), 'capabilities lack tools[] or sources[]');
        ensure(response.headers.get('x-request-id'), 'no X-Request-Id header');
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
      name: 'GET /.well-known/oauth-protected-resource answers RFC 9728 metadata without a credential',
      async run({ anonymous }) {
        const { data, response } = await anonymous.GET('/.well-known/oauth-protected-resource');
        status(response, 200, 'GET /.well-known/oauth-protected-resource', data);
        const keys = Object.keys(data ?? {});
        for (const key of ['authorization_servers', 'bearer_methods_supported', 'resource', 'resource_name']) {
          ensure(keys.includes(key), `the metadata lacks ${key}`);
        }
        ensure(JSON.stringify(data!.bearer_methods_supported) === '["header"]', `bearer_methods_supported is ${JSON.stringify(data!.bearer_methods_supported)}`);
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
      async run({ baseUrl }) {
        const response = await fetch(`${baseUrl}/v1/me/credits`);
        const body = (await response.json().catch(() => undefined)) as Problem | undefined;
        status(response, 401, 'GET /v1/me/credits without a credential', body);
        // Through `prism proxy --errors` the 401 for a missing credential comes from Prism itself, so only what both
        // promise is checked here.
        ensure(/^Bearer\b/.test(response.headers.get('www-authenticate') ?? ''), 'no WWW-Authenticate: Bearer header');
        ensure(/^application\/problem\+json/.test(response.headers.get('content-type') ?? ''), 'not application/problem+json');
        ensure(body?.status === 401 && typeof body.type === 'string' && typeof body.title === 'string', 'not a 401 problem document');
      },
    },
    {
      name: 'an invalid body is a 400 validation problem',
      invalidRequest: true,
      async run({ client }) {
        // A blank name: refused before anything is created.
        const { error, response } = await client.POST('/v1/me/api-credentials', { body: { name: ' ' } });
        status(response, 400, 'POST /v1/me/api-credentials with a blank name', error);
        ensure(/^application\/problem\+json/.test(response.headers.get('content-type') ?? ''), 'not application/problem+json');
        ensure((error as Problem | undefined)?.type?.endsWith('/validation_failed'), `problem type ${(error as Problem | undefined)?.type}`);
      },
    },
    {
      name: 'POST /v1/me/api-credentials returns the key once, with no-store; revoke deactivates it',
      async run({ client, mock }) {
        await withTemporaryV1Key(client, 'openrush verify (temporary)', async (created, response) => {
          ensure(response.headers.get('cache-control') === 'no-store', `Cache-Control is "${response.headers.get('cache-control')}"`);
          ensure(KEY_PATTERN.test(created.key), 'the new key does not look like or_ + 38 base62 characters');
          ensure(created.api_credential.prefix === `${created.key.slice(0, 9)}...`, 'prefix is not the start of the key');
          ensure(created.api_credential.is_active, 'a new credential is not active');
          // A mock answers with the contract's example, whatever name was asked for.
          ensure(mock || created.api_credential.name === 'openrush verify (temporary)', `the credential is named "${created.api_credential.name}"`);
          const revoked = await client.POST('/v1/me/api-credentials/{credential_id}/revoke', {
            params: { path: { credential_id: created.api_credential.id } },
          });
          status(revoked.response, 200, 'POST /v1/me/api-credentials/{id}/revoke', revoked.data);
          ensure(revoked.data?.is_active === false, 'a revoked credential is still active');
        });
      },
    },
    {
      name: 'GET /v1/me/api-credentials lists credentials without secrets',
      async run({ client }) {
        const { data, response } = await client.GET('/v1/me/api-credentials');
        status(response, 200, 'GET /v1/me/api-credentials', data);
        ensure(data!.length > 0, 'no credentials listed, not even the one in use');
        for (const credential of data!) sameKeys(credential, CREDENTIAL_FIELDS, 'API credential');
      },
    },
    {
      name: 'GET /v1/me/usage lists records with every field of the seed, and its pages end',
      async run({ client }) {
        // Any authenticated request leaves a record, so there is at least one to list.
        await client.GET('/v1/me/api-credentials');
        const seen = new Set<string>();
        let startingAfter: string | undefined;
        for (let page = 1; page <= USAGE_PAGES; page++) {
          const { data, response } = await client.GET('/v1/me/usage', {
            params: { query: { limit: 2, ...(startingAfter ? { starting_after: startingAfter } : {}) } },
          });
          status(response, 200, 'GET /v1/me/usage', data);
          ensure(data!.length > 0 && data!.length <= 2, `a page of limit 2 has ${data!.length} records`);
          for (const record of data!) {
            sameKeys(record, USAGE_FIELDS, 'usage record');
            ensure(!seen.has(record.id), `record ${record.id} came twice: the cursor does not move on`);
            seen.add(record.id);
          }
          const link = response.headers.get('link');
          if (!link || !/rel="next"/.test(link)) return;
          startingAfter = data!.at(-1)!.id;
        }
      },
    },
    {
      name: 'POST /v1/tools/inspect_domain answers a DomainInspection (spends credits)',
      metered: true,
      async run({ client }) {
        const { data, response } = await client.POST(INSPECT, { body: { domain: inspection.input } });
        status(response, 200, `POST ${INSPECT}`, data);
        ensure(JSON.stringify(data) === JSON.stringify(inspection), `inspect_domain answered ${JSON.stringify(data)}`);
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
        for (const key of data!.data) expectApiKey(key);
      },
    },
    {
      name: 'v2 API keys: create, get, update, rotate and revoke a key of its own',
      async run({ client }) {
        const example = examples['ApiKeyCreate']!.value;
        // The contract's example, with an expiry that stays in the future.
        const body = { ...example, constraints: { ...example.constraints, expires_at: '2099-01-01T00:00:00Z' } };
        await withTemporaryV2Key(client, body, async (created, response) => {
          ensure(response.headers.get('cache-control') === 'no-store', 'POST /v2/api-keys without Cache-Control: no-store');
          expectApiKey(created, true);
          ensure(KEY_PATTERN.test(created.api_key), 'the new key does not look like or_ + 38 base62 characters');
          const path = { api_key_id: created.api_key_id };
          const got = await client.GET('/v2/api-keys/{api_key_id}', { params: { path } });
          status(got.response, 200, 'GET /v2/api-keys/{id}', got.data);
          expectApiKey(got.data);
          const patched = await client.PATCH('/v2/api-keys/{api_key_id}', { params: { path }, body: examples['ApiKeyUpdate']!.value });
          status(patched.response, 200, 'PATCH /v2/api-keys/{id}', patched.data);
          expectApiKey(patched.data);
          const rotated = await client.POST('/v2/api-keys/{api_key_id}/rotate', { params: { path }, body: { grace_period_seconds: 0 } });
          status(rotated.response, 200, 'POST /v2/api-keys/{id}/rotate', rotated.data);
          ensure(rotated.response.headers.get('cache-control') === 'no-store', 'rotate without Cache-Control: no-store');
          expectApiKey(rotated.data, true);
          const revoked = await client.POST('/v2/api-keys/{api_key_id}/revoke', { params: { path } });
          status(revoked.response, 200, 'POST /v2/api-keys/{id}/revoke', revoked.data);
          expectApiKey(revoked.data);
        });
      },
    },
  ];
}

export interface CheckResult {
  name: string;
  ok: boolean;
  skipped?: boolean;
  error?: string;
}

/** A client that records every `sl-violations` header Prism sends back. */
function checkedClient(
  baseUrl: string,
  apiKey: string | undefined,
  violations: string[],
  options: { fetch?: typeof fetch; ignoreRequestViolations?: boolean },
): ApiClient {
  const fetchImpl = options.fetch;
  const client = createClient<paths>({ baseUrl, ...(fetchImpl ? { fetch: fetchImpl } : {}) });
  const middleware: Middleware = {
    onRequest({ request }) {
      if (apiKey) request.headers.set('Authorization', `Bearer ${apiKey}`);
      return request;
    },
    onResponse({ request, response }) {
      const found = response.headers.get('sl-violations');
      if (!found) return;
      let reported: Array<{ location?: string[] }> = [];
      try {
        reported = JSON.parse(found) as typeof reported;
      } catch {
        // not JSON: report it as it is
      }
      const breaches = options.ignoreRequestViolations ? reported.filter((v) => v.location?.[0] !== 'request') : reported;
      if (breaches.length > 0 || reported.length === 0) violations.push(`${request.method} ${new URL(request.url).pathname}: ${found}`);
    },
  };
  client.use(middleware);
  return client;
}

/** A report may quote a response; an API key in it (a new key, a rotated secret) is never printed whole. */
export function redactKeys(text: string): string {
  return text.replace(/or_[0-9A-Za-z]{38}/g, (key) => `${key.slice(0, 9)}…[redacted]`);
}

/** Runs one check with its own violation list: a check passes only if Prism saw no breach. */
export async function runCheck(
  check: ContractCheck,
  target: {
    /** Where the checks go: `prism proxy` in front of the deployment, or a Prism mock. */
    baseUrl: string;
    /** The deployment itself, for the deliberately invalid requests a proxy would refuse (defaults to baseUrl). */
    directUrl?: string;
    apiKey: string;
    mock?: boolean;
    fetch?: typeof fetch;
  },
): Promise<CheckResult> {
  const violations: string[] = [];
  const baseUrl = check.invalidRequest ? (target.directUrl ?? target.baseUrl) : target.baseUrl;
  const options = { ignoreRequestViolations: check.invalidRequest ?? false, ...(target.fetch ? { fetch: target.fetch } : {}) };
  const context: CheckContext = {
    client: checkedClient(baseUrl, target.apiKey, violations, options),
    anonymous: checkedClient(baseUrl, undefined, violations, options),
    baseUrl,
    mock: target.mock ?? false,
  };
  try {
    await check.run(context);
  } catch (error) {
    const message = error instanceof CheckFailure ? error.message : `${(error as Error).name}: ${(error as Error).message}`;
    return { name: check.name, ok: false, error: redactKeys([message, ...violations.map((v) => `contract violation: ${v}`)].join('\n')) };
  }
  if (violations.length > 0) return { name: check.name, ok: false, error: redactKeys(violations.map((v) => `contract violation: ${v}`).join('\n')) };
  return { name: check.name, ok: true };
}

export async function runChecks(target: { baseUrl: string; directUrl?: string; apiKey: string; metered?: boolean }): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of contractChecks()) {
    if (check.metered && !target.metered) {
      results.push({ name: check.name, ok: true, skipped: true });
      continue;
    }
    results.push(await runCheck(check, target));
  }
  return results;
}
