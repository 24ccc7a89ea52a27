// Async iterators over every page of a list: `for await (const key of allApiKeys(openrush)) …`.
import type { components, paths } from '../generated/openapi.d.ts';
import { OpenRushError } from './errors.ts';
import type { OpenRushClient } from './index.ts';

type ApiKeysQuery = NonNullable<paths['/v2/api-keys']['get']['parameters']['query']>;
type UsageQuery = NonNullable<paths['/v1/me/usage']['get']['parameters']['query']>;
type LedgerQuery = NonNullable<paths['/v1/me/credits/ledger']['get']['parameters']['query']>;
type EventsQuery = NonNullable<paths['/v1/me/events']['get']['parameters']['query']>;

/**
 * Every API key the client's credential can see, newest first, fetching page after page (`starting_after`).
 * Throws an `OpenRushError` when the API refuses a page.
 */
export async function* allApiKeys(
  client: OpenRushClient,
  query: Omit<ApiKeysQuery, 'starting_after' | 'ending_before'> = {},
): AsyncGenerator<components['schemas']['ApiKey']> {
  let startingAfter: string | undefined;
  for (;;) {
    const result = await client.GET('/v2/api-keys', {
      params: { query: { ...query, ...(startingAfter ? { starting_after: startingAfter } : {}) } },
    });
    if (!result.data) throw OpenRushError.from(result);
    const last = result.data.data.at(-1);
    // A page ending where the cursor stands is the same page again (a mock answering one example, say): stop.
    if (last && last.api_key_id === startingAfter) return;
    yield* result.data.data;
    if (!result.data.has_more || !last) return;
    startingAfter = last.api_key_id;
  }
}

/**
 * Every usage record, newest first, following the `Link: rel="next"` cursor from page to page.
 * Throws an `OpenRushError` when the API refuses a page.
 */
export function allUsage(
  client: OpenRushClient,
  query: Omit<UsageQuery, 'starting_after'> = {},
): AsyncGenerator<components['schemas']['UsageRecord']> {
  return followNextLinks((startingAfter) => client.GET('/v1/me/usage', { params: { query: { ...query, ...startingAfter } } }));
}

/**
 * Every entry of the credit ledger, newest first, following the `Link: rel="next"` cursor from page to page.
 * Throws an `OpenRushError` when the API refuses a page.
 */
export function allLedgerEntries(
  client: OpenRushClient,
  query: Omit<LedgerQuery, 'starting_after'> = {},
): AsyncGenerator<components['schemas']['LedgerEntry']> {
  return followNextLinks((startingAfter) => client.GET('/v1/me/credits/ledger', { params: { query: { ...query, ...startingAfter } } }));
}

/**
 * Every event of the account (`type`, `credential_id`, `from` and `to` filter them), newest first, following the
 * `Link: rel="next"` cursor from page to page. Throws an `OpenRushError` when the API refuses a page.
 */
export function allEvents(
  client: OpenRushClient,
  query: Omit<EventsQuery, 'starting_after'> = {},
): AsyncGenerator<components['schemas']['AccountEvent']> {
  return followNextLinks((startingAfter) => client.GET('/v1/me/events', { params: { query: { ...query, ...startingAfter } } }));
}

/**
 * The items of a list whose pages say there is more with `Link: rel="next"`, each page asked for with the id of the
 * last item before it (`starting_after`, passed to `page` as a query fragment to spread; none for the first page).
 */
async function* followNextLinks<Item extends { id: string }>(
  page: (startingAfter: { starting_after?: string }) => Promise<{ data?: Item[]; error?: unknown; response: Response }>,
): AsyncGenerator<Item> {
  let startingAfter: string | undefined;
  for (;;) {
    const result = await page(startingAfter ? { starting_after: startingAfter } : {});
    if (!result.data) throw OpenRushError.from(result);
    const last = result.data.at(-1);
    // A page ending where the cursor stands is the same page again (a mock answering one example, say): stop.
    if (last && last.id === startingAfter) return;
    yield* result.data;
    if (!last || !/rel="?next"?/.test(result.response.headers.get('link') ?? '')) return;
    startingAfter = last.id;
  }
}
