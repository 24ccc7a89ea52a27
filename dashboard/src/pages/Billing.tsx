// Billing: the balance. (A first version; the ledger, per-key budgets and "Buy credits" come with the Billing work.)
import { $api } from '../api.ts';
import { formatNumber } from '../format.ts';
import { PageTitle } from '../Layout.tsx';
import { QueryState } from '../states.tsx';

export function Billing() {
  const credits = $api.useQuery('get', '/v1/me/credits');
  return (
    <>
      <PageTitle>Billing</PageTitle>
      <QueryState query={credits} what="the balance">
        {(data) => (
          <p className="balance">
            Balance: <strong>{formatNumber(data.balance)}</strong> credits
          </p>
        )}
      </QueryState>
    </>
  );
}
