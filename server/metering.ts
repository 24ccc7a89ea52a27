// Metering, whichever transport carried the call: one usage record per call, and for a metered tool its
// charge, written in one durable store call before the answer leaves. The HTTP routes (server/http/metering.ts)
// and the MCP handler (server/mcp/) both come here; nothing in this file knows about Express or MCP.
import { performance } from 'node:perf_hooks';
import type { Clock } from './clock.ts';
import type { Caller } from './context.ts';
import { loadContract } from './contract.ts';
import { recordedEndpoint, recordedText } from './endpoint.ts';
import type { CreditsDepletedData } from './events.ts';
import type { IdGenerator } from './ids.ts';
import { budgetFor } from './permissions.ts';
import { Problem } from './problem.ts';
import { BudgetExceededError, InsufficientCreditsError } from './store/errors.ts';
import type { IdempotencyRow, Store, UsageRow } from './store/types.ts';

/** Keys whose last write of last_used_at this instance remembers (all forgotten at once past this). */
const TOUCHES_REMEMBERED = 10_000;

export interface MeteringDeps {
  store: Store;
  clock: Clock;
  ids: IdGenerator;
  /** last_used_at is written at most once per this many milliseconds per key. */
  lastUsedGranularityMs: number;
}

/** One call as the usage record shows it, told by the transport that carried it. */
export interface Call {
  /** `api` for an HTTP call of the API, `mcp` for a message to the MCP endpoint. */
  channel: UsageRow['channel'];
  /** The request path, without the query. */
  endpoint: string;
  method: string;
  statusCode: number;
  /** performance.now() when the call arrived. */
  startedAt: number;
  requestBytes: number;
  responseBytes: number;
  /** The metered tool called, charged or not. */
  tool?: string | null;
  /** What stopped the call, if something did: its type and detail go into the record. */
  problem?: Problem;
  /** What the tool spent upstream, in US dollars. */
  upstreamCostUsd?: number;
  /** The JSON-RPC method of an MCP message. */
  rpcMethod?: string | null;
  /** The request's id (X-Request-Id), kept so a ledger charge leads back to its request. */
  requestId: string;
}

export function insufficientCredits(required: number, balance: number): Problem {
  return new Problem(
    'payment_required',
    `This call costs ${required} credits and the balance is ${balance}. Buy credits at https://openrush.io/dashboard/billing.`,
  );
}

export function budgetExhausted(error: BudgetExceededError): Problem {
  return new Problem(
    'budget_exhausted',
    `This API key's budget of ${error.amount} credits for the period that began ${error.periodStart} is spent.`,
  );
}

export type Metering = ReturnType<typeof createMetering>;

/** The maxLength the contract gives the usage record's fields of request-borne text. */
function usageTextBounds(): { errorMessage: number; rpcMethod: number } {
  const properties = (loadContract().components?.schemas?.UsageRecord as { properties: Record<string, { maxLength?: number }> }).properties;
  const bound = (name: string) => {
    const max = properties[name]?.maxLength;
    if (typeof max !== 'number') throw new Error(`the contract gives UsageRecord.${name} no maxLength`);
    return max;
  };
  return { errorMessage: bound('error_message'), rpcMethod: bound('rpc_method') };
}

export function createMetering(deps: MeteringDeps) {
  const bounds = usageTextBounds();
  function usageRecord(caller: Caller, call: Call, credits: number): UsageRow {
    const problem = call.problem;
    return {
      id: deps.ids('log'),
      account_id: caller.accountId,
      credential_id: caller.credentialId,
      auth_source: caller.authSource,
      endpoint: recordedEndpoint(call.endpoint),
      method: call.method,
      status_code: call.statusCode,
      response_time_ms: Math.round(performance.now() - call.startedAt),
      request_bytes: call.requestBytes,
      response_bytes: call.responseBytes,
      dataforseo_cost_usd: call.upstreamCostUsd ?? 0,
      credits_charged: credits,
      error_type: problem ? problem.problemType : null,
      error_message: problem ? recordedText(problem.detail, bounds.errorMessage) : null,
      created_at: deps.clock.now().toISOString(),
      channel: call.channel,
      tool: call.tool ?? null,
      rpc_method: call.rpcMethod == null ? null : recordedText(call.rpcMethod, bounds.rpcMethod),
      request_id: call.requestId,
      // The grant's key is the credential; the client its token was issued to is said here.
      oauth_client_id: caller.oauth?.clientId ?? null,
    };
  }

  // When this instance last asked for each key's last_used_at to be written: the key row it authenticated with may
  // be a cached copy (sqlite.ts), read before that write.
  const touched = new Map<string, number>();

  function touchBefore(caller: Caller): string | undefined {
    if (caller.credentialId === null) return undefined;
    const now = deps.clock.now().getTime();
    const threshold = now - deps.lastUsedGranularityMs;
    // Skip the write entirely when the key was marked used recently: the hot path stays one insert.
    if ((touched.get(caller.credentialId) ?? -Infinity) >= threshold) return undefined;
    if (caller.lastUsedAt !== null && Date.parse(caller.lastUsedAt) >= threshold) return undefined;
    if (touched.size >= TOUCHES_REMEMBERED) touched.clear();
    touched.set(caller.credentialId, now);
    return new Date(threshold).toISOString();
  }

  /**
   * Writes the call's usage record; with `charge`, takes that many credits (and counts them against the key's
   * budget) in the same transaction. Resolves once durable. With too few credits, or the key's budget spent,
   * nothing is written and a 402 Problem is thrown: the caller records the refusal (uncharged) as it answers it.
   * With `idempotency`, the answer is kept under its Idempotency-Key in that transaction too (IdempotencyConflictError,
   * nothing written, when another request's answer is kept there).
   */
  async function recordCall(caller: Caller, call: Call, options: { charge?: number; idempotency?: IdempotencyRow } = {}): Promise<void> {
    const credits = options.charge ?? 0;
    const record = usageRecord(caller, call, credits);
    try {
      await deps.store.recordUsage(record, {
        charge: credits > 0 ? { ledgerId: deps.ids('led'), eventId: deps.ids('evt'), amount: credits } : undefined,
        budget: credits > 0 ? budgetFor(caller, deps.clock.now()) : undefined,
        touchCredentialIfUsedBefore: touchBefore(caller),
        idempotency: options.idempotency,
      });
    } catch (error) {
      if (error instanceof InsufficientCreditsError) throw insufficientCredits(error.required, error.balance);
      if (error instanceof BudgetExceededError) throw budgetExhausted(error);
      throw error;
    }
  }

  /**
   * A call refused before it ran because the balance cannot pay for it: the account's credits.depleted event is
   * written (if this is the first refusal since the last grant), and the 402 to answer is returned. A charge
   * refused in the store's own guarded update writes that event in its batch instead (sqlite-writer.ts, postgres.ts).
   */
  async function refuseForCredits(caller: Caller, required: number, balance: number): Promise<Problem> {
    const data: CreditsDepletedData = { balance, required };
    await deps.store.markDepleted({
      id: deps.ids('evt'),
      account_id: caller.accountId,
      type: 'credits.depleted',
      api_key_id: caller.credentialId,
      created_at: deps.clock.now().toISOString(),
      data: JSON.stringify(data),
      dedupe_key: null,
    });
    return insufficientCredits(required, balance);
  }

  return { recordCall, refuseForCredits };
}
