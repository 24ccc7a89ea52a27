// OAuth clients of /mcp: who may ask for a grant, and where the browser may be sent back.
//
// Two kinds (both rows of oauth_clients):
//   - registered by POST /oauth/register (RFC 7591): `orc_<ULID>`, public, redirect URIs checked below;
//   - a client ID metadata document (draft-ietf-oauth-client-id-metadata-document, MCP 2025-11-25): the client_id
//     is an https URL, and the document there says who the client is. Fetched under the SSRF guard
//     (server/net/guarded-fetch.ts) only when the operator allows outbound fetches
//     (OPENRUSH_OAUTH_CLIENT_METADATA_DOCUMENTS=on), and cached in the same table until metadata_expires_at.
import type { Deps } from '../deps.ts';
import { guardedGet } from '../net/guarded-fetch.ts';
import type { OAuthClientRow } from '../store/types.ts';

/** A client as the OAuth flows use it. */
export interface OAuthClientRecord {
  id: string;
  name: string;
  client_uri: string | null;
  redirect_uris: string[];
  software_id: string | null;
  software_version: string | null;
  source: OAuthClientRow['source'];
  created_at: string;
}

/** The name a client gets when it gives none (the contract's OAuthClient.client_name says so). */
export const DEFAULT_CLIENT_NAME = 'MCP client';
export const MAX_REDIRECT_URIS = 10;
const MAX_CLIENT_ID_LENGTH = 2048;
const MAX_NAME_LENGTH = 200;
const MAX_URI_LENGTH = 2048;

/** How long a fetched metadata document is trusted: its Cache-Control max-age, within these bounds. */
export const METADATA_CACHE_SECONDS = { default: 3600, min: 300, max: 86_400 } as const;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
const LOOPBACK_FORMS = 'http://127.0.0.1:<port>/…, http://[::1]:<port>/… or http://localhost:<port>/…';

/**
 * Why `uri` may not be a redirect URI, or undefined when it may (one rule for registration and for metadata
 * documents). Allowed: loopback URLs over http (RFC 8252 §7.3, §8.3: a native app's local listener; any port), or
 * a URI that starts with one of the operator's `prefixes` (OPENRUSH_OAUTH_REDIRECT_URI_PREFIXES, e.g. a web
 * client's https callback or a desktop app's private-use scheme, RFC 8252 §7.1). Never a fragment (RFC 6749
 * §3.1.2) or a user name and password.
 */
export function redirectUriRefusal(uri: string, prefixes: readonly string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `${quote(uri)} is not an absolute URI.`;
  }
  if (uri.includes('#')) return `${quote(uri)} has a fragment, which a redirect URI must not have (RFC 6749 §3.1.2).`;
  if (url.username || url.password) return `${quote(uri)} has a user name or password, which a redirect URI must not have.`;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  if (prefixes.some((prefix) => uri.startsWith(prefix))) return undefined;
  const allowed = prefixes.length
    ? `a loopback URL (${LOOPBACK_FORMS}) or start with ${prefixes.map(quote).join(' or ')}`
    : `a loopback URL (${LOOPBACK_FORMS}); the operator can allow others with OPENRUSH_OAUTH_REDIRECT_URI_PREFIXES`;
  return `${quote(uri)} is not allowed: a redirect URI must be ${allowed}.`;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

/** The first refusal among `uris`, naming which one. */
export function redirectUrisRefusal(uris: readonly string[], prefixes: readonly string[]): string | undefined {
  if (uris.length === 0) return 'redirect_uris must list at least one redirect URI.';
  if (uris.length > MAX_REDIRECT_URIS) return `redirect_uris may list at most ${MAX_REDIRECT_URIS} redirect URIs.`;
  for (const uri of uris) {
    const refusal = redirectUriRefusal(uri, prefixes);
    if (refusal) return refusal;
  }
  return undefined;
}

export function clientRecord(row: OAuthClientRow): OAuthClientRecord {
  return {
    id: row.id,
    name: row.name,
    client_uri: row.client_uri,
    redirect_uris: JSON.parse(row.redirect_uris) as string[],
    software_id: row.software_id,
    software_version: row.software_version,
    source: row.source,
    created_at: row.created_at,
  };
}

export type FoundClient = { client: OAuthClientRecord } | { refusal: string };

/** What findClient needs: the app's deps, and (tests only) how the guard may reach a test server. */
export type ClientDeps = Pick<Deps, 'store' | 'clock' | 'config'> & Partial<Pick<Deps, 'logger' | 'outboundFetchForTests'>>;

/**
 * The client `clientId` names: a registered one from the store, or (when the operator allows it) the one an https
 * client ID's metadata document describes, fetched or from the cache. `refusal` says why there is none, for the
 * OAuth error's description.
 */
export async function findClient(deps: ClientDeps, clientId: string): Promise<FoundClient> {
  if (!isMetadataDocumentUrl(clientId)) {
    const row = await deps.store.findOAuthClient(clientId);
    if (!row || row.source !== 'registered') return { refusal: `No client is registered as ${quote(clientId)}: register it first (POST /oauth/register).` };
    return { client: clientRecord(row) };
  }
  if (!deps.config.oauth.clientMetadataDocuments) {
    return { refusal: 'This server does not fetch client ID metadata documents: register the client (POST /oauth/register) and use its client_id.' };
  }
  const now = deps.clock.now();
  const cached = await deps.store.findOAuthClient(clientId);
  if (cached?.source === 'metadata_document' && cached.metadata_expires_at !== null && Date.parse(cached.metadata_expires_at) > now.getTime()) {
    return { client: clientRecord(cached) };
  }
  const fetched = await fetchMetadataDocument(deps, clientId);
  if ('refusal' in fetched) return fetched;
  const row: OAuthClientRow = {
    ...fetched.metadata,
    id: clientId,
    source: 'metadata_document',
    metadata_expires_at: new Date(now.getTime() + fetched.maxAgeSeconds * 1000).toISOString(),
    created_at: cached?.created_at ?? now.toISOString(),
  };
  await deps.store.saveOAuthClientMetadata(row);
  return { client: clientRecord(row) };
}

