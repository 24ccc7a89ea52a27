import type { Operations } from '../dispatch.ts';
import type { Deps } from '../../deps.ts';
import { validationFailed } from '../../problem.ts';
import { route } from './typed.ts';

export const USAGE_LIMIT = { default: 50, min: 1, max: 500 } as const;

export function accountRoutes(router: Operations, deps: Deps): void {
  const { store } = deps;

  route(router, 'get', '/v1/me/credits', async (req) => {
    const balance = await store.getBalance(req.ctx.caller!.accountId);
    return { status: 200, body: { balance: balance ?? 0 } };
  });

  route(router, 'get', '/v1/me/usage', async (req, { query }) => {
    const accountId = req.ctx.caller!.accountId;
    // Clamped, not refused: the seed documents `limit` as "clamped between 1 and 500".
    const limit = Math.min(USAGE_LIMIT.max, Math.max(USAGE_LIMIT.min, query.limit ?? USAGE_LIMIT.default));
    const after = query.starting_after === undefined ? undefined : await store.getUsageRecord(accountId, query.starting_after);
    if (query.starting_after !== undefined && !after) {
      throw validationFailed(
        [{ location: 'query', pointer: '/starting_after', message: 'is not the id of a usage record of this account' }],
        'starting_after must be the id of one of your usage records.',
      );
    }
    const rows = await store.listUsage(accountId, {
      limit: limit + 1,
      startingAfter: after,
      credentialId: query.credential_id,
      channel: query.channel,
    });
    const page = rows.slice(0, limit);
    const headers: Record<string, string> = {};
    if (rows.length > limit) {
      const next = new URLSearchParams({ limit: String(limit), starting_after: page[page.length - 1]!.id });
      if (query.credential_id) next.set('credential_id', query.credential_id);
      if (query.channel) next.set('channel', query.channel);
      headers.Link = `<${req.path}?${next}>; rel="next"`;
    }
    return { status: 200, body: page, headers };
  });
}
