// The v2 API-key administration surface. Same rows as /v1/me/api-credentials, richer view.
import type { Request } from 'express';
import type { components } from '../../../generated/openapi.d.ts';
import { type Caller, principalOf, projectScopeOf } from '../../context.ts';
import { type ApiKey, KeyStatus, keyStatus, newCredential, settingsFromPowers, toApiKey } from '../../credentials.ts';
import { confineToCaller, requireNoMorePowerful } from '../../permissions.ts';
import type { Operations } from '../dispatch.ts';
import type { Deps } from '../../deps.ts';
import { keyChangedEvent } from '../../events.ts';
import { oncePerIdempotencyKey } from '../../idempotency.ts';
import { generateKey } from '../../keys.ts';
import { notFound, Problem, validationFailed } from '../../problem.ts';
import type { CredentialRow, IdempotencyRow, OAuthGrantRow } from '../../store/types.ts';
import { readFutureTimestamp } from '../../timestamps.ts';
import { route } from './typed.ts';

type WithSecret = components['schemas']['ApiKeyWithSecret'];
type ConstraintsInput = components['schemas']['ApiKeyConstraintsInput'];

const NO_STORE = { 'Cache-Control': 'no-store' };
const NO_HEADERS = {};
export const API_KEYS_DEFAULT_LIMIT = 25;

function withSecret(key: string, row: CredentialRow, now: Date, grant: OAuthGrantRow | undefined): WithSecret {
  return { api_key: key, ...toApiKey(row, now, grant) };
}

/** The constraints as given, with expires_at read by the one date-time reader (stored form, in the future). */
function readConstraints(constraints: ConstraintsInput | undefined, now: Date): ConstraintsInput | undefined {
  if (typeof constraints?.expires_at !== 'string') return constraints;
  return { ...constraints, expires_at: readFutureTimestamp(constraints.expires_at, '/constraints/expires_at', now) };
}

/** Columns for the constraints given: a field left out is kept, null removes it. */
function constraintChanges(constraints: ConstraintsInput | undefined): Partial<CredentialRow> {
  const changes: Partial<CredentialRow> = {};
  if (!constraints) return changes;
  if (constraints.expires_at !== undefined) {
    changes.expires_at = constraints.expires_at;
  }
  if (constraints.budget !== undefined) {
    changes.budget_period = constraints.budget?.period ?? null;
    changes.budget_amount = constraints.budget?.amount ?? null;
    changes.budget_token_limit = constraints.budget?.token_limit ?? null;
  }
  if (constraints.rate_limit !== undefined) changes.rate_limit_rpm = constraints.rate_limit?.requests_per_minute ?? null;
  return changes;
}

