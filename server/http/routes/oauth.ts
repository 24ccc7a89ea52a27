// The HTTP side of the OAuth authorization server (server/oauth/grants.ts does the work): RFC 8414 metadata, the
// authorization endpoint, the token and revocation endpoints (form-encoded bodies, read by oauthFormBody), and the
// consent operations the Dashboard's consent page calls with its session cookie. All of them are 404 when the
// built-in authorization server is off (OPENRUSH_OAUTH=off, or another one named by OPENRUSH_AUTHORIZATION_SERVER).
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { components } from '../../../generated/openapi.d.ts';
import { type Config, ownAuthorizationServer } from '../../config.ts';
import type { Deps } from '../../deps.ts';
import {
  approveAuthorization,
  type AuthorizationRequest,
  denyAuthorization,
  readAuthorization,
  requestToken,
  revokeToken,
  startAuthorization,
  supportedScopes,
  type TokenRequest,
} from '../../oauth/grants.ts';
import { hashSecret } from '../../oauth/tokens.ts';
import { invalidCredential, notFound } from '../../problem.ts';
import type { Operations } from '../dispatch.ts';
import type { SessionCookie } from '../session-cookie.ts';
import { requireUtf8Form } from '../well-formed.ts';
import { publicBaseUrl } from './mcp.ts';
import { route } from './typed.ts';

type AuthorizationServerMetadata = components['schemas']['AuthorizationServerMetadata'];

export const AUTHORIZATION_SERVER_METADATA = '/.well-known/oauth-authorization-server';
/** The operations whose bodies are form-encoded (RFC 6749 §3.2, RFC 7009 §2.1). */
const FORM_PATHS = new Set(['/oauth/token', '/oauth/revoke']);
const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

/**
 * The form-encoded body of /oauth/token and /oauth/revoke (and of nothing else): UTF-8, also once percent-decoded,
 * within the body limit, a repeated parameter kept as an array (which the contract then refuses, as RFC 6749 §3.1
 * asks).
 */
export function oauthFormBody(config: Config): RequestHandler {
  const parse = express.urlencoded({
    extended: false,
    limit: config.bodyLimitBytes,
    parameterLimit: 40,
    verify: (req, _res, buffer) => {
      (req as Request).ctx.requestBytes = buffer.length;
      requireUtf8Form(buffer);
    },
  });
  return function readOAuthForm(req: Request, res: Response, next: NextFunction): void {
    if (req.method !== 'POST' || !FORM_PATHS.has(req.path)) return next();
    parse(req, res, next);
  };
}

export function oauthRoutes(router: Operations, deps: Deps, cookie: SessionCookie): void {
  const { config } = deps;

  /** The issuer (the API's base URL), or the problem of an unusable Host; 404 while the authorization server is off. */
  function issuerOf(req: Request): string {
    if (!ownAuthorizationServer(config)) throw notFound(`There is no ${req.method} ${req.path} in this API: its OAuth authorization server is off.`);
    const base = publicBaseUrl(req, config);
    if ('problem' in base) throw base.problem;
    return base.url;
  }

  /** The hash of the Dashboard session token this request came with (the contract lets only the cookie in here). */
  function sessionHashOf(req: Request): string {
    const token = req.ctx.sessionCookie ? cookie.read(req) : undefined;
    if (token === undefined || req.ctx.caller?.authSource !== 'session') throw invalidCredential('Only the Dashboard session cookie can decide an authorization.');
    return hashSecret(token);
  }

  route(router, 'get', AUTHORIZATION_SERVER_METADATA, async (req) => {
    const issuer = issuerOf(req);
    const metadata: AuthorizationServerMetadata = {
      issuer,
      authorization_endpoint: `${issuer}/oauth/authorize`,
      token_endpoint: `${issuer}/oauth/token`,
      registration_endpoint: `${issuer}/oauth/register`,
      revocation_endpoint: `${issuer}/oauth/revoke`,
      scopes_supported: supportedScopes().map((info) => info.scope),
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
      revocation_endpoint_auth_methods_supported: ['none'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      ...(config.oauth.clientMetadataDocuments ? { client_id_metadata_document_supported: true as const } : {}),
      service_documentation: `${issuer}/docs`,
    };
    return { status: 200, body: metadata };
  });

  router.get('/oauth/authorize', async (req: Request, res: Response, next: NextFunction) => {
    try {
      const issuer = issuerOf(req);
      const query = req.query as Record<string, unknown>;
      const request: AuthorizationRequest = {};
      for (const name of ['response_type', 'client_id', 'redirect_uri', 'code_challenge', 'code_challenge_method', 'state', 'scope', 'resource'] as const) {
        if (typeof query[name] === 'string') request[name] = query[name];
      }
      const { location } = await startAuthorization(deps, request, issuer);
      res.status(302).set({ ...NO_STORE, Location: location }).end();
    } catch (error) {
      next(error);
    }
  });

  router.post('/oauth/token', async (req: Request, res: Response, next: NextFunction) => {
    try {
      issuerOf(req);
      const tokens = await requestToken(deps, formOf(req));
      res.status(200).set(NO_STORE).json(tokens);
    } catch (error) {
      next(error);
    }
  });

  router.post('/oauth/revoke', async (req: Request, res: Response, next: NextFunction) => {
    try {
      issuerOf(req);
      const form = formOf(req);
      await revokeToken(deps, { token: form.token ?? '', client_id: form.client_id });
      res.status(200).set(NO_STORE).end();
    } catch (error) {
      next(error);
    }
  });

  route(router, 'get', '/v1/oauth/authorizations/{authorization_id}', async (req, { params }) => {
    issuerOf(req);
    const authorization = await readAuthorization(deps, params.authorization_id, sessionHashOf(req));
    return { status: 200, body: authorization, headers: NO_STORE };
  });

  route(router, 'post', '/v1/oauth/authorizations/{authorization_id}/approve', async (req, { params, body }) => {
    const issuer = issuerOf(req);
    const decision = await approveAuthorization(deps, req.ctx.caller!, params.authorization_id, sessionHashOf(req), body, issuer);
    return { status: 200, body: decision, headers: NO_STORE };
  });

  route(router, 'post', '/v1/oauth/authorizations/{authorization_id}/deny', async (req, { params, body }) => {
    const issuer = issuerOf(req);
    const decision = await denyAuthorization(deps, params.authorization_id, sessionHashOf(req), body.csrf_token, issuer);
    return { status: 200, body: decision, headers: NO_STORE };
  });
}

/** The validated form's string fields. */
function formOf(req: Request): TokenRequest {
  const body = (req.body ?? {}) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(body).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}
