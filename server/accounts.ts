// Accounts, as the operator CLI and the starter account make them.
import type { Clock } from './clock.ts';
import { balanceBounds } from './credit-bounds.ts';
import { issueCredential } from './credentials.ts';
import type { IdGenerator } from './ids.ts';
import type { Store } from './store/types.ts';

export interface NewAccount {
  accountId: string;
  credentialId: string;
  /** The first API key, shown once. */
  key: string;
  balance: number;
}

/**
 * Adds credits to an account: one ledger entry and its credits.granted event, in one transaction; returns the new
 * balance (BalanceLimitError past the contract's bound). The one way credits are granted, whoever asks.
 */
export function grantCredits(deps: { store: Store; ids: IdGenerator; clock: Clock }, accountId: string, amount: number, note: string): Promise<number> {
  return deps.store.grantCredits({ ledgerId: deps.ids('led'), eventId: deps.ids('evt'), accountId, amount, note, createdAt: deps.clock.now().toISOString() });
}

export async function createAccountWithKey(
  deps: { store: Store; ids: IdGenerator; clock: Clock },
  input: { name: string; credits: number; keyName?: string },
): Promise<NewAccount> {
  const { store, ids, clock } = deps;
  const { maximum } = balanceBounds();
  if (input.credits > maximum) throw new RangeError(`an account can start with at most ${maximum} credits, not ${input.credits}`);
  const createdAt = clock.now().toISOString();
  const account = await store.createAccount({ id: ids('acct'), name: input.name, balance: 0, session_subject: null, created_at: createdAt });
  const balance = input.credits > 0 ? await grantCredits(deps, account.id, input.credits, 'initial grant') : 0;
  const issued = await issueCredential(store, ids, clock, { accountId: account.id, name: input.keyName ?? 'Default key', by: account.id });
  return { accountId: account.id, credentialId: issued.row.id, key: issued.key, balance };
}