export function apiKeyRoutes(router: Operations, deps: Deps): void {
  const { store, clock, ids } = deps;

  /** The caller's key with this id, within its project scope; 404 otherwise (never says whether it exists). */
  async function visibleKey(caller: Caller, apiKeyId: string): Promise<CredentialRow> {
    const row = await store.getCredential(caller.accountId, apiKeyId);
    const scope = projectScopeOf(caller);
    if (!row || (scope !== undefined && row.project_id !== scope)) throw notFound('No API key with this id.');
    return row;
  }

  /** The key as the API shows it, with its OAuth grant if it is one. */
  async function represent(row: CredentialRow, now: Date): Promise<ApiKey> {
    const grants = await store.oauthGrants([row.id]);
    return toApiKey(row, now, grants.get(row.id));
  }

  function requireChangeable(row: CredentialRow, now: Date): void {
    const status = keyStatus(row, now);
    if (status === KeyStatus.REVOKED) throw new Problem('conflict', 'This API key is revoked; it cannot be changed.');
    if (status === KeyStatus.EXPIRED) throw new Problem('conflict', 'This API key has expired; it cannot be changed.');
  }

  route(router, 'get', '/v2/api-keys', async (req, { query }) => {
    const caller = req.ctx.caller!;
    if (query.starting_after !== undefined && query.ending_before !== undefined) {
      throw validationFailed(
        [{ location: 'query', pointer: '/ending_before', message: 'cannot be combined with starting_after' }],
        'Pass starting_after or ending_before, not both.',
      );
    }
    const scope = projectScopeOf(caller);
    if (scope !== undefined && query.project_id !== undefined && query.project_id !== scope) {
      throw new Problem('forbidden', `This API key only sees keys of project ${scope}.`);
    }
    const cursorName = query.starting_after !== undefined ? 'starting_after' : 'ending_before';
    const cursor = query.starting_after ?? query.ending_before;
    if (cursor !== undefined) {
      const row = await store.getCredential(caller.accountId, cursor);
      if (!row || (scope !== undefined && row.project_id !== scope)) {
        throw validationFailed(
          [{ location: 'query', pointer: `/${cursorName}`, message: 'is not the id of one of your API keys' }],
          `${cursorName} must be the api_key_id of one of your keys.`,
        );
      }
    }
    const now = clock.now();
    const { rows, hasMore } = await store.listApiKeys(caller.accountId, {
      limit: query.limit ?? API_KEYS_DEFAULT_LIMIT,
      startingAfter: query.starting_after,
      endingBefore: query.ending_before,
      projectId: scope ?? query.project_id,
      status: query.status,
      now: now.toISOString(),
    });
    const grants = await store.oauthGrants(rows.map((row) => row.id));
    return { status: 200, body: { object: 'list' as const, data: rows.map((row) => toApiKey(row, now, grants.get(row.id))), has_more: hasMore } };
  });

  route(router, 'post', '/v2/api-keys', async (req, { body }) => {
    const caller = req.ctx.caller!;
    const now = clock.now();
    const constraints = readConstraints(body.constraints, now);
    const scope = projectScopeOf(caller);
    const requested = body.project_scope?.single?.project_id ?? (body.project_scope?.all ? null : undefined);
    if (scope !== undefined && requested !== undefined && requested !== scope) {
      throw new Problem('forbidden', `This API key can only create keys of project ${scope}.`);
    }
    const { response, replayed } = await oncePerIdempotencyKey<WithSecret>(
      deps,
      { accountId: caller.accountId, idempotencyKey: req.get('Idempotency-Key'), operation: 'POST /v2/api-keys', body },
      async (seal) => {
        const powers = confineToCaller(caller, {
          permissionMode: body.permission_mode,
          access: body.access,
          budget: constraints?.budget,
          rateLimitRpm: constraints?.rate_limit?.requests_per_minute,
          expiresAt: constraints?.expires_at,
        });
        const issued = newCredential(ids, clock, {
          accountId: caller.accountId,
          name: body.name,
          by: principalOf(caller),
          owner: body.owner,
          projectId: scope ?? requested ?? null,
          ...settingsFromPowers(powers),
        });
        // A key made here is no OAuth grant.
        const created = withSecret(issued.key, issued.row, now, undefined);
        await store.createCredential(issued.row, seal?.(created), keyChangedEvent(ids, 'key.created', issued.row, issued.row.created_at));
        return created;
      },
    );
    return { status: 201, body: response, headers: replayed ? { ...NO_STORE, 'Idempotent-Replayed': 'true' } : NO_STORE };
  });

  route(router, 'get', '/v2/api-keys/{api_key_id}', async (req, { params }) => {
    const row = await visibleKey(req.ctx.caller!, params.api_key_id);
    return { status: 200, body: await represent(row, clock.now()) };
  });

  route(router, 'patch', '/v2/api-keys/{api_key_id}', async (req, { params, body }) => {
    const caller = req.ctx.caller!;
    const now = clock.now();
    const row = await visibleKey(caller, params.api_key_id);
    requireChangeable(row, now);
    const changes: Partial<CredentialRow> = {
      ...constraintChanges(readConstraints(body.constraints, now)),
      updated_at: now.toISOString(),
      updated_by_id: principalOf(caller),
    };
    // The key as it will be must not outdo the caller's own.
    requireNoMorePowerful(caller, { ...row, ...changes });
    if (body.name !== undefined) changes.name = body.name;
    if (body.status !== undefined) changes.disabled_at = body.status === KeyStatus.DISABLED ? (row.disabled_at ?? now.toISOString()) : null;
    const grant = (await store.oauthGrants([row.id])).get(row.id);
    const changed = (['name', 'status', 'constraints'] as const).filter((field) => body[field] !== undefined);
    const event = changed.length > 0 ? (updated: CredentialRow) => keyChangedEvent(ids, 'key.updated', updated, now.toISOString(), changed) : undefined;
    return answerOnce(req, `PATCH /v2/api-keys/${row.id}`, body, NO_HEADERS, (seal) =>
      store
        .updateCredential(caller.accountId, row.id, changes, seal && ((updated) => seal(toApiKey(updated, now, grant))), event)
        .then((updated) => toApiKey(updated!, now, grant)),
    );
  });

  route(router, 'post', '/v2/api-keys/{api_key_id}/revoke', async (req, { params }) => {
    const caller = req.ctx.caller!;
    const now = clock.now();
    const row = await visibleKey(caller, params.api_key_id);
    const grant = (await store.oauthGrants([row.id])).get(row.id);
    return answerOnce(req, `POST /v2/api-keys/${row.id}/revoke`, null, NO_HEADERS, (seal) =>
      store
        .revokeCredential(
          caller.accountId,
          row.id,
          now.toISOString(),
          principalOf(caller),
          seal && ((revoked) => seal(toApiKey(revoked, now, grant))),
          (revoked) => keyChangedEvent(ids, 'key.revoked', revoked, now.toISOString()),
        )
        .then((revoked) => toApiKey(revoked!, now, grant)),
    );
  });

  route(router, 'post', '/v2/api-keys/{api_key_id}/rotate', async (req, { params, body }) => {
    const caller = req.ctx.caller!;
    const now = clock.now();
    const row = await visibleKey(caller, params.api_key_id);
    requireChangeable(row, now);
    requireNoMorePowerful(caller, row); // its new secret would hand over the key's powers
    const { key, hash, prefix, fingerprint } = generateKey();
    const grace = body.grace_period_seconds;
    const grant = (await store.oauthGrants([row.id])).get(row.id);
    // With an Idempotency-Key, a rotation whose answer was lost is answered again with the same new secret (kept
    // encrypted under the key, as for a create), not rotated twice.
    return answerOnce(req, `POST /v2/api-keys/${row.id}/rotate`, body, NO_STORE, (seal) =>
      store
        .updateCredential(
          caller.accountId,
          row.id,
          {
            // The secret in use until now becomes the one old secret; an older one still in its grace period dies here.
            key_hash: hash,
            prefix,
            fingerprint,
            previous_key_hash: grace > 0 ? row.key_hash : null,
            previous_key_expires_at: grace > 0 ? new Date(now.getTime() + grace * 1000).toISOString() : null,
            updated_at: now.toISOString(),
            updated_by_id: principalOf(caller),
          },
          seal && ((rotated) => seal(withSecret(key, rotated, now, grant))),
          (rotated) => keyChangedEvent(ids, 'key.rotated', rotated, now.toISOString()),
        )
        .then((rotated) => withSecret(key, rotated!, now, grant)),
    );
  });

  /**
   * A change of a key (PATCH, revoke, rotate) at most once per Idempotency-Key (server/idempotency.ts): its answer
   * is kept in the change's transaction, a retry gets it back with `Idempotent-Replayed: true`, and without a key
   * the change simply runs. The key's id is part of the operation: one Idempotency-Key for two keys is a 409.
   */
  async function answerOnce<T>(req: Request, operation: string, body: unknown, headers: Record<string, string>, change: (seal?: (answer: T) => IdempotencyRow) => Promise<T>) {
    const caller = req.ctx.caller!;
    const { response, replayed } = await oncePerIdempotencyKey<T>(deps, { accountId: caller.accountId, idempotencyKey: req.get('Idempotency-Key'), operation, body, status: 200 }, change);
    return { status: 200 as const, body: response, headers: replayed ? { ...headers, 'Idempotent-Replayed': 'true' } : headers };
  }
}

export type { ApiKey };
