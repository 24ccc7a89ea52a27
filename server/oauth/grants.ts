// The OAuth 2.1 authorization server's domain, transport-neutral (server/http/routes/oauth.ts is its HTTP side): an
// authorization request is checked and kept; the Dashboard session that first reads it is the only one that may
// decide it; approving makes the grant — a v2 API key made by the same rules as createApiKey (no more than the
// person's own powers) — and a code; the code (single-use, 60 s, PKCE S256) is exchanged for an access token and a
// refresh token that point at the key; refresh tokens rotate, and a code or refresh token presented again revokes
// the key (so every token of the grant stops); revocation per RFC 7009. And authenticating an access token: one
// indexed lookup, the key's own status deciding as for an API key.
import type { components, operations } from '../../generated/openapi.d.ts';
import type { Clock } from '../clock.ts';
import { loadContract } from '../contract.ts';
import { type Caller, principalOf } from '../context.ts';
import { newCredential, PermissionMode, settingsFromPowers } from '../credentials.ts';
import type { Deps } from '../deps.ts';
import { keyChangedEvent } from '../events.ts';
import { MCP_PATH } from '../mcp/index.ts';
import { keyCaller, keyRefusal } from '../callers.ts';
import { confineToCaller } from '../permissions.ts';
import { invalidCredential, notFound, Problem, validationFailed } from '../problem.ts';
import type { CredentialRow, OAuthAuthorizationRow, OAuthGrantRow, OAuthTokenRow, Store } from '../store/types.ts';
import { findClient, type OAuthClientRecord } from './clients.ts';
import { OAuthError } from './errors.ts';
import { oauthScopes, type OAuthScopeInfo } from './scopes.ts';
import {
  ACCESS_TOKEN_PREFIX,
  CHALLENGE,
  hashSecret,
  hasShape,
  newAccessToken,
  newCode,
  newRefreshToken,
  randomHandle,
  verifiesChallenge,
} from './tokens.ts';

type OAuthAuthorization = components['schemas']['OAuthAuthorization'];
type OAuthApproval = components['schemas']['OAuthApproval'];
type OAuthDecision = components['schemas']['OAuthDecision'];
type OAuthTokenResponse = components['schemas']['OAuthTokenResponse'];
type OAuthClientSummary = components['schemas']['OAuthClientSummary'];
type ApiKeyAccess = components['schemas']['ApiKeyAccess'];

export type OAuthDeps = Pick<Deps, 'store' | 'clock' | 'ids' | 'config' | 'logger'>;

/** How long a pending authorization waits for the person's decision. */
export const AUTHORIZATION_MINUTES = 10;
/** How long a code may wait to be exchanged. */
export const CODE_SECONDS = 60;
const NAME_MAX = 120;
const SUFFIX = ' via OAuth';

let scopes: OAuthScopeInfo[] | undefined;
/** The scopes /mcp has (the contract's mcpOAuth scheme), read once. */
export function supportedScopes(): OAuthScopeInfo[] {
  scopes ??= oauthScopes(loadContract());
  return scopes;
}

/** The resource every token is bound to (RFC 8707): this server's MCP endpoint. */
export function mcpResource(issuer: string): string {
  return issuer + MCP_PATH;
}

/** Where the browser is sent back to, for people: host and port, or the scheme of a private-use URI. */
export function redirectHost(redirectUri: string): string {
  try {
    const url = new URL(redirectUri);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : url.protocol.slice(0, -1);
  } catch {
    return redirectUri.slice(0, 300);
  }
}

/** The redirect URI with these parameters added to its query (keeping its own). */
export function redirectWith(redirectUri: string, parameters: Record<string, string | null | undefined>): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(parameters)) if (typeof value === 'string') url.searchParams.append(name, value);
  return url.toString();
}

export function summaryOf(grant: Pick<OAuthGrantRow, 'client_id' | 'client_name' | 'redirect_host'>): OAuthClientSummary {
  return { client_id: grant.client_id, client_name: grant.client_name, redirect_host: grant.redirect_host };
}

