// Resolving the caller from `Authorization: Bearer …` or `X-API-Key: …` (an API key, or a Dashboard session
// token), or else from the Dashboard's session cookie (server/dashboard-sessions.ts). Failed attempts are counted
// per client address; past the limit, that address is answered 429 for a while without any credential being looked
// at, so guessing gets nowhere. Valid callers are never counted.
import type { NextFunction, Request, Response } from 'express';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { Clock } from './clock.ts';
import { isExpired } from './credentials.ts';
import type { Caller } from './context.ts';
import { findLiveSession, sessionCaller } from './dashboard-sessions.ts';
import type { SessionCookie } from './http/session-cookie.ts';
import type { IdGenerator } from './ids.ts';
import { hashKey, isWellFormedKey, KEY_PREFIX } from './keys.ts';
import { invalidCredential, Problem, unauthorized } from './problem.ts';
import { createSessionVerifier, isSessionConfigured, looksLikeJwt, type SessionConfig } from './sessions.ts';
import type { Store } from './store/types.ts';

export type AuthResult = { caller: Caller } | { failure: Problem };

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;
/** How many recently failing client addresses an instance remembers (oldest forgotten first). */
const FAILED_ADDRESSES_REMEMBERED = 10_000;
export const MISSING = 'Send an API key as "Authorization: Bearer or_…" or "X-API-Key: or_…".';

/** The credential presented, if any; a Problem when the headers themselves are unusable. */
function presentedCredential(req: Request): string | Problem | undefined {
  const authorization = req.headers.authorization;
  const apiKeyHeader = req.headers['x-api-key'];
  let bearer: string | undefined;
  if (authorization !== undefined) {
    const match = BEARER.exec(authorization);
    if (!match) return invalidCredential('The Authorization header must be "Bearer <credential>".', 'invalid_request');
    bearer = match[1];
  }
  const apiKey = typeof apiKeyHeader === 'string' ? apiKeyHeader.trim() : undefined;
  if (bearer !== undefined && apiKey !== undefined && bearer !== apiKey) {
    return invalidCredential('Authorization and X-API-Key carry different credentials: send only one.', 'invalid_request');
  }
  return bearer ?? apiKey;
}

export interface AuthenticatorDeps {
  store: Store;
  clock: Clock;
  ids: IdGenerator;
  session: SessionConfig;
  authFailuresPerMinute: number;
  /** The Dashboard's session cookie, read when no credential header is sent. */
  sessionCookie: SessionCookie;
}

export type Authenticator = ReturnType<typeof createAuthenticator>;

export function createAuthenticator(deps: AuthenticatorDeps) {
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
    const now = clock.now();
    if (credential.revoked_at !== null) return { failure: invalidCredential('The API key was revoked.') };
    if (isExpired(credential, now)) return { failure: invalidCredential('The API key has expired.') };
    if (credential.disabled_at !== null) return { failure: invalidCredential('The API key is disabled.') };
    if (
      credential.key_hash !== hash &&
      (credential.previous_key_expires_at === null || Date.parse(credential.previous_key_expires_at) <= now.getTime())
    ) {
      return { failure: invalidCredential('The API key was rotated and its grace period is over.') };
    }
    return {
      caller: {
        accountId: credential.account_id,
        credentialId: credential.id,
        authSource: 'api_key',
        lastUsedAt: credential.last_used_at,
        key: credential,
      },
    };
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

  async function authenticateSessionCookie(token: string): Promise<AuthResult> {
    const session = await findLiveSession(deps, token);
    if ('refusal' in session) return { failure: invalidCredential(session.refusal) };
    return { caller: sessionCaller(session) };
  }

  function authenticate(credential: string): Promise<AuthResult> {
    if (credential.startsWith(KEY_PREFIX)) return authenticateApiKey(credential);
    if (looksLikeJwt(credential)) return authenticateSession(credential);
    return Promise.resolve({ failure: invalidCredential('The credential is neither an OpenRush API key (or_…) nor a session token.') });
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

  /** Runs on every request that presents credentials; the contract's security handlers decide whether they were needed. */
  async function resolveCaller(req: Request, res: Response, next: NextFunction): Promise<void> {
    const credential = presentedCredential(req);
    const address = req.ip ?? 'unknown';
    let result: AuthResult;
    if (credential !== undefined) {
      result = await attempt(address, () => (typeof credential === 'string' ? authenticate(credential) : Promise.resolve({ failure: credential })));
    } else {
      // A credential in a header wins; the session cookie is read only without one.
      const token = deps.sessionCookie.read(req);
      if (token === undefined) return next();
      req.ctx.sessionCookie = true;
      // A possible forgery is not an authentication attempt: refused (403 where a credential is needed), not counted.
      const forgery = deps.sessionCookie.forgery(req);
      if (forgery) {
        req.ctx.authFailure = new Problem('forbidden', forgery);
        return next();
      }
      result = await attempt(address, () => authenticateSessionCookie(token));
      // The browser forgets a cookie that no longer works, so it stops sending it.
      if ('failure' in result && result.failure.status === 401) res.append('Set-Cookie', deps.sessionCookie.clear(req));
    }
    if ('caller' in result) req.ctx.caller = result.caller;
    else req.ctx.authFailure = result.failure;
    next();
  }

  return { resolveCaller, attempt, sessionTokenAccount };
}

/** express-openapi-validator security handler: the caller was resolved earlier, here we only insist on one. */
export function requireCaller(req: Request): true {
  if (req.ctx.caller) return true;
  // The validator only passes on statuses it knows (a 429 would become a 500), so it is always told 401 and the
  // error handler answers with the real reason kept in req.ctx.authFailure (401, or 429 when throttled).
  req.ctx.authFailure ??= unauthorized(MISSING);
  throw Object.assign(new Error(req.ctx.authFailure.detail), { status: 401 });
}
