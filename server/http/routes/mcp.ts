// HTTP glue for MCP access: POST /mcp hands the message to the MCP handler (server/mcp/), GET and DELETE are 405
// (the endpoint is stateless). /mcp is an OAuth protected resource (RFC 9728) when OAuth is on: its metadata is
// served here (at the path the MCP authorization specification derives from /mcp, and at the root), a 401 there
// names it with the scopes the tools need, and a 403 insufficient_scope names it too.
import type { NextFunction, Request, Response } from 'express';
import type { components } from '../../../generated/openapi.d.ts';
import { type Config, oauthProtected } from '../../config.ts';
import { toProblem } from '../errors.ts';
import type { Operations } from '../dispatch.ts';
import { MCP_PATH, type createMcpHandler } from '../../mcp/index.ts';
import { Problem, validationFailed } from '../../problem.ts';
import { route } from './typed.ts';

type Metadata = components['schemas']['ProtectedResourceMetadata'];

export const PROTECTED_RESOURCE_METADATA = '/.well-known/oauth-protected-resource';
/** Where /mcp's metadata is (RFC 9728 §3.1: the well-known path, then the resource's path). */
export const MCP_RESOURCE_METADATA = `${PROTECTED_RESOURCE_METADATA}${MCP_PATH}`;
/** The only method the endpoint answers: every other one is 405 with this Allow (GET, DELETE, PUT, HEAD…). */
const MCP_ALLOW = 'POST';
const SAFE_HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The API's base URL, derived here only: the configured OPENRUSH_PUBLIC_URL, or the scheme and host this request
 * was made to (X-Forwarded-Proto / X-Forwarded-Host from a trusted proxy). A host the URL parser refuses
 * (`a:99999`, `999.1.1.1`, `[:::]`) or a scheme other than http/https is never echoed: the answer is then the
 * problem to give, naming the header.
 */
export function publicBaseUrl(req: Request, config: Config): { url: string } | { problem: Problem } {
  if (config.publicUrl) return { url: config.publicUrl };
  const scheme = req.protocol;
  if (scheme !== 'http' && scheme !== 'https') {
    return { problem: unusableHeader('X-Forwarded-Proto', 'must be http or https') };
  }
  const host = req.host;
  if (host && SAFE_HOST.test(host)) {
    try {
      return { url: new URL(`${scheme}://${host}`).origin };
    } catch {
      // Refused below, like any other unusable host.
    }
  }
  return { problem: unusableHeader(req.get('x-forwarded-host') !== undefined && host !== req.get('host') ? 'X-Forwarded-Host' : 'Host', 'must be a host name or IP address, with a port from 0 to 65535') };
}

function unusableHeader(name: string, message: string): Problem {
  return validationFailed([{ location: 'header', pointer: `/${name}`, message }], `The ${name} header cannot name this API; the server has no OPENRUSH_PUBLIC_URL to use instead.`);
}

/** The canonical URI of /mcp as an OAuth protected resource (RFC 8707): `<base>/mcp`; undefined when this request cannot name the API. */
export function mcpResource(req: Request, config: Config): string | undefined {
  const base = publicBaseUrl(req, config);
  return 'url' in base ? `${base.url}${MCP_PATH}` : undefined;
}

const MCP_ACCEPT = 'application/json, text/event-stream';

/** The headers the MCP transport looks at, and nothing else (no credential travels further than it must). */
function mcpHeaders(req: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of ['accept', 'content-type', 'mcp-protocol-version']) {
    const value = req.get(name);
    if (value !== undefined) headers[name] = value;
  }
  // No Accept, or */*, accepts any answer (RFC 9110 §12.5.1), and the answer is always JSON: tell the transport so.
  // An Accept that names types must still name both of MCP's (406 otherwise).
  const accept = headers.accept?.trim();
  if (!accept || accept === '*/*') headers.accept = MCP_ACCEPT;
  return headers;
}

export interface McpOAuth {
  /** Every scope the contract's mcpOAuth scheme declares (oauth/scopes.ts). */
  scopesSupported: string[];
  /** The scopes the tools need (scopeFor of each tool's access), named in the 401's challenge. */
  toolScopes: string[];
}

