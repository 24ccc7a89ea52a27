// Turns anything thrown on the way (our Problems, the validator's HttpErrors, body-parser's errors) into one
// problem+json answer. Nothing internal (stack, SQL, file path) reaches the client; 5xx are logged in full.
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { redactPath, redactSecrets } from '../endpoint.ts';
import { isStoreUnavailable } from '../store/index.ts';
import { NOT_UTF8, notUtf8Body } from './well-formed.ts';
import { problemFor } from './client-errors.ts';
import { notFound, Problem, unauthorized, type ValidationErrorItem, validationFailed } from '../problem.ts';

interface ValidatorError {
  status: number;
  message?: string;
  path?: string;
  errors?: Array<{ path?: string; message?: string }>;
  headers?: Record<string, string>;
}

const LOCATIONS: Record<string, ValidationErrorItem['location']> = {
  body: 'body',
  query: 'query',
  path: 'path',
  params: 'path',
  headers: 'header',
  header: 'header',
};

function validationItems(errors: ValidatorError['errors'] = []): ValidationErrorItem[] {
  return errors.slice(0, 100).map((error) => {
    const [, first = '', ...rest] = (error.path ?? '').split('/');
    const location = LOCATIONS[first];
    return {
      location: location ?? 'body',
      pointer: location ? (rest.length ? `/${rest.join('/')}` : '') : (error.path ?? ''),
      message: redactSecrets(error.message ?? 'is invalid').slice(0, 512),
    };
  });
}

function isValidatorError(error: unknown): error is ValidatorError {
  return typeof error === 'object' && error !== null && typeof (error as { status?: unknown }).status === 'number';
}

export function toProblem(error: unknown, req: Request): Problem {
  // The body stopped because Node timed the request out (client-errors.ts), whatever error reading it gave.
  if (req.ctx?.timedOut) return problemFor('ERR_HTTP_REQUEST_TIMEOUT');
  if (error instanceof Problem) return error;
  if (isStoreUnavailable(error)) {
    // Busy, full, unreachable: which one is the operator's to read in the log (5xx are logged with their cause).
    return new Problem('service_unavailable', 'The database cannot take this request right now. Try again shortly.', {
      headers: { 'Retry-After': '1' },
    });
  }
  const bodyParserType = (error as { type?: unknown } | null)?.type;
  if (bodyParserType === 'entity.too.large') {
    return new Problem('payload_too_large', `The request body is larger than ${(error as { limit: number }).limit} bytes.`);
  }
  if (bodyParserType === NOT_UTF8) return notUtf8Body();
  if (bodyParserType === 'entity.parse.failed') {
    return new Problem('malformed_json', 'The request body is not valid JSON.');
  }
  if (bodyParserType === 'encoding.unsupported' || bodyParserType === 'charset.unsupported') {
    return new Problem('unsupported_media_type', 'Send the request body as UTF-8 application/json.');
  }
  if (isValidatorError(error)) {
    // The security handler refused the caller: answer with the reason found when resolving it (401, or 429 when throttled).
    if (error.status === 401 && req.ctx.authFailure) return req.ctx.authFailure;
    switch (error.status) {
      case 400:
        return validationFailed(validationItems(error.errors));
      case 401:
        return req.ctx.authFailure ?? unauthorized('Send an API key as "Authorization: Bearer or_…" or "X-API-Key: or_…".');
      case 404:
        return notFound(`There is no ${req.method} ${redactPath(req.path).slice(0, 200)} in this API.`);
      case 405: {
        // HEAD goes wherever GET does.
        const allow = (error.headers?.Allow ?? '').split(/,\s*/).filter(Boolean);
        if (allow.includes('GET')) allow.push('HEAD');
        const method = req.ctx.head ? 'HEAD' : req.method;
        return new Problem('method_not_allowed', `${method} is not allowed on ${redactPath(req.path).slice(0, 200)}.`, {
          headers: { ...error.headers, Allow: allow.join(', ') },
        });
      }
      case 413:
        return new Problem('payload_too_large', 'The request body is too large.');
      case 415:
        return new Problem('unsupported_media_type', 'Send the request body as application/json.');
    }
  }
  return new Problem('internal_error', 'Something went wrong on our side. Quote the request_id when you contact support.');
}

export function createErrorHandler(logger: Logger) {
  return function handleError(error: unknown, req: Request, res: Response, _next: NextFunction): void {
    const problem = toProblem(error, req);
    if (problem.status >= 500) logger.error({ err: error, request_id: req.ctx.requestId }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    req.ctx.problem = problem;
    res.status(problem.status);
    if (problem.options.headers) res.set(problem.options.headers);
    res.type('application/problem+json').json(problem.body(req.ctx.requestId));
  };
}
