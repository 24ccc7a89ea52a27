// Usage as the Dashboard's Activity reads it: the filters of GET /v1/me/usage and its CSV export, the export's
// rows, and the range of the aggregates. Nothing here knows about Express; the store does the querying.
import type { components, operations } from '../generated/openapi.d.ts';
import { loadContract } from './contract.ts';
import { validationFailed } from './problem.ts';
import { LATEST_TIMESTAMP_MS, readTimestamp } from './timestamps.ts';
import type { Store, UsageAggregateQuery, UsageFilter, UsageRow } from './store/types.ts';

type UsageRecord = components['schemas']['UsageRecord'];
type ListQuery = NonNullable<operations['listUsage']['parameters']['query']>;
type AggregatesQuery = NonNullable<operations['getUsageAggregates']['parameters']['query']>;

/** The query parameters that select records, in the order a `Link` carries them on. */
export const USAGE_FILTER_PARAMETERS = ['credential_id', 'channel', 'from', 'to', 'tool', 'status_class'] as const;

/** A usage record as the API answers it. */
export function usageRecordOf(row: UsageRow): UsageRecord {
  // Records written before request ids (migration 008) or OAuth clients (011) were kept have none.
  return { ...row, request_id: row.request_id ?? null, oauth_client_id: row.oauth_client_id ?? null, dataforseo_cost_usd: Number(row.dataforseo_cost_usd) };
}

function rangeOrder(pointer: 'to' | 'from', detail: string) {
  return validationFailed([{ location: 'query', pointer: `/${pointer}`, message: detail }], detail);
}

/** The store's filter for the query of listUsage / exportUsage; `to` not after `from` is a 400. */
/** A list's `from` and `to` query parameters: RFC 3339 with any offset (a leap second too), as ISO in UTC with milliseconds, as the tables keep times. */
export function readTimeRange(query: { from?: string; to?: string }): { from?: string; to?: string } {
  const from = query.from === undefined ? undefined : readTimestamp(query.from, '/from', 'query');
  const to = query.to === undefined ? undefined : readTimestamp(query.to, '/to', 'query');
  if (from !== undefined && to !== undefined && to <= from) throw rangeOrder('to', 'to must be after from.');
  return { from, to };
}

export function usageFilter(query: Pick<ListQuery, (typeof USAGE_FILTER_PARAMETERS)[number]>): UsageFilter {
  const { from, to } = readTimeRange(query);
  return {
    credentialId: query.credential_id,
    channel: query.channel,
    from,
    to,
    tool: query.tool,
    statusClass: query.status_class === undefined ? undefined : Number(query.status_class[0]),
  };
}

// ---- CSV (RFC 4180) ----

/** The export's columns: UsageRecord's `required` list, in its order (the contract says so). */
export function usageCsvColumns(): Array<keyof UsageRecord> {
  const schema = loadContract().components?.schemas?.UsageRecord as { required?: Array<keyof UsageRecord> } | undefined;
  if (!schema?.required?.length) throw new Error('the contract gives UsageRecord no required list');
  return schema.required;
}

/**
 * One cell: empty for null; a text that a spreadsheet would run as a formula (it starts with =, +, -, @, a tab or a
 * carriage return: OWASP's "CSV injection") gets a leading '; quoted when it holds a comma, a quote or a line end.
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(cells: unknown[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

/** Records fetched per query of the export (keyset paging, newest first). */
export const EXPORT_BATCH = 1000;

/**
 * The CSV of every record the filter selects, newest first, as chunks of one store query each (the header row
 * with the first). Pulled one chunk at a time (the reader's backpressure decides when the next query
 * runs), so the memory held is one batch, however many records match; a reader that stops (a client that went
 * away) ends the generator, and no further query runs.
 */
