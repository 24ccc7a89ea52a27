// The typed OpenRush client: openapi-fetch over the generated contract types.
//   const openrush = createOpenRushClient({ baseUrl: 'http://localhost:3000', apiKey: process.env.OPENRUSH_KEY });
//   const { data, error, response } = await openrush.GET('/v1/me/credits');
import createClient, { type Client, type ClientOptions, type Middleware } from 'openapi-fetch';
import type { components, paths } from '../generated/openapi.d.ts';

export type { components, paths } from '../generated/openapi.d.ts';
export type ApiCredential = components['schemas']['ApiCredential'];
export type ApiCredentialCreated = components['schemas']['ApiCredentialCreated'];
export type UsageRecord = components['schemas']['UsageRecord'];
export type Capabilities = components['schemas']['Capabilities'];
export type Problem = components['schemas']['Problem'];

export type OpenRushClient = Client<paths>;

export interface OpenRushClientOptions {
  /** e.g. `https://api.openrush.io` or `http://localhost:3000` (no `/v1`: the paths carry it). */
  baseUrl: string;
  /** An OpenRush API key (`or_…`), sent as `Authorization: Bearer`. */
  apiKey?: string;
  /** A Dashboard session token (a Supabase access token), sent as `Authorization: Bearer`. */
  sessionToken?: string;
  /** A fetch implementation (for tests, proxies or instrumentation); defaults to the global fetch. */
  fetch?: ClientOptions['fetch'];
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
}

export function createOpenRushClient(options: OpenRushClientOptions): OpenRushClient {
  if (options.apiKey && options.sessionToken) throw new Error('Pass apiKey or sessionToken, not both');
  const client = createClient<paths>({ baseUrl: options.baseUrl, fetch: options.fetch, headers: options.headers });
  const credential = options.apiKey ?? options.sessionToken;
  if (credential) {
    const authenticate: Middleware = {
      onRequest({ request }) {
        request.headers.set('Authorization', `Bearer ${credential}`);
        return request;
      },
    };
    client.use(authenticate);
  }
  return client;
}

export { allApiKeys, allUsage, OpenRushError } from './paginate.ts';
export type ApiKey = components['schemas']['ApiKey'];
export type ApiKeyWithSecret = components['schemas']['ApiKeyWithSecret'];
