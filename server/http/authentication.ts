// HTTP glue for resolving the caller (the rules are in server/callers.ts): the credential is read from
// `Authorization: Bearer …` or `X-API-Key: …`, or else from the Dashboard's session cookie, and the caller (or the
// refusal to answer if the operation needs one) is put on req.ctx. The contract's security step
// (contract-security.ts) then insists on a caller where the operation needs one.
import type { NextFunction, Request, Response } from 'express';
import type { AuthResult, Callers } from '../callers.ts';
import { invalidCredential, Problem, unauthorized } from '../problem.ts';
import type { SessionCookie } from './session-cookie.ts';

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;
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

/** Middleware that runs on every request: resolves the caller from what it presents, if anything. */
export function createCallerResolver(callers: Callers, sessionCookie: SessionCookie) {
  /** Runs on every request that presents credentials; the contract's security step decides whether they were needed. */
  return async function resolveCaller(req: Request, res: Response, next: NextFunction): Promise<void> {
    const credential = presentedCredential(req);
    const address = req.ip ?? 'unknown';
    let result: AuthResult;
    if (credential !== undefined) {
      result = await callers.attempt(address, () => (typeof credential === 'string' ? callers.authenticate(credential) : Promise.resolve({ failure: credential })));
    } else {
      // A credential in a header wins; the session cookie is read only without one.
      const token = sessionCookie.read(req);
      if (token === undefined) return next();
      req.ctx.sessionCookie = true;
      // A possible forgery is not an authentication attempt: refused (403 where a credential is needed), not counted.
      const forgery = sessionCookie.forgery(req);
      if (forgery) {
        req.ctx.authFailure = new Problem('forbidden', forgery);
        return next();
      }
      result = await callers.attempt(address, () => callers.authenticateSessionCookie(token));
      // The browser forgets a cookie that no longer works, so it stops sending it.
      if ('failure' in result && result.failure.status === 401) res.append('Set-Cookie', sessionCookie.clear(req));
    }
    if ('caller' in result) req.ctx.caller = result.caller;
    else req.ctx.authFailure = result.failure;
    next();
  };
}

/** The contract's security step: the caller was resolved earlier, here we only insist on one. */
export function requireCaller(req: Request): true {
  if (req.ctx.caller) return true;
  // The validator only passes on statuses it knows (a 429 would become a 500), so it is always told 401 and the
  // error handler answers with the real reason kept in req.ctx.authFailure (401, or 429 when throttled).
  req.ctx.authFailure ??= unauthorized(MISSING);
  throw Object.assign(new Error(req.ctx.authFailure.detail), { status: 401 });
}
