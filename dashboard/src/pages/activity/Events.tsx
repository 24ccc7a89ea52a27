// Activity's events: what happened to the account's credits and keys (GET /v1/me/events), newest first, paged by the
// API's cursor, filtered by type (kept in the query string as `event_type`, beside the requests' filters).
import type { AccountEvent, EventType } from '@openrush/client';
import { openrush } from '../../api.ts';
import { formatDateTime, formatNumber } from '../../format.ts';
import { navigate } from '../../router.tsx';
import { Empty, Loading, ProblemMessage } from '../../states.tsx';
import { useLinkPaged } from '../paged.ts';

const PAGE_SIZE = 50;

/** Every type the contract declares, labelled: a type added to the contract fails the build until it is labelled here. */
export const EVENT_LABELS: Record<EventType, string> = {
  'credits.granted': 'Credits granted',
  'credits.low': 'Balance low',
  'credits.depleted': 'Credits ran out',
  'budget.exhausted': 'Key budget spent',
  'key.created': 'Key created',
  'key.updated': 'Key changed',
  'key.rotated': 'Key rotated',
  'key.revoked': 'Key revoked',
  'key.expiring': 'Key expiring soon',
  'key.expired': 'Key expired',
};

const isEventType = (value: string | null): value is EventType => value !== null && Object.hasOwn(EVENT_LABELS, value);

/** One line saying what the event's data holds. */
function summary(event: AccountEvent): string {
  switch (event.type) {
    case 'credits.granted':
      return `${formatNumber(event.data.amount)} credits${event.data.note ? ` (${event.data.note})` : ''}; balance ${formatNumber(event.data.balance_after)}`;
    case 'credits.low':
      return `Balance ${formatNumber(event.data.balance_after)}, below the alert at ${formatNumber(event.data.threshold)}`;
    case 'credits.depleted':
      return `A call costing ${formatNumber(event.data.required)} was refused; balance ${formatNumber(event.data.balance)}`;
    case 'budget.exhausted':
      return `Budget of ${formatNumber(event.data.budget_amount)} credits for the period from ${formatDateTime(event.data.period_start)} is spent`;
    case 'key.updated':
      return `${event.data.api_key.name} (${event.data.api_key.prefix}): ${event.data.changed.join(', ') || 'changed'}`;
    case 'key.expiring':
    case 'key.expired':
      return `${event.data.api_key.name} (${event.data.api_key.prefix}), expiry ${formatDateTime(event.data.api_key.expires_at)}`;
    default:
      return `${event.data.api_key.name} (${event.data.api_key.prefix})`;
  }
}

export function Events({ search, keyName }: { search: string; keyName: (id: string) => string | undefined }) {
  const chosen = new URLSearchParams(search).get('event_type');
  const type = isEventType(chosen) ? chosen : undefined;
  const events = useLinkPaged<AccountEvent>(['get', '/v1/me/events', type ?? null], (cursor, signal) =>
    openrush.GET('/v1/me/events', { params: { query: { limit: PAGE_SIZE, ...(type ? { type } : {}), ...(cursor ? { starting_after: cursor } : {}) } }, signal }),
  );
  const items = events.data?.pages.flatMap((page) => page.items) ?? [];
  const choose = (value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set('event_type', value);
    else next.delete('event_type');
    const text = next.toString();
    navigate(`${window.location.pathname}${text ? `?${text}` : ''}`, { replace: true });
  };
  return (
    <section aria-labelledby="events-heading">
      <h2 id="events-heading">Events</h2>
      <p className="help">What happened to your credits and keys. Set a low-balance alert on the Billing page.</p>
      <form className="filters" aria-label="Event filters" onSubmit={(event) => event.preventDefault()}>
        <div className="field">
          <label htmlFor="filter-event-type">Event</label>
          <select id="filter-event-type" value={type ?? ''} onChange={(event) => choose(event.target.value)}>
            <option value="">Any event</option>
            {Object.entries(EVENT_LABELS).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
      </form>
      {events.isPending ? (
        <Loading what="events" />
      ) : events.isError && !events.data ? (
        <ProblemMessage
          error={events.error}
          action={
            <button type="button" onClick={() => void events.refetch()}>
              Try again
            </button>
          }
        />
      ) : items.length === 0 ? (
        <Empty>
          <p>{type ? 'No events of this kind.' : 'No events yet.'}</p>
        </Empty>
      ) : (
        <>
          <div className="table-wrap">
            <table className="events">
              <caption className="visually-hidden">Events, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Event</th>
                  <th scope="col">What</th>
                  <th scope="col">Key</th>
                </tr>
              </thead>
              <tbody>
                {items.map((event) => (
                  <tr key={event.id} data-event-id={event.id} data-event-type={event.type}>
                    <td>
                      <time dateTime={event.created_at}>{formatDateTime(event.created_at)}</time>
                    </td>
                    <td>{EVENT_LABELS[event.type]}</td>
                    <td>{summary(event)}</td>
                    <td>{event.credential_id ? (keyName(event.credential_id) ?? <code>{event.credential_id}</code>) : <span className="muted">Account</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="pager">
            {events.hasNextPage ? (
              <button type="button" onClick={() => void events.fetchNextPage()} disabled={events.isFetchingNextPage}>
                {events.isFetchingNextPage ? 'Loading…' : 'Load more events'}
              </button>
            ) : (
              <span className="help">That is every event{type ? ' of this kind' : ''}.</span>
            )}
          </div>
          {events.isFetchNextPageError ? <ProblemMessage error={events.error} /> : null}
        </>
      )}
    </section>
  );
}
