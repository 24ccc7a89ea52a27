// Codes and refresh tokens across instances: two app instances on one database (one SQLite file, or one
// PostgreSQL schema with OPENRUSH_TEST_STORE=postgres). A code issued through one is redeemed at the other, and
// when both are sent the same code (or refresh token) at the same moment, exactly one answers 200.
import { afterEach, describe, expect, it } from 'vitest';
import { hashSecret } from '../../server/oauth/tokens.ts';
import type { OAuthTokenRow } from '../../server/store/types.ts';
import { approvedCode, type OAuthTokenResponse, postForm, redeem, registerClient, signInSession } from '../helpers/oauth.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let servers: TestServer[] = [];
afterEach(async () => {
  // The second instance shares the first one's database: close it first.
  for (const server of servers.reverse()) await server.close();
  servers = [];
});

async function twoInstances(): Promise<[TestServer, TestServer]> {
  const config = { authFailuresPerMinute: 1000 };
  const a = await startTestServer({ config });
  servers.push(a);
  const b = await startTestServer({ database: { ...a.database, store: a.database.openAnother() }, sharedDatabase: true, config });
  servers.push(b);
  return [a, b];
}

const ROUNDS = 5;

// Many round trips each, on a machine that may be busy: more than the default 20 s.
describe('codes and refresh tokens across instances', { timeout: 60_000 }, () => {
  it('redeems at one instance a code issued through the other', async () => {
    const [a, b] = await twoInstances();
    const clientId = await registerClient(a);
    const session = await signInSession(a);
    const { code, verifier } = await approvedCode(a, session, clientId);
    const response = await redeem(b, clientId, code, verifier, { resource: `${a.url}/mcp` });
    expect(response.status).toBe(200);
  });

  it('answers exactly one of two instances redeeming the same code at once', async () => {
    const [a, b] = await twoInstances();
    const clientId = await registerClient(a);
    const session = await signInSession(a);
    for (let round = 0; round < ROUNDS; round++) {
      const { code, verifier } = await approvedCode(a, session, clientId);
      const answers = await Promise.all([a, b].map((server) => redeem(server, clientId, code, verifier, { resource: `${a.url}/mcp` })));
      expect(answers.map((answer) => answer.status).sort(), `round ${round}`).toEqual([200, 400]);
      const refused = (await answers.find((answer) => answer.status === 400)!.json()) as { error: string };
      expect(refused.error).toBe('invalid_grant');
    }
    expect(await a.database.countRows('oauth_tokens')).toBe(2 * ROUNDS);
  });

  it('rotates a refresh token once when two instances are sent it at once', async () => {
    const [a, b] = await twoInstances();
    const clientId = await registerClient(a);
    const session = await signInSession(a);
    for (let round = 0; round < ROUNDS; round++) {
      const { code, verifier } = await approvedCode(a, session, clientId);
      const tokens = (await (await redeem(a, clientId, code, verifier, { resource: `${a.url}/mcp` })).json()) as OAuthTokenResponse;
      const form = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId };
      const answers = await Promise.all([a, b].map((server) => postForm(server, '/oauth/token', form)));
      expect(answers.map((answer) => answer.status).sort(), `round ${round}`).toEqual([200, 400]);
    }
  });

  it('lets the store use a code or a refresh token once, whichever store (instance) asks, however many at once', async () => {
    const [a] = await twoInstances();
    const clientId = await registerClient(a);
    const session = await signInSession(a);
    const { code, verifier } = await approvedCode(a, session, clientId);
    const tokens = (await (await redeem(a, clientId, code, verifier, { resource: `${a.url}/mcp` })).json()) as OAuthTokenResponse;
    const { code: second } = await approvedCode(a, session, clientId);
    const stores = [a.store, servers[1]!.store, a.database.openAnother(), a.database.openAnother()];
    try {
      const now = new Date().toISOString();
      const credentialId = (await a.store.findOAuthToken(hashSecret(tokens.refresh_token)))!.token.credential_id;
      const fresh = (n: number): OAuthTokenRow[] => [
        { token_hash: hashSecret(`orat_race_${n}`), kind: 'access', credential_id: credentialId, expires_at: now, used_at: null, created_at: now },
      ];
      const codes = await Promise.all(stores.map((store, n) => store.redeemOAuthCode(hashSecret(second), now, fresh(n))));
      expect(codes.filter(Boolean)).toHaveLength(1);
      const refreshes = await Promise.all(stores.map((store, n) => store.rotateOAuthRefreshToken(hashSecret(tokens.refresh_token), now, fresh(10 + n))));
      expect(refreshes.filter(Boolean)).toHaveLength(1);
    } finally {
      await Promise.all(stores.slice(2).map((store) => store.close()));
    }
  });
});