export function mcpRoutes(router: Operations, config: Config, oauth: McpOAuth, handleMcpRequest: ReturnType<typeof createMcpHandler>): void {
  router.post(MCP_PATH, async (req: Request, res: Response, next: NextFunction) => {
    try {
      const answer = await handleMcpRequest({
        caller: req.ctx.caller!,
        requestId: req.ctx.requestId,
        message: req.body,
        headers: mcpHeaders(req),
        startedAt: req.ctx.startedAt,
        requestBytes: req.ctx.requestBytes,
      });
      if ('problem' in answer) return next(answer.problem);
      // The MCP handler has written the usage record (and any charge) already, with the exact size sent here.
      req.ctx.usageRecorded = true;
      if (answer.status === 202) return void res.status(202).end();
      res.status(200).json(answer.body);
    } catch (error) {
      next(error);
    }
  });

  // GET and DELETE are in the contract (MCP clients try them), and are 405 like every other method but POST; the
  // error middleware below gives every 405 here the same Allow.
  const stateless = (_req: Request, _res: Response, next: NextFunction) => next(new Problem('method_not_allowed', 'stateless'));
  router.get(MCP_PATH, stateless);
  router.delete(MCP_PATH, stateless);

  // RFC 9728: the same document at the path derived from /mcp and at the root. With OAuth off there is none (404):
  // /mcp then takes API keys only.
  const metadata = async (req: Request) => {
    if (!oauthProtected(config)) throw new Problem('not_found', 'OAuth is turned off on this server (OPENRUSH_OAUTH=off): /mcp takes API keys only.');
    const base = publicBaseUrl(req, config);
    if ('problem' in base) throw base.problem;
    const body: Metadata = {
      resource: `${base.url}${MCP_PATH}`,
      // This server's own authorization server, whose issuer is the base URL; or the one configured instead.
      authorization_servers: config.authorizationServers.length > 0 ? config.authorizationServers : [base.url],
      scopes_supported: oauth.scopesSupported,
      bearer_methods_supported: ['header'],
      resource_name: 'OpenRush API',
    };
    return { status: 200 as const, body };
  };
  route(router, 'get', PROTECTED_RESOURCE_METADATA, metadata);
  route(router, 'get', MCP_RESOURCE_METADATA, metadata);
}

/**
 * Error middleware, before the error handler, for the MCP endpoint: with OAuth on, a 401 says where the
 * protected-resource metadata is and which scopes the tools need (RFC 9728 §5.1, as the MCP authorization
 * specification asks), so an MCP client can sign its user in, and a 403 insufficient_scope says where the metadata
 * is beside the scope it names; every 405 (whichever method, whoever refused it) has the same `Allow: POST`.
 * Anything else goes on untouched, so the error handler logs a 500 with its cause.
 */
export function mcpErrors(config: Config, oauth: McpOAuth) {
  return function answerMcpErrors(error: unknown, req: Request, _res: Response, next: NextFunction): void {
    if (req.path !== MCP_PATH) return next(error);
    const problem = toProblem(error, req);
    if (problem.status === 405) {
      const method = req.ctx.head ? 'HEAD' : req.method;
      return next(
        new Problem('method_not_allowed', `${method} is not allowed on ${MCP_PATH}: the endpoint is stateless, with no event stream and no session. Send messages with POST.`, {
          headers: { ...problem.options.headers, Allow: MCP_ALLOW },
        }),
      );
    }
    const scopeRefused = problem.problemType === 'insufficient_scope';
    if ((problem.status !== 401 && !scopeRefused) || !oauthProtected(config)) return next(error);
    const base = publicBaseUrl(req, config);
    // A host that cannot name the API gets the plain challenge: the credential is still what is missing.
    if ('problem' in base) return next(problem);
    const challenge = problem.options.headers?.['WWW-Authenticate'] ?? 'Bearer realm="openrush"';
    let params = `resource_metadata="${base.url}${MCP_RESOURCE_METADATA}"`;
    // The 401 names every scope the tools need; insufficient_scope's challenge already names the one it lacks.
    if (!scopeRefused && oauth.toolScopes.length > 0) params += `, scope="${oauth.toolScopes.join(' ')}"`;
    next(
      new Problem(problem.problemType, problem.detail, {
        ...problem.options,
        headers: { ...problem.options.headers, 'WWW-Authenticate': `${challenge}, ${params}` },
      }),
    );
  };
}