/** Why the grant's key stops its tokens, or undefined while it is active: the API key's own rule (callers.ts). */
function grantRefusal(key: CredentialRow, now: Date): string | undefined {
  const refusal = keyRefusal(key, now);
  return refusal && `The grant is no longer valid: ${refusal.charAt(0).toLowerCase()}${refusal.slice(1)}`;
}

/**
 * The caller an OAuth access token (`orat_…`) stands for: the grant's API key, with the client, scopes and resource
 * it was issued for. One indexed query (the token joined with its grant and key); the key's status is checked as
 * for an API key, so revoking or disabling it stops the token at the next request, on every instance. Whether the
 * token may be used here (its resource, the operation) is the caller's to decide.
 */
export async function authenticateAccessToken(deps: { store: Store; clock: Clock }, token: string): Promise<{ caller: Caller } | { failure: Problem }> {
  if (!hasShape(token, ACCESS_TOKEN_PREFIX)) return { failure: invalidCredential('The OAuth access token is malformed: check that it was copied whole.') };
  const found = await deps.store.findOAuthAccessToken(hashSecret(token));
  if (!found) return { failure: invalidCredential('The OAuth access token is not valid.') };
  const now = deps.clock.now();
  if (Date.parse(found.expires_at) <= now.getTime()) return { failure: invalidCredential('The OAuth access token has expired: use the refresh token.') };
  const key = found.credential;
  const refusal = grantRefusal(key, now);
  if (refusal) return { failure: invalidCredential(refusal) };
  // The grant's key is the caller, as if its key had been sent: its constraints, budget and usage records.
  return { caller: { ...keyCaller(key), oauth: { clientId: found.client_id, scopes: splitScopes(found.scopes), resource: found.resource } } };
}

function splitScopes(text: string): string[] {
  return text.split(' ').filter(Boolean);
}

// ---- The authorization request (GET /oauth/authorize) ----

/** The authorization endpoint's query, as the contract declares it. */
export type AuthorizationRequest = NonNullable<operations['authorizeOAuthClient']['parameters']['query']>;

/**
 * Checks an authorization request and keeps it for the consent page. The client and its exact redirect URI are
 * checked first: when either is wrong this throws (an OAuthError shown to the person, never a redirect to an
 * unchecked URI). Every other refusal is a redirect back to the client with `error`, `state` and `iss`.
 */
export async function startAuthorization(deps: OAuthDeps, request: AuthorizationRequest, issuer: string): Promise<{ location: string }> {
  if (!request.client_id) throw new OAuthError('invalid_request', 'client_id is required.');
  const found = await findClient(deps, request.client_id);
  if ('refusal' in found) throw new OAuthError('invalid_client', found.refusal);
  if (!request.redirect_uri) throw new OAuthError('invalid_request', 'redirect_uri is required.');
  if (!found.client.redirect_uris.includes(request.redirect_uri)) {
    throw new OAuthError('invalid_request', "redirect_uri is not one of the client's registered redirect URIs (they are compared exactly).");
  }
  const redirectUri = request.redirect_uri;
  const back = (error: string, description: string) => ({
    location: redirectWith(redirectUri, { error, error_description: description, state: request.state, iss: issuer }),
  });
  if (request.response_type !== 'code') return back('unsupported_response_type', 'response_type must be code.');
  if (!request.code_challenge) return back('invalid_request', 'code_challenge is required (PKCE, S256).');
  if (request.code_challenge_method !== 'S256') return back('invalid_request', 'code_challenge_method must be S256.');
  if (!CHALLENGE.test(request.code_challenge)) return back('invalid_request', 'code_challenge must be BASE64URL(SHA-256(code_verifier)), 43 characters.');
  const known = supportedScopes().map((info) => info.scope);
  // No scope asked for: every scope /mcp has (what the protected-resource metadata lists).
  const asked = request.scope === undefined || request.scope.trim() === '' ? known : [...new Set(splitScopes(request.scope))];
  const unknown = asked.filter((scope) => !known.includes(scope));
  if (unknown.length > 0) return back('invalid_scope', `Unknown scope ${unknown[0]!.slice(0, 60)}; this server has: ${known.join(' ')}.`);
  const resource = mcpResource(issuer);
  if (!request.resource) return back('invalid_target', `resource is required (RFC 8707): ${resource}.`);
  if (request.resource !== resource) return back('invalid_target', `resource must be this server's MCP endpoint, ${resource}.`);
  const now = deps.clock.now();
  const id = randomHandle();
  await deps.store.createOAuthAuthorization({
    id,
    client_id: found.client.id,
    redirect_uri: redirectUri,
    code_challenge: request.code_challenge,
    state: request.state ?? null,
    scopes: asked.join(' '),
    resource,
    session_hash: null,
    csrf_hash: null,
    created_at: now.toISOString(),
    expires_at: new Date(now.getTime() + AUTHORIZATION_MINUTES * 60_000).toISOString(),
    decided_at: null,
  });
  return { location: `/dashboard/consent?authorization=${id}` };
}

