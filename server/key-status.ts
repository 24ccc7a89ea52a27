// The calling key's own view: its scope and constraints with live counters (budget spent and left this period,
// requests left in the rate-limit window). One function for both ways in: GET /v1/me/api-key and the free tool
// get_key_status (HTTP and MCP). Any key may read itself; a Dashboard session has no key.
import type { components } from '../generated/openapi.d.ts';
import type { Clock } from './clock.ts';
import type { Caller } from './context.ts';
import { toApiKey } from './credentials.ts';
import { budgetPeriodOf, type RateLimits } from './permissions.ts';
import { notFound } from './problem.ts';
import type { Store } from './store/types.ts';

export type KeyStatus = components['schemas']['KeyStatus'];

export interface KeyStatusDeps {
  store: Store;
  clock: Clock;
  rateLimits: RateLimits;
}

export function createKeyStatusReader(deps: KeyStatusDeps) {
  return async function readKeyStatus(caller: Caller): Promise<KeyStatus> {
    const key = caller.key;
    if (!key) {
      throw notFound('This request was made with a Dashboard session, not an API key: there is no calling key to show. See GET /v1/me.');
    }
    const now = deps.clock.now();
    // The key as it was when the request arrived: it was valid then, or the request would have been refused.
    // (KeyStatus does not show the OAuth client: no grant needed for this view.)
    const view = toApiKey(key, now, undefined);
    let budget: KeyStatus['budget'] = null;
    if (view.constraints.budget) {
      const { period, amount } = view.constraints.budget;
      const { start, end } = budgetPeriodOf(period, now);
      const spent = await deps.store.getKeySpend(key.id, start.toISOString());
      budget = { period, amount, spent, remaining: Math.max(0, amount - spent), period_start: start.toISOString(), resets_at: end.toISOString() };
    }
    const window = await deps.rateLimits.state(key);
    const rateLimit: KeyStatus['rate_limit'] =
      window && key.rate_limit_rpm
        ? {
            requests_per_minute: key.rate_limit_rpm,
            remaining: window.remaining,
            resets_at: new Date(now.getTime() + window.msBeforeReset).toISOString(),
          }
        : null;
    return {
      api_key_id: view.api_key_id,
      name: view.name,
      token_prefix: view.token_prefix,
      status: view.status,
      project_scope: view.project_scope,
      permission_mode: view.permission_mode,
      access: view.access,
      expires_at: view.constraints.expires_at,
      budget,
      rate_limit: rateLimit,
    };
  };
}

export type ReadKeyStatus = ReturnType<typeof createKeyStatusReader>;
