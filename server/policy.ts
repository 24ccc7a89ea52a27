// What a key may do, enforced on every request made with it:
//   rate limit   — requests per minute per key (429 + Retry-After, RateLimit, RateLimit-Policy), checked early;
//   permissions  — the operation's x-openrush-access against the key's permission_mode and access (403);
//   budget       — the period start a metered charge is counted against (see chargeAndSend).
import type { NextFunction, Request, Response } from 'express';
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import type { components } from '../generated/openapi.d.ts';
import { PermissionMode } from './credentials.ts';
import type { Caller } from './context.ts';
import { Problem } from './problem.ts';
import type { BudgetCharge, CredentialRow, Store } from './store/types.ts';

type Access = components['schemas']['ApiKeyAccess'];
export type Resource = keyof Access;
export type Level = 'read' | 'write' | 'use';

const RANK: Record<string, number> = { none: 0, read: 1, use: 1, write: 2 };

export function createRateLimiter(store: Store) {
  // One limiter per distinct requests-per-minute value; keys are counted by id within it, in the store, so the
  // count is shared by every instance.
  const limiters = new Map<number, RateLimiterAbstract>();
  return async function limitRate(req: Request, res: Response, next: NextFunction): Promise<void> {
    const key = req.ctx.caller?.key;
    const rpm = key?.rate_limit_rpm;
    if (!key || !rpm) return next();
    let limiter = limiters.get(rpm);
    if (!limiter) limiters.set(rpm, (limiter = store.rateLimiter({ keyPrefix: `rpm_${rpm}`, points: rpm, duration: 60 })));
    res.set('RateLimit-Policy', `"per-key";q=${rpm};w=60`);
    try {
      const state = await limiter.consume(key.id);
      res.set('RateLimit', `"per-key";r=${state.remainingPoints};t=${Math.ceil(state.msBeforeNext / 1000)}`);
      next();
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) return next(error);
      const seconds = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
      res.set('RateLimit', `"per-key";r=0;t=${seconds}`);
      next(
        new Problem('too_many_requests', `This API key allows ${rpm} requests per minute. Try again in ${seconds} seconds.`, {
          headers: { 'Retry-After': String(seconds) },
        }),
      );
    }
  };
}

/** Why the caller's key may not act at this level on this resource, or undefined when it may. */
export function refusal(caller: Caller, resource: Resource, level: Level): string | undefined {
  const key = caller.key;
  if (!key || key.permission_mode === PermissionMode.FULL_ACCESS) return undefined;
  if (key.permission_mode === PermissionMode.READ_ONLY) {
    // A tool call spends credits: it is not a read.
    if (level === 'use') return 'This API key is read-only; it cannot call metered tools.';
    return level === 'write' ? 'This API key is read-only; it cannot create, change, rotate or revoke keys.' : undefined;
  }
  const granted = (JSON.parse(key.access) as Access)[resource] ?? 'none';
  return (RANK[granted] ?? 0) >= (RANK[level] ?? 2) ? undefined : `This API key's access does not include ${level} on ${resource}.`;
}

/** After the validator: it has matched the operation, whose x-openrush-access names what it needs. */
export function authorize(req: Request, _res: Response, next: NextFunction): void {
  const caller = req.ctx.caller;
  const operation = (req as Request & { openapi?: { schema?: Record<string, unknown> } }).openapi?.schema;
  const need = operation?.['x-openrush-access'] as { resource: Resource; level: Level } | undefined;
  if (!caller || !need) return next();
  const reason = refusal(caller, need.resource, need.level);
  next(reason ? new Problem('forbidden', reason) : undefined);
}

/** The key's budget for the period containing `now`, if it has one. */
export function budgetFor(caller: Caller, now: Date): BudgetCharge | undefined {
  const key = caller.key;
  if (!key || key.budget_period === null || key.budget_amount === null) return undefined;
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  if (key.budget_period === 2) start.setUTCDate(start.getUTCDate() - ((start.getUTCDay() + 6) % 7)); // back to Monday
  if (key.budget_period === 3) start.setUTCDate(1);
  return { credentialId: key.id, periodStart: start.toISOString(), amount: Number(key.budget_amount) };
}

/** What a key being created or changed will be able to do. */
export interface KeyPowers {
  permissionMode: number;
  access: Access;
  budget: { period: number; amount: number } | null;
  rateLimitRpm: number | null;
  expiresAt: string | null;
}

export function powersOfKey(key: CredentialRow): KeyPowers {
  return {
    permissionMode: key.permission_mode,
    access: JSON.parse(key.access) as Access,
    budget: key.budget_period !== null && key.budget_amount !== null ? { period: key.budget_period, amount: Number(key.budget_amount) } : null,
    rateLimitRpm: key.rate_limit_rpm,
    expiresAt: key.expires_at,
  };
}

/** Refuses (403) managing a key that can do more than the caller: rotating it would hand over its powers. */
export function requireNoMorePowerful(caller: Caller, target: CredentialRow): void {
  const powers = powersOfKey(target);
  let within: boolean;
  try {
    within = JSON.stringify(confineToCaller(caller, powers)) === JSON.stringify(powers);
  } catch {
    within = false;
  }
  if (!within) throw new Problem('forbidden', 'This key cannot manage a key that can do more than itself.');
}

/**
 * No key can make a key more powerful than itself. Fills what the request left out from the caller's own limits
 * (a budgeted key makes budgeted keys), and refuses (403) a permission, access, budget, rate limit or expiry
 * looser than the caller's.
 */
export function confineToCaller(caller: Caller, wanted: Partial<KeyPowers>): Partial<KeyPowers> {
  if (!caller.key) return wanted; // a Dashboard session acts for the whole account
  const own = powersOfKey(caller.key);
  const result = { ...wanted };
  const refuse = (what: string) => {
    throw new Problem('forbidden', `A key cannot give another key more than it has itself: ${what}.`);
  };
  if (own.permissionMode !== PermissionMode.FULL_ACCESS) {
    result.permissionMode ??= PermissionMode.RESTRICTED;
    if (result.permissionMode !== PermissionMode.RESTRICTED) refuse('a restricted key only makes restricted keys');
    result.access ??= own.access;
    for (const [resource, level] of Object.entries(result.access) as Array<[Resource, string]>) {
      if ((RANK[level] ?? 0) > (RANK[own.access[resource] ?? 'none'] ?? 0)) refuse(`${level} on ${resource}`);
    }
  }
  if (own.budget) {
    result.budget ??= own.budget;
    if (result.budget.period !== own.budget.period || result.budget.amount > own.budget.amount) refuse('a looser budget');
  }
  if (own.rateLimitRpm !== null) {
    result.rateLimitRpm ??= own.rateLimitRpm;
    if (result.rateLimitRpm > own.rateLimitRpm) refuse('a higher rate limit');
  }
  if (own.expiresAt !== null) {
    result.expiresAt ??= own.expiresAt;
    if (Date.parse(result.expiresAt) > Date.parse(own.expiresAt)) refuse('a later expiry');
  }
  return result;
}
