// Activity: the account's API and MCP requests, newest first (GET /v1/me/usage, paged by its cursor), filtered by
// channel, tool, key, status class and time range, the filters kept in the query string; the last 30 days per day
// (GET /v1/me/usage/aggregates); a record's details; the filtered records as CSV (GET /v1/me/usage/export); and the
// account's events (GET /v1/me/events, activity/Events.tsx).
import type { UsageRecord } from '@openrush/client';
import { type FormEvent, lazy, Suspense, useMemo, useState } from 'react';
import { $api, openrush } from '../api.ts';
import { formatDateTime, formatNumber } from '../format.ts';
import { PageTitle } from '../Layout.tsx';
import { navigate, useLocation } from '../router.tsx';
import { Empty, Loading, ProblemMessage } from '../states.tsx';
import { exportCsv } from './activity/exportCsv.ts';
import {
  CHANNEL_LABELS,
  type Filters,
  fromLocalInput,
  isFiltered,
  RANGES,
  type RangeChoice,
  readFilters,
  STATUS_CLASS_LABELS,
  toLocalInput,
  usageQuery,
  writeFilters,
} from './activity/filters.ts';
import { Events } from './activity/Events.tsx';
import { RecordDetails, useRecordLookup } from './activity/RecordDetails.tsx';
import { useLinkPaged } from './paged.ts';
import './pages.css';

const PAGE_SIZE = 50;
// The chart and its library (uPlot) load beside the list, not before it: the requests show without waiting for them.
const UsageChart = lazy(() => import('./activity/UsageChart.tsx').then((module) => ({ default: module.UsageChart })));

function useKeyNames() {
  // Names for the key filter and the rows: the first 200 keys (GET /v2/api-keys' largest page).
  const keys = $api.useQuery('get', '/v2/api-keys', { params: { query: { limit: 200 } } });
  return useMemo(() => {
    const names = new Map<string, string>();
    for (const key of keys.data?.data ?? []) names.set(key.api_key_id, key.name);
    return { names, keys: keys.data?.data ?? [] };
  }, [keys.data]);
}

