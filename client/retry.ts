// Retries and timeouts, as a fetch wrapper under openapi-fetch: every attempt is a real request of its own.
//   - retried: network errors, attempts that time out, 429 and 503 answers;
//   - only when a retry cannot do a thing twice: GET/HEAD/OPTIONS, and POSTs that carry an Idempotency-Key;
//   - the wait: the server's Retry-After when it sends one, else exponential backoff with jitter; a server that asks
//     for a longer wait than the caller allows gets its answer returned instead;
//   - never after the caller's own AbortSignal fired.

export interface RetryEvent {
  /** 1 for the first retry. */
  attempt: number;
  /** How long the client waits before sending it again, in ms. */
  delayMs: number;
  /** The status that caused the retry (429 or 503), when the server answered. */
  status?: number;
  /** The network error or timeout that caused the retry, when it did not. */
  error?: unknown;
  request: Request;
}

export interface RetryPolicy {
  retries: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  timeoutMs: number;
  onRetry: ((event: RetryEvent) => void) | undefined;
}

type Fetch = (input: Request) => Promise<Response>;

const requestOf = new WeakMap<Response, Request>();

const RETRIED_STATUSES = new Set([429, 503]);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** An attempt that got no answer within the client's `timeoutMs`. */
export class OpenRushTimeoutError extends Error {
  constructor(
    readonly request: Request,
    readonly timeoutMs: number,
    options?: { cause: unknown },
  ) {
    super(`${request.method} ${request.url} got no answer within ${timeoutMs} ms`, options);
    this.name = 'OpenRushTimeoutError';
  }
}

function safeToRetry(request: Request): boolean {
  return SAFE_METHODS.has(request.method) || (request.method === 'POST' && request.headers.has('idempotency-key'));
}

/** Retry-After as delay-seconds or an HTTP date, in ms from now. */
function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function backoffMs(policy: RetryPolicy, retry: number): number {
  const ceiling = Math.min(policy.maxRetryDelayMs, policy.retryDelayMs * 2 ** retry);
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function retryingFetch(send: Fetch, policy: RetryPolicy): Fetch {
  const inFlight = new Set<Request>();
  return async function fetchWithRetries(request: Request): Promise<Response> {
    const retryable = policy.retries > 0 && safeToRetry(request);
    for (let retry = 0; ; retry++) {
      const mayRetry = retryable && retry < policy.retries;
      // A clone keeps the body readable for the next attempt.
      const attempt = mayRetry ? request.clone() : request;
      // One controller per attempt, aborted by the caller's signal or by a timer of our own. Not
      // AbortSignal.timeout()/any(): their signals are only weakly held, and once the garbage collector takes one it
      // never fires (an attempt would then wait forever).
      const controller = new AbortController();
      const abortWithCaller = () => controller.abort(request.signal.reason);
      if (request.signal.aborted) abortWithCaller();
      else request.signal.addEventListener('abort', abortWithCaller, { once: true });
      let timedOut = false;
      const timer =
        policy.timeoutMs > 0
          ? setTimeout(() => {
              timedOut = true;
              controller.abort(new OpenRushTimeoutError(request, policy.timeoutMs));
            }, policy.timeoutMs)
          : undefined;
      // Held until the attempt settles: a Request follows its signal through a weak reference, so an attempt whose
      // Request were collected mid-flight would never hear of the abort.
      const sent = new Request(attempt, { signal: controller.signal });
      inFlight.add(sent);
      let response: Response;
      try {
        response = await send(sent);
        // …and for as long as its answer: the caller's signal may still abort the reading of the body.
        requestOf.set(response, sent);
      } catch (error) {
        if (request.signal.aborted) throw error;
        const failure = timedOut ? new OpenRushTimeoutError(request, policy.timeoutMs, { cause: error }) : error;
        if (!mayRetry) throw failure;
        const delayMs = backoffMs(policy, retry);
        policy.onRetry?.({ attempt: retry + 1, delayMs, error: failure, request });
        await sleep(delayMs, request.signal);
        continue;
      } finally {
        // The timeout bounds the wait for the answer (status and headers); the body is the caller's to read.
        clearTimeout(timer);
        inFlight.delete(sent);
      }
      if (!mayRetry || !RETRIED_STATUSES.has(response.status)) return response;
      const delayMs = retryAfterMs(response) ?? backoffMs(policy, retry);
      if (delayMs > policy.maxRetryDelayMs) return response;
      await response.body?.cancel();
      policy.onRetry?.({ attempt: retry + 1, delayMs, status: response.status, request });
      await sleep(delayMs, request.signal);
    }
  };
}
