// OAuth's own error format (RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707): `{ error, error_description }`,
// answered by the operations the contract marks `x-openrush-error-format: oauth` (/oauth/register, /oauth/authorize,
// /oauth/token, /oauth/revoke). There, whatever else refuses the request on the way (the validator, the body
// parser) is `invalid_request` too; 404, 429, 500 and 503 stay problem documents, as the contract lists them.
import type { NextFunction, Request, Response } from 'express';
import { loadContract } from '../contract.ts';
import type { components } from '../../generated/openapi.d.ts';
import { redactSecrets } from '../endpoint.ts';
import { toProblem } from '../http/errors.ts';

export type OAuthErrorBody = components['schemas']['OAuthError'];
export type OAuthErrorCode = OAuthErrorBody['error'];

/** Thrown by the OAuth flows; rendered as `{ error, error_description }` with `status` (400, or 401 for invalid_client). */
export class OAuthError extends Error {
  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    readonly status = 400,
  ) {
    super(description);
    this.name = 'OAuthError';
  }

  body(): OAuthErrorBody {
    return { error: this.code, error_description: this.description.slice(0, 1024) };
  }
}

/** The extension that marks an operation whose errors are OAuth errors. */
export const ERROR_FORMAT = 'x-openrush-error-format';

let oauthOperations: Set<string> | undefined;
/** `METHOD path` of every operation marked `x-openrush-error-format: oauth` (none of them has path parameters). */
function oauthOperationKeys(): Set<string> {
  oauthOperations ??= new Set(
    Object.entries(loadContract().paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, operation]) => (operation as Record<string, unknown>)[ERROR_FORMAT] === 'oauth')
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    ),
  );
  return oauthOperations;
}

/**
 * True when the request's operation answers OAuth errors: the one the validator matched, or, for a request refused
 * before it was matched (a form body that is not UTF-8, or malformed), the operation at its method and path.
 */
export function answersOAuthErrors(req: Request): boolean {
  const operation = (req as Request & { openapi?: { schema?: Record<string, unknown> } }).openapi?.schema;
  if (operation) return operation[ERROR_FORMAT] === 'oauth';
  return oauthOperationKeys().has(`${req.method} ${req.path}`);
}

/** Problem statuses that stay problem documents on OAuth operations (the contract lists them so). */
const PROBLEM_STATUSES = new Set([404, 429]);

/** The OAuth error this error is on an OAuth operation, or undefined when it stays a problem document. */
export function asOAuthError(error: unknown, req: Request): OAuthError | undefined {
  if (error instanceof OAuthError) return error;
  const problem = toProblem(error, req);
  if (problem.status >= 500 || PROBLEM_STATUSES.has(problem.status)) return undefined;
  // A parameter of the wrong shape, an unknown body field, a body that is not form-encoded, too large…
  const first = problem.options.errors?.[0];
  const where = first ? ` (${first.location}${first.pointer ? ` ${first.pointer}` : ''}: ${first.message})` : '';
  return new OAuthError('invalid_request', redactSecrets(`${problem.detail}${where}`));
}

export function sendOAuthError(res: Response, error: OAuthError): void {
  res.status(error.status);
  res.set('Cache-Control', 'no-store');
  res.set('Pragma', 'no-cache');
  res.type('application/json').json(error.body());
}

/** Error middleware, before the problem+json handler: OAuth operations answer OAuth errors. */
export function oauthErrors() {
  return function answerOAuthErrors(error: unknown, req: Request, res: Response, next: NextFunction): void {
    if (!answersOAuthErrors(req) || res.headersSent) return next(error);
    const oauthError = asOAuthError(error, req);
    if (!oauthError) return next(error);
    sendOAuthError(res, oauthError);
  };
}
