// The MCP endpoint over the domain: the official SDK's Server and its Streamable HTTP transport (stateless, JSON
// answers), with tools/list and tools/call answered from the contract's tools; a call runs the domain's one tool-call
// path (tools/call.ts), the same as POST /v1/tools/<tool>, and this file only translates its result. It takes an
// authenticated caller and one JSON-RPC message and gives back what to answer; it knows nothing of Express.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  CancelledNotificationSchema,
  ErrorCode,
  InitializedNotificationSchema,
  InitializeRequestSchema,
  ListToolsRequestSchema,
  McpError,
  PingRequestSchema,
  ProgressNotificationSchema,
  RootsListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import type { Caller } from '../context.ts';
import type { Call, Metering } from '../metering.ts';
import { Problem, type ProblemType } from '../problem.ts';
import { loadContract } from '../contract.ts';
import type { CallTool, ToolAnswer, ToolCallResult } from '../tools/call.ts';
import type { Tool } from '../tools/index.ts';
import { hasStructuredOutput, toMcpTool } from './tools.ts';

/** Told to the agent in `initialize`: what calls cost, and what a refusal looks like. */
const INSTRUCTIONS =
  "OpenRush tools. Each successful tools/call costs the credits given in the tool's _meta['openrush.io/credits_per_call'], " +
  "taken from the account's balance. A call that is refused (too few credits, the key's budget spent, no permission, " +
  'invalid arguments) is a tool result with isError: true whose text is a problem document with type and detail; ' +
  'it costs nothing.';

/** Where the endpoint is served. */
export const MCP_PATH = '/mcp';

export interface McpDeps {
  tools: Tool[];
  /** The one tool-call path, shared with the HTTP routes. */
  callTool: CallTool;
  metering: Metering;
  logger: Logger;
  /** The server's version, told to clients in `initialize`. */
  version: string;
}

/** One POST to the endpoint, as the transport received it. */
export interface McpRequest {
  caller: Caller;
  requestId: string;
  /** The JSON-RPC message, already parsed (and checked against the contract's McpMessage). */
  message: unknown;
  /** The request headers that matter to MCP (Accept, Content-Type, MCP-Protocol-Version). */
  headers: Record<string, string>;
  /** performance.now() when the request arrived. */
  startedAt: number;
  requestBytes: number;
}

/**
 * What to answer: a JSON-RPC response (200), or an accepted notification (202, no body), both already in the
 * caller's usage; or a problem to answer with (not yet recorded, as for any refused HTTP request).
 */
export type McpAnswer = { status: 200; body: unknown } | { status: 202 } | { problem: Problem };

/** State of one tools/call, filled in by the tool handler and read once the transport has answered. */
interface CallState {
  tool?: Tool;
  /** What stopped the call, if something did (answered as an isError tool result). */
  problem?: Problem;
  /** The tool ran: its price is charged with the usage record of the answer. */
  succeeded?: ToolCallResult;
  /** An unexpected error: the whole request fails (500, or 503 when the database is down). */
  failure?: unknown;
  /**
   * A refusal answered as the HTTP request's status, not as a tool result: an OAuth token without the scope the
   * tool needs (403 insufficient_scope, whose challenge a client acts on by asking the person for that scope).
   */
  refusal?: Problem;
}

/** Where a refused call's problem document is, machine-readable, in the tool result's `_meta`. */
export const META_PROBLEM = 'openrush.io/problem';
/** A tools/call's Idempotency-Key, in its params' `_meta` (HTTP's header of the same name). */
export const META_IDEMPOTENCY_KEY = 'openrush.io/idempotency-key';
/** In a tool result's `_meta`: this is the answer kept for an earlier call under the same key (nothing charged). */
export const META_REPLAYED = 'openrush.io/idempotent-replayed';

/** The contract's rule for an Idempotency-Key (its IdempotencyKey header parameter), for the `_meta` one. */
const IDEMPOTENCY_KEY_SCHEMA = (loadContract().components?.parameters?.IdempotencyKey as { schema: { minLength: number; maxLength: number; pattern: string } }).schema;

