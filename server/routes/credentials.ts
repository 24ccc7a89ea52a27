import { Router } from 'express';
import type { components } from '../../generated/openapi.d.ts';
import { issueCredential, toApiCredential } from '../credentials.ts';
import type { Deps } from '../deps.ts';
import { IDEMPOTENCY_TTL_MS, idempotencyKeyHash, openResponse, requestHash, sealResponse } from '../idempotency.ts';
import { notFound, Problem, validationFailed } from '../problem.ts';
import { IdempotencyConflictError } from '../store/errors.ts';
import { route } from './typed.ts';

type Created = components['schemas']['ApiCredentialCreated'];

const NO_STORE = { 'Cache-Control': 'no-store' };

export function credentialRoutes(deps: Deps): Router {
  const { store, clock, ids } = deps;
  const router = Router();

  route(router, 'get', '/v1/me/api-credentials', async (req) => {
    const rows = await store.listCredentials(req.ctx.caller!.accountId);
    const now = clock.now();
    return { status: 200, body: rows.map((row) => toApiCredential(row, now)) };
  });

  route(router, 'post', '/v1/me/api-credentials', async (req, { body }) => {
    const accountId = req.ctx.caller!.accountId;
    const now = clock.now();
    if (body.expires_at !== undefined && Date.parse(body.expires_at) <= now.getTime()) {
      throw validationFailed([{ location: 'body', pointer: '/expires_at', message: 'must be in the future' }]);
    }

    const idempotencyKey = req.get('Idempotency-Key');
    if (idempotencyKey === undefined) {
      const issued = await issueCredential(store, ids, clock, { accountId, name: body.name, expiresAt: body.expires_at });
      return { status: 201, body: { key: issued.key, api_credential: toApiCredential(issued.row, now) }, headers: NO_STORE };
    }

    const keyHash = idempotencyKeyHash(accountId, idempotencyKey);
    const bodyHash = requestHash(body);
    const replay = async () => {
      const stored = await store.findIdempotencyRecord(accountId, keyHash, clock.now().toISOString());
      if (!stored) return undefined;
      if (stored.request_hash !== bodyHash) {
        throw new Problem(422, 'idempotency_key_reused', 'This Idempotency-Key was used with a different request body.');
      }
      const response = openResponse(accountId, idempotencyKey, stored.response_ciphertext) as Created;
      return { status: 201 as const, body: response, headers: { ...NO_STORE, 'Idempotent-Replayed': 'true' } };
    };

    const previous = await replay();
    if (previous) return previous;
    try {
      let response: Created | undefined;
      await issueCredential(store, ids, clock, { accountId, name: body.name, expiresAt: body.expires_at }, (issued) => {
        response = { key: issued.key, api_credential: toApiCredential(issued.row, now) };
        return {
          account_id: accountId,
          key_hash: keyHash,
          request_hash: bodyHash,
          status_code: 201,
          response_ciphertext: sealResponse(accountId, idempotencyKey, response),
          created_at: now.toISOString(),
          expires_at: new Date(now.getTime() + IDEMPOTENCY_TTL_MS).toISOString(),
        };
      });
      return { status: 201, body: response!, headers: NO_STORE };
    } catch (error) {
      // A concurrent request with the same Idempotency-Key won the race: answer with its response.
      if (error instanceof IdempotencyConflictError) {
        const winner = await replay();
        if (winner) return winner;
      }
      throw error;
    }
  });

  route(router, 'post', '/v1/me/api-credentials/{credential_id}/revoke', async (req, { params }) => {
    const row = await store.revokeCredential(req.ctx.caller!.accountId, params.credential_id, clock.now().toISOString());
    if (!row) throw notFound('No API credential with this id.');
    return { status: 200, body: toApiCredential(row, clock.now()) };
  });

  return router;
}
