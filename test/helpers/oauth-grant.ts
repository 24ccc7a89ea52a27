// An OAuth grant made the way the authorization server makes one (server/oauth/grants.ts): a registered client,
// an authorization request, a Dashboard session's approval (the grant's API key), the code redeemed with its PKCE
// verifier for an access token and a refresh token. For tests of the resource side (/mcp), which need real tokens
// in the real store without driving the consent page in a browser (test/oauth/ does that end to end).
import { createHash, randomBytes } from 'node:crypto';
import type { Config } from '../../server/config.ts';
import type { Caller } from '../../server/context.ts';
import { createIdGenerator } from '../../server/ids.ts';
import { approveAuthorization, readAuthorization, requestToken, startAuthorization } from '../../server/oauth/grants.ts';
import type { TestServer } from './server.ts';

export interface IssuedGrant {
  clientId: string;
  accessToken: string;
  refreshToken: string;
  /** The grant's API key. */
  keyId: string;
}

export async function issueGrant(
  server: TestServer,
  config: Config,
  options: {
    accountId?: string;
    /** The scopes approved (default: every scope asked for, tools:use). */
    scopes?: string[];
    /** The issuer the authorization request was made to: its /mcp is the token's resource (default: the server's URL). */
    issuer?: string;
    clientName?: string;
  } = {},
): Promise<IssuedGrant> {
  const ids = createIdGenerator(server.clock);
  const deps = { store: server.store, clock: server.clock, ids, config };
  const issuer = options.issuer ?? server.url;
  const clientId = ids('orc');
  const redirectUri = 'http://127.0.0.1:33418/callback';
  await server.store.insertOAuthClient({
    id: clientId,
    name: options.clientName ?? 'Test Agent',
    client_uri: null,
    redirect_uris: JSON.stringify([redirectUri]),
    software_id: null,
    software_version: null,
    source: 'registered',
    metadata_expires_at: null,
    created_at: server.clock.now().toISOString(),
  });
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const started = await startAuthorization(
    deps,
    { response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: 's', resource: `${issuer}/mcp` },
    issuer,
  );
  const id = new URL(started.location, 'http://x').searchParams.get('authorization');
  if (!id) throw new Error(`the authorization request was refused: ${started.location}`);
  const sessionHash = randomBytes(32).toString('hex');
  const read = await readAuthorization(deps, id, sessionHash);
  const accountId = options.accountId ?? server.account.accountId;
  const person: Caller = { accountId, credentialId: null, authSource: 'session', lastUsedAt: null };
  const decision = await approveAuthorization(
    deps,
    person,
    id,
    sessionHash,
    { csrf_token: read.csrf_token, scopes: options.scopes ?? read.scopes.map((scope) => scope.scope), permission_mode: 3 } as never,
    issuer,
  );
  const code = new URL(decision.redirect_to).searchParams.get('code')!;
  const tokens = await requestToken(deps, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, client_id: clientId });
  const grant = (await server.store.findOAuthToken(createHash('sha256').update(tokens.access_token).digest('hex')))!;
  return { clientId, accessToken: tokens.access_token, refreshToken: tokens.refresh_token!, keyId: grant.credential.id };
}
