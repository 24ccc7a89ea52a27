// No key can make, or take over, a key more powerful than itself: otherwise a restricted, budgeted or
// rate-limited key would simply mint an unrestricted one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeysOf, expectProblem, FUTURE } from '../helpers/api-keys.ts';
import { jsonInit, startTestServer, type TestServer } from '../helpers/server.ts';

describe('keys cannot make keys more powerful than themselves', () => {
  let server: TestServer;
  let api: ReturnType<typeof apiKeysOf>;
  const owner = () => server.account.key;

  beforeAll(async () => {
    server = await startTestServer();
    api = apiKeysOf(server);
  });
  afterAll(() => server.close());

  it('a restricted key can only make restricted keys with no more access than its own', async () => {
    const admin = await api.created(owner(), { name: 'key admin', permission_mode: 3, access: { api_keys: 'write', credits: 'read' } });
    await expectProblem(await api.create(admin.api_key, { name: 'full', permission_mode: 1 }), 403);
    await expectProblem(await api.create(admin.api_key, { name: 'tools', permission_mode: 3, access: { tools: 'use' } }), 403);
    const inherited = await api.created(admin.api_key, { name: 'inherits' });
    expect(inherited).toMatchObject({ permission_mode: 3, access: { api_keys: 'write', credits: 'read' } });
    const narrower = await api.created(admin.api_key, { name: 'narrower', permission_mode: 3, access: { credits: 'read' } });
    expect(narrower.access).toEqual({ credits: 'read' });
    // v1 creates go through the same rule: the new key is restricted like its maker.
    const v1 = await server.call('/v1/me/api-credentials', jsonInit({ name: 'v1 child' }, { key: admin.api_key }));
    expect(v1.status).toBe(201);
    const child = (await v1.json()) as { key: string; api_credential: { id: string } };
    expect(await api.fetched(owner(), child.api_credential.id)).toMatchObject({ permission_mode: 3, access: { api_keys: 'write', credits: 'read' } });
    expect((await server.call('/v1/tools/inspect_domain', jsonInit({ domain: 'example.com' }, { key: child.key }))).status).toBe(403);
  });

  it('a budgeted, rate-limited, expiring key passes its limits on, and cannot loosen them', async () => {
    const limited = await api.created(owner(), {
      name: 'limited',
      constraints: { budget: { period: 1, amount: 10 }, rate_limit: { requests_per_minute: 100 }, expires_at: FUTURE },
    });
    const child = await api.created(limited.api_key, { name: 'child' });
    expect(child.constraints).toMatchObject({
      budget: { period: 1, amount: 10 },
      rate_limit: { requests_per_minute: 100 },
      expires_at: FUTURE,
    });
    const stricter = await api.created(limited.api_key, { name: 'stricter', constraints: { budget: { period: 1, amount: 3 } } });
    expect(stricter.constraints.budget).toMatchObject({ period: 1, amount: 3 });
    await expectProblem(await api.create(limited.api_key, { name: 'more', constraints: { budget: { period: 1, amount: 11 } } }), 403);
    await expectProblem(await api.create(limited.api_key, { name: 'monthly', constraints: { budget: { period: 3, amount: 10 } } }), 403);
    await expectProblem(await api.create(limited.api_key, { name: 'faster', constraints: { rate_limit: { requests_per_minute: 101 } } }), 403);
    // Nor can it lift its own limits.
    await expectProblem(await api.patch(limited.api_key, limited.api_key_id, { constraints: { budget: null } }), 403);
    expect((await api.fetched(owner(), limited.api_key_id)).constraints.budget).toMatchObject({ amount: 10 });
  });

  it('a weaker key cannot rotate or change a stronger key, but can revoke it', async () => {
    const admin = await api.created(owner(), { name: 'admin', permission_mode: 3, access: { api_keys: 'write' } });
    const strong = await api.created(owner(), { name: 'strong' });
    await expectProblem(await api.rotate(admin.api_key, strong.api_key_id, 0), 403);
    await expectProblem(await api.patch(admin.api_key, strong.api_key_id, { name: 'renamed' }), 403);
    expect(await api.authStatus(strong.api_key)).toBe(200);
    expect((await api.revoke(admin.api_key, strong.api_key_id)).status).toBe(200);
    expect(await api.authStatus(strong.api_key)).toBe(401);
  });
});
