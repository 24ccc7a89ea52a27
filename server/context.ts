// What the server knows about one request, as it travels through the middleware.
import type { Problem } from './problem.ts';

export interface Caller {
  accountId: string;
  /** The API credential used, or null for a Dashboard session. */
  credentialId: string | null;
  authSource: 'api_key' | 'session';
  /** The credential's last_used_at when the request arrived (null if never used or a session). */
  lastUsedAt: string | null;
}

export interface RequestContext {
  requestId: string;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** Set when valid credentials were presented. */
  caller?: Caller;
  /** Set when credentials were presented and refused: the 401 to give if the route needs them. */
  authFailure?: Problem;
  /** The problem the response carries, if it is an error. */
  problem?: Problem;
  /** Size of the request body as received. */
  requestBytes: number;
  /** The usage record was already written (with a charge) by the handler. */
  usageRecorded: boolean;
}

declare module 'express-serve-static-core' {
  interface Request {
    ctx: RequestContext;
  }
}
