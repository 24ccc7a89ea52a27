// Billing: the balance (GET /v1/me/credits), the ledger (GET /v1/me/credits/ledger, paged; a charge links to the
// usage record that caused it, opened in Activity's details), each budgeted key's spend this period against its
// amount, and "Buy credits", which says how credits are granted on a server with no purchase flow.
import type { components } from '@openrush/client';
import { useQueries, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useId, useMemo, useState } from 'react';
import { $api, openrush } from '../api.ts';
import { enumLabel, formatDateTime, formatNumber } from '../format.ts';
import { PageTitle } from '../Layout.tsx';
import { BASE, Link } from '../router.tsx';
import { Empty, Loading, ProblemMessage, QueryState } from '../states.tsx';
import { creditsByKey, currentPeriod } from './billing/budgets.ts';
import { useLinkPaged } from './paged.ts';
import './pages.css';

type LedgerEntry = components['schemas']['LedgerEntry'];
type ApiKey = components['schemas']['ApiKey'];
const PAGE_SIZE = 50;
const LIVE_STATUSES = new Set([1, 2]); // ACTIVE, DISABLED: keys that can still spend
const DOLLAR_STEP = 10;

function Balance() {
  const credits = $api.useQuery('get', '/v1/me/credits');
  return (
    <section aria-labelledby="balance-heading">
      <h2 id="balance-heading">Balance</h2>
      <QueryState query={credits} what="the balance">
        {(data) => (
          <p className="balance">
            <strong className="balance-value">{formatNumber(data.balance)}</strong> credits
          </p>
        )}
      </QueryState>
    </section>
  );
}

function BuyCredits() {
  const account = $api.useQuery('get', '/v1/me');
  const [dollars, setDollars] = useState(String(DOLLAR_STEP));
  const [asked, setAsked] = useState<number | null>(null);
  const id = useId();
  const amount = Number(dollars);
  const valid = Number.isInteger(amount) && amount >= DOLLAR_STEP && amount % DOLLAR_STEP === 0 && amount <= 10_000;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (valid) setAsked(amount);
  };
  const accountId = account.data?.id ?? 'ACCOUNT_ID';
  return (
    <section aria-labelledby="buy-heading">
      <h2 id="buy-heading">Buy credits</h2>
      <form className="buy" onSubmit={submit} noValidate>
        <div className="field">
          <label htmlFor={`${id}-dollars`}>Amount in US dollars ($10 steps)</label>
          <span className="buy-input">
            <span aria-hidden="true">$</span>
            <input
              id={`${id}-dollars`}
              type="number"
              inputMode="numeric"
              min={DOLLAR_STEP}
              max={10_000}
              step={DOLLAR_STEP}
              value={dollars}
              aria-invalid={!valid}
              aria-describedby={valid ? undefined : `${id}-error`}
              onChange={(event) => {
                setDollars(event.target.value);
                setAsked(null);
              }}
            />
          </span>
          {valid ? null : (
            <span id={`${id}-error`} className="inline-error">
              Choose $10, $20, $30… (up to $10,000).
            </span>
          )}
        </div>
        <div className="field field-button">
          <button type="submit" className="primary" disabled={!valid}>
            Buy credits
          </button>
        </div>
      </form>
      <div role="status" aria-live="polite">
        {asked !== null ? (
          <div className="notice buy-notice">
            <p>
              <strong>No purchase flow is configured on this server</strong>, so ${formatNumber(asked)} cannot be charged
              here and nothing was bought. Credits are granted by the server's operator, with the command:
            </p>
            <pre>
              <code>openrush credits grant {accountId} CREDITS</code>
            </pre>
            <p className="help">(CREDITS is the number of credits to add; your account id is filled in.)</p>
          </div>
        ) : null}
      </div>
    </section>
  );
}

