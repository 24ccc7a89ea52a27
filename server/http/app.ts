// The way a request travels:
//   request id → logging → caller resolution → usage metering → per-key rate limit → JSON body (≤ 64 KiB)
//   → express-openapi-validator (contract: shape + security) → permissions → routes → problem+json errors
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import express, { type NextFunction, type Request, type Response } from 'express';
// The patched validator, bundled by scripts/build.ts: the same file here and in the published package.
import * as OpenApiValidator from '../../vendor/express-openapi-validator.js';
import pino, { type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { createCallers } from '../callers.ts';
import { createCallerResolver } from './authentication.ts';
import { type Clock, systemClock } from '../clock.ts';
import { type Config, ownAuthorizationServer } from '../config.ts';
import { loadContract } from '../contract.ts';
import { withContractSecurity } from './contract-security.ts';
import type { Deps } from '../deps.ts';
import { holdsCredential, loggedUrl, redactPath } from '../endpoint.ts';
import { answerClientErrors } from './client-errors.ts';
import { applyServerLimits } from './server-limits.ts';
import { createCors } from './cors.ts';
import { Operations, series } from './dispatch.ts';
import { createErrorHandler } from './errors.ts';
import { type DashboardOptions, serveDashboard } from './dashboard.ts';
import { createIntegerQueryCheck } from './query-integers.ts';
import { jsonBody } from './json-body.ts';
import { requireUtf8Body, requireWellFormedInput } from './well-formed.ts';
import { notFound, Problem, validationFailed } from '../problem.ts';
import { createIdGenerator } from '../ids.ts';
import { createMetering } from '../metering.ts';
import { createUsageHook } from './metering.ts';
import { createMcpHandler } from '../mcp/index.ts';
import { type McpOAuth, mcpErrors, mcpResource, mcpRoutes } from './routes/mcp.ts';
import { oauthScopes, scopeFor } from '../oauth/scopes.ts';
import { accountRoutes } from './routes/account.ts';
import { usageRoutes } from './routes/usage.ts';
import { eventRoutes } from './routes/events.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { apiKeyRoutes } from './routes/api-keys.ts';
import { oauthFormBody, oauthRoutes } from './routes/oauth.ts';
import { oauthErrors } from '../oauth/errors.ts';
import { createRateLimits } from '../permissions.ts';
import { authorize, createRateLimitStep } from './policy.ts';
import { publicRoutes } from './routes/public.ts';
import { oauthRegisterRoutes } from './routes/oauth-register.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { createSessionCookie } from './session-cookie.ts';
import type { Store } from '../store/types.ts';
import { builtinTools, capabilitiesOf, resolveTools, type ToolDefinition } from '../tools/index.ts';
import { toolRoutes } from './routes/tools.ts';
import { createArgumentChecker, REQUEST_VALIDATION } from '../tools/arguments.ts';
import { accessNeededBy, createToolCaller } from '../tools/call.ts';
import { createKeyStatusReader } from '../key-status.ts';

export interface AppOptions {
  store: Store;
  config: Config;
  clock?: Clock;
  logger?: Logger;
  /** More metered tools, each with its operation for the contract and a handler. */
  tools?: ToolDefinition[];
  /** Where the built Dashboard is, and what else its page may connect to (server/http/dashboard.ts). */
  dashboard?: DashboardOptions;
  /** Tests only: outbound fetches may reach the test's own TLS server on loopback (see Deps). */
  outboundFetchForTests?: Deps['outboundFetchForTests'];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'key'], censor: '[REDACTED]' },
  });
}

