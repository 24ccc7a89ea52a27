// OpenRushError: a request the API refused, as an exception carrying the problem document (RFC 9457).
// The calling convention stays openapi-fetch's `{ data, error, response }`; `unwrap()` turns it into data-or-throw.
import type { components } from '../generated/openapi.d.ts';

export type Problem = components['schemas']['Problem'];

/** A request the API answered with an error: the problem's fields, the HTTP status and the request id. */
export class OpenRushError extends Error {
  /** The HTTP status of the answer. */
  readonly status: number;
  /** The problem type, e.g. `https://openrush.io/problems/insufficient_credits` (absent when the body was not a problem). */
  readonly type: string | undefined;
  readonly title: string | undefined;
  readonly detail: string | undefined;
  /** For validation errors: each problem found in the request (JSON pointer and message). */
  readonly errors: Problem['errors'];
  /** The id to quote to the API's operators: the problem's `request_id`, else the `X-Request-Id` header. */
  readonly requestId: string | undefined;
  /** The whole problem document, as the API sent it. */
  readonly problem: Problem | undefined;
  /** The HTTP response (its body already read). */
  readonly response: Response | undefined;

  constructor(status: number, problem: Problem | undefined, response?: Response) {
    const requestId = problem?.request_id ?? response?.headers.get('x-request-id') ?? undefined;
    const what = problem ? `${status} ${problem.title}: ${problem.detail}` : `HTTP ${status}`;
    super(requestId ? `${what} (request ${requestId})` : what);
    this.name = 'OpenRushError';
    this.status = status;
    this.type = problem?.type;
    this.title = problem?.title;
    this.detail = problem?.detail;
    this.errors = problem?.errors;
    this.requestId = requestId;
    this.problem = problem;
    this.response = response;
  }

  /** The error for an openapi-fetch result whose `error` is set. */
  static from(result: { error?: unknown; response: Response }): OpenRushError {
    return new OpenRushError(result.response.status, asProblem(result.error), result.response);
  }
}

function asProblem(body: unknown): Problem | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { title, status } = body as Partial<Problem>;
  return typeof title === 'string' && typeof status === 'number' ? (body as Problem) : undefined;
}

/**
 * The data of a successful call, or an `OpenRushError` thrown for an error answer:
 *   const { balance } = await unwrap(openrush.GET('/v1/me/credits'));
 */
export async function unwrap<Result extends { data?: unknown; error?: unknown; response: Response }>(
  call: Result | Promise<Result>,
): Promise<Exclude<Result['data'], undefined>> {
  const result = await call;
  if (!result.response.ok) throw OpenRushError.from(result);
  return result.data as Exclude<Result['data'], undefined>;
}
