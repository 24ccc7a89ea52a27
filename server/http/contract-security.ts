// The contract's security requirements, enforced in place of express-openapi-validator's own security middleware.
//
// Why: the validator evaluates every alternative of an operation's `security` on every request, and each
// alternative that does not apply builds and throws an Error (with its stack trace) before it is discarded: a
// Bearer request pays for the failed apiKeyAuth alternative, an X-API-Key request for the failed bearerAuth one.
// Here the same rule — at least one alternative whose schemes the request presents, and a resolved caller — is a
// few property reads. It runs right after the validator has matched the operation and before the request is
// validated (where the validator's own security step ran), so an unauthenticated request is still a 401 whatever
// its body. Refusals go through requireCaller, exactly as the validator's security handlers did.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { MISSING, requireCaller } from './authentication.ts';
import type { ContractDocument, ContractOperation } from '../contract.ts';
import { audienceRefusal } from '../permissions.ts';
import { invalidCredential, unauthorized } from '../problem.ts';

type Requirement = Record<string, string[]>;
type Presented = (req: Request) => boolean;

interface SecurityScheme {
  type?: string;
  scheme?: string;
  in?: string;
  name?: string;
}

/** How a request presents each scheme the contract names; only the kinds the server's authenticator reads. */
function presenters(contract: ContractDocument, cookieSchemes: Set<string>, oauthSchemes: Set<string>): Map<string, Presented> {
  const schemes = (contract.components?.securitySchemes ?? {}) as Record<string, SecurityScheme>;
  const result = new Map<string, Presented>();
  for (const [name, scheme] of Object.entries(schemes)) {
    if ((scheme.type === 'http' && scheme.scheme?.toLowerCase() === 'bearer') || scheme.type === 'oauth2') {
      // An OAuth access token travels as a bearer token too (RFC 6750 §2.1: the server reads no other way).
      result.set(name, (req) => /^bearer\b/i.test(req.headers.authorization ?? ''));
      if (scheme.type === 'oauth2') oauthSchemes.add(name);
    } else if (scheme.type === 'apiKey' && scheme.in === 'header' && scheme.name) {
      const header = scheme.name.toLowerCase();
      result.set(name, (req) => req.headers[header] !== undefined);
    } else if (scheme.type === 'apiKey' && scheme.in === 'cookie' && scheme.name) {
      // The Dashboard's session cookie (authentication.ts reads it only when no credential header is sent).
      result.set(name, (req) => req.ctx.sessionCookie === true);
      cookieSchemes.add(name);
    } else {
      throw new Error(`security scheme ${name} (${scheme.type}) is not one the server can check: see server/contract-security.ts`);
    }
  }
  return result;
}

/**
 * Wraps the validator's middleware list: the security step is inserted right after its metadata step (which
 * matches the operation); pass the validator `validateSecurity: false`.
 */
export function withContractSecurity(
  contract: ContractDocument,
  validator: RequestHandler[],
  /** The URI of the OAuth protected resource an operation listing an oauth2 scheme is, as this request names it. */
  resourceOf: (req: Request) => string | undefined,
): RequestHandler[] {
  const cookieSchemes = new Set<string>();
  const oauthSchemes = new Set<string>();
  const presented = presenters(contract, cookieSchemes, oauthSchemes);
  const global = (contract.security as Requirement[] | undefined) ?? [];
  for (const operations of Object.values(contract.paths)) {
    for (const operation of Object.values(operations)) {
      for (const requirement of (operation as ContractOperation).security ?? []) {
        for (const name of Object.keys(requirement)) if (!presented.has(name)) throw new Error(`security scheme ${name} is not defined`);
      }
    }
  }
  function requireSecurity(req: Request, _res: Response, next: NextFunction): void {
    const operation = (req as Request & { openapi?: { schema?: ContractOperation } }).openapi?.schema;
    if (!operation) return next();
    const requirements = operation.security ?? global;
    if (requirements.length === 0) return next();
    // An empty requirement ({}) is anonymous access.
    if (requirements.some((requirement) => Object.keys(requirement).length === 0)) return next();
    // The session cookie counts only where the operation lists its scheme (never on /mcp): elsewhere the request is
    // as if it had sent no credential, and is not recorded as the session's.
    if (req.ctx.sessionCookie && !requirements.some((requirement) => Object.keys(requirement).some((name) => cookieSchemes.has(name)))) {
      req.ctx.caller = undefined;
      if (req.ctx.authFailure?.status !== 429) req.ctx.authFailure = unauthorized(`The Dashboard's session cookie is not accepted here. ${MISSING}`);
    }
    // A credential is accepted only where it was issued for (RFC 8707): an OAuth access token on an operation that
    // lists the OAuth scheme and bound to its resource, a Supabase session token never there. Refused as invalid_token.
    const caller = req.ctx.caller;
    if (caller) {
      const acceptsOAuth = requirements.some((requirement) => Object.keys(requirement).some((name) => oauthSchemes.has(name)));
      const refused = audienceRefusal(caller, { acceptsOAuth, resource: acceptsOAuth ? resourceOf(req) : undefined });
      if (refused) {
        req.ctx.caller = undefined;
        req.ctx.authFailure = invalidCredential(refused);
      }
    }
    try {
      requireCaller(req);
      // A caller is only resolved from the headers these schemes name, so this holds unless the contract asks for
      // a combination the request did not send.
      if (!requirements.some((requirement) => Object.keys(requirement).every((name) => presented.get(name)!(req)))) {
        req.ctx.authFailure = unauthorized('This operation needs another kind of credential than the one sent.');
        throw Object.assign(new Error(req.ctx.authFailure.detail), { status: 401 });
      }
      next();
    } catch (error) {
      next(error);
    }
  }
  const metadata = validator.findIndex((middleware) => middleware.name === 'metadataMiddleware');
  if (metadata < 0) throw new Error('express-openapi-validator no longer has a metadataMiddleware: see server/contract-security.ts');
  return [...validator.slice(0, metadata + 1), requireSecurity, ...validator.slice(metadata + 1)];
}