/** The low-balance alert (GET/PUT /v1/me/credits/low-balance-alert): below it, a charge writes a credits.low event. */
function LowBalanceAlert() {
  const alert = $api.useQuery('get', '/v1/me/credits/low-balance-alert');
  const queryClient = useQueryClient();
  const save = $api.useMutation('put', '/v1/me/credits/low-balance-alert', {
    onSuccess: (data) => queryClient.setQueryData(['get', '/v1/me/credits/low-balance-alert'], data),
  });
  const [text, setText] = useState<string | null>(null);
  const id = useId();
  const current = alert.data?.threshold ?? null;
  const value = text ?? (current === null ? '' : String(current));
  const threshold = Number(value);
  const valid = value !== '' && Number.isSafeInteger(threshold) && threshold >= 1;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (valid) save.mutate({ body: { threshold } }, { onSuccess: () => setText(null) });
  };
  return (
    <section aria-labelledby="alert-heading">
      <h2 id="alert-heading">Low-balance alert</h2>
      <QueryState query={alert} what="the low-balance alert">
        {(data) => (
          <>
            <p role="status">
              {data.threshold === null
                ? 'No alert is set.'
                : `When a charge takes the balance below ${formatNumber(data.threshold)} credits, a "Balance low" event is written (see Activity).`}
            </p>
            <form className="buy" onSubmit={submit} noValidate>
              <div className="field">
                <label htmlFor={`${id}-threshold`}>Alert below (credits)</label>
                <input
                  id={`${id}-threshold`}
                  type="number"
                  inputMode="numeric"
                  min={1}
                  step={1}
                  value={value}
                  aria-invalid={value !== '' && !valid}
                  onChange={(event) => setText(event.target.value)}
                />
              </div>
              <div className="field field-button">
                <button type="submit" disabled={!valid || save.isPending}>
                  Save alert
                </button>
              </div>
              {data.threshold !== null ? (
                <div className="field field-button">
                  <button type="button" disabled={save.isPending} onClick={() => save.mutate({ body: { threshold: null } }, { onSuccess: () => setText(null) })}>
                    Remove alert
                  </button>
                </div>
              ) : null}
            </form>
            {save.isError ? <ProblemMessage error={save.error} /> : null}
          </>
        )}
      </QueryState>
    </section>
  );
}