/** The call's Idempotency-Key from its `_meta`: undefined when none; a 400 problem when it breaks the contract's rule. */
function idempotencyKeyOf(message: unknown): string | undefined {
  const meta = (message as { params?: { _meta?: Record<string, unknown> } }).params?._meta;
  const key = meta?.[META_IDEMPOTENCY_KEY];
  if (key === undefined) return undefined;
  const { minLength, maxLength, pattern } = IDEMPOTENCY_KEY_SCHEMA;
  if (typeof key !== 'string' || key.length < minLength || key.length > maxLength || !new RegExp(pattern).test(key)) {
    throw new Problem('validation_failed', `_meta["${META_IDEMPOTENCY_KEY}"] must be ${minLength} to ${maxLength} visible ASCII characters.`);
  }
  return key;
}

/** The tool result of an answer: as text and, where the tool declares an output schema, as structured content. */
function toolResult(tool: Tool, answer: ToolAnswer): CallToolResult {
  return {
    content: [{ type: 'text', text: JSON.stringify(answer.result) }],
    ...(hasStructuredOutput(tool) ? { structuredContent: answer.result as Record<string, unknown> } : {}),
    ...(answer.replayed ? { _meta: { [META_REPLAYED]: true } } : {}),
  };
}

/**
 * The tool result an agent gets when a call is refused, nothing charged: the problem document an HTTP call would
 * have got, as JSON text (what a model reads) and in `_meta`. Not as structuredContent, which clients check
 * against the tool's outputSchema even on errors.
 */
export function toolError(problem: Problem, requestId: string): CallToolResult {
  const body = problem.body(requestId);
  return { isError: true, content: [{ type: 'text', text: JSON.stringify(body) }], _meta: { [META_PROBLEM]: body } };
}

const TRANSPORT_PROBLEMS: Record<number, ProblemType> = {
  400: 'validation_failed',
  406: 'not_acceptable',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** The problem a JSON-RPC error stands for, for the usage record's error_type and error_message. */
function rpcProblem(error: { code?: unknown; message?: unknown }): Problem {
  const type: ProblemType =
    error.code === ErrorCode.MethodNotFound
      ? 'not_found'
      : error.code === ErrorCode.InvalidParams || error.code === ErrorCode.InvalidRequest || error.code === ErrorCode.ParseError
        ? 'validation_failed'
        : 'internal_error';
  return new Problem(type, String(error.message ?? 'JSON-RPC error'));
}

/**
 * The methods this server answers (the SDK's Server and the handlers below), with the SDK's schema of each. Their
 * params are checked here, before the SDK sees them: the SDK would answer malformed params with -32603 and a raw
 * zod dump; JSON-RPC says -32602 (Invalid params), with a message a person can read.
 */
const METHODS = new Map<string, { safeParse(value: unknown): { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } } }>(
  [
    InitializeRequestSchema,
    PingRequestSchema,
    ListToolsRequestSchema,
    CallToolRequestSchema,
    InitializedNotificationSchema,
    CancelledNotificationSchema,
    ProgressNotificationSchema,
    RootsListChangedNotificationSchema,
  ].map((schema) => [(schema.shape.method as unknown as { value: string }).value, schema]),
);

/** Why the message's params are invalid for its method, in one line; undefined when they are valid (or not ours). */
function invalidParams(message: { method?: unknown }): string | undefined {
  if (typeof message.method !== 'string') return undefined;
  const parsed = METHODS.get(message.method)?.safeParse(message);
  if (!parsed || parsed.success) return undefined;
  const issue = parsed.error?.issues[0];
  const where = issue?.path.length ? issue.path.map(String).join('.') : 'params';
  return `Invalid params for ${message.method}: ${where}: ${(issue?.message ?? 'is invalid').slice(0, 200)}`;
}

