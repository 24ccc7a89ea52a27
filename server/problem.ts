// The one way errors leave the server: RFC 9457 problem documents.
import type { components, ProblemTypes } from '../generated/openapi.d.ts';
import { loadContract } from './contract.ts';

export type ProblemBody = components['schemas']['Problem'];
export type ValidationErrorItem = components['schemas']['ValidationError'];

/** A problem type's name: one of the contract's `x-openrush-problem-types` (generated/openapi.d.ts lists them). */
export type ProblemType = keyof ProblemTypes;

export interface ProblemTypeEntry {
  status: number;
  title: string;
}

let catalogue: ReadonlyMap<ProblemType, ProblemTypeEntry> | undefined;

/**
 * The one catalogue of problem types, read from the contract's `x-openrush-problem-types` (on first use, so a CLI
 * command that answers no problem does not read it): a problem's status and title follow from its type, here and
 * nowhere else (the contract's table and `ProblemTypes` are rendered from the same list by `npm run generate`).
 */
export function problemCatalogue(): ReadonlyMap<ProblemType, ProblemTypeEntry> {
  catalogue ??= new Map(
    (loadContract().components?.['schemas']?.['Problem'] as { 'x-openrush-problem-types': Array<ProblemTypeEntry & { type: ProblemType }> })[
      'x-openrush-problem-types'
    ].map(({ type, status, title }) => [type, { status, title }]),
  );
  return catalogue;
}

export function problemTypeEntry(type: ProblemType): ProblemTypeEntry {
  const entry = problemCatalogue().get(type);
  // Only a bundle older than the generated types gets here: `ProblemType` is read from the same list.
  if (!entry) throw new Error(`Problem type ${type} is not in the contract's x-openrush-problem-types`);
  return entry;
}

export const PROBLEM_BASE = 'https://openrush.io/problems/';

export interface ProblemOptions {
  errors?: ValidationErrorItem[];
  headers?: Record<string, string>;
}

/**
 * Thrown by handlers and middleware; turned into a problem response by the error handler. Its status is its
 * type's (see problemCatalogue): make one with `problem(type, detail)` or `new Problem(type, detail)`.
 */
export class Problem extends Error {
  readonly status: number;
  readonly problemType: ProblemType;
  readonly detail: string;
  readonly options: ProblemOptions;

  constructor(problemType: ProblemType, detail: string, options?: ProblemOptions);
  /**
   * @deprecated The status follows from the type: write `new Problem(type, detail, options)`. A status given here is
   * ignored (the catalogue's is used).
   */
  constructor(status: number, problemType: ProblemType, detail: string, options?: ProblemOptions);
  constructor(...args: [ProblemType, string, ProblemOptions?] | [number, ProblemType, string, ProblemOptions?]) {
    const [problemType, detail, options = {}] = (typeof args[0] === 'number' ? args.slice(1) : args) as [ProblemType, string, ProblemOptions?];
    super(detail);
    this.name = 'Problem';
    this.problemType = problemType;
    this.status = problemTypeEntry(problemType).status;
    this.detail = detail;
    this.options = options;
  }

  body(requestId: string): ProblemBody {
    return {
      type: PROBLEM_BASE + this.problemType,
      title: problemTypeEntry(this.problemType).title,
      status: this.status,
      detail: this.detail,
      request_id: requestId,
      ...(this.options.errors ? { errors: this.options.errors } : {}),
    };
  }
}

/** A problem of `type`, with the status and title the catalogue gives it. */
export function problem(type: ProblemType, detail: string, options?: ProblemOptions): Problem {
  return new Problem(type, detail, options);
}

export const WWW_AUTHENTICATE = 'Bearer realm="openrush"';

/** No credential was presented: the plain challenge (RFC 6750 §3.1 says no error code then). */
export function unauthorized(detail: string): Problem {
  return new Problem('unauthorized', detail, { headers: { 'WWW-Authenticate': WWW_AUTHENTICATE } });
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
  return new Problem('unauthorized', detail, {
    headers: { 'WWW-Authenticate': `${WWW_AUTHENTICATE}, error="${error}", error_description="${challengeText(detail)}"` },
  });
}

export function notFound(detail: string): Problem {
  return new Problem('not_found', detail);
}

export function validationFailed(errors: ValidationErrorItem[], detail = 'The request does not match the contract.'): Problem {
  return new Problem('validation_failed', detail, { errors });
}
