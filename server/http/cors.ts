// CORS for the Dashboard and other browser apps: off unless OPENRUSH_CORS_ORIGINS lists the origins allowed, except
// for the operations the contract marks `x-openrush-cors: any` (/mcp and the OAuth surface a browser-based MCP
// client uses: metadata, registration, token, revocation), which take no cookie and answer every origin with `*`.
// Credentials travel in headers (Authorization, X-API-Key), never in cookies, so no Allow-Credentials: a page
// from an allowed origin can call the API with a key it holds, and a page from any other origin gets no CORS
// headers, so the browser keeps the answer from it. What a preflight allows is read from the contract (its methods,
// its header parameters, its API key header), so a header the contract adds (MCP-Protocol-Version, which a
// browser MCP client sends from its second request on) is allowed with no second list to keep.
import type { NextFunction, Request, Response } from 'express';
import type { ContractDocument } from '../contract.ts';
import { Problem } from '../problem.ts';

export const CORS_EXPOSED_HEADERS =
  'X-Request-Id, Link, RateLimit, RateLimit-Policy, Retry-After, Idempotent-Replayed, WWW-Authenticate, Allow';
/** How long a browser may reuse a preflight answer, in seconds. */
export const CORS_MAX_AGE = '600';

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete'] as const;

/** The methods of the contract's operations, and HEAD wherever GET is. */
export function corsAllowedMethods(contract: ContractDocument): string[] {
  const used = new Set<string>();
  for (const item of Object.values(contract.paths)) for (const method of METHODS) if (item[method]) used.add(method);
  if (used.has('get')) used.add('head');
  return METHODS.filter((method) => used.has(method)).map((method) => method.toUpperCase());
}

/**
 * The request headers a page may send: Authorization and Content-Type (every credential and body), X-Request-Id
 * (accepted on every request, see the contract's Errors section), the API key header of each apiKey security
 * scheme, and every header parameter of the contract's operations and components.
 */
export function corsAllowedHeaders(contract: ContractDocument): string[] {
  const names = new Map<string, string>();
  const add = (name: unknown) => {
    if (typeof name === 'string' && !names.has(name.toLowerCase())) names.set(name.toLowerCase(), name);
  };
  ['Authorization', 'Content-Type', 'X-Request-Id'].forEach(add);
  for (const scheme of Object.values(contract.components?.securitySchemes ?? {})) {
    const { type, in: where, name } = scheme as { type?: unknown; in?: unknown; name?: unknown };
    if (type === 'apiKey' && where === 'header') add(name);
  }
  const parameters: unknown[] = Object.values(contract.components?.parameters ?? {});
  for (const item of Object.values(contract.paths)) {
    parameters.push(...(((item as { parameters?: unknown[] }).parameters) ?? []));
    for (const method of METHODS) parameters.push(...((item[method] as { parameters?: unknown[] } | undefined)?.parameters ?? []));
  }
  for (const parameter of parameters) {
    const { in: where, name } = parameter as { in?: unknown; name?: unknown };
    if (where === 'header') add(name);
  }
  return [...names.values()];
}

/**
 * The paths of the operations marked `x-openrush-cors: any` (no path parameters among them), each with its methods:
 * open to every origin whatever OPENRUSH_CORS_ORIGINS says, as they take no cookie.
 */
export function openCorsPaths(contract: ContractDocument): Map<string, string[]> {
  const open = new Map<string, string[]>();
  for (const [path, item] of Object.entries(contract.paths)) {
    for (const method of METHODS) {
      if ((item[method] as { 'x-openrush-cors'?: unknown } | undefined)?.['x-openrush-cors'] !== 'any') continue;
      if (path.includes('{')) throw new Error(`x-openrush-cors: any on ${path}: paths with parameters are not supported (server/http/cors.ts)`);
      const methods = open.get(path) ?? [];
      methods.push(method.toUpperCase(), ...(method === 'get' ? ['HEAD'] : []));
      open.set(path, methods);
    }
  }
  return open;
}

/**
 * Middleware for the configured origins and the operations open to every origin; undefined (no middleware at all)
 * when neither exists.
 */
export function createCors(origins: string[], contract: ContractDocument) {
  const open = openCorsPaths(contract);
  if (origins.length === 0 && open.size === 0) return undefined;
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins);
  const allowMethods = corsAllowedMethods(contract).join(', ');
  const allowHeaders = corsAllowedHeaders(contract).join(', ');
  return function cors(req: Request, res: Response, next: NextFunction): void {
    res.vary('Origin');
    const origin = req.get('Origin');
    const preflight = req.method === 'OPTIONS' && origin !== undefined && req.get('Access-Control-Request-Method') !== undefined;
    if (origin === undefined) return next();
    const openMethods = open.get(req.path);
    if (openMethods === undefined && !anyOrigin && !allowed.has(origin)) {
      if (preflight && origins.length > 0) return next(new Problem('forbidden', 'This origin is not allowed to call the API from a browser.'));
      return next();
    }
    res.set('Access-Control-Allow-Origin', openMethods !== undefined || anyOrigin ? '*' : origin);
    if (!preflight) {
      res.set('Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS);
      return next();
    }
    res.vary('Access-Control-Request-Method').vary('Access-Control-Request-Headers');
    res.set({
      'Access-Control-Allow-Methods': openMethods !== undefined && !anyOrigin && !allowed.has(origin) ? openMethods.join(', ') : allowMethods,
      'Access-Control-Allow-Headers': allowHeaders,
      'Access-Control-Max-Age': CORS_MAX_AGE,
    });
    res.status(204).end();
  };
}
