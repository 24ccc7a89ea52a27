// The one place that turns a request path into the `endpoint` of its usage record, and cuts secrets out of any
// text the server keeps or logs about a request. A client that pastes its key (or a session token) into a URL
// must not find it in its usage, in the database or in the logs.
export const REDACTED = '[REDACTED]';
const ENDPOINT_MAX = 2048;

// Key-shaped: `or_…`, a Dashboard sign-in link or session token (`orsl_…`, `orss_…`), an OAuth code, access or
// refresh token (`orac_…`, `orat_…`, `orrt_…`: base64url), a JWT (`eyJ…​.…`), or any long run of base62 (a key
// without its prefix, a foreign token).
const SECRET = /or(?:s[ls])?_[0-9A-Za-z]{6,}|or(?:a[ct]|rt)_[\w-]{6,}|eyJ[\w-]*\.[\w-]*(?:\.[\w-]*)?|[0-9A-Za-z]{32,}/g;

// An OpenRush key or a session token (a JWT) itself: narrower than SECRET, for values that are legitimately long
// random text, such as a client's request id (a W3C trace id is 32 hex digits).
const CREDENTIAL = /or(?:s[ls])?_[0-9A-Za-z]{6,}|or(?:a[ct]|rt)_[\w-]{6,}|eyJ[\w-]*\.[\w-]*/;

/** True when the text holds an OpenRush key or a session token. */
export function holdsCredential(text: string): boolean {
  return CREDENTIAL.test(text);
}

/** `text` with everything key-shaped replaced by [REDACTED]. */
export function redactSecrets(text: string): string {
  return text.replace(SECRET, REDACTED);
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * A path with every segment that holds a secret replaced by [REDACTED]. Segments are looked at percent-decoded,
 * so `%6Fr_…` is caught too; the rest of the path is kept as it was sent.
 */
export function redactPath(path: string): string {
  return path
    .split('/')
    .map((segment) => (redactSecrets(decoded(segment)) === decoded(segment) ? segment : REDACTED))
    .join('/');
}

/** The endpoint a usage record stores: the path without its query, secrets cut out, bounded. */
export function recordedEndpoint(path: string): string {
  return redactPath(path).slice(0, ENDPOINT_MAX);
}

/**
 * Text from a request that a usage record keeps (an error message quoting the input, an MCP message's method):
 * secrets cut out, control characters (U+0000 above all, which PostgreSQL cannot store) replaced, at most `max`
 * UTF-16 units, and well-formed after the cut.
 */
export function recordedText(text: string, max: number): string {
  // With the u flag, \p{Surrogate} matches only a surrogate without its pair (one the cut may have made too).
  // eslint-disable-next-line no-control-regex
  return redactSecrets(text).slice(0, max).replace(/[\p{Surrogate}\u0000-\u001F\u007F]/gu, '\uFFFD');
}

/** The URL of a request as logged: path and query, secrets cut out. */
export function loggedUrl(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? redactPath(url) : redactPath(url.slice(0, query)) + redactSecrets(decoded(url.slice(query)));
}