export function createMcpHandler(deps: McpDeps) {
  const { tools, metering, logger, callTool } = deps;
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  const listed = tools.map(toMcpTool);

  function mcpServer(request: McpRequest, state: CallState): Server {
    const server = new Server({ name: 'openrush', version: deps.version }, { capabilities: { tools: { listChanged: false } }, instructions: INSTRUCTIONS });
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listed }));
    server.setRequestHandler(CallToolRequestSchema, async ({ params }) => {
      const tool = byName.get(params.name);
      if (!tool) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${params.name.slice(0, 64)}`);
      state.tool = tool;
      // The arguments as the client sent them: the SDK's parse rebuilds the object, and an own "__proto__" key
      // would be lost on the way (and so pass a check that refuses it over HTTP).
      const args = (request.message as { params?: { arguments?: unknown } }).params?.arguments ?? {};
      try {
        const idempotencyKey = idempotencyKeyOf(request.message);
        const run = await callTool({ caller: request.caller, tool, args, requestId: request.requestId, idempotencyKey });
        state.succeeded = run;
        return toolResult(tool, run);
      } catch (error) {
        if (error instanceof Problem && error.problemType === 'insufficient_scope') {
          state.refusal = error;
          return toolError(error, request.requestId);
        }
        if (error instanceof Problem) {
          state.problem = error;
          return toolError(error, request.requestId);
        }
        // Nothing internal reaches the agent: the request is answered like any failed HTTP request.
        state.failure = error;
        throw new McpError(ErrorCode.InternalError, 'Internal error');
      }
    });
    return server;
  }

  /** Answers one POST to the endpoint. Throws what the HTTP side answers as 500 (or 503). */
  return async function handleMcpRequest(request: McpRequest): Promise<McpAnswer> {
    const message = (request.message ?? {}) as { id?: unknown; method?: unknown };
    const call: Omit<Call, 'responseBytes'> = {
      channel: 'mcp' as const,
      endpoint: MCP_PATH,
      method: 'POST',
      statusCode: 200,
      startedAt: request.startedAt,
      requestBytes: request.requestBytes,
      tool: null,
      rpcMethod: typeof message.method === 'string' ? message.method : null,
      requestId: request.requestId,
    };
    const invalid = invalidParams(message);
    if (invalid !== undefined) {
      call.problem = new Problem('validation_failed', invalid);
      if (message.id === undefined) {
        await metering.recordCall(request.caller, { ...call, statusCode: 202, responseBytes: 0 });
        return { status: 202 };
      }
      const body = { jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.InvalidParams, message: invalid } };
      await metering.recordCall(request.caller, { ...call, responseBytes: Buffer.byteLength(JSON.stringify(body)) });
      return { status: 200, body };
    }

    const state: CallState = {};
    const server = mcpServer(request, state);
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    let status: number;
    let text: string;
    try {
      await server.connect(transport);
      // The URL is not the client's: nothing in the answer depends on it, and a Host the URL parser refuses must not
      // stop an MCP request (the public base URL is only needed for the OAuth metadata, see routes/mcp.ts).
      const response = await transport.handleRequest(new Request(`http://openrush.invalid${MCP_PATH}`, { method: 'POST', headers: request.headers }), {
        parsedBody: request.message,
      });
      status = response.status;
      text = await response.text();
    } finally {
      await server.close();
    }
    if (state.failure !== undefined) throw state.failure;
    if (state.refusal) return { problem: state.refusal };
    if (status >= 400) {
      // The transport's own refusals (Accept, protocol version, a batch) become problems like every other error.
      let detail = 'The MCP request was refused.';
      try {
        detail = String((JSON.parse(text) as { error?: { message?: unknown } }).error?.message ?? detail).slice(0, 1024);
      } catch {
        logger.warn({ request_id: request.requestId, status }, 'MCP transport answered an error without JSON');
      }
      return { problem: new Problem(TRANSPORT_PROBLEMS[status] ?? 'internal_error', detail) };
    }

    call.statusCode = status;
    call.tool = state.tool?.name ?? null;
    call.problem = state.problem;
    if (status === 202 || text === '') {
      await metering.recordCall(request.caller, { ...call, statusCode: 202, responseBytes: 0 });
      return { status: 202 };
    }
    let body = JSON.parse(text) as { result?: unknown; error?: { code?: unknown; message?: unknown } };
    // A JSON-RPC error (unknown method or tool) is a failed request for Activity too.
    if (body.error) call.problem = rpcProblem(body.error);
    if (state.succeeded) {
      try {
        const sent = await state.succeeded.charge({ ...call, responseBytes: Buffer.byteLength(text) });
        if (sent.result === state.succeeded.result) return { status: 200, body };
        // A concurrent call under the same Idempotency-Key was charged first: the answer kept for it is sent
        // instead, recorded below, uncharged.
        body = { ...body, result: toolResult(state.tool!, sent) };
      } catch (error) {
        if (!(error instanceof Problem)) throw error;
        // The balance or the budget ran out between the early check and the charge (another call took it):
        // the agent gets the tool error instead of the result, and nothing is charged.
        body = { ...body, result: toolError(error, request.requestId) };
        call.problem = error;
      }
    }
    await metering.recordCall(request.caller, { ...call, responseBytes: Buffer.byteLength(JSON.stringify(body)) });
    return { status: 200, body };
  };
}
