// What the server knows about one request, as it travels through the middleware.
import type { Problem } from './problem.ts';
import type { CredentialRow } from './store/types.ts';

export interface Caller {
  accountId: string;
  /** The API credential used, or null for a Dashboard session. */
  credentialId: string | null;
  authSource: 'api_key' | 'session';
  /** The credential's last_used_at when the request arrived (null if never used or a session). */
  lastUsedAt: string | null;
  /** The key's row as it was when the request arrived: its permissions and constraints. Absent for a session. */
  key?: CredentialRow;
  /** For a Dashboard session cookie: how the person signed in. */
  signInMethod?: 'sign_in_link' | 'supabase';
  /** For a Dashboard session cookie: when the session ends (ISO). */
  sessionExpiresAt?: string;
  /**
   * For an OAuth access token (`orat_…`, server/oauth/grants.ts): the client it was issued to, the granted scopes
   * and the resource it is bound to. The caller is then the grant's API key (authSource 'api_key', key, credentialId).
   */
  oauth?: { clientId: string; scopes: string[]; resource: string };
}

/** Who acted, for created_by_id / updated_by_id: the key used, or the account for a session. */
export function principalOf(caller: Caller): string {
  return caller.credentialId ?? caller.accountId;
}

/** The project a single-project key is confined to, or undefined for keys of all projects and sessions. */
export function projectScopeOf(caller: Caller): string | undefined {
  return caller.key?.project_id ?? undefined;
}

export interface RequestContext {
  requestId: string;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** Set when valid credentials were presented. */
  caller?: Caller;
  /** Set when credentials were presented and refused: the 401 to give if the route needs them. */
  authFailure?: Problem;
  /** The Dashboard's session cookie was the credential looked at (no credential header was sent). */
  sessionCookie?: boolean;
  /** The problem the response carries, if it is an error. */
  problem?: Problem;
  /** Size of the request body as received. */
  requestBytes: number;
  /** Node cut the request off (headers or request timeout) and answered 408 on the socket: it is recorded as such. */
  timedOut?: boolean;
  /** The request arrived as HEAD; it is handled as the GET it mirrors. */
  head?: boolean;
  /** The usage record was already written (with a charge) by the handler. */
  usageRecorded: boolean;
  /** The metered tool the request calls, for its usage record. */
  tool?: string;
  /** Bytes a streamed answer (the CSV export) wrote before its end, for its usage record. */
  streamedBytes?: number;
}

declare module 'express-serve-static-core' {
  interface Request {
    ctx: RequestContext;
  }
}
