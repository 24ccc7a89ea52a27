import type { Operations } from '../dispatch.ts';
import type { Deps } from '../../deps.ts';
import { route } from './typed.ts';

export const USAGE_LIMIT = { default: 50, min: 1, max: 500 } as const;

export function accountRoutes(router: Operations, deps: Deps): void {
  const { store } = deps;

  route(router, 'get', '/v1/me/credits', async (req) => {
    const balance = await store.getBalance(req.ctx.caller!.accountId);
    return { status: 200, body: { balance: balance ?? 0 } };
  });
}
