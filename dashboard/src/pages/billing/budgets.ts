// Per-key budgets: the amount from each key's constraints (GET /v2/api-keys), the spent part from the usage
// aggregates split by key over the key's current period (GET /v1/me/usage/aggregates?group_by=api_key). The
// contract gives live counters for the calling key only (GET /v1/me/api-key); a Dashboard session has no key, so
// every key's spend is summed here from the same totals the server keeps with each usage record.
import type { components } from '@openrush/client';

type BudgetPeriod = components['schemas']['BudgetPeriod'];
const DAY_MS = 86_400_000;

/** The current period of a budget, as the contract's BudgetPeriod defines it (UTC day, ISO week, UTC month). */
export function currentPeriod(period: BudgetPeriod, now: Date): { start: Date; end: Date } {
  const day = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  switch (period) {
    case 1:
      return { start: new Date(day), end: new Date(day + DAY_MS) };
    case 2: {
      const sinceMonday = (now.getUTCDay() + 6) % 7;
      const start = day - sinceMonday * DAY_MS;
      return { start: new Date(start), end: new Date(start + 7 * DAY_MS) };
    }
    case 3:
      return { start: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)), end: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)) };
  }
}

/** Credits per key id in an aggregates answer split by key. */
export function creditsByKey(aggregates: components['schemas']['UsageAggregates']): Map<string, number> {
  const totals = new Map<string, number>();
  for (const bucket of aggregates.buckets) {
    if (bucket.group === null) continue;
    totals.set(bucket.group, (totals.get(bucket.group) ?? 0) + bucket.credits);
  }
  return totals;
}
