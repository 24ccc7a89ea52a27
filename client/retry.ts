// Retries and timeouts, as a fetch wrapper under openapi-fetch: every attempt is a real request of its own.
//   - an attempt's timeout covers the whole answer, its body included: the answer is read here, within the attempt,
//     and handed to openapi-fetch already whole (every answer of this API is one JSON document);
//   - retried: network errors (while the body is read too), attempts that time out, 429 and 503 answers;
//   - only when a retry cannot do a thing twice: GET/HEAD/OPTIONS, and POSTs and PATCHes that carry an Idempotency-Key;
//   - the wait: exponential backoff with jitter, or the server's Retry-After when that is longer; a Retry-After that
//     is not delay-seconds or an HTTP-date (RFC 9110 §10.2.3) is ignored; a server that asks for a longer wait than
//     the caller allows gets its answer returned instead;
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

const RETRIED_STATUSES = new Set([429, 503]);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** An attempt that got no whole answer (status, headers and body) within the client's `timeoutMs`. */
export class OpenRushTimeoutError extends Error {
  /**
   * The status of an answer whose body did not arrive in time (the server did answer: a POST may have taken
   * effect); undefined when not even the status and headers came.
   */
  readonly status: number | undefined;

  constructor(
    readonly request: Request,
    readonly timeoutMs: number,
    options?: { cause?: unknown; status?: number | undefined },
  ) {
    const what =
      options?.status === undefined
        ? `got no answer within ${timeoutMs} ms`
        : `got a ${options.status} answer whose body did not arrive within ${timeoutMs} ms`;
    super(`${request.method} ${request.url} ${what}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OpenRushTimeoutError';
    this.status = options?.status;
  }
}

function safeToRetry(request: Request): boolean {
  return SAFE_METHODS.has(request.method) || ((request.method === 'POST' || request.method === 'PATCH') && request.headers.has('idempotency-key'));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(?<month>${MONTHS.join('|')})`;
const TIME = '(?<hours>\\d{2}):(?<minutes>\\d{2}):(?<seconds>\\d{2})';
const DAY_NAME = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
// RFC 9110 §5.6.7: the IMF-fixdate, and the two obsolete forms a recipient must still accept; case-sensitive, in GMT.
const HTTP_DATES = [
  new RegExp(`^${DAY_NAME}, (?<day>\\d{2}) ${MONTH} (?<year>\\d{4}) ${TIME} GMT$`),
  new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (?<day>\\d{2})-${MONTH}-(?<yy>\\d{2}) ${TIME} GMT$`),
  new RegExp(`^${DAY_NAME} ${MONTH} (?<day>[ \\d]\\d) ${TIME} (?<year>\\d{4})$`),
];

/** An HTTP-date in ms since the epoch; undefined for anything else (Date.parse would read `-1` or `1.5` as dates). */
function parseHttpDate(value: string): number | undefined {
  const fields = HTTP_DATES.map((form) => form.exec(value)?.groups).find((groups) => groups !== undefined);
  if (!fields) return undefined;
  const [day, hours, minutes, seconds] = [fields.day, fields.hours, fields.minutes, fields.seconds].map(Number) as [
    number,
    number,
    number,
    number,
  ];
  let year = Number(fields.year);
  if (fields.yy !== undefined) {
    // A two-digit year that would be more than 50 years ahead is the most recent past year with those digits.
    const thisYear = new Date().getUTCFullYear();
    year = thisYear - (thisYear % 100) + Number(fields.yy);
    if (year > thisYear + 50) year -= 100;
  }
  const date = new Date(0);
  date.setUTCFullYear(year, MONTHS.indexOf(fields.month!), day);
  // No 31 February; 60 seconds is a leap second.
  if (date.getUTCDate() !== day || hours > 23 || minutes > 59 || seconds > 60) return undefined;
  date.setUTCHours(hours, minutes, seconds);
  return date.getTime();
}

/** Retry-After as delay-seconds or an HTTP-date, in ms from now (0 for a date past); undefined when it is neither. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = parseHttpDate(trimmed);
  return date === undefined ? undefined : Math.max(0, date - Date.now());
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

/**
 * Settles with `work`, or rejects with the signal's reason as soon as it fires: the deadline holds even for a
 * `fetch` (the caller's own, say) that does not honour its signal.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * The answer with its body read whole under the attempt's signal, as a Response openapi-fetch reads at once. The
 * signal cancels the reading itself, so the deadline holds even for a `fetch` that does not honour its signal.
 */
async function readWhole(response: Response, signal: AbortSignal): Promise<Response> {
  if (response.body === null) return response;
  const reader = response.body.getReader();
  const cancel = () => void reader.cancel(signal.reason).catch(() => undefined);
  signal.addEventListener('abort', cancel, { once: true });
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for (;;) {
      signal.throwIfAborted();
      const { done, value } = await reader.read();
      // A cancelled read ends as if the body were complete: the signal says it was not.
      signal.throwIfAborted();
      if (done) break;
      chunks.push(value);
      length += value.byteLength;
    }
  } finally {
    signal.removeEventListener('abort', cancel);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  // A 204, 205 or 304 has no body (Fetch: "null body status"), and a Response with one cannot be built; browsers
  // still hand such an answer an empty body stream (Chromium does), which Node's fetch does not.
  const whole = new Response(NULL_BODY_STATUSES.has(response.status) ? null : bytes, { status: response.status, statusText: response.statusText, headers: response.headers });
  // A built Response has no url of its own: keep the answer's (after redirects), as fetch reported it.
  Object.defineProperties(whole, {
    url: { value: response.url, enumerable: true },
    redirected: { value: response.redirected, enumerable: true },
    type: { value: response.type, enumerable: true },
  });
  return whole;
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
      // Held until the attempt settles, its body read: a Request follows its signal through a weak reference, so an
      // attempt whose Request were collected mid-flight would never hear of the abort.
      const sent = new Request(attempt, { signal: controller.signal });
      inFlight.add(sent);
      let status: number | undefined;
      let wait: { delayMs: number; status: number };
      try {
        const response = await untilAborted(send(sent), controller.signal);
        status = response.status;
        const delayMs = mayRetry && RETRIED_STATUSES.has(status) ? retryDelayFor(response, policy, retry) : undefined;
        // The timeout covers the body as well as the status and headers: it is read here, before the timer stops.
        if (delayMs === undefined) return await readWhole(response, controller.signal);
        response.body?.cancel().catch(() => undefined);
        wait = { delayMs, status };
      } catch (error) {
        if (request.signal.aborted) throw error;
        // The abort's reason is our own timeout error: a cause only when fetch failed otherwise as the timer fired.
        const cause = error === controller.signal.reason ? undefined : error;
        const failure = timedOut ? new OpenRushTimeoutError(request, policy.timeoutMs, { cause, status }) : error;
        if (!mayRetry) throw failure;
        const delayMs = backoffMs(policy, retry);
        policy.onRetry?.({ attempt: retry + 1, delayMs, error: failure, request });
        await sleep(delayMs, request.signal);
        continue;
      } finally {
        clearTimeout(timer);
        request.signal.removeEventListener('abort', abortWithCaller);
        inFlight.delete(sent);
      }
      policy.onRetry?.({ attempt: retry + 1, delayMs: wait.delayMs, status: wait.status, request });
      await sleep(wait.delayMs, request.signal);
    }
  };
}

/**
 * How long to wait before retrying a 429 or 503: the backoff, or the server's Retry-After when that is longer (a
 * Retry-After of 0 or a date past, from a server whose clock runs behind, does not make the client retry at once);
 * undefined when the server asks for longer than `maxRetryDelayMs` — the client then returns its answer.
 */
function retryDelayFor(response: Response, policy: RetryPolicy, retry: number): number | undefined {
  const asked = retryAfterMs(response.headers.get('retry-after'));
  if (asked !== undefined && asked > policy.maxRetryDelayMs) return undefined;
  return Math.max(asked ?? 0, backoffMs(policy, retry));
}
