// The HTTP side of metering: a thin hook on Express's res.end that hands each answered request to the domain
// (server/metering.ts) before the response leaves, so that nothing a client has seen acknowledged is missing
// from its usage; and, for metered tool routes, charge-then-send.
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Call, Metering } from '../metering.ts';
import type { AnsweredCall, ToolAnswer } from '../tools/call.ts';
import { MCP_PATH } from '../mcp/index.ts';
import { Problem } from '../problem.ts';
import type { Tool } from '../tools/index.ts';

/** The MCP message of a request to /mcp, as far as it was parsed (a request refused early has none). */
function mcpMessage(req: Request): { method?: unknown; params?: { name?: unknown } } | undefined {
  const body: unknown = req.body;
  return req.path === MCP_PATH && body !== null && typeof body === 'object' && !Array.isArray(body) ? body : undefined;
}

/** What the usage record says about an HTTP request, from its context. */
function callOf(req: Request, statusCode: number, responseBytes: number, toolsByPath: Map<string, string>, toolNames: Set<string>): Call {
  const message = mcpMessage(req);
  const rpcMethod = typeof message?.method === 'string' ? message.method : null;
  const named = rpcMethod === 'tools/call' ? message?.params?.name : undefined;
  return {
    channel: req.path === MCP_PATH ? 'mcp' : 'api',
    endpoint: req.path,
    method: req.ctx.head ? 'HEAD' : req.method,
    statusCode,
    startedAt: req.ctx.startedAt,
    requestBytes: req.ctx.requestBytes,
    responseBytes,
    // The tool a refused call was meant for is named too (a 400 from the validator, a 429…), as MCP names it.
    tool: req.ctx.tool ?? (req.method === 'POST' ? toolsByPath.get(req.path) : undefined) ?? (typeof named === 'string' && toolNames.has(named) ? named : null),
    rpcMethod,
    problem: req.ctx.problem,
    requestId: req.ctx.requestId,
  };
}

export function createUsageHook(metering: Metering, logger: Logger, tools: Tool[]) {
  const toolsByPath = new Map(tools.map((tool) => [tool.path, tool.name]));
  const toolNames = new Set(tools.map((tool) => tool.name));
  /** Middleware: records the response of every request whose caller was resolved. */
  function recordUsage(req: Request, res: Response, next: NextFunction): void {
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    res.end = function endAfterRecording(this: Response, ...args: unknown[]): Response {
      if (!req.ctx.caller || req.ctx.usageRecorded) return end(...args);
      req.ctx.usageRecorded = true;
      const [chunk, encoding] = args;
      // A HEAD answer carries no body, whatever the handler wrote.
      const bytes = req.ctx.head
        ? 0
        : (req.ctx.streamedBytes ?? 0) +
          (typeof chunk === 'string'
            ? Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
            : chunk instanceof Uint8Array
              ? chunk.byteLength
              : 0);
      metering.recordCall(req.ctx.caller, callOf(req, res.statusCode, bytes, toolsByPath, toolNames)).then(
        () => end(...args),
        (error: unknown) => {
          // Never acknowledge what the usage does not show: the client gets a 503 and retries (safely, with an
          // Idempotency-Key where it matters).
          logger.error({ err: error, request_id: req.ctx.requestId }, 'usage record not written; answering 503');
          // A streamed answer (the CSV export) has sent its headers: it is cut short instead (no final chunk), so
          // the client sees a failed download rather than a complete one.
          if (res.headersSent) {
            res.destroy();
            return;
          }
          const problem = new Problem('service_unavailable', 'The request could not be recorded. Try again shortly.');
          // Only the request id and the CORS headers (so a browser can read the 503) are kept.
          for (const header of res.getHeaderNames()) {
            if (header !== 'x-request-id' && header !== 'vary' && !header.startsWith('access-control-')) res.removeHeader(header);
          }
          res.statusCode = 503;
          res.setHeader('Content-Type', 'application/problem+json; charset=utf-8');
          res.setHeader('Retry-After', '1');
          end(JSON.stringify(problem.body(req.ctx.requestId)));
        },
      );
      return res;
    } as Response['end'];
    next();
  }

  /**
   * For metered handlers: `charge` (the domain's, see tools/call.ts) takes the price and writes the usage record of
   * this answer in one transaction, then the body is sent. With too few credits nothing is written here and a 402
   * problem is thrown (recorded, uncharged, by recordUsage). An answer kept under the request's Idempotency-Key is
   * sent with `Idempotent-Replayed: true`; when it is another request's (a concurrent one under the same key won),
   * nothing was written here and recordUsage records it as it is sent.
   */
  async function chargeAndSend(req: Request, res: Response, reply: { status: number; result: unknown; charge: (call: AnsweredCall) => Promise<ToolAnswer> }): Promise<void> {
    // res.json serialises exactly like this, so the recorded size is the size sent.
    const { tool: _tool, problem: _problem, ...call } = callOf(req, reply.status, Buffer.byteLength(JSON.stringify(reply.result)), toolsByPath, toolNames);
    const sent = await reply.charge(call);
    // The answer charge recorded (this call's, or the kept one it replayed): recordUsage must not record it again.
    if (sent.result === reply.result) req.ctx.usageRecorded = true;
    if (sent.replayed) res.set('Idempotent-Replayed', 'true');
    res.status(reply.status).json(sent.result);
  }

  return { recordUsage, chargeAndSend };
}
