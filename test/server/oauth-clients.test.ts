// findClient: registered clients from the database, and client ID metadata documents fetched from a real TLS server
// (the test's own, on loopback, reachable only through the test-only option) and cached in the database.
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.ts';
import { cacheSeconds, type ClientDeps, findClient, redirectUriRefusal } from '../../server/oauth/clients.ts';
import { TestClock } from '../helpers/clock.ts';
import { openTestStore, type TestStore } from '../helpers/stores.ts';
import { authorize, goodRequest, pkce, REDIRECT_URI } from '../helpers/oauth.ts';
import { jsonInit, startTestServer } from '../helpers/server.ts';
import { startTlsServer, type TestTlsServer } from '../helpers/tls-server.ts';

type Document = Record<string, unknown>;

let tls: TestTlsServer;
/** What the TLS server answers at each path, and how many requests each path got. */
const documents = new Map<string, { body: Document | string; status?: number; headers?: Record<string, string> }>();
const hits = new Map<string, number>();

beforeAll(async () => {
  tls = await startTlsServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const document = documents.get(path);
    if (!document) return void res.writeHead(404, { 'Content-Type': 'application/json' }).end('{}');
    res.writeHead(document.status ?? 200, { 'Content-Type': 'application/json', ...document.headers });
    res.end(typeof document.body === 'string' ? document.body : JSON.stringify(document.body));
  });
});
afterAll(async () => {
  await tls?.close();
});

let database: TestStore;
let clock: TestClock;
beforeEach(async () => {
  database = openTestStore();
  await database.store.migrate();
  clock = new TestClock(Date.parse('2026-12-03T12:00:00Z'));
  documents.clear();
  hits.clear();
});
afterEach(async () => {
  await database.store.close();
  await database.cleanup();
});

function deps(options: { metadataDocuments?: boolean; reachTestServer?: boolean; prefixes?: string[] } = {}): ClientDeps {
  const config = loadConfig({});
  return {
    store: database.store,
    clock,
    logger: pino({ level: 'silent' }),
    config: { ...config, oauth: { ...config.oauth, clientMetadataDocuments: options.metadataDocuments ?? true, redirectUriPrefixes: options.prefixes ?? [] } },
    ...(options.reachTestServer === false ? {} : { outboundFetchForTests: { allowLoopbackForTests: true, caForTests: tls.ca } }),
  };
}

/** Serves a valid document at `path` and returns its client_id (the URL it is served at). */
function serve(path: string, overrides: Document = {}, headers: Record<string, string> = {}): string {
  const clientId = `${tls.origin}${path}`;
  documents.set(path, {
    body: { client_id: clientId, client_name: 'Example Agent', redirect_uris: ['http://127.0.0.1:7777/callback'], token_endpoint_auth_method: 'none', ...overrides },
    headers,
  });
  return clientId;
}

async function refusalOf(clientDeps: ClientDeps, clientId: string): Promise<string> {
  const found = await findClient(clientDeps, clientId);
  if (!('refusal' in found)) throw new Error(`expected a refusal, found ${JSON.stringify(found)}`);
  return found.refusal;
}

