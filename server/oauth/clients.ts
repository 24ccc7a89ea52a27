// STAND-IN until reg's server/oauth/clients.ts is merged (same signature): registered clients from the store only.
import type { Deps } from '../deps.ts';

export interface OAuthClientRecord {
  id: string;
  name: string;
  client_uri: string | null;
  redirect_uris: string[];
  source: 'registered' | 'metadata_document';
  created_at: string;
}

export async function findClient(deps: Pick<Deps, 'store' | 'config' | 'clock'>, clientId: string): Promise<{ client: OAuthClientRecord } | { refusal: string }> {
  const row = await deps.store.findOAuthClient(clientId);
  if (!row) return { refusal: 'No client is registered with this client_id.' };
  return {
    client: { id: row.id, name: row.name, client_uri: row.client_uri, redirect_uris: JSON.parse(row.redirect_uris) as string[], source: row.source, created_at: row.created_at },
  };
}
