// What a caller may do, enforced on every request it makes, whichever transport carried it:
//   rate limit   — requests per minute per key (429 + Retry-After, RateLimit, RateLimit-Policy), checked early;
//   permissions  — the operation's x-openrush-access against the key's permission_mode and access (403);
//   budget       — the period a metered charge is counted against (see chargeAndSend), and when it resets;
//   no escalation — no key makes or manages a key more powerful than itself.
// Plain functions over the caller and the store: the HTTP middleware (server/http/policy.ts), the tool-call path
// (server/tools/call.ts, shared with /mcp) and the OAuth endpoints call them; nothing here knows about Express.
import { type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import type { components } from '../generated/openapi.d.ts';
import { PermissionMode } from './credentials.ts';
import type { Caller } from './context.ts';
import { scopeFor } from './oauth/scopes.ts';
import { invalidCredential, Problem } from './problem.ts';
import type { BudgetCharge, CredentialRow, Store } from './store/types.ts';

type Access = components['schemas']['ApiKeyAccess'];
export type Resource = keyof Access;
export type Level = 'read' | 'write' | 'use';

const RANK: Record<string, number> = { none: 0, read: 1, use: 1, write: 2 };

/** What is left of a key's rate-limit window, as GET /v1/me/api-key shows it. */
export interface RateLimitState {
  remaining: number;
  /** Milliseconds until the window resets. */
  msBeforeReset: number;
}

const WINDOW_SECONDS = 60;

export function createRateLimits(store: Store) {
  // One limiter per distinct requests-per-minute value; keys are counted by id within it, in the store, so the
  // count is shared by every instance.
  const limiters = new Map<number, RateLimiterAbstract>();
  function limiterFor(rpm: number): RateLimiterAbstract {
    let limiter = limiters.get(rpm);
    if (!limiter) limiters.set(rpm, (limiter = store.rateLimiter({ keyPrefix: `rpm_${rpm}`, points: rpm, duration: WINDOW_SECONDS })));
    return limiter;
  }

  /**
   * Counts one request of the key against its requests-per-minute window (shared by every instance). Undefined for
   * a key without a rate limit; else the RateLimit headers to send and, past the limit, the 429 problem to answer.
   */
  async function consume(key: CredentialRow): Promise<{ headers: Record<string, string>; refused?: Problem } | undefined> {
    const rpm = key.rate_limit_rpm;
    if (!rpm) return undefined;
    const limiter = limiterFor(rpm);
    const policy = `"per-key";q=${rpm};w=${WINDOW_SECONDS}`;
    try {
      const state = await limiter.consume(key.id);
      return { headers: { 'RateLimit-Policy': policy, RateLimit: `"per-key";r=${state.remainingPoints};t=${Math.ceil(state.msBeforeNext / 1000)}` } };
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      const seconds = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
      return {
        headers: { 'RateLimit-Policy': policy, RateLimit: `"per-key";r=0;t=${seconds}` },
        refused: new Problem('too_many_requests', `This API key allows ${rpm} requests per minute. Try again in ${seconds} seconds.`, {
          headers: { 'Retry-After': String(seconds) },
        }),
      };
    }
  }

  /**
   * The key's current window as the shared counter has it, read without consuming a point (the request asking has
   * already been counted by limitRate); undefined for a key without a rate limit.
   */
  async function state(key: CredentialRow): Promise<RateLimitState | undefined> {
    const rpm = key.rate_limit_rpm;
    if (!rpm) return undefined;
    const current = await limiterFor(rpm).get(key.id);
    // No counter: the window has ended (or never began), the whole allowance is there.
    if (!current || current.msBeforeNext <= 0) return { remaining: rpm, msBeforeReset: WINDOW_SECONDS * 1000 };
    return { remaining: Math.max(0, rpm - current.consumedPoints), msBeforeReset: current.msBeforeNext };
  }

  return { consume, state };
}

export type RateLimits = ReturnType<typeof createRateLimits>;

/** Why the caller's key may not act at this level on this resource, or undefined when it may. */
export function refusal(caller: Caller, resource: Resource, level: Level): string | undefined {
  const key = caller.key;
  if (!key || key.permission_mode === PermissionMode.FULL_ACCESS) return undefined;
  if (key.permission_mode === PermissionMode.READ_ONLY) {
    // A tool call spends credits: it is not a read.
    if (level === 'use') return 'This API key is read-only; it cannot call metered tools.';
    if (level !== 'write') return undefined;
    return resource === 'api_keys'
      ? 'This API key is read-only; it cannot create, change, rotate or revoke keys.'
      : `This API key is read-only; it cannot change the account's ${resource} settings.`;
  }
  const granted = (JSON.parse(key.access) as Access)[resource] ?? 'none';
  return (RANK[granted] ?? 0) >= (RANK[level] ?? 2) ? undefined : `This API key's access does not include ${level} on ${resource}.`;
}

/** What an operation or a tool needs: its x-openrush-access. */
export interface AccessNeed {
  resource: Resource;
  level: Level;
}

/**
 * Whether the caller's credential was issued for the operation it is used on (RFC 8707, RFC 9068 §4): an OAuth
 * access token only on an operation that lists the OAuth scheme, and only when bound to that operation's
 * resource (`resource`, `<base>/mcp`; undefined when this request cannot name it); a Supabase session token
 * (audience the Dashboard) never there. The reason it is refused, or undefined.
 */
export function audienceRefusal(caller: Caller, operation: { acceptsOAuth: boolean; resource: string | undefined }): string | undefined {
  if (caller.oauth) {
    if (!operation.acceptsOAuth) return 'OAuth access tokens are accepted on /mcp only: use an API key here.';
    if (caller.oauth.resource !== operation.resource) {
      return `This access token was issued for ${caller.oauth.resource}, not for ${operation.resource ?? 'this server'}: sign in again for this resource.`;
    }
    return undefined;
  }
  if (operation.acceptsOAuth && caller.authSource === 'session') {
    return 'Session tokens are not accepted on /mcp: they are issued for the Dashboard, not for this resource. Use an API key, or sign in with OAuth.';
  }
  return undefined;
}

/** The scope an OAuth caller lacks for this need, or undefined (every other caller has no scopes to lack). */
export function missingScope(caller: Caller, need: AccessNeed | undefined): string | undefined {
  if (!caller.oauth || !need) return undefined;
  const scope = scopeFor(need)!;
  return caller.oauth.scopes.includes(scope) ? undefined : scope;
}

/** RFC 6750 §3.1: 403 insufficient_scope, naming the scope in the challenge so the client can ask for it. */
export function insufficientScope(scope: string): Problem {
  return new Problem('insufficient_scope', `This access token was not granted the scope ${scope}, which this call needs. Sign in again and grant it.`, {
    headers: { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${scope}"` },
  });
}

/** The UTC budget period (1 day, 2 ISO week from Monday, 3 month) that contains `now`: [start, end). */
export function budgetPeriodOf(period: number, now: Date): { start: Date; end: Date } {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  if (period === 2) start.setUTCDate(start.getUTCDate() - ((start.getUTCDay() + 6) % 7)); // back to Monday
  if (period === 3) start.setUTCDate(1);
  const end = new Date(start);
  if (period === 1) end.setUTCDate(end.getUTCDate() + 1);
  else if (period === 2) end.setUTCDate(end.getUTCDate() + 7);
  else end.setUTCMonth(end.getUTCMonth() + 1);
  return { start, end };
}

/** The key's budget for the period containing `now`, if it has one. */
export function budgetFor(caller: Caller, now: Date): BudgetCharge | undefined {
  const key = caller.key;
  if (!key || key.budget_period === null || key.budget_amount === null) return undefined;
  return { credentialId: key.id, periodStart: budgetPeriodOf(key.budget_period, now).start.toISOString(), amount: Number(key.budget_amount) };
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