describe('findClient with client ID metadata documents', () => {
  it('fetches the document from a TLS server when the test option lets it reach loopback, and caches it in the database', async () => {
    const clientId = serve('/oauth/client.json', { client_uri: 'https://agent.example', software_id: 'agent' }, { 'Cache-Control': 'public, max-age=7200' });
    const found = await findClient(deps(), clientId);
    expect(found).toEqual({
      client: {
        id: clientId,
        name: 'Example Agent',
        client_uri: 'https://agent.example',
        redirect_uris: ['http://127.0.0.1:7777/callback'],
        software_id: 'agent',
        software_version: null,
        source: 'metadata_document',
        created_at: '2026-12-03T12:00:00.000Z',
      },
    });
    const [row] = await database.query<{ source: string; metadata_expires_at: string }>(`select source, metadata_expires_at from oauth_clients`);
    expect(row).toEqual({ source: 'metadata_document', metadata_expires_at: '2026-12-03T14:00:00.000Z' });

    // Within max-age the cached copy answers: the server is not asked again, even if the document changed.
    serve('/oauth/client.json', { client_name: 'Renamed Agent' });
    clock.advance(7199_000);
    expect(await findClient(deps(), clientId)).toMatchObject({ client: { name: 'Example Agent' } });
    expect(hits.get('/oauth/client.json')).toBe(1);
    // Past it, the document is fetched again and the cache replaced.
    clock.advance(2_000);
    expect(await findClient(deps(), clientId)).toMatchObject({ client: { name: 'Renamed Agent', created_at: '2026-12-03T12:00:00.000Z' } });
    expect(hits.get('/oauth/client.json')).toBe(2);
    // …and the next one within the new max-age reads the replaced copy from the database.
    expect(await findClient(deps(), clientId)).toMatchObject({ client: { name: 'Renamed Agent' } });
    expect(hits.get('/oauth/client.json')).toBe(2);
    expect(await database.countRows('oauth_clients')).toBe(1);
  });

  it('refuses the same document without the test option: localhost resolves to a loopback address, and nothing is fetched', async () => {
    const clientId = serve('/oauth/client.json');
    const refusal = await refusalOf(deps({ reachTestServer: false }), clientId);
    expect(refusal).toMatch(/could not be fetched: localhost resolves to 127\.0\.0\.1 is a loopback/);
    expect(hits.get('/oauth/client.json')).toBeUndefined();
    expect(await database.countRows('oauth_clients')).toBe(0);
  });

  it('does not fetch at all when the operator has not allowed client ID metadata documents', async () => {
    const clientId = serve('/oauth/client.json');
    expect(await refusalOf(deps({ metadataDocuments: false }), clientId)).toMatch(/does not fetch client ID metadata documents/);
    expect(hits.size).toBe(0);
  });

  it('does not use a stale copy when the document can no longer be fetched', async () => {
    const clientId = serve('/oauth/client.json');
    expect(await findClient(deps(), clientId)).toHaveProperty('client');
    documents.delete('/oauth/client.json');
    clock.advance(3601_000);
    expect(await refusalOf(deps(), clientId)).toMatch(/could not be fetched: the server answered 404/);
  });

  it.each([
    ['names another URL as its client_id', { client_id: 'https://other.example/client.json' }, /does not name this URL as its client_id/],
    ['has no redirect_uris', { redirect_uris: undefined }, /has no redirect_uris/],
    ['lists a redirect URI outside the rules', { redirect_uris: ['https://attacker.example/cb'] }, /lists a redirect URI this server does not allow: .*https:\/\/attacker\.example\/cb/],
    ['asks for a client secret method', { token_endpoint_auth_method: 'client_secret_basic' }, /public clients only/],
    ['carries a client_secret', { client_secret: 'hunter2' }, /client_secret/],
    ['has an empty client_name', { client_name: '' }, /client_name/],
  ])('refuses a document that %s', async (_what, overrides, reason) => {
    const clientId = serve('/oauth/client.json', overrides);
    expect(await refusalOf(deps(), clientId)).toMatch(reason);
    expect(await database.countRows('oauth_clients')).toBe(0);
  });

  it('takes a redirect URI under the operator\'s prefixes in a document too', async () => {
    const clientId = serve('/oauth/client.json', { redirect_uris: ['https://agent.example/callback'] });
    expect(await findClient(deps({ prefixes: ['https://agent.example/'] }), clientId)).toMatchObject({ client: { redirect_uris: ['https://agent.example/callback'] } });
  });

  it('refuses a document that is not JSON, and client ID URLs without a path or with dot segments, before fetching', async () => {
    documents.set('/broken.json', { body: '{"client_id":' });
    expect(await refusalOf(deps(), `${tls.origin}/broken.json`)).toMatch(/is not valid JSON/);
    expect(await refusalOf(deps(), `${tls.origin}/`)).toMatch(/must have a path/);
    expect(await refusalOf(deps(), `${tls.origin}/a/../client.json`)).toMatch(/"\." or "\.\." path segments/);
    expect(hits.get('/client.json')).toBeUndefined();
  });
});