/** An https URL, the form a client ID metadata document's client_id takes (a registered id never is one). */
export function isMetadataDocumentUrl(clientId: string): boolean {
  return clientId.startsWith('https://');
}

/**
 * Why `clientId` cannot be a metadata document's URL (draft-ietf-oauth-client-id-metadata-document §3): https, with a
 * path, no fragment, no user name or password, no `.` or `..` segments.
 */
function clientIdUrlRefusal(clientId: string): string | undefined {
  if (clientId.length > MAX_CLIENT_ID_LENGTH) return `A client ID URL may be at most ${MAX_CLIENT_ID_LENGTH} characters.`;
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    return `The client ID ${quote(clientId)} is not a URL.`;
  }
  if (url.protocol !== 'https:') return 'A client ID URL must be https.';
  if (clientId.includes('#')) return 'A client ID URL must not have a fragment.';
  if (url.username || url.password) return 'A client ID URL must not have a user name or password.';
  if (url.pathname === '/' || url.pathname === '') return 'A client ID URL must have a path.';
  const rawPath = clientId.slice(clientId.indexOf('/', 'https://'.length)).split(/[?]/)[0]!;
  if (rawPath.split('/').some((segment) => segment === '.' || segment === '..' || /^%2e{1,2}$/i.test(segment) || /^(\.%2e|%2e\.)$/i.test(segment))) {
    return 'A client ID URL must not have "." or ".." path segments.';
  }
  return undefined;
}

type FetchedMetadata = { metadata: Pick<OAuthClientRow, 'name' | 'client_uri' | 'redirect_uris' | 'software_id' | 'software_version'>; maxAgeSeconds: number };

async function fetchMetadataDocument(deps: ClientDeps, clientId: string): Promise<FetchedMetadata | { refusal: string }> {
  const urlRefusal = clientIdUrlRefusal(clientId);
  if (urlRefusal) return { refusal: urlRefusal };
  const refuse = (why: string) => ({ refusal: `The client's metadata document at ${quote(clientId)} ${why}` });
  let response;
  try {
    response = await guardedGet(clientId, { ...deps.outboundFetchForTests });
  } catch (error) {
    deps.logger?.info({ client_id: clientId, reason: (error as Error).message }, 'client metadata document not fetched');
    return refuse(`could not be fetched: ${(error as Error).message}.`);
  }
  if (response.status !== 200) return refuse(`could not be fetched: the server answered ${response.status}.`);
  let document: unknown;
  try {
    document = JSON.parse(response.body);
  } catch {
    return refuse('is not valid JSON.');
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return refuse('is not a JSON object.');
  const metadata = document as Record<string, unknown>;
  // §4.1: the document names itself; a copy served at another URL is not this client.
  if (metadata.client_id !== clientId) return refuse('does not name this URL as its client_id (they must be equal, character for character).');
  // §4.1: a public client (this server issues no secrets and verifies no client assertion).
  if ('client_secret' in metadata || 'client_secret_expires_at' in metadata) return refuse('has a client_secret, which a metadata document must not have.');
  if (metadata.token_endpoint_auth_method !== undefined && metadata.token_endpoint_auth_method !== 'none') {
    return refuse(`asks for token_endpoint_auth_method ${quote(String(metadata.token_endpoint_auth_method))}: this server takes public clients only ("none").`);
  }
  const uris = metadata.redirect_uris;
  if (!Array.isArray(uris) || !uris.every((uri): uri is string => typeof uri === 'string' && uri.length > 0 && uri.length <= MAX_URI_LENGTH)) {
    return refuse('has no redirect_uris (a list of URIs).');
  }
  const redirectRefusal = redirectUrisRefusal(uris, deps.config.oauth.redirectUriPrefixes);
  if (redirectRefusal) return refuse(`lists a redirect URI this server does not allow: ${redirectRefusal}`);
  const name = metadata.client_name;
  if (name !== undefined && (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME_LENGTH)) {
    return refuse(`has a client_name that is not a name of 1 to ${MAX_NAME_LENGTH} characters.`);
  }
  return {
    metadata: {
      // Without a name, the consent page names the client by its URL's host.
      name: typeof name === 'string' ? name.trim() : new URL(clientId).host,
      client_uri: optionalString(metadata.client_uri, MAX_URI_LENGTH),
      redirect_uris: JSON.stringify(uris),
      software_id: optionalString(metadata.software_id, 256),
      software_version: optionalString(metadata.software_version, 64),
    },
    maxAgeSeconds: cacheSeconds(response.headers['cache-control']),
  };
}

function optionalString(value: unknown, max: number): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= max ? value : null;
}

/** Cache-Control max-age (RFC 9111 §5.2.2.1), held within [5 min, 24 h]; 1 h when absent. no-store: the minimum. */
export function cacheSeconds(cacheControl: string | undefined): number {
  const { default: fallback, min, max } = METADATA_CACHE_SECONDS;
  if (!cacheControl) return fallback;
  const directives = cacheControl.toLowerCase().split(',').map((part) => part.trim());
  if (directives.some((directive) => directive === 'no-store' || directive === 'no-cache')) return min;
  const maxAge = directives.map((directive) => /^max-age\s*=\s*"?(\d+)"?$/.exec(directive)).find(Boolean);
  if (!maxAge) return fallback;
  return Math.min(max, Math.max(min, Number(maxAge[1])));
}