function FilterForm({
  filters,
  search,
  keys,
  ready,
}: {
  filters: Filters;
  search: string;
  keys: { api_key_id: string; name: string; token_prefix: string }[];
  ready: boolean;
}) {
  // The tools' names only fill the tool filter: asked for once the records are on the page.
  const capabilities = $api.useQuery('get', '/v1/capabilities', {}, { enabled: ready });
  const [from, setFrom] = useState(toLocalInput(filters.from));
  const [to, setTo] = useState(toLocalInput(filters.to));
  const apply = (next: Filters) => navigate(`${window.location.pathname}${writeFilters(search, next)}`);
  const setRange = (range: RangeChoice) => {
    if (range === 'custom') {
      const now = Date.now();
      const start = filters.from ?? new Date(now - 86_400_000).toISOString();
      setFrom(toLocalInput(start));
      setTo(toLocalInput(filters.to));
      apply({ ...filters, range, from: start, to: filters.to });
    } else {
      apply({ ...filters, range, from: undefined, to: undefined });
    }
  };
  const applyCustom = (event: FormEvent) => {
    event.preventDefault();
    apply({ ...filters, range: 'custom', from: fromLocalInput(from), to: fromLocalInput(to) });
  };
  const tools = capabilities.data?.tools.map((tool) => tool.name) ?? [];
  if (filters.tool && !tools.includes(filters.tool)) tools.push(filters.tool);
  return (
    <form className="filters" aria-label="Filters" onSubmit={applyCustom}>
      <div className="field">
        <label htmlFor="filter-channel">Channel</label>
        <select id="filter-channel" value={filters.channel ?? ''} onChange={(event) => apply({ ...filters, channel: (event.target.value || undefined) as Filters['channel'] })}>
          <option value="">API and MCP</option>
          {Object.entries(CHANNEL_LABELS).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="filter-tool">Tool</label>
        <select id="filter-tool" value={filters.tool ?? ''} onChange={(event) => apply({ ...filters, tool: event.target.value || undefined })}>
          <option value="">Any request</option>
          {tools.map((tool) => (
            <option key={tool} value={tool}>
              {tool}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="filter-key">Key</label>
        <select id="filter-key" value={filters.credential_id ?? ''} onChange={(event) => apply({ ...filters, credential_id: event.target.value || undefined })}>
          <option value="">Any key or session</option>
          {keys.map((key) => (
            <option key={key.api_key_id} value={key.api_key_id}>
              {key.name} ({key.token_prefix})
            </option>
          ))}
          {filters.credential_id && !keys.some((key) => key.api_key_id === filters.credential_id) ? <option value={filters.credential_id}>{filters.credential_id}</option> : null}
        </select>
      </div>
      <div className="field">
        <label htmlFor="filter-status">Status</label>
        <select id="filter-status" value={filters.status_class ?? ''} onChange={(event) => apply({ ...filters, status_class: (event.target.value || undefined) as Filters['status_class'] })}>
          <option value="">Any status</option>
          {Object.entries(STATUS_CLASS_LABELS).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="filter-range">Time</label>
        <select id="filter-range" value={filters.range} onChange={(event) => setRange(event.target.value as RangeChoice)}>
          <option value="">Any time</option>
          {Object.entries(RANGES).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
          <option value="custom">From… to…</option>
        </select>
      </div>
      {filters.range === 'custom' ? (
        <>
          <div className="field">
            <label htmlFor="filter-from">From (local time)</label>
            <input id="filter-from" type="datetime-local" value={from} onChange={(event) => setFrom(event.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="filter-to">To (local time, not included)</label>
            <input id="filter-to" type="datetime-local" value={to} onChange={(event) => setTo(event.target.value)} />
          </div>
          <div className="field field-button">
            <button type="submit">Apply range</button>
          </div>
        </>
      ) : null}
      {isFiltered(filters) ? (
        <div className="field field-button">
          <button type="button" onClick={() => apply(readFilters(''))}>
            Clear filters
          </button>
        </div>
      ) : null}
    </form>
  );
}

function ExportButton({ query }: { query: ReturnType<typeof usageQuery> }) {
  const [state, setState] = useState<{ status: 'idle' | 'busy' | 'done'; file?: string; error?: unknown }>({ status: 'idle' });
  const run = async () => {
    setState({ status: 'busy' });
    try {
      setState({ status: 'done', file: await exportCsv(query) });
    } catch (error) {
      setState({ status: 'idle', error });
    }
  };
  return (
    <div className="export">
      <button type="button" onClick={() => void run()} disabled={state.status === 'busy'}>
        {state.status === 'busy' ? 'Exporting…' : 'Export CSV'}
      </button>
      <span role="status" className="help">
        {state.status === 'done' ? `Saved ${state.file}: every record these filters select.` : ''}
      </span>
      {state.error ? <ProblemMessage error={state.error} /> : null}
    </div>
  );
}

function Records({
  records,
  keyName,
  openRecord,
}: {
  records: UsageRecord[];
  keyName: (id: string) => string | undefined;
  openRecord: (record: UsageRecord) => void;
}) {
  return (
    <div className="table-wrap">
      <table className="records">
        <caption className="visually-hidden">Requests, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Channel</th>
            <th scope="col">Request</th>
            <th scope="col">Key</th>
            <th scope="col">Status</th>
            <th scope="col">Credits</th>
            <th scope="col">
              <span className="visually-hidden">Details</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {records.map((record) => (
            <tr key={record.id} data-record-id={record.id}>
              <td>
                <time dateTime={record.created_at}>{formatDateTime(record.created_at)}</time>
              </td>
              <td>{CHANNEL_LABELS[record.channel]}</td>
              <td>
                <code>
                  {record.method} {record.endpoint}
                </code>
                {record.tool ? <div className="help">tool {record.tool}</div> : record.rpc_method ? <div className="help">{record.rpc_method}</div> : null}
              </td>
              <td>{record.credential_id ? (keyName(record.credential_id) ?? <code>{record.credential_id}</code>) : <span className="muted">Dashboard</span>}</td>
              <td className={record.status_code >= 400 ? 'status-failed' : undefined}>
                {record.status_code}
                {record.error_type ? <div className="help">{record.error_type}</div> : null}
              </td>
              <td>{formatNumber(record.credits_charged)}</td>
              <td>
                <button type="button" onClick={() => openRecord(record)} aria-label={`Details of ${record.method} ${record.endpoint} at ${formatDateTime(record.created_at)}`}>
                  Details
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Activity() {
  const { search } = useLocation();
  // The filters alone (not an open record), so opening a record neither refetches the list nor resets the form.
  const filterText = writeFilters('', readFilters(search));
  const filters = useMemo(() => readFilters(filterText), [filterText]);
  // A relative range is resolved when the filters change (or the page loads), not on every render.
  const query = useMemo(() => usageQuery(filters, Date.now()), [filters]);
  const { names, keys } = useKeyNames();
  const keyName = (id: string) => names.get(id);
  const usage = useLinkPaged<UsageRecord>(['get', '/v1/me/usage', query], (cursor, signal) =>
    openrush.GET('/v1/me/usage', { params: { query: { ...query, limit: PAGE_SIZE, ...(cursor ? { starting_after: cursor } : {}) } }, signal }),
  );
  const records = usage.data?.pages.flatMap((page) => page.items) ?? [];

  const params = new URLSearchParams(search);
  const recordId = params.get('record') ?? undefined;
  const at = params.get('at') ?? undefined;
  const loaded = recordId ? records.find((record) => record.id === recordId) : undefined;
  const lookup = useRecordLookup(recordId, at, loaded);
  const setRecord = (record: UsageRecord | undefined) => {
    const next = new URLSearchParams(search);
    next.delete('record');
    next.delete('at');
    if (record) {
      next.set('record', record.id);
      next.set('at', record.created_at);
    }
    const text = next.toString();
    navigate(`${window.location.pathname}${text ? `?${text}` : ''}`, { replace: true });
  };

  return (
    <>
      <PageTitle>Activity</PageTitle>
      <p className="lead">Your account's API and MCP requests, newest first, failed ones included.</p>
      <Suspense fallback={<Loading what="the chart" />}>
        <UsageChart ready={!usage.isPending} />
      </Suspense>
      <h2>Requests</h2>
      <FilterForm filters={filters} search={search} keys={keys} key={filterText} ready={!usage.isPending} />
      <ExportButton query={query} />
      {recordId ? <RecordDetails id={recordId} record={loaded ?? lookup.data} lookup={lookup} keyName={keyName} onClose={() => setRecord(undefined)} /> : null}
      {usage.isPending ? (
        <Loading what="activity" />
      ) : usage.isError && !usage.data ? (
        <ProblemMessage
          error={usage.error}
          action={
            <button type="button" onClick={() => void usage.refetch()}>
              Try again
            </button>
          }
        />
      ) : records.length === 0 ? (
        <Empty>
          <p>{isFiltered(filters) ? 'No requests match these filters.' : 'No requests yet. Calls made with your keys, over the API or MCP, show here.'}</p>
        </Empty>
      ) : (
        <>
          <p className="help" aria-live="polite">
            {formatNumber(records.length)} {records.length === 1 ? 'request' : 'requests'} shown
            {usage.hasNextPage ? '; more are older' : ''}.
          </p>
          <Records records={records} keyName={keyName} openRecord={(record) => setRecord(record)} />
          <div className="pager">
            {usage.hasNextPage ? (
              <button type="button" onClick={() => void usage.fetchNextPage()} disabled={usage.isFetchingNextPage}>
                {usage.isFetchingNextPage ? 'Loading…' : 'Load more'}
              </button>
            ) : (
              <span className="help">That is every request these filters select.</span>
            )}
          </div>
          {usage.isFetchNextPageError ? <ProblemMessage error={usage.error} /> : null}
        </>
      )}
      <Events search={search} keyName={keyName} />
    </>
  );
}