// Each test starts a server on a fresh database: on a busy machine (PostgreSQL) that alone can take seconds.
describe('the authorization endpoint and the clients', { timeout: 60_000 }, () => {
  const config = () => loadConfig({ OPENRUSH_OAUTH_CLIENT_METADATA_DOCUMENTS: 'on' });

  it('starts an authorization for a metadata document client over HTTP when createApp lets outbound fetches reach the test server', async () => {
    const clientId = serve('/agent/client.json', { redirect_uris: [REDIRECT_URI] });
    const server = await startTestServer({ config: config(), outboundFetchForTests: { allowLoopbackForTests: true, caForTests: tls.ca } });
    try {
      const response = await authorize(server, goodRequest(server, clientId, pkce().challenge));
      expect(response.status).toBe(302);
      expect(response.headers.get('location')).toMatch(/^\/dashboard\/consent\?authorization=[A-Za-z0-9_-]{43}$/);
      expect(hits.get('/agent/client.json')).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('refuses the same client over HTTP without that option (localhost is loopback), fetching nothing', async () => {
    const clientId = serve('/agent/client.json', { redirect_uris: [REDIRECT_URI] });
    const server = await startTestServer({ config: config() });
    try {
      const response = await authorize(server, goodRequest(server, clientId, pkce().challenge));
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: 'invalid_client', error_description: expect.stringMatching(/localhost resolves to 127\.0\.0\.1 is a loopback/) });
      expect(hits.get('/agent/client.json')).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it('starts an authorization for a client registered through POST /oauth/register', async () => {
    const server = await startTestServer();
    try {
      const registered = await fetch(`${server.url}/oauth/register`, jsonInit({ client_name: 'Agent', redirect_uris: [REDIRECT_URI] }));
      expect(registered.status).toBe(201);
      const { client_id } = (await registered.json()) as { client_id: string };
      expect((await authorize(server, goodRequest(server, client_id, pkce().challenge))).status).toBe(302);
      const unregistered = await authorize(server, goodRequest(server, client_id, pkce().challenge, { redirect_uri: 'http://127.0.0.1:9/other' }));
      expect(unregistered.status).toBe(400);
    } finally {
      await server.close();
    }
  });
});

describe('findClient with registered clients', () => {
  it('finds a registered client and refuses an unknown one', async () => {
    await database.store.insertOAuthClient({
      id: 'orc_01KW1WT5G0S1V3Q93S90MB6D3B', name: 'Claude Code', client_uri: null, redirect_uris: '["http://localhost:53123/callback"]',
      software_id: null, software_version: null, source: 'registered', metadata_expires_at: null, created_at: '2026-12-03T12:00:00.000Z',
    });
    expect(await findClient(deps(), 'orc_01KW1WT5G0S1V3Q93S90MB6D3B')).toMatchObject({ client: { name: 'Claude Code', redirect_uris: ['http://localhost:53123/callback'] } });
    expect(await refusalOf(deps(), 'orc_01KW1WT5G0S1V3Q93S90MB6D3C')).toMatch(/No client is registered as "orc_01KW1WT5G0S1V3Q93S90MB6D3C"/);
  });
});

describe('cacheSeconds', () => {
  it('holds Cache-Control max-age within 5 minutes and 24 hours, 1 hour without one', () => {
    expect(cacheSeconds(undefined)).toBe(3600);
    expect(cacheSeconds('public')).toBe(3600);
    expect(cacheSeconds('max-age=60')).toBe(300);
    expect(cacheSeconds('public, max-age=7200')).toBe(7200);
    expect(cacheSeconds('max-age=999999')).toBe(86_400);
    expect(cacheSeconds('no-store')).toBe(300);
  });
});

describe('redirectUriRefusal', () => {
  it('takes the loopback forms of RFC 8252 on any port and nothing else by default', () => {
    for (const uri of ['http://127.0.0.1:1/cb', 'http://[::1]:65535/a/b?x=1', 'http://localhost:6274/oauth/callback', 'http://localhost/cb']) {
      expect(redirectUriRefusal(uri, [])).toBeUndefined();
    }
    for (const uri of ['http://127.0.0.2:1/cb', 'http://[::2]:1/cb', 'http://0.0.0.0:1/cb', 'ftp://localhost:1/cb', 'http://localhost:1/cb#']) {
      expect(redirectUriRefusal(uri, [])).toBeDefined();
    }
  });
});
