// Who is calling: resolving a caller from a credential (an API key, an OAuth access token, a Supabase access
// token, the Dashboard's session token), and counting failed attempts per client address so that guessing gets
// nowhere. Plain functions over the store: the HTTP middleware (server/http/authentication.ts), sign-in
// (routes/sessions.ts) and /mcp all come here, and nothing in this file knows about Express. Past the limit of
// failed attempts, an address is refused (429) for a while without any credential being looked at. Valid callers
// are never counted.
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { Clock } from './clock.ts';
import { isExpired } from './credentials.ts';
import type { Caller } from './context.ts';
import { findLiveSession, sessionCaller } from './dashboard-sessions.ts';
import type { IdGenerator } from './ids.ts';
import { hashKey, isWellFormedKey, KEY_PREFIX } from './keys.ts';
import { authenticateAccessToken } from './oauth/grants.ts';
import { ACCESS_TOKEN_PREFIX } from './oauth/tokens.ts';
import { invalidCredential, Problem } from './problem.ts';
import { createSessionVerifier, isSessionConfigured, looksLikeJwt, type SessionConfig } from './sessions.ts';
import type { CredentialRow, Store } from './store/types.ts';

export type AuthResult = { caller: Caller } | { failure: Problem };

/** How many recently failing client addresses an instance remembers (oldest forgotten first). */
const FAILED_ADDRESSES_REMEMBERED = 10_000;

/**
 * Why a key found by the hash `presentedHash` may not act now (revoked, expired, disabled, or an old secret past
 * its rotation grace period), or undefined when it may. The one rule for every credential that acts as a key.
 */
export function keyRefusal(credential: CredentialRow, now: Date, presentedHash?: string): string | undefined {
  if (credential.revoked_at !== null) return 'The API key was revoked.';
  if (isExpired(credential, now)) return 'The API key has expired.';
  if (credential.disabled_at !== null) return 'The API key is disabled.';
  if (
    presentedHash !== undefined &&
    credential.key_hash !== presentedHash &&
    (credential.previous_key_expires_at === null || Date.parse(credential.previous_key_expires_at) <= now.getTime())
  ) {
    return 'The API key was rotated and its grace period is over.';
  }
  return undefined;
}

/** The caller an API key (or a credential acting as one) makes. */
export function keyCaller(credential: CredentialRow): Caller {
  return { accountId: credential.account_id, credentialId: credential.id, authSource: 'api_key', lastUsedAt: credential.last_used_at, key: credential };
}

export interface CallerDeps {
  store: Store;
  clock: Clock;
  ids: IdGenerator;
  session: SessionConfig;
  authFailuresPerMinute: number;
  /** This server's own authorization server issues OAuth access tokens (`orat_…`): accept them (where listed). */
  oauthAccessTokens: boolean;
}

export type Callers = ReturnType<typeof createCallers>;

