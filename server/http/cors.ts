// CORS for the Dashboard and other browser apps: off unless OPENRUSH_CORS_ORIGINS lists the origins allowed.
// Credentials travel in headers (Authorization, X-API-Key), never in cookies, so no Allow-Credentials: a page
// from an allowed origin can call the API with a key it holds, and a page from any other origin gets no CORS
// headers, so the browser keeps the answer from it.
import type { NextFunction, Request, Response } from 'express';
import { Problem } from '../problem.ts';

export const CORS_ALLOWED_METHODS = 'GET, HEAD, POST, PATCH';
export const CORS_ALLOWED_HEADERS = 'Authorization, X-API-Key, Content-Type, Idempotency-Key, X-Request-Id';
export const CORS_EXPOSED_HEADERS =
  'X-Request-Id, Link, RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed, WWW-Authenticate, Allow';
/** How long a browser may reuse a preflight answer, in seconds. */
export const CORS_MAX_AGE = '600';

/** Middleware for the configured origins; undefined (no middleware at all) when CORS is off. */
export function createCors(origins: string[]) {
  if (origins.length === 0) return undefined;
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins);
  return function cors(req: Request, res: Response, next: NextFunction): void {
    res.vary('Origin');
    const origin = req.get('Origin');
    const preflight = req.method === 'OPTIONS' && origin !== undefined && req.get('Access-Control-Request-Method') !== undefined;
    if (origin === undefined) return next();
    if (!anyOrigin && !allowed.has(origin)) {
      if (preflight) return next(new Problem('forbidden', 'This origin is not allowed to call the API from a browser.'));
      return next();
    }
    res.set('Access-Control-Allow-Origin', anyOrigin ? '*' : origin);
    if (!preflight) {
      res.set('Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS);
      return next();
    }
    res.vary('Access-Control-Request-Method').vary('Access-Control-Request-Headers');
    res.set({
      'Access-Control-Allow-Methods': CORS_ALLOWED_METHODS,
      'Access-Control-Allow-Headers': CORS_ALLOWED_HEADERS,
      'Access-Control-Max-Age': CORS_MAX_AGE,
    });
    res.status(204).end();
  };
}
