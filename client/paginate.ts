// Async iterators over every page of a list: `for await (const key of allApiKeys(openrush)) …`.
import type { components, paths } from '../generated/openapi.d.ts';
import type { OpenRushClient } from './index.ts';

type Problem = components['schemas']['Problem'];
type ApiKeysQuery = NonNullable<paths['/v2/api-keys']['get']['parameters']['query']>;
type UsageQuery = NonNullable<paths['/v1/me/usage']['get']['parameters']['query']>;

/** A request the API answered with a problem document. */
export class OpenRushError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
  ) {
    super(problem ? `${status} ${problem.title}: ${problem.detail}` : `HTTP ${status}`);
    this.name = 'OpenRushError';
  }
}

/** Every API key the client's credential can see, newest first, fetching page after page (`starting_after`). */
export async function* allApiKeys(
  client: OpenRushClient,
  query: Omit<ApiKeysQuery, 'starting_after' | 'ending_before'> = {},
): AsyncGenerator<components['schemas']['ApiKey']> {
  let startingAfter: string | undefined;
  for (;;) {
    const { data, error, response } = await client.GET('/v2/api-keys', {
      params: { query: { ...query, ...(startingAfter ? { starting_after: startingAfter } : {}) } },
    });
    if (!data) throw new OpenRushError(response.status, error as Problem | undefined);
    yield* data.data;
    const last = data.data.at(-1);
    if (!data.has_more || !last) return;
    startingAfter = last.api_key_id;
  }
}

/** Every usage record, newest first, following the `Link: rel="next"` cursor from page to page. */
export async function* allUsage(
  client: OpenRushClient,
  query: Omit<UsageQuery, 'starting_after'> = {},
): AsyncGenerator<components['schemas']['UsageRecord']> {
  let startingAfter: string | undefined;
  for (;;) {
    const { data, error, response } = await client.GET('/v1/me/usage', {
      params: { query: { ...query, ...(startingAfter ? { starting_after: startingAfter } : {}) } },
    });
    if (!data) throw new OpenRushError(response.status, error as Problem | undefined);
    yield* data;
    const last = data.at(-1);
    if (!last || !/rel="next"/.test(response.headers.get('link') ?? '')) return;
    startingAfter = last.id;
  }
}
