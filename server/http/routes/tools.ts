import type { NextFunction, Request, Response } from 'express';
import type { Operations } from '../dispatch.ts';
import type { createUsageHook } from '../metering.ts';
import type { CallTool } from '../../tools/call.ts';
import type { Tool } from '../../tools/index.ts';

/**
 * One POST route per tool: the domain's tool call (the same one MCP's tools/call runs), then its price charged with
 * the usage record in one transaction as the answer is sent. A refusal is thrown as a problem, recorded uncharged.
 */
export function toolRoutes(router: Operations, tools: Tool[], callTool: CallTool, metering: ReturnType<typeof createUsageHook>): void {
  for (const tool of tools) {
    router.post(tool.path, async (req: Request, res: Response, next: NextFunction) => {
      req.ctx.tool = tool.name;
      try {
        const run = await callTool({ caller: req.ctx.caller!, tool, args: req.body, requestId: req.ctx.requestId, idempotencyKey: req.get('Idempotency-Key') });
        await metering.chargeAndSend(req, res, { status: 200, result: run.result, charge: run.charge });
      } catch (error) {
        next(error);
      }
    });
  }
}
