import type { components } from '../../../generated/openapi.d.ts';
import { principalOf, projectScopeOf } from '../../context.ts';
import { newCredential, settingsFromPowers, toApiCredential } from '../../credentials.ts';
import { confineToCaller } from '../../permissions.ts';
import type { Operations } from '../dispatch.ts';
import type { Deps } from '../../deps.ts';
import { keyChangedEvent } from '../../events.ts';
import { oncePerIdempotencyKey } from '../../idempotency.ts';
import { notFound } from '../../problem.ts';
import { readFutureTimestamp } from '../../timestamps.ts';
import { route } from './typed.ts';

type Created = components['schemas']['ApiCredentialCreated'];

const NO_STORE = { 'Cache-Control': 'no-store' };

export function credentialRoutes(router: Operations, deps: Deps): void {
  const { store, clock, ids } = deps;

  route(router, 'get', '/v1/me/api-credentials', async (req) => {
    const caller = req.ctx.caller!;
    const rows = await store.listCredentials(caller.accountId, projectScopeOf(caller));
    const now = clock.now();
    return { status: 200, body: rows.map((row) => toApiCredential(row, now)) };
  });

  route(router, 'post', '/v1/me/api-credentials', async (req, { body }) => {
    const caller = req.ctx.caller!;
    const now = clock.now();
    const expiresAt = body.expires_at === undefined ? null : readFutureTimestamp(body.expires_at, '/expires_at', now);
    const { response, replayed } = await oncePerIdempotencyKey<Created>(
      deps,
      { accountId: caller.accountId, idempotencyKey: req.get('Idempotency-Key'), operation: 'POST /v1/me/api-credentials', body },
      async (seal) => {
        // A key makes keys of its own project, with no more powers than its own.
        const powers = confineToCaller(caller, { expiresAt });
        const issued = newCredential(ids, clock, {
          accountId: caller.accountId,
          name: body.name,
          by: principalOf(caller),
          projectId: projectScopeOf(caller),
          ...settingsFromPowers(powers),
        });
        const created: Created = { key: issued.key, api_credential: toApiCredential(issued.row, now) };
        await store.createCredential(issued.row, seal?.(created), keyChangedEvent(ids, 'key.created', issued.row, issued.row.created_at));
        return created;
      },
    );
    return { status: 201, body: response, headers: replayed ? { ...NO_STORE, 'Idempotent-Replayed': 'true' } : NO_STORE };
  });

  route(router, 'post', '/v1/me/api-credentials/{credential_id}/revoke', async (req, { params }) => {
    const caller = req.ctx.caller!;
    const existing = await store.getCredential(caller.accountId, params.credential_id);
    const scope = projectScopeOf(caller);
    if (!existing || (scope !== undefined && existing.project_id !== scope)) throw notFound('No API credential with this id.');
    const at = clock.now().toISOString();
    const row = await store.revokeCredential(caller.accountId, existing.id, at, principalOf(caller), undefined, (revoked) => keyChangedEvent(ids, 'key.revoked', revoked, at));
    return { status: 200, body: toApiCredential(row!, clock.now()) };
  });
}
