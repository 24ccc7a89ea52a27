// The account's events (GET /v1/me/events) and the low-balance threshold that makes credits.low.
import type { Operations } from '../dispatch.ts';
import type { Deps } from '../../deps.ts';
import { toAccountEvent } from '../../events.ts';
import { validationFailed } from '../../problem.ts';
import { readTimeRange } from '../../usage.ts';
import { USAGE_LIMIT } from './account.ts';
import { route } from './typed.ts';

/** The filters a next page keeps, as they were sent. */
const EVENT_FILTER_PARAMETERS = ['type', 'credential_id', 'from', 'to'] as const;

export function eventRoutes(router: Operations, deps: Deps): void {
  const { store } = deps;

  route(router, 'get', '/v1/me/events', async (req, { query }) => {
    const accountId = req.ctx.caller!.accountId;
    const limit = Math.min(USAGE_LIMIT.max, Math.max(USAGE_LIMIT.min, query.limit ?? USAGE_LIMIT.default));
    const range = readTimeRange(query);
    const after = query.starting_after === undefined ? undefined : await store.getEvent(accountId, query.starting_after);
    if (query.starting_after !== undefined && !after) {
      throw validationFailed(
        [{ location: 'query', pointer: '/starting_after', message: 'is not the id of an event of this account' }],
        'starting_after must be the id of one of your events.',
      );
    }
    const rows = await store.listEvents(accountId, { ...range, type: query.type, credentialId: query.credential_id, limit: limit + 1, startingAfter: after });
    const page = rows.slice(0, limit);
    const headers: Record<string, string> = {};
    if (rows.length > limit) {
      const next = new URLSearchParams({ limit: String(limit), starting_after: page[page.length - 1]!.id });
      for (const name of EVENT_FILTER_PARAMETERS) if (query[name] !== undefined) next.set(name, String(query[name]));
      headers.Link = `<${req.path}?${next}>; rel="next"`;
    }
    return { status: 200, body: page.map(toAccountEvent), headers };
  });

  route(router, 'get', '/v1/me/credits/low-balance-alert', async (req) => {
    const threshold = await store.getLowBalanceThreshold(req.ctx.caller!.accountId);
    if (threshold === undefined) throw new Error(`the caller's account ${req.ctx.caller!.accountId} is not in the store`);
    return { status: 200, body: { threshold } };
  });

  route(router, 'put', '/v1/me/credits/low-balance-alert', async (req, { body }) => {
    await store.setLowBalanceThreshold(req.ctx.caller!.accountId, body.threshold);
    return { status: 200, body: { threshold: body.threshold } };
  });
}
