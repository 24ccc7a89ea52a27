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
import { MISSING, requireCaller } from '../auth.ts';
import type { ContractDocument, ContractOperation } from '../contract.ts';
import { unauthorized } from '../problem.ts';

type Requirement = Record<string, string[]>;
type Presented = (req: Request) => boolean;

interface SecurityScheme {
  type?: string;
  scheme?: string;
  in?: string;
  name?: string;
}

/** How a request presents each scheme the contract names; only the kinds the server's authenticator reads. */
function presenters(contract: ContractDocument, cookieSchemes: Set<string>): Map<string, Presented> {
  const schemes = (contract.components?.securitySchemes ?? {}) as Record<string, SecurityScheme>;
  const result = new Map<string, Presented>();
  for (const [name, scheme] of Object.entries(schemes)) {
    // mcpOAuth (oauth2): an access token is sent as a bearer token too.
    if ((scheme.type === 'http' && scheme.scheme?.toLowerCase() === 'bearer') || scheme.type === 'oauth2') {
      result.set(name, (req) => /^bearer\b/i.test(req.headers.authorization ?? ''));
    } else if (scheme.type === 'apiKey' && scheme.in === 'header' && scheme.name) {
      const header = scheme.name.toLowerCase();
      result.set(name, (req) => req.headers[header] !== undefined);
    } else if (scheme.type === 'apiKey' && scheme.in === 'cookie' && scheme.name) {
      // The Dashboard's session cookie (auth.ts reads it only when no credential header is sent).
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
export function withContractSecurity(contract: ContractDocument, validator: RequestHandler[]): RequestHandler[] {
  const cookieSchemes = new Set<string>();
  const presented = presenters(contract, cookieSchemes);
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
