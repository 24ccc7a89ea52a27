// HTTP glue for MCP access: POST /mcp hands the message to the MCP handler (server/mcp/), GET and DELETE are 405
// (the endpoint is stateless), a 401 there names the OAuth protected-resource metadata, which is served here.
import type { NextFunction, Request, Response } from 'express';
import type { components } from '../../../generated/openapi.d.ts';
import type { Config } from '../../config.ts';
import { toProblem } from '../errors.ts';
import type { Operations } from '../dispatch.ts';
import { MCP_PATH, type createMcpHandler } from '../../mcp/index.ts';
import { Problem } from '../../problem.ts';
import { route } from './typed.ts';

type Metadata = components['schemas']['ProtectedResourceMetadata'];

export const PROTECTED_RESOURCE_METADATA = '/.well-known/oauth-protected-resource';
const SAFE_HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The API's base URL: the configured one, or the one this request was made to (its Host, if well-formed). */
function baseUrl(req: Request, config: Config): string {
  if (config.publicUrl) return config.publicUrl;
  const host = req.get('host');
  return `${req.protocol}://${host && SAFE_HOST.test(host) ? host : 'localhost'}`;
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

export function mcpRoutes(router: Operations, config: Config, handleMcpRequest: ReturnType<typeof createMcpHandler>): void {
  router.post(MCP_PATH, async (req: Request, res: Response, next: NextFunction) => {
    try {
      const answer = await handleMcpRequest({
        caller: req.ctx.caller!,
        requestId: req.ctx.requestId,
        message: req.body,
        url: `${baseUrl(req, config)}${MCP_PATH}`,
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

  const stateless = (req: Request, _res: Response, next: NextFunction) =>
    next(
      new Problem('method_not_allowed', `This MCP endpoint is stateless; it offers no event stream and no session. Send messages with POST.`, {
        headers: { Allow: 'POST' },
      }),
    );
  router.get(MCP_PATH, stateless);
  router.delete(MCP_PATH, stateless);

  route(router, 'get', PROTECTED_RESOURCE_METADATA, async (req) => {
    const base = baseUrl(req, config);
    const metadata: Metadata = {
      resource: base,
      authorization_servers: config.authorizationServers,
      bearer_methods_supported: ['header'],
      resource_name: 'OpenRush API',
    };
    return { status: 200, body: metadata };
  });
}

/**
 * Error middleware, before the error handler: a 401 on the MCP endpoint says where the OAuth protected-resource
 * metadata is (RFC 9728, as the MCP authorization specification asks), so an MCP client can sign its user in.
 */
export function mcpUnauthorized(config: Config) {
  return function pointToResourceMetadata(error: unknown, req: Request, _res: Response, next: NextFunction): void {
    if (req.path !== MCP_PATH) return next(error);
    const problem = toProblem(error, req);
    if (problem.status !== 401) return next(problem);
    const challenge = problem.options.headers?.['WWW-Authenticate'] ?? 'Bearer realm="openrush"';
    const metadata = `${baseUrl(req, config)}${PROTECTED_RESOURCE_METADATA}`;
    next(
      new Problem(problem.problemType, problem.detail, {
        ...problem.options,
        headers: { ...problem.options.headers, 'WWW-Authenticate': `${challenge}, resource_metadata="${metadata}"` },
      }),
    );
  };
}