function Budgets() {
  const keys = $api.useQuery('get', '/v2/api-keys', { params: { query: { limit: 200 } } });
  const now = useMemo(() => new Date(), []);
  const budgeted = (keys.data?.data ?? []).filter((key) => key.constraints.budget && LIVE_STATUSES.has(key.status));
  // One aggregates query per budget period in use (day, week, month): each key's spend over its own period.
  const periods = [...new Set(budgeted.map((key) => key.constraints.budget!.period))].sort();
  const spends = useQueries({
    queries: periods.map((period) => {
      const { start, end } = currentPeriod(period, now);
      const query = { from: start.toISOString(), to: end.toISOString(), interval: 'day' as const, group_by: 'api_key' as const };
      return {
        queryKey: ['get', '/v1/me/usage/aggregates', query],
        queryFn: async ({ signal }: { signal: AbortSignal }) => {
          const { data, error } = await openrush.GET('/v1/me/usage/aggregates', { params: { query }, signal });
          if (!data) throw error;
          return { period, byKey: creditsByKey(data) };
        },
      };
    }),
  });
  const failed = spends.find((spend) => spend.isError);
  return (
    <section aria-labelledby="budgets-heading">
      <h2 id="budgets-heading">Budgets</h2>
      <p className="help">
        Credits each key with a budget has spent in its current period (UTC day, ISO week from Monday, or UTC month),
        summed from the account's usage totals per key. A key sees its own live counters at <code>GET /v1/me/api-key</code>.
      </p>
      {keys.isPending ? (
        <Loading what="the keys" />
      ) : keys.isError ? (
        <ProblemMessage error={keys.error} />
      ) : budgeted.length === 0 ? (
        <Empty>
          <p>
            No key has a budget. Set one in <Link to={`${BASE}/api-access`}>API access</Link>.
          </p>
        </Empty>
      ) : failed ? (
        <ProblemMessage error={failed.error} />
      ) : (
        <div className="table-wrap">
          <table className="budgets">
            <caption className="visually-hidden">Budget spent this period, per key</caption>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Period</th>
                <th scope="col">Spent</th>
                <th scope="col">Budget</th>
                <th scope="col">Left</th>
                <th scope="col">Resets</th>
              </tr>
            </thead>
            <tbody>
              {budgeted.map((key: ApiKey) => {
                const budget = key.constraints.budget!;
                const spend = spends[periods.indexOf(budget.period)];
                const spent = spend?.data?.byKey.get(key.api_key_id);
                const { end } = currentPeriod(budget.period, now);
                return (
                  <tr key={key.api_key_id} data-key-id={key.api_key_id}>
                    <th scope="row">
                      {key.name} <code className="muted">{key.token_prefix}</code>
                    </th>
                    <td>{enumLabel('BudgetPeriod', budget.period)}</td>
                    <td>
                      {spent === undefined && spend?.isPending ? (
                        '…'
                      ) : (
                        <>
                          {formatNumber(spent ?? 0)}{' '}
                          <meter min={0} max={budget.amount} value={Math.min(spent ?? 0, budget.amount)} high={budget.amount * 0.8} optimum={0} aria-label={`${key.name}: ${formatNumber(spent ?? 0)} of ${formatNumber(budget.amount)} credits spent`} />
                        </>
                      )}
                    </td>
                    <td>{formatNumber(budget.amount)}</td>
                    <td>{spent === undefined && spend?.isPending ? '…' : formatNumber(Math.max(0, budget.amount - (spent ?? 0)))}</td>
                    <td>
                      <time dateTime={end.toISOString()}>{formatDateTime(end.toISOString())}</time>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function LedgerRows({ entries }: { entries: LedgerEntry[] }) {
  return (
    <div className="table-wrap">
      <table className="ledger">
        <caption className="visually-hidden">Credit ledger, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Entry</th>
            <th scope="col">Amount</th>
            <th scope="col">Balance after</th>
            <th scope="col">Request</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.id} data-ledger-id={entry.id}>
              <td>
                <time dateTime={entry.created_at}>{formatDateTime(entry.created_at)}</time>
              </td>
              <td>
                {entry.kind === 'grant' ? 'Grant' : 'Charge'}
                {entry.note ? <div className="help">{entry.note}</div> : null}
              </td>
              <td className={entry.amount < 0 ? 'amount-charge' : 'amount-grant'}>
                {entry.amount > 0 ? '+' : entry.amount < 0 ? '−' : ''}
                {formatNumber(Math.abs(entry.amount))}
              </td>
              <td>{formatNumber(entry.balance_after)}</td>
              <td>
                {entry.usage_id ? (
                  <>
                    <Link to={`${BASE}/activity?${new URLSearchParams({ record: entry.usage_id, at: entry.created_at }).toString()}`}>
                      View request<span className="visually-hidden"> of the charge at {formatDateTime(entry.created_at)}</span>
                    </Link>
                    {entry.request_id ? (
                      <div className="help">
                        <code>{entry.request_id}</code>
                      </div>
                    ) : null}
                  </>
                ) : (
                  <span className="muted">—</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Ledger() {
  const ledger = useLinkPaged<LedgerEntry>(['get', '/v1/me/credits/ledger'], (cursor, signal) =>
    openrush.GET('/v1/me/credits/ledger', { params: { query: { limit: PAGE_SIZE, ...(cursor ? { starting_after: cursor } : {}) } }, signal }),
  );
  const entries = ledger.data?.pages.flatMap((page) => page.items) ?? [];
  return (
    <section aria-labelledby="ledger-heading">
      <h2 id="ledger-heading">Ledger</h2>
      <p className="help">Every grant and charge, newest first. A charge links to the request that spent it.</p>
      {ledger.isPending ? (
        <Loading what="the ledger" />
      ) : ledger.isError && !ledger.data ? (
        <ProblemMessage
          error={ledger.error}
          action={
            <button type="button" onClick={() => void ledger.refetch()}>
              Try again
            </button>
          }
        />
      ) : entries.length === 0 ? (
        <Empty>
          <p>No credits granted or spent yet.</p>
        </Empty>
      ) : (
        <>
          <LedgerRows entries={entries} />
          <div className="pager">
            {ledger.hasNextPage ? (
              <button type="button" onClick={() => void ledger.fetchNextPage()} disabled={ledger.isFetchingNextPage}>
                {ledger.isFetchingNextPage ? 'Loading…' : 'Load more'}
              </button>
            ) : (
              <span className="help">That is the whole ledger.</span>
            )}
          </div>
          {ledger.isFetchNextPageError ? <ProblemMessage error={ledger.error} /> : null}
        </>
      )}
    </section>
  );
}

export function Billing() {
  return (
    <>
      <PageTitle>Billing</PageTitle>
      <p className="lead">Your credits: what you have, what was granted and spent, and what each key may still spend.</p>
      <div className="billing-top">
        <Balance />
        <BuyCredits />
      </div>
      <LowBalanceAlert />
      <Budgets />
      <Ledger />
    </>
  );
}