export function createApp(options: AppOptions): express.Express {
  const { store, config } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel);
  const deps: Deps = { store, clock, ids: createIdGenerator(clock), config, logger, ...(options.outboundFetchForTests ? { outboundFetchForTests: options.outboundFetchForTests } : {}) };
  const contract = loadContract();
  const rateLimits = createRateLimits(store);
  const readKeyStatus = createKeyStatusReader({ store, clock, rateLimits });
  const definitions = [...builtinTools({ readKeyStatus }), ...(options.tools ?? [])];
  const tools = resolveTools(contract, definitions);
  const capabilities = capabilitiesOf(contract, tools, definitions);
  // One metering path for both ways in: the HTTP hook and tool routes, and the MCP handler.
  const metering = createMetering({ ...deps, lastUsedGranularityMs: config.lastUsedGranularityMs });
  const usage = createUsageHook(metering, logger, tools);
  // One tool-call path for both ways in: the HTTP tool routes and MCP's tools/call run the same steps.
  const callTool = createToolCaller({ store, clock: deps.clock, metering, checkArguments: createArgumentChecker(contract, tools) });
  // /mcp as an OAuth protected resource: the scopes the contract declares, and those its tools need.
  const scopesSupported = oauthScopes(contract).map((scope) => scope.scope);
  const mcpOAuth: McpOAuth = {
    scopesSupported,
    toolScopes: [...new Set(tools.map((tool) => scopeFor(accessNeededBy(tool))).filter((scope): scope is string => scope !== undefined && scopesSupported.includes(scope)))],
  };
  const handleMcpRequest = createMcpHandler({ tools, callTool, metering, logger, version: String((contract.info as { version?: unknown } | undefined)?.version ?? '1') });

  const app = express();
  // The app's id generator, for in-process callers (tests, embedders) that create rows next to the app: ids from
  // one monotonic generator sort in creation order even within one millisecond.
  app.locals.ids = deps.ids;
  app.disable('x-powered-by');
  // No ETag: with one, Express answers If-None-Match with a 304, which no operation of the contract lists (and which
  // would be a metered request answered without its body). It also spared hashing every response body.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  // Paths are exactly the contract's: /V1/me/credits and /v1/me/credits/ are 404s, not aliases (the validator
  // reads these two settings too). The usage record then always holds the path as the contract spells it.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);

  // The Dashboard's pages and files: outside the contract (like a docs page), so before the validator, and not
  // metered (loading a page is not an API request).
  // With Supabase sign-in configured, the page's Supabase client talks to the project: its origin joins connect-src.
  app.use(serveDashboard({ connectOrigins: config.dashboard.supabase ? [config.dashboard.supabase.url] : [], ...options.dashboard }));

  // The steps every request takes, in this order (see dispatch.ts for why they run as one series).
  const steps: express.RequestHandler[] = [];
  steps.push((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.get('X-Request-Id');
    // A key pasted into X-Request-Id would be logged and echoed: such an id is replaced like a malformed one.
    const requestId = incoming && REQUEST_ID.test(incoming) && !holdsCredential(incoming) ? incoming : `req_${randomUUID()}`;
    req.ctx = { requestId, startedAt: performance.now(), requestBytes: 0, usageRecorded: false };
    res.set('X-Request-Id', requestId);
    // HEAD is GET without a body (RFC 9110 §9.3.2): the contract lists only GET, so the request goes on as a GET,
    // authenticated, validated and recorded like one (recorded as HEAD). Node sends no body for a HEAD request
    // whatever the handler writes, and keeps the GET's Content-Length.
    if (req.method === 'HEAD') {
      req.ctx.head = true;
      req.method = 'GET';
    }
    next();
  });
  // Browser origins allowed by OPENRUSH_CORS_ORIGINS (none by default); preflights are answered here, before
  // authentication: a browser sends them without credentials.
  const cors = createCors(config.corsOrigins, contract);
  if (cors) steps.push(cors);
  // With logging off there is nothing for pino-http to do, and it costs ~6% of a request's CPU (npm run bench).
  const logRequests = pinoHttp({
    logger,
    genReqId: (req) => (req as Request).ctx.requestId,
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({
        id: req.id,
        method: req.method,
        url: loggedUrl(req.url),
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    customProps: (req) => ({ account_id: (req as Request).ctx?.caller?.accountId }),
  });
  if (logger.isLevelEnabled('info')) steps.push(logRequests);
  const sessionCookie = createSessionCookie(contract, config);
  const callers = createCallers({ ...deps, session: config.session, authFailuresPerMinute: config.authFailuresPerMinute, oauthAccessTokens: ownAuthorizationServer(config) });
  steps.push(createCallerResolver(callers, sessionCookie));
  steps.push(usage.recordUsage);
  steps.push(createRateLimitStep(rateLimits));
  // /oauth/token and /oauth/revoke take form-encoded bodies (OAuth's), and only they.
  steps.push(oauthFormBody(config));
  steps.push(
    jsonBody({
      limit: config.bodyLimitBytes,
      verify: (req, _res, buffer) => {
        req.ctx.requestBytes = buffer.length;
        requireUtf8Body(buffer);
      },
    }),
  );
  steps.push(requireWellFormedInput);
  // The validator's path matching (path-to-regexp 8) always allows a trailing slash, whatever `strict routing` says.
  steps.push((req: Request, _res: Response, next: NextFunction) =>
    next(req.path.length > 1 && req.path.endsWith('/') ? notFound(`There is no ${req.method} ${redactPath(req.path).slice(0, 200)} in this API.`) : undefined),
  );
  steps.push(
    ...withContractSecurity(contract, OpenApiValidator.middleware({
      apiSpec: contract as never,
      // Bodies are JSON and must already have the right types ("name": 42 is refused); query and path values are
      // strings on the wire and are always coerced by the validator. The same rules check MCP tool arguments.
      validateRequests: REQUEST_VALIDATION.validateRequests,
      validateResponses: config.validateResponses ? { removeAdditional: false } : false,
      // Security is checked by withContractSecurity, in the same place, without an Error per unmet alternative.
      validateSecurity: false,
      // 'full' checks real calendar dates: 2099-02-30 and month 13 are refused, not rolled over.
      validateFormats: REQUEST_VALIDATION.validateFormats,
      ajvFormats: REQUEST_VALIDATION.ajvFormats,
      ignoreUndocumented: false,
    }) as unknown as express.RequestHandler[], (req) => mcpResource(req, config)),
  );
  steps.push(createIntegerQueryCheck(contract));

  // A body sent without a Content-Type is not JSON, and the validator lets it pass where the body is optional (it is
  // then silently ignored): refuse it as any other media type would be.
  steps.push((req: Request, _res: Response, next: NextFunction) => {
    const operation = (req as Request & { openapi?: { schema?: { requestBody?: unknown } } }).openapi?.schema;
    const sent = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (operation?.requestBody && sent && req.headers['content-type'] === undefined) {
      next(new Problem('unsupported_media_type', 'Send the request body as application/json, with Content-Type: application/json.'));
      return;
    }
    // An empty body reaches the validator as {} (body-parser's reading of zero bytes): where the body is required and
    // {} is a valid one (get_key_status), it would pass as if sent.
    if ((operation?.requestBody as { required?: boolean } | undefined)?.required && req.ctx.requestBytes === 0) {
      next(validationFailed([{ location: 'body', pointer: '', message: 'is required' }], 'This operation needs a JSON request body ({} at least).'));
      return;
    }
    next();
  });
  steps.push(authorize);
  app.use(series(steps));
  // Then the operation the validator matched.
  const operations = new Operations();
  publicRoutes(operations, deps, () => capabilities);
  sessionRoutes(operations, deps, callers, sessionCookie);
  accountRoutes(operations, deps, readKeyStatus);
  usageRoutes(operations, deps);
  eventRoutes(operations, deps);
  credentialRoutes(operations, deps);
  apiKeyRoutes(operations, deps);
  toolRoutes(operations, tools, callTool, usage);
  mcpRoutes(operations, config, mcpOAuth, handleMcpRequest);
  oauthRoutes(operations, deps, sessionCookie);
  oauthRegisterRoutes(operations, deps);
  app.use(operations.handle);
  app.use((req: Request, _res: Response, next: NextFunction) => next(notFound(`There is no ${req.method} ${redactPath(req.path).slice(0, 200)} in this API.`)));
  app.use(mcpErrors(config, mcpOAuth));
  // Operations marked x-openrush-error-format: oauth answer OAuth errors ({ error, error_description }).
  app.use(oauthErrors());
  app.use(createErrorHandler(logger));
  // Servers made by app.listen have the configured timeouts and connection cap, and answer what Node's parser
  // refuses with problem documents too (an embedder with its own http.Server calls applyServerLimits and
  // answerClientErrors on it).
  const listen = app.listen.bind(app) as (...args: unknown[]) => Server;
  app.listen = ((...args: unknown[]) => {
    const server = listen(...args);
    applyServerLimits(server, config.server, logger);
    answerClientErrors(server);
    return server;
  }) as typeof app.listen;
  return app;
}
