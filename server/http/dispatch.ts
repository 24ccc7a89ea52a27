// The request's way through the app without Express's per-layer routing. Every request runs the same fixed list
// of steps (request id, authentication, metering hook, rate limit, body, contract validation, permissions), so
// they run as one series, not as ~20 app-level layers that Express's router would test one by one; and once the
// validator has matched the request to a contract operation, its handler is found by that operation in a Map,
// not by walking every route of every router and testing its path. npm run bench: both together took ~30–40 µs
// of CPU off every request (bench/README.md).
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Runs `steps` in order as one middleware, with Express's rules: a step passes on with next(), stops the series
 * with next(error) (or by throwing, or by returning a rejected promise), or ends it by answering.
 */
export function series(steps: RequestHandler[]): RequestHandler {
  return function runSeries(req: Request, res: Response, done: NextFunction): void {
    let index = 0;
    const next = (error?: unknown): void => {
      if (error !== undefined && error !== null) return done(error);
      const step = steps[index++];
      if (!step) return done();
      try {
        const result: unknown = step(req, res, next);
        if (result instanceof Promise) result.then(undefined, (reason: unknown) => next(reason ?? new Error('a request step failed')));
      } catch (caught) {
        next(caught);
      }
    };
    next();
  };
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * The handlers of the contract's operations, by method and path as the contract spells it (`/v2/api-keys/{id}`).
 * `handle` runs after express-openapi-validator, which has matched the request to one of the contract's paths
 * (req.openapi.openApiRoute) and read its path parameters (req.openapi.pathParams); a request it matched to no handler goes on (to the 404).
 */
export class Operations {
  private readonly handlers = new Map<string, RequestHandler>();

  private add(method: Method, path: string, handler: RequestHandler): void {
    const key = `${method} ${path}`;
    if (this.handlers.has(key)) throw new Error(`${key} has two handlers`);
    this.handlers.set(key, handler);
  }

  get(path: string, handler: RequestHandler): void {
    this.add('GET', path, handler);
  }
  post(path: string, handler: RequestHandler): void {
    this.add('POST', path, handler);
  }
  put(path: string, handler: RequestHandler): void {
    this.add('PUT', path, handler);
  }
  patch(path: string, handler: RequestHandler): void {
    this.add('PATCH', path, handler);
  }
  delete(path: string, handler: RequestHandler): void {
    this.add('DELETE', path, handler);
  }

  /** The middleware that calls the matched operation's handler. */
  readonly handle = (req: Request, res: Response, next: NextFunction): void => {
    const openapi = (req as Request & { openapi?: { openApiRoute?: string; pathParams?: Record<string, string> } }).openapi;
    const handler = openapi?.openApiRoute === undefined ? undefined : this.handlers.get(`${req.method} ${openapi.openApiRoute}`);
    if (!handler) return next();
    // Express gives each app-level layer the params of its own (path-less) match: put back the operation's.
    req.params = openapi!.pathParams ?? {};
    const result: unknown = handler(req, res, next);
    if (result instanceof Promise) result.then(undefined, (reason: unknown) => next(reason ?? new Error('a handler failed')));
  };
}