export async function* usageCsv(store: Store, accountId: string, filter: UsageFilter, batch = EXPORT_BATCH): AsyncGenerator<string> {
  const columns = usageCsvColumns();
  let after: Pick<UsageRow, 'id' | 'created_at'> | undefined;
  // The header row goes with the first batch, so that a first query that fails is still answered as a problem.
  let header = csvLine(columns);
  for (;;) {
    const rows = await store.listUsage(accountId, { ...filter, limit: batch, startingAfter: after });
    let chunk = header;
    header = '';
    for (const row of rows) {
      const record = usageRecordOf(row);
      chunk += csvLine(columns.map((column) => record[column]));
    }
    if (chunk) yield chunk;
    if (rows.length < batch) return;
    const last = rows[rows.length - 1]!;
    after = { id: last.id, created_at: last.created_at };
  }
}

/** `attachment; filename="openrush-usage[-<from>-<to>].csv"`, the instants compacted (no ':' in file names). */
export function exportFileName(filter: UsageFilter): string {
  const stamp = (iso: string | undefined, otherwise: string) => (iso ? iso.replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '') : otherwise);
  const name = filter.from || filter.to ? `openrush-usage-${stamp(filter.from, 'start')}-${stamp(filter.to, 'now')}.csv` : 'openrush-usage.csv';
  return `attachment; filename="${name}"`;
}

// ---- Aggregates ----

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The most intervals one answer covers (31 days by hour); the contract says so. */
export const MAX_AGGREGATE_INTERVALS = 744;
/** The range when none is given. */
const DEFAULT_RANGE_DAYS = 30;

/**
 * The store's query for getUsageAggregates: `from` rounded down and `to` up to the interval's boundaries; unset,
 * the last 30 days up to the end of the current interval (`to` unset: the end of the current interval; `from`
 * unset: 30 days before `to`). `to` not after `from`, or more than 744 intervals, is a 400.
 */
export function aggregateRange(query: AggregatesQuery, now: Date): UsageAggregateQuery {
  const interval = query.interval ?? 'day';
  const width = interval === 'hour' ? HOUR_MS : DAY_MS;
  const floor = (ms: number) => Math.floor(ms / width) * width;
  const ceil = (ms: number) => Math.ceil(ms / width) * width;
  const given = usageFilter({ from: query.from, to: query.to });
  const to = given.to === undefined ? floor(now.getTime()) + width : ceil(Date.parse(given.to));
  const from = given.from === undefined ? to - DEFAULT_RANGE_DAYS * DAY_MS : floor(Date.parse(given.from));
  // Rounded up past 9999-12-31, `to` would not be a date-time any more.
  if (to > LATEST_TIMESTAMP_MS) throw rangeOrder('to', `to must end by 9999-12-31 once rounded up to the ${interval}.`);
  if (to <= from) throw rangeOrder('from', 'from must be before to (unset, the end of the current interval).');
  const intervals = (to - from) / width;
  if (intervals > MAX_AGGREGATE_INTERVALS) {
    throw rangeOrder(
      query.to === undefined ? 'from' : 'to',
      `The range covers ${intervals} intervals of a ${interval}; at most ${MAX_AGGREGATE_INTERVALS} are answered. Narrow it, or use interval=day.`,
    );
  }
  const groupBy = query.group_by === 'api_key' ? 'credential' : query.group_by;
  // One row more than an answer may hold, to tell that it would hold too many.
  const limit = maxBuckets() + 1;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), interval, limit, ...(groupBy ? { groupBy } : {}) };
}

/** The most buckets one answer holds (UsageAggregates.buckets' maxItems in the contract). */
export function maxBuckets(): number {
  const schema = loadContract().components?.schemas?.UsageAggregates as { properties?: { buckets?: { maxItems?: number } } } | undefined;
  const max = schema?.properties?.buckets?.maxItems;
  if (typeof max !== 'number') throw new Error('the contract gives UsageAggregates.buckets no maxItems');
  return max;
}

/** An answer past maxBuckets (by key, an account with thousands of keys over a long range): a 400 that says what to narrow. */
export function tooManyBuckets(interval: string): Error {
  const detail = `The answer would hold more than ${maxBuckets()} buckets. Narrow the range, or use interval=day rather than ${interval}.`;
  return validationFailed([{ location: 'query', pointer: '/group_by', message: detail }], detail);
}
