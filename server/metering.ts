// One usage record per authenticated request, written before the response leaves, so that nothing a client
// has seen acknowledged is missing from its usage. Metered tools write theirs (with the charge) themselves.
import { performance } from 'node:perf_hooks';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Clock } from './clock.ts';
import { recordedEndpoint, redactSecrets } from './endpoint.ts';
import type { IdGenerator } from './ids.ts';
import { Problem } from './problem.ts';
import { BudgetExceededError, InsufficientCreditsError } from './store/errors.ts';
import { budgetFor } from './policy.ts';
import type { Store, UsageRow } from './store/types.ts';

const ERROR_MESSAGE_MAX = 1024;

export interface MeteringDeps {
  store: Store;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** last_used_at is written at most once per this many milliseconds per key. */
  lastUsedGranularityMs: number;
}

export function insufficientCredits(required: number, balance: number): Problem {
  return new Problem(
    402,
    'payment_required',
    `This call costs ${required} credits and the balance is ${balance}. Buy credits at https://openrush.io/dashboard/billing.`,
  );
}

export function createMetering(deps: MeteringDeps) {
  function usageRecord(req: Request, statusCode: number, responseBytes: number, extra: Partial<UsageRow> = {}): UsageRow {
    const caller = req.ctx.caller!;
    const problem: Problem | undefined = req.ctx.problem;
    return {
      id: deps.ids('log'),
      account_id: caller.accountId,
      credential_id: caller.credentialId,
      auth_source: caller.authSource,
      endpoint: recordedEndpoint(req),
      method: req.ctx.head ? 'HEAD' : req.method,
      status_code: statusCode,
      response_time_ms: Math.round(performance.now() - req.ctx.startedAt),
      request_bytes: req.ctx.requestBytes,
      response_bytes: responseBytes,
      dataforseo_cost_usd: 0,
      credits_charged: 0,
      error_type: problem ? problem.problemType : null,
      error_message: problem ? redactSecrets(problem.detail).slice(0, ERROR_MESSAGE_MAX) : null,
      created_at: deps.clock.now().toISOString(),
      ...extra,
    };
  }

  function touchBefore(req: Request): string | undefined {
    const caller = req.ctx.caller!;
    if (caller.credentialId === null) return undefined;
    const threshold = deps.clock.now().getTime() - deps.lastUsedGranularityMs;
    // Skip the write entirely when the key was marked used recently: the hot path stays one insert.
    if (caller.lastUsedAt !== null && Date.parse(caller.lastUsedAt) >= threshold) return undefined;
    return new Date(threshold).toISOString();
  }

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
        : typeof chunk === 'string'
          ? Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
          : chunk instanceof Uint8Array
            ? chunk.byteLength
            : 0;
      const record = usageRecord(req, res.statusCode, bytes);
      deps.store.recordUsage(record, { touchCredentialIfUsedBefore: touchBefore(req) }).then(
        () => end(...args),
        (error: unknown) => {
          // Never acknowledge what the usage does not show: the client gets a 503 and retries (safely, with an
          // Idempotency-Key where it matters).
          deps.logger.error({ err: error, request_id: req.ctx.requestId }, 'usage record not written; answering 503');
          const problem = new Problem(503, 'service_unavailable', 'The request could not be recorded. Try again shortly.');
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
   * For metered handlers: charges `credits` and writes the usage record in one transaction, then sends the body.
   * With too few credits nothing is written here and a 402 problem is thrown (recorded, uncharged, by recordUsage).
   */
  async function chargeAndSend(
    req: Request,
    res: Response,
    reply: { status: number; body: unknown; credits: number; upstreamCostUsd?: number },
  ): Promise<void> {
    // res.json serialises exactly like this, so the recorded size is the size sent.
    const record = usageRecord(req, reply.status, Buffer.byteLength(JSON.stringify(reply.body)), {
      credits_charged: reply.credits,
      dataforseo_cost_usd: reply.upstreamCostUsd ?? 0,
    });
    try {
      await deps.store.recordUsage(record, {
        charge: reply.credits > 0 ? { ledgerId: deps.ids('led'), amount: reply.credits } : undefined,
        budget: reply.credits > 0 ? budgetFor(req.ctx.caller!, deps.clock.now()) : undefined,
        touchCredentialIfUsedBefore: touchBefore(req),
      });
    } catch (error) {
      if (error instanceof InsufficientCreditsError) throw insufficientCredits(error.required, error.balance);
      if (error instanceof BudgetExceededError) {
        throw new Problem(
          402,
          'budget_exhausted',
          `This API key's budget of ${error.amount} credits for the period that began ${error.periodStart} is spent.`,
        );
      }
      throw error;
    }
    req.ctx.usageRecorded = true;
    res.status(reply.status).json(reply.body);
  }

  return { recordUsage, chargeAndSend };
}
