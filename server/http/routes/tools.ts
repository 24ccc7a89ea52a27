import type { NextFunction, Request, Response } from 'express';
import type { Operations } from '../dispatch.ts';
import type { createUsageHook } from '../metering.ts';
import type { Tool } from '../../tools/index.ts';

/** One POST route per tool: run it, then charge its price and record the call in one transaction. */
export function toolRoutes(router: Operations, tools: Tool[], metering: ReturnType<typeof createUsageHook>): void {
  for (const tool of tools) {
    router.post(tool.path, async (req: Request, res: Response, next: NextFunction) => {
      req.ctx.tool = tool.name;
      try {
        // No balance pre-check: the guarded charge in chargeAndSend refuses (402) what the balance cannot cover,
        // and a read here would only be one more round trip on every call that succeeds.
        const output = await tool.handler(req.body, { accountId: req.ctx.caller!.accountId, requestId: req.ctx.requestId });
        const upstream = output.upstreamCostUsd ?? 0;
        if (!Number.isFinite(upstream) || upstream < 0) throw new Error(`tool ${tool.name} reported an invalid upstream cost`);
        await metering.chargeAndSend(req, res, { status: 200, body: output.result, credits: tool.credits, upstreamCostUsd: upstream });
      } catch (error) {
        next(error);
      }
    });
  }
}
