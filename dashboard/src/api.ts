// The Dashboard's one way to the API: @openrush/client (openapi-fetch over the contract's types), as any consumer
// installs it, wrapped by openapi-react-query (openapi-fetch's own TanStack Query binding). The page sends no
// credential of its own: the browser adds the HttpOnly session cookie to these same-origin requests, so no page
// script ever holds a key or a session token.
import { createOpenRushClient, type components } from '@openrush/client';
import { MutationCache, QueryCache, QueryClient } from '@tanstack/react-query';
import createQueryHooks from 'openapi-react-query';
import { signInPath } from './return-to.ts';
import { navigate, SIGN_IN_PATH } from './router.tsx';

export type Problem = components['schemas']['Problem'];
export type ApiKey = components['schemas']['ApiKey'];
export type ApiKeyWithSecret = components['schemas']['ApiKeyWithSecret'];
export type ApiKeyCreate = components['schemas']['ApiKeyCreate'];

export const openrush = createOpenRushClient({
  baseUrl: window.location.origin,
  // The client already retries what is safe to retry (GETs on a network error, 429 or 503, honouring
  // Retry-After); once is enough for a person waiting on a page.
  retries: 1,
  timeoutMs: 30_000,
  // A Retry-After longer than this is not waited out: the page shows the 429 or 503 and its detail at once.
  maxRetryDelayMs: 5_000,
});

export const $api = createQueryHooks(openrush);

/** What went wrong, as a person should read it: the API's problem document, or a network failure in its words. */
export interface ShownProblem {
  status: number | undefined;
  title: string;
  detail: string;
  requestId: string | undefined;
}

function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && typeof (value as Problem).detail === 'string' && typeof (value as Problem).status === 'number';
}

export function toProblem(error: unknown): ShownProblem {
  if (isProblem(error)) return { status: error.status, title: error.title, detail: error.detail, requestId: error.request_id };
  if (error instanceof Error) {
    return { status: undefined, title: 'The server could not be reached', detail: error.message, requestId: undefined };
  }
  return { status: undefined, title: 'Unexpected answer', detail: typeof error === 'string' ? error.slice(0, 300) : 'The server answered something this page cannot read.', requestId: undefined };
}

/**
 * A 401 means there is no session (never signed in, expired, signed out elsewhere): the person signs in, and
 * comes back to this page afterwards (the consent page above all).
 */
function onApiError(error: unknown): void {
  if (isProblem(error) && error.status === 401 && window.location.pathname !== SIGN_IN_PATH) {
    navigate(signInPath(window.location.pathname + window.location.search, 'expired'), { replace: true });
  }
}

export function createQueryClient(): QueryClient {
  return new QueryClient({
    queryCache: new QueryCache({ onError: onApiError }),
    mutationCache: new MutationCache({ onError: onApiError }),
    defaultOptions: {
      // The client retries; a second layer of retries would only make a refusal slower to show.
      queries: { retry: false, refetchOnWindowFocus: false, staleTime: 10_000 },
      mutations: { retry: false },
    },
  });
}
