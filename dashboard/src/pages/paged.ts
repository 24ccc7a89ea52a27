// Lists paged by the API's own cursor: `starting_after` = the last item's id, and a `Link: <…>; rel="next"` header
// while more items exist (usage records, the credit ledger). openapi-react-query's useInfiniteQuery does not expose
// response headers, so this reads the page through the same client (`openrush.GET`) and TanStack Query's
// useInfiniteQuery: "Load more" is offered exactly when the server says there is a next page.
import { useInfiniteQuery } from '@tanstack/react-query';

export interface Page<Item> {
  items: Item[];
  /** The cursor for the next page (the last item's id), or undefined when the server sent no rel="next". */
  next: string | undefined;
}

/** True when a `Link` header names a next page. */
export function hasNextLink(link: string | null): boolean {
  return link !== null && /;\s*rel="?next"?/.test(link);
}

/**
 * One page: `fetchPage(cursor)` sends the request through the client and returns its `{ data, error, response }`;
 * an error (the API's problem document) is thrown so the query shows it.
 */
export function useLinkPaged<Item extends { id: string }>(
  queryKey: unknown[],
  fetchPage: (cursor: string | undefined, signal: AbortSignal) => Promise<{ data?: Item[]; error?: unknown; response: Response }>,
  options: { enabled?: boolean } = {},
) {
  return useInfiniteQuery({
    queryKey,
    enabled: options.enabled ?? true,
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam, signal }): Promise<Page<Item>> => {
      const { data, error, response } = await fetchPage(pageParam, signal);
      if (data === undefined) throw error ?? new Error(`HTTP ${response.status}`);
      const last = data.at(-1);
      return { items: data, next: last && hasNextLink(response.headers.get('link')) ? last.id : undefined };
    },
    getNextPageParam: (page) => page.next,
  });
}
