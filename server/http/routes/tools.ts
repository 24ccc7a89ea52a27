import { type NextFunction, type Request, type Response, Router } from 'express';
import type { createUsageHook } from '../metering.ts';
import { insufficientCredits } from '../../metering.ts';
import type { Store } from '../../store/types.ts';
import type { Tool } from '../../tools/index.ts';

/** One POST route per tool: run it, then charge its price and record the call in one transaction. */
export function toolRoutes(tools: Tool[], metering: ReturnType<typeof createUsageHook>, store: Store): Router {
  const router = Router();
  for (const tool of tools) {
    router.post(tool.path, async (req: Request, res: Response, next: NextFunction) => {
      req.ctx.tool = tool.name;
      try {
        // Refuse early when the balance cannot cover the price, so no work (or upstream spend) is wasted; the
        // charge itself is still the atomic, guarded one in chargeAndSend.
        const balance = await store.getBalance(req.ctx.caller!.accountId);
        if (balance !== undefined && balance < tool.credits) throw insufficientCredits(tool.credits, balance);
        const output = await tool.handler(req.body, { accountId: req.ctx.caller!.accountId, requestId: req.ctx.requestId });
        const upstream = output.upstreamCostUsd ?? 0;
        if (!Number.isFinite(upstream) || upstream < 0) throw new Error(`tool ${tool.name} reported an invalid upstream cost`);
        await metering.chargeAndSend(req, res, { status: 200, body: output.result, credits: tool.credits, upstreamCostUsd: upstream });
      } catch (error) {
        next(error);
      }
    });
  }
  return router;
}
