// The one way errors leave the server: RFC 9457 problem documents.
import type { components } from '../generated/openapi.d.ts';

export type ProblemBody = components['schemas']['Problem'];
export type ValidationErrorItem = components['schemas']['ValidationError'];

export const TITLES: Record<string, string> = {
  bad_request: 'Bad request',
  validation_failed: 'Validation failed',
  malformed_json: 'Malformed JSON',
  unauthorized: 'Unauthorized',
  payment_required: 'Payment required',
  budget_exhausted: 'Budget exhausted',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'Conflict',
  request_timeout: 'Request timeout',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  idempotency_key_reused: 'Idempotency key reused',
  too_many_requests: 'Too many requests',
  request_header_fields_too_large: 'Request header fields too large',
  internal_error: 'Internal server error',
  service_unavailable: 'Service unavailable',
};

export type ProblemType = keyof typeof TITLES;

export const PROBLEM_BASE = 'https://openrush.io/problems/';

/** Thrown by handlers and middleware; turned into a problem response by the error handler. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly problemType: ProblemType,
    readonly detail: string,
    readonly options: { errors?: ValidationErrorItem[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = 'Problem';
  }

  body(requestId: string): ProblemBody {
    return {
      type: PROBLEM_BASE + this.problemType,
      title: TITLES[this.problemType] ?? 'Error',
      status: this.status,
      detail: this.detail,
      request_id: requestId,
      ...(this.options.errors ? { errors: this.options.errors } : {}),
    };
  }
}

export const WWW_AUTHENTICATE = 'Bearer realm="openrush"';

/** No credential was presented: the plain challenge (RFC 6750 §3.1 says no error code then). */
export function unauthorized(detail: string): Problem {
  return new Problem(401, 'unauthorized', detail, { headers: { 'WWW-Authenticate': WWW_AUTHENTICATE } });
}

/** An auth-param value may hold printable ASCII but no '"' or '\\' (RFC 6750 §3). */
function challengeText(text: string): string {
  return text.replace(/…/g, '...').replace(/["\\]/g, "'").replace(/[^\x20-\x7E]/g, '').slice(0, 200);
}

/**
 * A credential was presented and refused (unknown, malformed, revoked, expired…): `error="invalid_token"`, or
 * `error="invalid_request"` when the headers carrying it are themselves unusable (RFC 6750 §3.1).
 */
export function invalidCredential(detail: string, error: 'invalid_token' | 'invalid_request' = 'invalid_token'): Problem {
  return new Problem(401, 'unauthorized', detail, {
    headers: { 'WWW-Authenticate': `${WWW_AUTHENTICATE}, error="${error}", error_description="${challengeText(detail)}"` },
  });
}

export function notFound(detail: string): Problem {
  return new Problem(404, 'not_found', detail);
}

export function validationFailed(errors: ValidationErrorItem[], detail = 'The request does not match the contract.'): Problem {
  return new Problem(400, 'validation_failed', detail, { errors });
}