// ---- The consent (Dashboard session only) ----

const NO_SUCH_AUTHORIZATION = 'No pending authorization with this id: it has expired (after 10 minutes), was decided, or was opened in another session.';

async function clientOf(deps: OAuthDeps, clientId: string): Promise<OAuthClientRecord> {
  const found = await findClient(deps, clientId);
  if ('refusal' in found) throw notFound(NO_SUCH_AUTHORIZATION);
  return found.client;
}

/**
 * The pending authorization as the consent page shows it, for the Dashboard session whose token hashes to
 * `sessionHash`. The first session to read it is bound to it; each read hands that session a fresh csrf token
 * (only its hash is kept). Another session, or an expired or decided authorization: 404.
 */
export async function readAuthorization(deps: OAuthDeps, id: string, sessionHash: string): Promise<OAuthAuthorization> {
  const csrf = randomHandle();
  const row = await deps.store.bindOAuthAuthorization(id, sessionHash, hashSecret(csrf), deps.clock.now().toISOString());
  if (!row) throw notFound(NO_SUCH_AUTHORIZATION);
  const client = await clientOf(deps, row.client_id);
  const described = new Map(supportedScopes().map((info) => [info.scope, info.description]));
  return {
    authorization_id: row.id,
    client: { client_id: client.id, client_name: client.name, redirect_host: redirectHost(row.redirect_uri) },
    scopes: splitScopes(row.scopes).map((scope) => ({ scope, description: described.get(scope) ?? scope })),
    resource: row.resource,
    csrf_token: csrf,
    expires_at: row.expires_at,
  };
}

/** The authorization, if this session may decide it now with this csrf token; the refusal otherwise. */
async function decidable(deps: OAuthDeps, id: string, sessionHash: string, csrfToken: string, now: Date): Promise<OAuthAuthorizationRow> {
  const row = await deps.store.getOAuthAuthorization(id);
  if (!row || row.decided_at !== null || Date.parse(row.expires_at) <= now.getTime()) throw notFound(NO_SUCH_AUTHORIZATION);
  if (row.session_hash !== sessionHash) throw new Problem('forbidden', 'This authorization was opened in another Dashboard session: decide it there.');
  if (row.csrf_hash === null || row.csrf_hash !== hashSecret(csrfToken)) {
    throw new Problem('forbidden', 'The csrf_token is not the one this session was last given for this authorization: reload the consent page.');
  }
  return row;
}

/**
 * The person's yes: the grant's API key (named `<client name> via OAuth`; RESTRICTED to the approved scopes, or
 * READ_ONLY; with the chosen budget and rate limit, confined to the caller's own powers as createApiKey is), the
 * grant, and a code, written with the decision in one transaction. Answers where to send the browser.
 */
