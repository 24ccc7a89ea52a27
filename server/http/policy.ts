// HTTP glue for what a caller may do (the rules are in server/permissions.ts): the per-key rate limit, early, and
// the operation's x-openrush-access, once the validator has matched the operation.
import type { NextFunction, Request, Response } from 'express';
import { type AccessNeed, insufficientScope, missingScope, type RateLimits, refusal } from '../permissions.ts';
import { Problem } from '../problem.ts';

/** Middleware: counts the request against its key's rate limit, and answers 429 past it. */
export function createRateLimitStep(rateLimits: RateLimits) {
  return async function limitRate(req: Request, res: Response, next: NextFunction): Promise<void> {
    const key = req.ctx.caller?.key;
    if (!key) return next();
    const counted = await rateLimits.consume(key);
    if (!counted) return next();
    res.set(counted.headers);
    next(counted.refused);
  };
}

/** After the validator: it has matched the operation, whose x-openrush-access names what it needs. */
export function authorize(req: Request, _res: Response, next: NextFunction): void {
  const caller = req.ctx.caller;
  const operation = (req as Request & { openapi?: { schema?: Record<string, unknown> } }).openapi?.schema;
  const need = operation?.['x-openrush-access'] as AccessNeed | undefined;
  if (!caller || !need) return next();
  const scope = missingScope(caller, need);
  if (scope) return next(insufficientScope(scope));
  const reason = refusal(caller, need.resource, need.level);
  next(reason ? new Problem('forbidden', reason) : undefined);
}
