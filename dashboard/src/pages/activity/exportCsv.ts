// "Export CSV": GET /v1/me/usage/export through the client (as every request of the Dashboard), its answer saved
// with an object URL. Why not a plain link: a refusal (a 429, a 503, a filter the server refuses) then shows on the
// page as the problem's detail, as every other error does, instead of being saved as the file or replacing the app.
// The cost: the browser holds the file in memory until it is saved; for exports of millions of records, use the
// API (curl streams it to disk, README).
import { createOpenRushClient } from '@openrush/client';
import type { ExportQuery } from './filters.ts';

// Its own client only for the timeout: an export of a long range may take longer than the pages' 30 s.
const exporter = createOpenRushClient({ baseUrl: window.location.origin, retries: 1, timeoutMs: 0 });

function fileName(disposition: string | null): string {
  const match = disposition ? /filename="?([^";]+)"?/.exec(disposition) : null;
  return match?.[1] ?? 'openrush-usage.csv';
}

/** Downloads the records `query` selects; throws the API's problem when it refuses. Returns the file's name. */
export async function exportCsv(query: ExportQuery): Promise<string> {
  const { data, error, response } = await exporter.GET('/v1/me/usage/export', { params: { query }, parseAs: 'blob' });
  if (data === undefined) throw error;
  const name = fileName(response.headers.get('content-disposition'));
  const url = URL.createObjectURL(data as Blob);
  try {
    const link = document.createElement('a');
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
  } finally {
    // The download has taken its copy once click() returns; a short delay keeps slower browsers safe.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
  return name;
}