export async function approveAuthorization(
  deps: OAuthDeps,
  caller: Caller,
  id: string,
  sessionHash: string,
  approval: OAuthApproval,
  issuer: string,
): Promise<OAuthDecision> {
  const now = deps.clock.now();
  const row = await decidable(deps, id, sessionHash, approval.csrf_token, now);
  const asked = splitScopes(row.scopes);
  const granted = [...new Set(approval.scopes)];
  const extra = granted.findIndex((scope) => !asked.includes(scope));
  if (extra >= 0) {
    throw validationFailed([{ location: 'body', pointer: `/scopes/${extra}`, message: 'was not asked for' }], 'Grant only scopes the client asked for.');
  }
  const client = await clientOf(deps, row.client_id);
  const permissionMode = approval.permission_mode ?? PermissionMode.RESTRICTED;
  const byScope = new Map(supportedScopes().map((info) => [info.scope, info]));
  // READ_ONLY keeps only the scopes that read: the token says what the key can do (a call that spends credits is
  // then insufficient_scope, which tells the client to ask again, rather than a key's refusal).
  if (permissionMode === PermissionMode.READ_ONLY) granted.splice(0, granted.length, ...granted.filter((scope) => byScope.get(scope)!.level === 'read'));
  const access: ApiKeyAccess =
    permissionMode === PermissionMode.RESTRICTED ? Object.fromEntries(granted.map((scope) => [byScope.get(scope)!.resource, byScope.get(scope)!.level])) : {};
  // The no-escalation rule of createApiKey: never more than the caller may give.
  const powers = confineToCaller(caller, {
    permissionMode,
    access,
    budget: approval.budget,
    rateLimitRpm: approval.rate_limit === undefined ? undefined : (approval.rate_limit?.requests_per_minute ?? null),
  });
  const issued = newCredential(deps.ids, deps.clock, {
    accountId: caller.accountId,
    name: client.name.slice(0, NAME_MAX - SUFFIX.length) + SUFFIX,
    by: principalOf(caller),
    ...settingsFromPowers(powers),
  });
  const code = newCode();
  const nowIso = now.toISOString();
  const decided = await deps.store.decideOAuthAuthorization(
    id,
    { sessionHash, csrfHash: hashSecret(approval.csrf_token), now: nowIso },
    {
      credential: issued.row,
      grant: {
        credential_id: issued.row.id,
        client_id: client.id,
        client_name: client.name,
        redirect_host: redirectHost(row.redirect_uri),
        resource: row.resource,
        scopes: granted.join(' '),
        created_at: nowIso,
      },
      code: {
        code_hash: code.hash,
        credential_id: issued.row.id,
        client_id: client.id,
        redirect_uri: row.redirect_uri,
        code_challenge: row.code_challenge,
        resource: row.resource,
        scopes: granted.join(' '),
        expires_at: new Date(now.getTime() + CODE_SECONDS * 1000).toISOString(),
        used_at: null,
      },
      event: keyChangedEvent(deps.ids, 'key.created', issued.row, nowIso),
    },
  );
  // Decided meanwhile by another request of this session: this one created nothing.
  if (!decided) throw notFound(NO_SUCH_AUTHORIZATION);
  return { redirect_to: redirectWith(row.redirect_uri, { code: code.value, state: row.state, iss: issuer }) };
}

/** The person's no: nothing is created; the browser goes back with access_denied. */
export async function denyAuthorization(deps: OAuthDeps, id: string, sessionHash: string, csrfToken: string, issuer: string): Promise<OAuthDecision> {
  const now = deps.clock.now();
  const row = await decidable(deps, id, sessionHash, csrfToken, now);
  const decided = await deps.store.decideOAuthAuthorization(id, { sessionHash, csrfHash: hashSecret(csrfToken), now: now.toISOString() });
  if (!decided) throw notFound(NO_SUCH_AUTHORIZATION);
  return {
    redirect_to: redirectWith(row.redirect_uri, { error: 'access_denied', error_description: 'The person denied the request.', state: row.state, iss: issuer }),
  };
}