export function createCallers(deps: CallerDeps) {
  const { store, clock } = deps;
  const verifySession = isSessionConfigured(deps.session) ? createSessionVerifier(deps.session) : undefined;
  // Counted in the store, so that every instance sees the same count (in memory for SQLite). The failure that goes
  // past authFailuresPerMinute is still answered 401 and blocks the address: everything after is 429 for a minute.
  const limit = deps.authFailuresPerMinute;
  const failures = store.rateLimiter({ keyPrefix: 'auth_failures', points: limit, duration: 60, blockDuration: 60 });
  // The addresses this instance has seen fail recently: only their counter is read before looking at a credential,
  // so a caller that has never failed costs no round trip to the counters (on PostgreSQL, one per request). The
  // count itself stays shared: an address blocked through other instances gets one more credential checked here,
  // whose failure comes back past the limit from the shared counter and blocks it here too. Map order: an LRU.
  const failedAddresses = new Map<string, true>();
  const rememberFailure = (address: string) => {
    failedAddresses.delete(address);
    failedAddresses.set(address, true);
    if (failedAddresses.size > FAILED_ADDRESSES_REMEMBERED) failedAddresses.delete(failedAddresses.keys().next().value!);
  };
  const throttled = (msBeforeNext: number) => {
    const seconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
    return new Problem('too_many_requests', `Too many failed authentications. Try again in ${seconds} seconds.`, {
      headers: { 'Retry-After': String(seconds) },
    });
  };

  async function authenticateApiKey(key: string): Promise<AuthResult> {
    // The checksum catches typos and truncation before the database is asked.
    if (!isWellFormedKey(key)) return { failure: invalidCredential('The API key is malformed: check that it was copied whole.') };
    const hash = hashKey(key);
    const credential = await store.findCredentialByHash(hash);
    if (!credential) return { failure: invalidCredential('The API key is not valid.') };
    const refused = keyRefusal(credential, clock.now(), hash);
    if (refused) return { failure: invalidCredential(refused) };
    return { caller: keyCaller(credential) };
  }

  /** The account a Supabase access token (a Dashboard session token) acts for, found or created as configured. */
  async function sessionTokenAccount(token: string): Promise<{ accountId: string; expiresAt: string } | { failure: Problem }> {
    if (!verifySession) return { failure: invalidCredential('Session tokens are not accepted by this server.') };
    const session = await verifySession(token);
    if ('failure' in session) return { failure: invalidCredential(session.failure) };
    const account = await store.sessionAccount(
      session.subject,
      deps.session.autoprovision
        ? { id: deps.ids('acct'), name: session.email ?? 'Dashboard user', balance: 0, session_subject: session.subject, created_at: clock.now().toISOString() }
        : undefined,
    );
    if (!account) return { failure: invalidCredential('No OpenRush account is linked to this session.') };
    return { accountId: account.id, expiresAt: session.expiresAt };
  }

  async function authenticateSession(token: string): Promise<AuthResult> {
    const account = await sessionTokenAccount(token);
    if ('failure' in account) return account;
    // A Supabase token sent as bearer: signed in with Supabase, until the token's `exp` (GET /v1/me says so).
    return {
      caller: { accountId: account.accountId, credentialId: null, authSource: 'session', lastUsedAt: null, signInMethod: 'supabase', sessionExpiresAt: account.expiresAt },
    };
  }

  /** The Dashboard's session token (the cookie's value). */
  async function authenticateSessionCookie(token: string): Promise<AuthResult> {
    const session = await findLiveSession(deps, token);
    if ('refusal' in session) return { failure: invalidCredential(session.refusal) };
    return { caller: sessionCaller(session) };
  }

  /** The caller a credential sent in a header stands for, by its kind. */
  function authenticate(credential: string): Promise<AuthResult> {
    if (credential.startsWith(KEY_PREFIX)) return authenticateApiKey(credential);
    if (credential.startsWith(ACCESS_TOKEN_PREFIX)) {
      // Bound to a resource and its operations: checked where it is used (permissions.ts audienceRefusal).
      if (!deps.oauthAccessTokens) return Promise.resolve({ failure: invalidCredential('OAuth access tokens are not accepted by this server: its authorization server is turned off.') });
      return authenticateAccessToken(deps, credential);
    }
    if (looksLikeJwt(credential)) return authenticateSession(credential);
    return Promise.resolve({ failure: invalidCredential('The credential is neither an OpenRush API key (or_…), an OAuth access token (orat_…) nor a session token.') });
  }

  /**
   * One authentication attempt from a client address, counted when it fails: a blocked address gets no credential
   * looked at (a 429 problem), so guessing learns nothing. Signing in (POST /v1/sessions) goes through here too.
   */
  async function attempt(address: string, authenticateOnce: () => Promise<AuthResult>): Promise<AuthResult> {
    if (failedAddresses.has(address)) {
      const record = await failures.get(address);
      if (!record) failedAddresses.delete(address); // its failures have expired
      else if (record.consumedPoints > limit) return { failure: throttled(record.msBeforeNext) };
    }
    const result = await authenticateOnce();
    if ('caller' in result) return result;
    let failure = result.failure;
    rememberFailure(address);
    // Counting is atomic in the store: however many failures arrive at once, only the allowed number are 401s.
    await failures.consume(address).catch((refused: unknown) => {
      if (!(refused instanceof RateLimiterRes)) throw refused;
      if (refused.consumedPoints > limit + 1) failure = throttled(refused.msBeforeNext);
    });
    return { failure };
  }

  return { authenticate, authenticateSessionCookie, attempt, sessionTokenAccount };
}
