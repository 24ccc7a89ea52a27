// What the fuzz test files share: the knobs (FUZZ_SEED, FUZZ_RUNS), a real server with a fuzz account that has
// plenty of credits and real resources (keys, usage records) for the paths to name, requests built from an
// operation's parts, and the checks every answer must pass.
import fc from 'fast-check';
import { issueSignInLink, startSessionWithLink } from '../../server/dashboard-sessions.ts';
import { approvedCode, authorize, consentId, goodRequest, type OAuthTokenResponse, pkce, readConsent, REDIRECT_URI, redeem, registerClient, signInSession } from '../helpers/oauth.ts';
import { generateKey } from '../../server/keys.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { type GenOptions, lengthOf, type Pools, valid } from './arbitraries.ts';
import { deref, follow, formatErrors, type Operation, operations, type Parameter, type Schema, validatorAt } from './contract.ts';
import { curlOf, encodeBody, encodeComponent, type FuzzRequest, type FuzzResponse, printable, send } from './http.ts';

function knob(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not "${raw}"`);
  return value;
}

/** Fixed by default, so CI runs the same requests every time; set FUZZ_SEED to explore. */
export const FUZZ_SEED = knob('FUZZ_SEED', 20_261_123);
/** Valid requests per operation (and hostile strings per site); each broken rule gets FUZZ_RUNS / 10 (at least 1). */
export const FUZZ_RUNS = knob('FUZZ_RUNS', 20);
export const RUNS_PER_RULE = Math.max(1, Math.round(FUZZ_RUNS / 10));

/**
 * fast-check parameters for one property. Its seed is FUZZ_SEED mixed with the property's label, so that two
 * properties of the same shape do not draw the same values (revoke would revoke exactly the keys rotate then picks).
 */
export function fuzzOptions(numRuns: number, label: string): fc.Parameters<unknown> {
  let hash = FUZZ_SEED | 0;
  for (const char of label) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193);
  return { seed: hash | 0, numRuns, endOnFailure: process.env.FUZZ_SHRINK === '0' };
}

// What must never reach a client: stack frames, source or dependency paths, SQL and database errors.
export const LEAKS: RegExp[] = [
  /\n\s+at /,
  /\bat \S+ \((?:file:|\/)/,
  /node_modules/,
  /\.ts:\d+/,
  new RegExp(process.cwd().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
  /SQLITE_/,
  /\bsyntax error at or near\b/i,
  /\b(?:select|insert into|update|delete from)\b[^"]{0,80}\b(?:from|values|set|where)\b/i,
  /\berror: relation\b/i,
  /\bduplicate key value\b/i,
  /\binvalid byte sequence\b/i,
];

export interface FuzzServer {
  server: TestServer;
  url: string;
  /** The fuzz account's key: FULL_ACCESS, no constraints. Never revoked: its id is kept out of the pools. */
  key: string;
  /** Real values by pattern, for path and query parameters: what successful answers hold where their schema has that pattern. */
  pools: Pools;
  /** Raw keys that must never appear in an answer, a log or the database once created. */
  secrets: string[];
  /** A key of the fuzz account that was revoked. */
  revokedKey: string;
  /** A Dashboard session of the fuzz account not used before (sign-out ends it), for the cookie-only operations. */
  freshSession(): string;
  /** A sign-in link of the fuzz account not used before, for createSession. */
  freshSignInLink(): string;
  /** OAuth state that no schema can say, for the OAuth operations to succeed (see oauthStock). */
  oauth: OAuthStock;
  /** Collects real values from an answer, walking it alongside its documented schema (at `pointer`). */
  harvest(value: unknown, pointer: string): void;
  close(): Promise<void>;
}

/** The pointer of an operation's first 2xx JSON schema. */
export function successSchema(operationId: string): string {
  const op = operations.find((candidate) => candidate.id === operationId);
  const status = Object.keys(op?.responses ?? {}).find((code) => code.startsWith('2'));
  const pointer = status ? Object.values(op!.responses[status]!.content)[0] : undefined;
  if (!pointer) throw new Error(`The contract has no ${operationId} with a 2xx JSON answer`);
  return pointer;
}

export async function startFuzzServer(): Promise<FuzzServer> {
  const server = await startTestServer({ credits: 1_000_000_000, config: { authFailuresPerMinute: 1_000_000 } });
  const key = server.account.key;
  const protectedValues = new Set([server.account.credentialId, server.account.accountId]);
  const pools: Pools = new Map();
  const harvest = (value: unknown, pointer: string): void => harvestAt(value, follow(pointer).node);
  const harvestAt = (value: unknown, raw: Schema, depth = 0): void => {
    const schema = deref(raw);
    if (depth > 20 || value === undefined) return;
    for (const branch of schema.oneOf ?? schema.anyOf ?? []) harvestAt(value, branch, depth + 1);
    if (typeof value === 'string' && schema.pattern !== undefined) {
      if (protectedValues.has(value) || !new RegExp(schema.pattern, 'u').test(value)) return;
      const pool = pools.get(schema.pattern) ?? [];
      if (!pool.includes(value)) pool.push(value);
      pools.set(schema.pattern, pool);
    } else if (Array.isArray(value) && schema.items) {
      for (const item of value) harvestAt(item, schema.items, depth + 1);
    } else if (value !== null && typeof value === 'object' && schema.properties) {
      for (const [name, inner] of Object.entries(value)) if (schema.properties[name]) harvestAt(inner, schema.properties[name], depth + 1);
    }
  };
  const secrets = [key];
  // Resources for the paths to name: keys of this account (some of one project), and usage records.
  for (let i = 0; i < 30; i++) {
    const body = i % 3 === 0 ? { name: `fuzz ${i}`, project_scope: { single: { project_id: 'proj_fuzz' } } } : { name: `fuzz ${i}` };
    const response = await server.call('/v2/api-keys', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (response.status !== 201) throw new Error(`Setting up the fuzz account: ${response.status} ${await response.text()}`);
    const created = (await response.json()) as { api_key: string };
    secrets.push(created.api_key);
    harvest(created, successSchema('createApiKey'));
  }
  const revoked = (await (await server.call('/v2/api-keys', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"revoked"}' })).json()) as {
    api_key: string;
    api_key_id: string;
  };
  secrets.push(revoked.api_key);
  if ((await server.call(`/v2/api-keys/${revoked.api_key_id}/revoke`, { method: 'POST' })).status !== 200) throw new Error('Could not revoke a key');
  harvest(await (await server.call('/v1/me/usage?limit=500')).json(), successSchema('listUsage'));
  // Dashboard sessions and sign-in links work once each (sign-out ends a session): a stock of fresh ones, and past
  // it the last one again (then refused, a documented 401).
  const stock = FUZZ_RUNS * 4;
  const links: string[] = [];
  const sessions: string[] = [];
  const sessionDeps = { store: server.store, clock: server.clock, sessionHours: 12 };
  for (let i = 0; i < stock; i++) {
    links.push((await issueSignInLink(server, server.account.accountId)).token);
    const started = await startSessionWithLink(sessionDeps, (await issueSignInLink(server, server.account.accountId)).token);
    if ('refusal' in started) throw new Error(`Setting up the fuzz sessions: ${started.refusal}`);
    sessions.push(started.token);
  }
  secrets.push(...links, ...sessions);
  const oauth = await oauthStock(server, FUZZ_RUNS * 2);
  secrets.push(...oauth.secrets);
  return {
    oauth,
    freshSession: () => take(sessions),
    freshSignInLink: () => take(links),
    revokedKey: revoked.api_key,
    server,
    url: server.url,
    key,
    pools,
    secrets,
    harvest,
    close: () => server.close(),
  };
}

/** Takes the next of a stock; past its end the last one again (then refused: a documented error). */
function take<T>(from: T[]): T {
  return from.length > 1 ? from.shift()! : from[0]!;
}

/** Real OAuth state of the fuzz account, made through the API as an MCP client and the consent page would. */
export interface OAuthStock {
  clientId: string;
  /** Token requests that redeem the code of an approved authorization (within its 60 s, if the run gets there). */
  codeGrants: Array<Record<string, string>>;
  /** Refresh tokens of approved grants, each unused. */
  refreshTokens: string[];
  /** Pending authorizations no session has read yet. */
  unread: string[];
  /** Pending authorizations read by a session: that session, and the CSRF token the decision must send back. */
  read: Array<{ id: string; session: string; csrfToken: string }>;
  secrets: string[];
}

async function oauthStock(server: TestServer, count: number): Promise<OAuthStock> {
  const clientId = await registerClient(server, 'Fuzz Agent');
  const session = await signInSession(server);
  const stock: OAuthStock = { clientId, codeGrants: [], refreshTokens: [], unread: [], read: [], secrets: [session] };
  for (let i = 0; i < count; i++) {
    const { code, verifier } = await approvedCode(server, session, clientId);
    stock.codeGrants.push({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URI, client_id: clientId, resource: `${server.url}/mcp` });
    const granted = await approvedCode(server, session, clientId);
    const tokens = (await (await redeem(server, clientId, granted.code, granted.verifier)).json()) as OAuthTokenResponse;
    stock.refreshTokens.push(tokens.refresh_token);
    stock.secrets.push(code, granted.code, tokens.access_token, tokens.refresh_token);
    stock.unread.push(consentId(await authorize(server, goodRequest(server, clientId, pkce().challenge))));
    const reader = await signInSession(server);
    const id = consentId(await authorize(server, goodRequest(server, clientId, pkce().challenge)));
    stock.read.push({ id, session: reader, csrfToken: (await readConsent(server, reader, id)).csrf_token });
    stock.secrets.push(reader);
  }
  return stock;
}

/**
 * Real parts for the operations whose success needs state that no schema can say: a sign-in link never used, a
 * loopback redirect URI, the code or refresh token of an approved grant, a pending authorization (and the session
 * that read it). Half of such an operation's valid requests carry them; undefined for the other operations.
 */
function realParts(fuzz: FuzzServer, op: Operation): ((parts: RequestParts) => RequestParts) | undefined {
  const json = (parts: RequestParts) => (parts.body && 'json' in parts.body && typeof parts.body.json === 'object' ? (parts.body.json as Record<string, unknown>) : {});
  const { oauth } = fuzz;
  switch (op.id) {
    case 'createSession':
      return (parts) => ({ ...parts, body: { json: { sign_in_link: fuzz.freshSignInLink() } } });
    case 'registerOAuthClient':
      return (parts) => ({ ...parts, body: { json: { ...json(parts), redirect_uris: ['http://127.0.0.1:53123/callback'] } } });
    case 'requestOAuthToken': {
      // A code and a refresh token in turn (the codes may have expired by then: a documented invalid_grant).
      let turn = 0;
      return (parts) => ({
        ...parts,
        body: { json: turn++ % 2 === 0 && oauth.codeGrants.length > 1 ? take(oauth.codeGrants) : { grant_type: 'refresh_token', refresh_token: take(oauth.refreshTokens), client_id: oauth.clientId } },
      });
    }
    case 'revokeOAuthToken':
      return (parts) => ({ ...parts, body: { json: { ...json(parts), token: take(oauth.refreshTokens) } } });
    case 'getOAuthAuthorization':
      return (parts) => ({ ...parts, path: { authorization_id: take(oauth.unread) } });
    case 'approveOAuthAuthorization':
    case 'denyOAuthAuthorization':
      return (parts) => {
        const pending = take(oauth.read);
        return { ...parts, path: { authorization_id: pending.id }, auth: { kind: 'session', token: pending.session }, body: { json: { ...json(parts), csrf_token: pending.csrfToken } } };
      };
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Requests.

/** One request to an operation, by parts; values are what goes on the wire (already strings). */
export interface RequestParts {
  path: Record<string, string>;
  query: Array<[string, string]>;
  headers: Array<[string, string]>;
  /** A JSON value (sent as application/json), or raw bytes with their own content type. */
  body?: { json: unknown } | { raw: Buffer; contentType?: string };
  /** `key`: the fuzz account's key, as Bearer or X-API-Key; `none`; or a header of its own. */
  auth: { kind: 'key'; as: 'bearer' | 'x-api-key' } | { kind: 'none' } | { kind: 'header'; name: string; value: string } | { kind: 'session'; token?: string };
  /** Overrides the path built from the template (for routing tests). */
  rawPath?: string;
  method?: string;
}

/** A parameter's value as a string on the wire. */
export function wire(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function buildRequest(fuzz: FuzzServer, op: Operation, parts: RequestParts, note: string): FuzzRequest {
  const path =
    parts.rawPath ??
    op.path.replace(/\{([^}]+)\}/g, (_, name: string) => (name in parts.path ? encodeComponent(parts.path[name]!) : `{${name}}`));
  const query = parts.query.map(([name, value]) => `${encodeComponent(name)}=${encodeComponent(value)}`).join('&');
  const headers: Array<[string, string]> = [...parts.headers];
  if (parts.auth.kind === 'key') headers.push(parts.auth.as === 'bearer' ? ['Authorization', `Bearer ${fuzz.key}`] : ['X-API-Key', fuzz.key]);
  if (parts.auth.kind === 'header') headers.push([parts.auth.name, parts.auth.value]);
  // The session cookie, as the Dashboard's own pages send it (with their Origin: see the contract's sessionCookie).
  if (parts.auth.kind === 'session') headers.push(['Cookie', `openrush_session=${parts.auth.token ?? fuzz.freshSession()}`], ['Origin', fuzz.url]);
  let body: Buffer | undefined;
  if (parts.body && 'json' in parts.body) {
    const contentType = op.body?.contentType ?? 'application/json';
    headers.push(['Content-Type', contentType]);
    body = encodeBody(contentType, parts.body.json);
  } else if (parts.body) {
    if (parts.body.contentType !== undefined) headers.push(['Content-Type', parts.body.contentType]);
    body = parts.body.raw;
  }
  const request: FuzzRequest = { method: parts.method ?? op.method, target: query ? `${path}?${query}` : path, headers, body, note };
  return printable(request, fuzz.secrets);
}

/** Valid parts for an operation: every parameter and the body drawn from their schemas. */
export function validParts(fuzz: FuzzServer, op: Operation): fc.Arbitrary<RequestParts> {
  const options: GenOptions = { pools: fuzz.pools };
  const headerOptions: GenOptions = { pools: fuzz.pools, ascii: true };
  const param = (parameter: Parameter) => valid(parameter.schema, parameter.in === 'header' ? headerOptions : options).map(wire);
  const pathParams = op.parameters.filter((p) => p.in === 'path');
  const optional = (parameter: Parameter) => (parameter.required ? param(parameter) : fc.option(param(parameter), { nil: undefined }));
  const named = (list: Parameter[]) =>
    fc.tuple(...list.map(optional)).map((values) => list.flatMap((p, i) => (values[i] === undefined ? [] : [[p.name, values[i]!] as [string, string]])));
  const body: fc.Arbitrary<RequestParts['body']> = op.body
    ? op.body.required
      ? valid(op.body.schema, options).map((json) => ({ json }))
      : fc.option(valid(op.body.schema, options).map((json) => ({ json })), { nil: undefined })
    : fc.constant(undefined);
  const auth: fc.Arbitrary<RequestParts['auth']> = op.public
    ? fc.constant({ kind: 'none' as const })
    : op.cookieOnly
      ? fc.constant({ kind: 'session' as const })
      : fc.constantFrom('bearer' as const, 'x-api-key' as const).map((as) => ({ kind: 'key' as const, as }));
  const generated = fc
    .record({
      path: fc.tuple(...pathParams.map(param)).map((values) => Object.fromEntries(pathParams.map((p, i) => [p.name, values[i]!]))),
      query: named(op.parameters.filter((p) => p.in === 'query')),
      headers: named(op.parameters.filter((p) => p.in === 'header')),
      body,
      auth,
    })
    .map((parts) => parts as RequestParts);
  const real = realParts(fuzz, op);
  return real ? fc.oneof(generated, generated.map(real)) : generated;
}

export function call(fuzz: FuzzServer, request: FuzzRequest): Promise<FuzzResponse> {
  return send(fuzz.url, request);
}

// ---------------------------------------------------------------------------------------------------------------
// Checks. Each failure says what was sent (a curl line to replay it) and what came back.

export class FuzzFailure extends Error {
  override name = 'FuzzFailure';
}

export function explain(fuzz: FuzzServer, request: FuzzRequest, response: FuzzResponse, problem: string): FuzzFailure {
  return new FuzzFailure(
    `${problem}\n  request: ${request.note}\n  replay:  ${curlOf(request, fuzz.secrets)}\n  answer:  ${response.status} ` +
      `${response.headers.get('content-type') ?? '(no content type)'} ${response.text.slice(0, 1200)}`,
  );
}

/** What holds for every answer, valid request or not: no 5xx, no internals, no secret, a request id. */
export function expectSafe(fuzz: FuzzServer, request: FuzzRequest, response: FuzzResponse): void {
  const fail = (problem: string) => explain(fuzz, request, response, problem);
  if (!(response.status >= 100 && response.status < 500)) throw fail(`a ${response.status} answer (never a 5xx)`);
  for (const leak of LEAKS) if (leak.test(response.text)) throw fail(`the body shows internals (${leak})`);
  // A key the request itself carries in its path or body may come back in its own answer (a name, an echoed
  // path); any other key may not. Where a request's key ends up stored is checked in hostile-input.test.ts.
  const carried = `${request.target} ${request.body?.toString('utf8') ?? ''}`;
  for (const secret of fuzz.secrets) {
    if (response.text.includes(secret) && !carried.includes(secret)) throw fail('the body holds a raw API key that this request did not send');
  }
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(response.headers.get('x-request-id') ?? '')) throw fail('no valid X-Request-Id header');
}

function mediaType(response: FuzzResponse): string {
  return (response.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** A header's value checked against its schema in the contract (integers are digits on the wire). */
function headerHolds(pointer: string, value: string): boolean {
  const types = [follow(pointer).node.type ?? 'string'].flat();
  const numeric = (types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?$/.test(value);
  return validatorAt(pointer)(numeric ? Number(value) : value) as boolean;
}

/** The status is documented for the operation, and the body, content type and headers are the documented ones. */
export function expectDocumented(fuzz: FuzzServer, op: Operation, request: FuzzRequest, response: FuzzResponse, options: { head?: boolean } = {}): void {
  const fail = (problem: string) => explain(fuzz, request, response, `${op.id}: ${problem}`);
  const status = String(response.status);
  const documented = op.responses[status] ?? op.responses[`${status[0]}XX`] ?? op.responses.default;
  if (!documented) throw fail(`status ${status} is not documented (documented: ${Object.keys(op.responses).join(', ')})`);
  for (const [name, header] of Object.entries(documented.headers)) {
    const value = response.headers.get(name);
    if (value === undefined) {
      if (header.required) throw fail(`the documented header ${name} is missing`);
      continue;
    }
    if (!headerHolds(header.pointer, value)) throw fail(`header ${name}: ${JSON.stringify(value)} does not match its schema`);
  }
  const types = Object.keys(documented.content);
  if (types.length === 0) return;
  const type = mediaType(response);
  if (!types.includes(type)) throw fail(`content type "${type}" is not documented for ${status} (${types.join(', ')})`);
  if (options.head) {
    if (response.text.length !== 0) throw fail('a HEAD answer has a body');
    return;
  }
  let body: unknown;
  // A text body (the CSV export) is checked as the string it is; JSON ones as the value they hold.
  if (type.startsWith('text/')) body = response.text;
  else try {
    body = JSON.parse(response.text);
  } catch {
    throw fail('the body is not JSON');
  }
  const validate = validatorAt(documented.content[type]!);
  if (!validate(body)) throw fail(`the body does not match the documented schema: ${formatErrors(validate)}`);
}

const validateProblem = validatorAt('/components/schemas/Problem');

const validateOAuthError = validatorAt('/components/schemas/OAuthError');
/** The paths whose operations answer OAuth errors (`x-openrush-error-format: oauth`; none has path parameters). */
const OAUTH_ERROR_PATHS = new Set(operations.filter((op) => op.errorFormat === 'oauth').map((op) => `${op.method} ${op.path}`));

/**
 * A 4xx problem document (optionally one of `statuses`), matching the contract's Problem schema; on an operation
 * that answers OAuth errors, an OAuth error (`application/json`, the OAuthError schema) counts as well, returned
 * with its description as the one entry of `errors` so that callers read both alike.
 */
export function expectProblem(fuzz: FuzzServer, request: FuzzRequest, response: FuzzResponse, statuses?: number[]): Record<string, unknown> {
  const fail = (problem: string) => explain(fuzz, request, response, problem);
  if (!(response.status >= 400 && response.status < 500)) throw fail(`a ${response.status} answer; expected a 4xx problem`);
  if (statuses && !statuses.includes(response.status)) throw fail(`a ${response.status} answer; expected ${statuses.join(' or ')}`);
  if (OAUTH_ERROR_PATHS.has(`${request.method === 'HEAD' ? 'GET' : request.method} ${request.target.split('?')[0]}`) && mediaType(response) === 'application/json') {
    let error: Record<string, unknown>;
    try {
      error = JSON.parse(response.text) as Record<string, unknown>;
    } catch {
      throw fail('the OAuth error body is not JSON');
    }
    if (!validateOAuthError(error)) throw fail(`the body does not match the OAuthError schema: ${formatErrors(validateOAuthError)}`);
    if (!response.headers.get('x-request-id')) throw fail('an OAuth error without X-Request-Id');
    return { ...error, status: response.status, errors: [{ message: String(error.error_description) }] };
  }
  if (mediaType(response) !== 'application/problem+json') throw fail('not an application/problem+json answer');
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(response.text) as Record<string, unknown>;
  } catch {
    throw fail('the problem body is not JSON');
  }
  if (!validateProblem(body)) throw fail(`the body does not match the Problem schema: ${formatErrors(validateProblem)}`);
  if (body.status !== response.status) throw fail('the problem status differs from the HTTP status');
  if (body.request_id !== response.headers.get('x-request-id')) throw fail('the problem request_id differs from X-Request-Id');
  return body;
}

// The contract's rule for text (its Limits section): well-formed Unicode, without U+0000.
const REFUSED_TEXT = /[\p{Cs}\u0000]/u;

/** Is every string in the value text the API takes (well-formed Unicode, no lone surrogate, no NUL)? */
export function wellFormed(value: unknown): boolean {
  if (typeof value === 'string') return !REFUSED_TEXT.test(value);
  if (Array.isArray(value)) return value.every(wellFormed);
  if (value !== null && typeof value === 'object') return Object.entries(value).every(([name, inner]) => wellFormed(name) && wellFormed(inner));
  return true;
}

/** A key with the right shape and checksum that belongs to nobody. */
export function strangerKey(): string {
  return generateKey().key;
}

export { lengthOf };
