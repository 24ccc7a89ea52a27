// One tool call, whichever transport carried it: the HTTP route (server/http/routes/tools.ts) and the MCP handler
// (server/mcp/handler.ts) both call callTool and only translate what it gives back. Nothing here knows Express or
// MCP. The order is the HTTP API's: arguments (the contract's rules, 400), an OAuth token's scope (403
// insufficient_scope), permission (403), balance (402), the tool's handler (which may refuse its input, 400), its
// upstream cost; then the transport sends the answer through `charge`, which takes the price in the same
// transaction as the usage record (402 if the balance or the key's budget no longer covers it). A refusal is thrown as a Problem, before anything is charged.
//
// With an Idempotency-Key (HTTP's header, MCP's `_meta`), a priced tool's answer is kept under it in the transaction of its charge:
// the same call again (the same tool and arguments, over either transport, within 24 hours) gets that answer back
// and is charged nothing; the key with other arguments is a 409. Kept before the balance is checked, so a retry is
// answered even once the credits are gone. Of two concurrent calls under one key, one is charged, the other replays it.
import type { Caller } from '../context.ts';
import { type Call, type Metering } from '../metering.ts';
import { type AccessNeed, insufficientScope, missingScope, refusal } from '../permissions.ts';
import { Problem } from '../problem.ts';
import type { Clock } from '../clock.ts';
import { idempotentRequest } from '../idempotency.ts';
import { IdempotencyConflictError } from '../store/errors.ts';
import type { Store } from '../store/types.ts';
import type { ArgumentChecker } from './arguments.ts';
import type { Tool } from './index.ts';

export interface ToolCallDeps {
  store: Store;
  clock: Clock;
  metering: Metering;
  checkArguments: ArgumentChecker;
}

export interface ToolCall {
  caller: Caller;
  tool: Tool;
  /** The arguments exactly as the client sent them (the parsed JSON, not a copy rebuilt by a parser). */
  args: unknown;
  requestId: string;
  /** The client's Idempotency-Key for this call, if it sent one. */
  idempotencyKey?: string;
}

/** What the transport sends: the tool's answer, and whether it is the one kept for an earlier call (nothing charged). */
export interface ToolAnswer {
  result: unknown;
  replayed: boolean;
}

/** What the transport records about its answer; the tool, its cost and the price are filled in by charge. */
export type AnsweredCall = Omit<Call, 'tool' | 'upstreamCostUsd' | 'problem'>;

export interface ToolCallResult extends ToolAnswer {
  /**
   * Charges the price with the usage record of the answer about to be sent (a replayed one: no charge), and says
   * what to send: this answer, or the one a concurrent call under the same Idempotency-Key kept first (then nothing
   * was written here: the transport records it as it sends it). Throws a 402 Problem if it cannot charge.
   */
  charge(answer: AnsweredCall): Promise<ToolAnswer>;
}

export type CallTool = (call: ToolCall) => Promise<ToolCallResult>;

/** What a call of the tool needs: its x-openrush-access, or `tools: use` for a priced tool that declares none. */
export function accessNeededBy(tool: Tool): AccessNeed | undefined {
  return (tool.access ?? (tool.credits > 0 ? { resource: 'tools', level: 'use' } : undefined)) as AccessNeed | undefined;
}

export function createToolCaller(deps: ToolCallDeps): CallTool {
  return async function callTool({ caller, tool, args, requestId, idempotencyKey }) {
    const invalid = deps.checkArguments(tool, args);
    if (invalid) throw invalid;
    const need = accessNeededBy(tool);
    // An OAuth token is first held to the scopes it was granted (403 insufficient_scope, which the client can act on
    // by asking for more), then its grant's key to its permissions, as any key.
    const scope = missingScope(caller, need);
    if (scope) throw insufficientScope(scope);
    const reason = need && refusal(caller, need.resource, need.level);
    if (reason) throw new Problem('forbidden', reason);
    // A free tool's answer is live (get_key_status's counters): a retry asks again, whatever key it carries.
    const once =
      idempotencyKey === undefined || tool.credits === 0
        ? undefined
        : idempotentRequest<{ result: unknown }>(deps, { accountId: caller.accountId, idempotencyKey, operation: `tool ${tool.name}`, body: args });
    const earlier = await once?.earlier();
    if (earlier !== undefined) {
      return {
        result: earlier.result,
        replayed: true,
        charge: async (answer) => {
          await deps.metering.recordCall(caller, { ...answer, tool: tool.name, upstreamCostUsd: 0 });
          return { result: earlier.result, replayed: true };
        },
      };
    }
    // Refused before the handler runs, so no work (or upstream spend) is wasted on a call nobody can pay for; the
    // charge itself is still the atomic, guarded one.
    if (tool.credits > 0) {
      const balance = await deps.store.getBalance(caller.accountId);
      if (balance !== undefined && balance < tool.credits) throw await deps.metering.refuseForCredits(caller, tool.credits, balance);
    }
    const output = await tool.handler(args, { accountId: caller.accountId, requestId, caller });
    const upstreamCostUsd = output.upstreamCostUsd ?? 0;
    if (!Number.isFinite(upstreamCostUsd) || upstreamCostUsd < 0) throw new Error(`tool ${tool.name} reported an invalid upstream cost`);
    return {
      result: output.result,
      replayed: false,
      charge: async (answer) => {
        try {
          await deps.metering.recordCall(caller, { ...answer, tool: tool.name, upstreamCostUsd }, { charge: tool.credits, idempotency: once?.seal({ result: output.result }, 200) });
          return { result: output.result, replayed: false };
        } catch (error) {
          const winner = error instanceof IdempotencyConflictError ? await once?.earlier() : undefined;
          if (winner === undefined) throw error;
          return { result: winner.result, replayed: true };
        }
      },
    };
  };
}
