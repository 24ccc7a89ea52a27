// Activity's filters live in the page's query string, named as GET /v1/me/usage names them (channel, tool,
// credential_id, status_class, from, to), so a filtered view survives a reload and can be shared, and the mapping
// onto the API is the identity. A relative time range (`range=24h`) stays relative: it is resolved when the page
// reads it. `record` (and `at`, its time) names the record whose details are open.
import type { paths } from '@openrush/client';

export type UsageQuery = NonNullable<paths['/v1/me/usage']['get']['parameters']['query']>;
export type ExportQuery = NonNullable<paths['/v1/me/usage/export']['get']['parameters']['query']>;
export type Channel = NonNullable<UsageQuery['channel']>;
export type StatusClass = NonNullable<UsageQuery['status_class']>;

// Records keyed by the contract's enums: a value added to the contract and not named here does not compile.
export const CHANNEL_LABELS: Record<Channel, string> = { api: 'API', mcp: 'MCP' };
export const STATUS_CLASS_LABELS: Record<StatusClass, string> = {
  '2xx': '2xx success',
  '3xx': '3xx redirect',
  '4xx': '4xx client error',
  '5xx': '5xx server error',
};

export const RANGES = { '1h': 'Last hour', '24h': 'Last 24 hours', '7d': 'Last 7 days', '30d': 'Last 30 days' } as const;
const RANGE_MS: Record<keyof typeof RANGES, number> = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 };
export type RangeChoice = '' | keyof typeof RANGES | 'custom';

export interface Filters {
  channel: Channel | undefined;
  tool: string | undefined;
  credential_id: string | undefined;
  status_class: StatusClass | undefined;
  range: RangeChoice;
  /** RFC 3339, for a custom range. */
  from: string | undefined;
  to: string | undefined;
}

export const FILTER_PARAMS = ['channel', 'tool', 'credential_id', 'status_class', 'range', 'from', 'to'] as const;

function oneOf<T extends string>(value: string | null, allowed: Record<T, unknown>): T | undefined {
  return value !== null && Object.hasOwn(allowed, value) ? (value as T) : undefined;
}

function instant(value: string | null): string | undefined {
  if (!value) return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}

/** The filters a query string holds; anything unreadable is left out rather than sent to the API. */
export function readFilters(search: string): Filters {
  const params = new URLSearchParams(search);
  const range = params.get('range');
  const from = instant(params.get('from'));
  const to = instant(params.get('to'));
  return {
    channel: oneOf(params.get('channel'), CHANNEL_LABELS),
    tool: params.get('tool') || undefined,
    credential_id: params.get('credential_id') || undefined,
    status_class: oneOf(params.get('status_class'), STATUS_CLASS_LABELS),
    range: range && Object.hasOwn(RANGES, range) ? (range as keyof typeof RANGES) : from || to ? 'custom' : '',
    from,
    to,
  };
}

/** The query string for these filters (keeping any other parameter of `search`, such as an open record). */
export function writeFilters(search: string, filters: Filters): string {
  const params = new URLSearchParams(search);
  for (const name of FILTER_PARAMS) params.delete(name);
  if (filters.channel) params.set('channel', filters.channel);
  if (filters.tool) params.set('tool', filters.tool);
  if (filters.credential_id) params.set('credential_id', filters.credential_id);
  if (filters.status_class) params.set('status_class', filters.status_class);
  if (filters.range === 'custom') {
    if (filters.from) params.set('from', filters.from);
    if (filters.to) params.set('to', filters.to);
  } else if (filters.range) {
    params.set('range', filters.range);
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** The API's query for these filters, a relative range resolved against `now`. */
export function usageQuery(filters: Filters, now: number): ExportQuery {
  const query: ExportQuery = {};
  if (filters.channel) query.channel = filters.channel;
  if (filters.tool) query.tool = filters.tool;
  if (filters.credential_id) query.credential_id = filters.credential_id;
  if (filters.status_class) query.status_class = filters.status_class;
  if (filters.range === 'custom') {
    if (filters.from) query.from = filters.from;
    if (filters.to) query.to = filters.to;
  } else if (filters.range) {
    query.from = new Date(now - RANGE_MS[filters.range]).toISOString();
  }
  return query;
}

export function isFiltered(filters: Filters): boolean {
  return Boolean(filters.channel || filters.tool || filters.credential_id || filters.status_class || filters.range);
}

/** `<input type="datetime-local">`'s value (local time, to the minute) for an instant, and back. */
export function toLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function fromLocalInput(value: string): string | undefined {
  if (!value) return undefined;
  const time = new Date(value).getTime();
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}