// ---- The token endpoint (POST /oauth/token) and revocation (POST /oauth/revoke) ----

export type TokenRequest = Partial<Record<string, string>>;

const invalidGrant = (description: string) => new OAuthError('invalid_grant', description);

async function requireClient(deps: OAuthDeps, clientId: string | undefined): Promise<OAuthClientRecord> {
  if (!clientId) throw new OAuthError('invalid_request', 'client_id is required (public clients send it in the body).');
  const found = await findClient(deps, clientId);
  if ('refusal' in found) throw new OAuthError('invalid_client', found.refusal, 401);
  return found.client;
}

/** Revokes the grant: its key's revoked_at, so every token of it stops at the next request. */
async function revokeGrant(deps: OAuthDeps, credentialId: string): Promise<void> {
  const now = deps.clock.now().toISOString();
  await deps.store.revokeOAuthGrant(credentialId, now, (row) => keyChangedEvent(deps.ids, 'key.revoked', row, now));
}

function newTokens(deps: OAuthDeps, credentialId: string, now: Date): { access: string; refresh: string; rows: OAuthTokenRow[] } {
  const access = newAccessToken();
  const refresh = newRefreshToken();
  const created = now.toISOString();
  return {
    access: access.value,
    refresh: refresh.value,
    rows: [
      {
        token_hash: access.hash,
        kind: 'access',
        credential_id: credentialId,
        expires_at: new Date(now.getTime() + deps.config.oauth.accessTokenSeconds * 1000).toISOString(),
        used_at: null,
        created_at: created,
      },
      {
        token_hash: refresh.hash,
        kind: 'refresh',
        credential_id: credentialId,
        expires_at: new Date(now.getTime() + deps.config.oauth.refreshTokenDays * 86_400_000).toISOString(),
        used_at: null,
        created_at: created,
      },
    ],
  };
}

function tokenResponse(deps: OAuthDeps, tokens: { access: string; refresh: string }, scope: string): OAuthTokenResponse {
  return { access_token: tokens.access, token_type: 'Bearer', expires_in: deps.config.oauth.accessTokenSeconds, refresh_token: tokens.refresh, scope };
}

async function redeemCode(deps: OAuthDeps, form: TokenRequest): Promise<OAuthTokenResponse> {
  const client = await requireClient(deps, form.client_id);
  for (const name of ['code', 'code_verifier', 'redirect_uri'] as const) {
    if (!form[name]) throw new OAuthError('invalid_request', `${name} is required.`);
  }
  const codeHash = hashSecret(form.code!);
  const found = await deps.store.findOAuthCode(codeHash);
  if (!found) throw invalidGrant('The authorization code is not valid.');
  const { code, credential } = found;
  const replayed = async () => {
    await revokeGrant(deps, code.credential_id);
    return invalidGrant('The authorization code was already used: the grant made with it is revoked.');
  };
  if (code.used_at !== null) throw await replayed();
  const now = deps.clock.now();
  if (Date.parse(code.expires_at) <= now.getTime()) throw invalidGrant(`The authorization code has expired (codes last ${CODE_SECONDS} seconds).`);
  if (code.client_id !== client.id) throw invalidGrant('The authorization code was issued to another client.');
  if (form.redirect_uri !== code.redirect_uri) throw invalidGrant('redirect_uri is not the one of the authorization request.');
  if (!verifiesChallenge(form.code_verifier!, code.code_challenge)) throw invalidGrant('The code_verifier does not match the code_challenge.');
  if (form.resource !== undefined && form.resource !== code.resource) throw new OAuthError('invalid_target', `resource must be ${code.resource}, the one the code was issued for.`);
  const refusal = grantRefusal(credential, now);
  if (refusal) throw invalidGrant(refusal);
  const tokens = newTokens(deps, code.credential_id, now);
  if (!(await deps.store.redeemOAuthCode(codeHash, now.toISOString(), tokens.rows))) {
    // Another request (on any instance) used it since it was read: a second presentation, as above.
    const again = await deps.store.findOAuthCode(codeHash);
    if (again?.code.used_at) throw await replayed();
    throw invalidGrant('The authorization code has expired.');
  }
  return tokenResponse(deps, tokens, code.scopes);
}

