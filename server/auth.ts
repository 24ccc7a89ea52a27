// Resolving the caller from `Authorization: Bearer …` or `X-API-Key: …`.
import type { NextFunction, Request, Response } from 'express';
import type { Clock } from './clock.ts';
import type { Caller } from './context.ts';
import { hashKey, isWellFormedKey, KEY_PREFIX } from './keys.ts';
import { type Problem, unauthorized } from './problem.ts';
import type { Store } from './store/types.ts';

export type AuthResult = { caller: Caller } | { failure: Problem };

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;
const MISSING = 'Send an API key as "Authorization: Bearer or_…" or "X-API-Key: or_…".';

/** The credential presented, if any; a Problem when the headers themselves are unusable. */
function presentedCredential(req: Request): string | Problem | undefined {
  const authorization = req.headers.authorization;
  const apiKeyHeader = req.headers['x-api-key'];
  let bearer: string | undefined;
  if (authorization !== undefined) {
    const match = BEARER.exec(authorization);
    if (!match) return unauthorized('The Authorization header must be "Bearer <credential>".');
    bearer = match[1];
  }
  const apiKey = typeof apiKeyHeader === 'string' ? apiKeyHeader.trim() : undefined;
  if (bearer !== undefined && apiKey !== undefined && bearer !== apiKey) {
    return unauthorized('Authorization and X-API-Key carry different credentials: send only one.');
  }
  return bearer ?? apiKey;
}

export function createAuthenticator(deps: { store: Store; clock: Clock }) {
  async function authenticateApiKey(key: string): Promise<AuthResult> {
    // The checksum catches typos and truncation before the database is asked.
    if (!isWellFormedKey(key)) return { failure: unauthorized('The API key is malformed: check that it was copied whole.') };
    const credential = await deps.store.findCredentialByHash(hashKey(key));
    if (!credential) return { failure: unauthorized('The API key is not valid.') };
    if (credential.revoked_at !== null) return { failure: unauthorized('The API key was revoked.') };
    if (credential.expires_at !== null && Date.parse(credential.expires_at) <= deps.clock.now().getTime()) {
      return { failure: unauthorized('The API key has expired.') };
    }
    return {
      caller: {
        accountId: credential.account_id,
        credentialId: credential.id,
        authSource: 'api_key',
        lastUsedAt: credential.last_used_at,
      },
    };
  }

  /** Runs on every request that presents credentials; the contract's security handlers decide whether they were needed. */
  return async function resolveCaller(req: Request, _res: Response, next: NextFunction): Promise<void> {
    const credential = presentedCredential(req);
    if (credential === undefined) return next();
    if (typeof credential !== 'string') {
      req.ctx.authFailure = credential;
      return next();
    }
    if (!credential.startsWith(KEY_PREFIX)) {
      req.ctx.authFailure = unauthorized('The credential is not an OpenRush API key (they start with "or_").');
      return next();
    }
    const result = await authenticateApiKey(credential);
    if ('caller' in result) req.ctx.caller = result.caller;
    else req.ctx.authFailure = result.failure;
    next();
  };
}

/** express-openapi-validator security handler: the caller was resolved earlier, here we only insist on one. */
export function requireCaller(req: Request): true {
  if (req.ctx.caller) return true;
  throw req.ctx.authFailure ?? unauthorized(MISSING);
}
