// The typed OpenRush client: openapi-fetch over the generated contract types, with retries and timeouts.
//   const openrush = createOpenRushClient({ baseUrl: 'http://localhost:3000', apiKey: process.env.OPENRUSH_KEY });
//   const { data, error, response } = await openrush.GET('/v1/me/credits');
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from '../generated/openapi.d.ts';
import { type RetryEvent, retryingFetch } from './retry.ts';

export type { components, paths } from '../generated/openapi.d.ts';
export type ApiCredential = components['schemas']['ApiCredential'];
export type ApiCredentialCreated = components['schemas']['ApiCredentialCreated'];
export type UsageRecord = components['schemas']['UsageRecord'];
export type Capabilities = components['schemas']['Capabilities'];
export type ApiKey = components['schemas']['ApiKey'];
export type ApiKeyWithSecret = components['schemas']['ApiKeyWithSecret'];
/** An event of the account (`GET /v1/me/events`): narrow on `type` to read its `data`. */
export type AccountEvent = components['schemas']['AccountEvent'];
export type EventType = components['schemas']['EventType'];
export type { Problem } from './errors.ts';
export type { RetryEvent } from './retry.ts';

export type OpenRushClient = Client<paths>;

// Options are typed `?: T | undefined` so that `apiKey: process.env.OPENRUSH_KEY` compiles under
// exactOptionalPropertyTypes too.
export interface OpenRushClientOptions {
  /** e.g. `https://api.openrush.io` or `http://localhost:3000` (no `/v1`: the paths carry it). */
  baseUrl: string;
  /** An OpenRush API key (`or_…`), sent as `Authorization: Bearer`. */
  apiKey?: string | undefined;
  /** A Dashboard session token (a Supabase access token), sent as `Authorization: Bearer`. */
  sessionToken?: string | undefined;
  /** A fetch implementation (for proxies or instrumentation); defaults to the global fetch. */
  fetch?: ((input: Request) => Promise<Response>) | undefined;
  /** Extra headers sent with every request. */
  headers?: Record<string, string> | undefined;
  /**
   * How many times a request is sent again after a network error, a timeout, a `429` or a `503` — only when that is
   * safe: GET and HEAD, and POSTs and PATCHes carrying an `Idempotency-Key` (the client adds one to the creates, the
   * tool calls, charged ones included (the server charges a retried call once), and the changes of a v2 key). Default 2;
   * `0` turns retries off.
   */
  retries?: number | undefined;
  /**
   * The first backoff delay in ms, doubled on each retry, with jitter. A valid `Retry-After` (delay-seconds or an
   * HTTP-date) that asks for longer is waited instead; any other value is ignored. Default 500.
   */
  retryDelayMs?: number | undefined;
  /**
   * The longest the client waits before a retry, in ms. When a `Retry-After` asks for longer, the client does not
   * wait: it returns that answer. Default 60 000.
   */
  maxRetryDelayMs?: number | undefined;
  /**
   * How long one attempt may take to get its whole answer (status, headers and body), in ms, before it is abandoned
   * (and retried when safe); then the call rejects with an `OpenRushTimeoutError`. Default 60 000; `0` for none. A
   * call's own `signal` is honoured as well, the reading of the body included.
   */
  timeoutMs?: number | undefined;
  /** Called before each retry (for logging or metrics). */
  onRetry?: ((event: RetryEvent) => void) | undefined;
}

/** The create operations: the client gives each an `Idempotency-Key` unless the caller sent one. */
export const IDEMPOTENT_CREATES: readonly string[] = ['/v1/me/api-credentials', '/v2/api-keys'];
/**
 * Tool calls (`POST /v1/tools/…`, a server's own tools included) get an `Idempotency-Key` too: a priced tool's
 * answer is kept with its charge, so a retry after a lost answer is answered again and charged nothing (a free
 * tool ignores the key and answers live).
 */
export const TOOL_CALLS_PREFIX = '/v1/tools/';

/** Changes of a v2 key: a retry gets the first answer back (for a rotation, the same new secret), changes nothing twice. */
export const IDEMPOTENT_CHANGES: readonly string[] = ['PATCH /v2/api-keys/{api_key_id}', 'POST /v2/api-keys/{api_key_id}/revoke', 'POST /v2/api-keys/{api_key_id}/rotate'];

/** Does the client give a request to this operation an `Idempotency-Key` (and so retry it)? */
export function takesIdempotencyKey(method: string, schemaPath: string): boolean {
  if (IDEMPOTENT_CHANGES.includes(`${method.toUpperCase()} ${schemaPath}`)) return true;
  return method.toUpperCase() === 'POST' && (IDEMPOTENT_CREATES.includes(schemaPath) || schemaPath.startsWith(TOOL_CALLS_PREFIX));
}

function newIdempotencyKey(): string {
  if (typeof globalThis.crypto?.randomUUID === 'function') return globalThis.crypto.randomUUID();
  // crypto.randomUUID is missing on plain-http pages of some browsers; getRandomValues is not.
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export function createOpenRushClient(options: OpenRushClientOptions): OpenRushClient {
  if (options.apiKey && options.sessionToken) throw new Error('Pass apiKey or sessionToken, not both');
  const send = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const client = createClient<paths>({
    baseUrl: options.baseUrl,
    headers: options.headers ?? {},
    fetch: retryingFetch(send, {
      retries: options.retries ?? 2,
      retryDelayMs: options.retryDelayMs ?? 500,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 60_000,
      timeoutMs: options.timeoutMs ?? 60_000,
      onRetry: options.onRetry,
    }),
  });
  const credential = options.apiKey ?? options.sessionToken;
  const prepare: Middleware = {
    onRequest({ request, schemaPath }) {
      if (credential) request.headers.set('Authorization', `Bearer ${credential}`);
      if (takesIdempotencyKey(request.method, schemaPath) && !request.headers.has('idempotency-key')) {
        request.headers.set('Idempotency-Key', newIdempotencyKey());
      }
      return request;
    },
  };
  client.use(prepare);
  return client;
}

export { OpenRushError, unwrap } from './errors.ts';
export { OpenRushTimeoutError } from './retry.ts';
export { allApiKeys, allEvents, allLedgerEntries, allUsage } from './paginate.ts';