async function refresh(deps: OAuthDeps, form: TokenRequest): Promise<OAuthTokenResponse> {
  const client = await requireClient(deps, form.client_id);
  if (!form.refresh_token) throw new OAuthError('invalid_request', 'refresh_token is required.');
  const tokenHash = hashSecret(form.refresh_token);
  const found = await deps.store.findOAuthToken(tokenHash);
  if (!found || found.token.kind !== 'refresh') throw invalidGrant('The refresh token is not valid.');
  const { token, grant, credential } = found;
  const replayed = async () => {
    await revokeGrant(deps, token.credential_id);
    return invalidGrant('The refresh token was already used: the grant is revoked, sign in again.');
  };
  if (token.used_at !== null) throw await replayed();
  const now = deps.clock.now();
  if (Date.parse(token.expires_at) <= now.getTime()) throw invalidGrant('The refresh token has expired: sign in again.');
  if (grant.client_id !== client.id) throw invalidGrant('The refresh token was issued to another client.');
  if (form.resource !== undefined && form.resource !== grant.resource) throw new OAuthError('invalid_target', `resource must be ${grant.resource}, the one the grant is bound to.`);
  if (form.scope !== undefined) {
    const granted = splitScopes(grant.scopes);
    const beyond = splitScopes(form.scope).find((scope) => !granted.includes(scope));
    if (beyond) throw new OAuthError('invalid_scope', `${beyond.slice(0, 60)} was not granted; a refresh can only keep the granted scopes.`);
  }
  const refusal = grantRefusal(credential, now);
  if (refusal) throw invalidGrant(refusal);
  const tokens = newTokens(deps, token.credential_id, now);
  if (!(await deps.store.rotateOAuthRefreshToken(tokenHash, now.toISOString(), tokens.rows))) {
    const again = await deps.store.findOAuthToken(tokenHash);
    if (again?.token.used_at) throw await replayed();
    throw invalidGrant('The refresh token has expired: sign in again.');
  }
  return tokenResponse(deps, tokens, grant.scopes);
}

/** A token request: `authorization_code` or `refresh_token`. Throws OAuthError. */
export async function requestToken(deps: OAuthDeps, form: TokenRequest): Promise<OAuthTokenResponse> {
  switch (form.grant_type) {
    case 'authorization_code':
      return redeemCode(deps, form);
    case 'refresh_token':
      return refresh(deps, form);
    case undefined:
    case '':
      throw new OAuthError('invalid_request', 'grant_type is required.');
    default:
      throw new OAuthError('unsupported_grant_type', 'grant_type must be authorization_code or refresh_token.');
  }
}

/**
 * RFC 7009: a refresh token revokes the whole grant (its key), an access token ends that token; an unknown or
 * already revoked token is no error. A token of another client (when client_id is sent) is refused.
 */
export async function revokeToken(deps: OAuthDeps, form: { token: string; client_id?: string }): Promise<void> {
  const found = await deps.store.findOAuthToken(hashSecret(form.token));
  if (!found) return;
  if (form.client_id !== undefined && form.client_id !== found.grant.client_id) throw new OAuthError('invalid_client', 'This token was not issued to this client.');
  if (found.token.kind === 'refresh') await revokeGrant(deps, found.token.credential_id);
  else await deps.store.deleteOAuthToken(found.token.token_hash);
}
