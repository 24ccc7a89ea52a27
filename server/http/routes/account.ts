import type { components } from '../../../generated/openapi.d.ts';
import type { Caller } from '../../context.ts';
import type { Operations } from '../dispatch.ts';
import type { Deps } from '../../deps.ts';
import type { ReadKeyStatus } from '../../key-status.ts';
import { validationFailed } from '../../problem.ts';
import type { LedgerListing } from '../../store/types.ts';
import { route } from './typed.ts';

type Account = components['schemas']['Account'];
type LedgerEntry = components['schemas']['LedgerEntry'];

/** How this request was authenticated, as GET /v1/me says it. */
function signedIn(caller: Caller): Pick<Account, 'auth_source' | 'credential_id' | 'sign_in_method' | 'session_expires_at'> {
  if (caller.authSource === 'api_key') {
    return { auth_source: 'api_key', credential_id: caller.credentialId, sign_in_method: 'api_key', session_expires_at: null };
  }
  // Whoever makes a session caller says how it signed in and when it ends (callers.ts, the session cookie).
  if (!caller.signInMethod || !caller.sessionExpiresAt) throw new Error('a session caller without its sign-in method or expiry');
  return { auth_source: 'session', credential_id: null, sign_in_method: caller.signInMethod, session_expires_at: caller.sessionExpiresAt };
}

function toLedgerEntry(row: LedgerListing): LedgerEntry {
  return {
    id: row.id,
    kind: row.kind,
    amount: row.amount,
    balance_after: row.balance_after,
    note: row.note,
    usage_id: row.usage_id,
    request_id: row.kind === 'charge' ? row.request_id : null,
    created_at: row.created_at,
  };
}

export const USAGE_LIMIT = { default: 50, min: 1, max: 500 } as const;

export function accountRoutes(router: Operations, deps: Deps, readKeyStatus: ReadKeyStatus): void {
  const { store } = deps;

  route(router, 'get', '/v1/me', async (req) => {
    const caller = req.ctx.caller!;
    const account = await store.getAccount(caller.accountId);
    if (!account) throw new Error(`the caller's account ${caller.accountId} is not in the store`);
    return { status: 200, body: { id: account.id, name: account.name, created_at: account.created_at, ...signedIn(caller) } };
  });

  route(router, 'get', '/v1/me/api-key', async (req) => ({ status: 200, body: await readKeyStatus(req.ctx.caller!) }));

  route(router, 'get', '/v1/me/credits/ledger', async (req, { query }) => {
    const accountId = req.ctx.caller!.accountId;
    // Clamped like usage pages, with the same bounds (the contract shares the parameter).
    const limit = Math.min(USAGE_LIMIT.max, Math.max(USAGE_LIMIT.min, query.limit ?? USAGE_LIMIT.default));
    const after = query.starting_after === undefined ? undefined : await store.getLedgerEntry(accountId, query.starting_after);
    if (query.starting_after !== undefined && !after) {
      throw validationFailed(
        [{ location: 'query', pointer: '/starting_after', message: 'is not the id of an entry of this account\'s ledger' }],
        'starting_after must be the id of one of your ledger entries.',
      );
    }
    const rows = await store.listLedger(accountId, { limit: limit + 1, startingAfter: after });
    const page = rows.slice(0, limit);
    const headers: Record<string, string> = {};
    if (rows.length > limit) {
      headers.Link = `<${req.path}?${new URLSearchParams({ limit: String(limit), starting_after: page[page.length - 1]!.id })}>; rel="next"`;
    }
    return { status: 200, body: page.map(toLedgerEntry), headers };
  });

  route(router, 'get', '/v1/me/credits', async (req) => {
    const balance = await store.getBalance(req.ctx.caller!.accountId);
    return { status: 200, body: { balance: balance ?? 0 } };
  });
}
