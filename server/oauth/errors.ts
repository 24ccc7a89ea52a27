// OAuth's own error format (RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707): `{ error, error_description }`,
// answered by the operations the contract marks `x-openrush-error-format: oauth` (/oauth/register, /oauth/authorize,
// /oauth/token, /oauth/revoke). There, whatever else refuses the request on the way (the validator, the body
// parser) is `invalid_request` too; 404, 429, 500 and 503 stay problem documents, as the contract lists them.
import type { NextFunction, Request, Response } from 'express';
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

/** True when the operation the validator matched answers OAuth errors. */
export function answersOAuthErrors(req: Request): boolean {
  const operation = (req as Request & { openapi?: { schema?: Record<string, unknown> } }).openapi?.schema;
  return operation?.[ERROR_FORMAT] === 'oauth';
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
