// The account's usage: the records (filtered, paged), their CSV export (streamed), and the hourly rollups' sums.
import type { Response } from 'express';
import type { Operations } from '../dispatch.ts';
import type { Deps } from '../../deps.ts';
import { validationFailed } from '../../problem.ts';
import { aggregateRange, exportFileName, tooManyBuckets, USAGE_FILTER_PARAMETERS, usageCsv, usageFilter, usageRecordOf } from '../../usage.ts';
import { USAGE_LIMIT } from './account.ts';
import { route } from './typed.ts';

export function usageRoutes(router: Operations, deps: Deps): void {
  const { store, clock } = deps;

  route(router, 'get', '/v1/me/usage', async (req, { query }) => {
    const accountId = req.ctx.caller!.accountId;
    // Clamped, not refused: the seed documents `limit` as "clamped between 1 and 500".
    const limit = Math.min(USAGE_LIMIT.max, Math.max(USAGE_LIMIT.min, query.limit ?? USAGE_LIMIT.default));
    const filter = usageFilter(query);
    const after = query.starting_after === undefined ? undefined : await store.getUsageRecord(accountId, query.starting_after);
    if (query.starting_after !== undefined && !after) {
      throw validationFailed(
        [{ location: 'query', pointer: '/starting_after', message: 'is not the id of a usage record of this account' }],
        'starting_after must be the id of one of your usage records.',
      );
    }
    const rows = await store.listUsage(accountId, { ...filter, limit: limit + 1, startingAfter: after });
    const page = rows.slice(0, limit);
    const headers: Record<string, string> = {};
    if (rows.length > limit) {
      // The next page keeps the filters, as they were sent.
      const next = new URLSearchParams({ limit: String(limit), starting_after: page[page.length - 1]!.id });
      for (const name of USAGE_FILTER_PARAMETERS) if (query[name] !== undefined) next.set(name, String(query[name]));
      headers.Link = `<${req.path}?${next}>; rel="next"`;
    }
    return { status: 200, body: page.map(usageRecordOf), headers };
  });

  route(router, 'get', '/v1/me/usage/export', async (req, { query }, res) => {
    const accountId = req.ctx.caller!.accountId;
    const filter = usageFilter(query);
    res.status(200);
    res.set({ 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': exportFileName(filter), 'Cache-Control': 'no-store' });
    // HEAD: the headers, without running the export.
    if (req.ctx.head) {
      res.end();
      return undefined;
    }
    const rows = usageCsv(store, accountId, filter);
    let bytes = 0;
    let gone = false;
    const onClose = () => {
      gone = true;
    };
    res.once('close', onClose);
    try {
      // One chunk (one store query) at a time, written only once the socket has taken the last: the memory held is a
      // batch, however many records match.
      for await (const chunk of rows) {
        if (gone) break;
        bytes += Buffer.byteLength(chunk);
        req.ctx.streamedBytes = bytes;
        if (!res.write(chunk)) await drainedOrClosed(res);
        if (gone) break;
      }
    } catch (error) {
      // Before the first chunk, the failure is answered as a problem document (not as a file to save). Past the
      // headers it cannot be: the error handler cuts the response short (no final chunk), so the client sees a
      // failed download, never a complete-looking file.
      if (!res.headersSent) res.removeHeader('Content-Disposition');
      throw error;
    } finally {
      res.off('close', onClose);
      // The loop ends the generator when it breaks (a client that went away): no further query runs.
    }
    // Recorded once, like any request (the usage hook, on end), also when the client went away mid-way.
    res.end();
    return undefined;
  });

  route(router, 'get', '/v1/me/usage/aggregates', async (req, { query }) => {
    const range = aggregateRange(query, clock.now());
    const rows = await store.usageAggregates(req.ctx.caller!.accountId, range);
    if (rows.length >= range.limit) throw tooManyBuckets(range.interval);
    const totals = { requests: 0, errors: 0, credits: 0 };
    for (const row of rows) {
      totals.requests += row.requests;
      totals.errors += row.errors;
      totals.credits += row.credits;
    }
    return {
      status: 200,
      body: { from: range.from, to: range.to, interval: range.interval, group_by: query.group_by ?? null, buckets: rows, totals },
    };
  });
}

/** Resolves when the response can take more, or is gone; leaves no listener behind. */
function drainedOrClosed(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
