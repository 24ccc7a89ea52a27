// One tool call, two transports (issue 15, item 4): the same arguments sent as POST /v1/tools/<tool> and as an MCP
// tools/call must get the same outcome (the same problem type and error pointers, or the same result), the same
// charge and the same usage record. Each row is one case; the next case is one more line. Arguments are raw JSON
// text, so that keys a parser would swallow (`__proto__`) reach both transports as the client wrote them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { components } from '../../generated/openapi.d.ts';
import type { ContractOperation } from '../../server/contract.ts';
import type { ToolDefinition } from '../../server/tools/index.ts';
import { apiKeysOf } from '../helpers/api-keys.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

type UsageRecord = components['schemas']['UsageRecord'];

const MCP_ACCEPT = 'application/json, text/event-stream';

// An embedder tool whose input uses what the contract's bodies use: int32, date-time, an enum with a default,
// bounded arrays. It answers its input back, so filled-in defaults show.
const SETTINGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['count'],
  properties: {
    count: { type: 'integer', format: 'int32' },
    when: { type: 'string', format: 'date-time' },
    mode: { type: 'string', enum: ['fast', 'full'], default: 'fast' },
    tags: { type: 'array', maxItems: 2, items: { type: 'string', maxLength: 5 } },
  },
};
const settings: ToolDefinition = {
  path: '/v1/tools/echo_settings',
  operation: {
    operationId: 'echoSettings',
    summary: 'Echo settings',
    description: 'Answers its input, defaults filled in.',
    'x-openrush-tool': { name: 'echo_settings', source: 'test_lab' },
    'x-openrush-access': { resource: 'tools', level: 'use' },
    'x-openrush-credits': 2,
    requestBody: { required: true, content: { 'application/json': { schema: SETTINGS_SCHEMA } } },
    responses: {
      '200': { description: 'The input.', content: { 'application/json': { schema: { ...SETTINGS_SCHEMA, required: ['count', 'mode'] } } } },
      '400': { $ref: '#/components/responses/ValidationFailed' },
      '401': { $ref: '#/components/responses/Unauthorized' },
      '402': { $ref: '#/components/responses/PaymentRequired' },
      '403': { $ref: '#/components/responses/Forbidden' },
    },
  } as ContractOperation,
  source: { id: 'test_lab', name: 'Test lab', enabled: true },
  handler: (input: unknown) => ({ result: input, upstreamCostUsd: 0.25 }),
};

interface Case {
  name: string;
  tool?: 'inspect_domain' | 'echo_settings';
  /** The arguments, as JSON text. */
  args: string;
  credits: number;
  /** Call with a READ_ONLY key of the account instead of its full-access one. */
  readOnly?: boolean;
  /** What both must answer: 'ok' or the problem type. */
  expected: string;
}

const TOO_LONG = 'a'.repeat(2049);
const cases: Case[] = [
  { name: 'valid arguments', args: '{"domain":"example.com"}', credits: 10, expected: 'ok' },
  { name: 'valid arguments, no credits', args: '{"domain":"example.com"}', credits: 0, expected: 'payment_required' },
  { name: 'an unknown argument, no credits', args: '{"domain":"x.com","extra":1}', credits: 0, expected: 'validation_failed' },
  { name: 'a __proto__ argument', args: '{"domain":"x.com","__proto__":{"admin":true}}', credits: 10, expected: 'validation_failed' },
  { name: 'a __proto__ argument, no credits', args: '{"__proto__":1,"domain":"x.com"}', credits: 0, expected: 'validation_failed' },
  { name: 'a constructor argument', args: '{"domain":"x.com","constructor":{"prototype":1}}', credits: 10, expected: 'validation_failed' },
  { name: 'no arguments, no credits', args: '{}', credits: 0, expected: 'validation_failed' },
  { name: 'a number for a string', args: '{"domain":42}', credits: 10, expected: 'validation_failed' },
  { name: 'an object for a string', args: '{"domain":{"toString":"x.com"}}', credits: 10, expected: 'validation_failed' },
  { name: 'an empty string', args: '{"domain":""}', credits: 10, expected: 'validation_failed' },
  { name: 'a string over maxLength', args: `{"domain":"${TOO_LONG}"}`, credits: 10, expected: 'validation_failed' },
  { name: 'a lone surrogate', args: '{"domain":"\\ud800.com"}', credits: 10, expected: 'validation_failed' },
  { name: 'a NUL', args: '{"domain":"x\\u0000.com"}', credits: 10, expected: 'validation_failed' },
  { name: 'input the tool refuses', args: '{"domain":"http://"}', credits: 10, expected: 'validation_failed' },
  // The balance is checked before the tool runs (no work, no upstream spend, for a call nobody can pay for).
  { name: 'input the tool refuses, no credits', args: '{"domain":"http://"}', credits: 0, expected: 'payment_required' },
  { name: 'a read-only key', args: '{"domain":"example.com"}', credits: 10, readOnly: true, expected: 'forbidden' },
  { name: 'a read-only key, invalid arguments', args: '{"domain":"x.com","extra":1}', credits: 10, readOnly: true, expected: 'validation_failed' },
  { name: 'int32 in range, default filled in', tool: 'echo_settings', args: '{"count":2147483647}', credits: 10, expected: 'ok' },
  { name: 'int32 out of range', tool: 'echo_settings', args: '{"count":2147483648}', credits: 10, expected: 'validation_failed' },
  { name: 'int32 out of range, no credits', tool: 'echo_settings', args: '{"count":-2147483649}', credits: 0, expected: 'validation_failed' },
  { name: 'a fraction for an integer', tool: 'echo_settings', args: '{"count":1.5}', credits: 10, expected: 'validation_failed' },
  { name: 'a numeric string (no coercion)', tool: 'echo_settings', args: '{"count":"1"}', credits: 10, expected: 'validation_failed' },
  { name: 'a date that does not exist', tool: 'echo_settings', args: '{"count":1,"when":"2099-02-30T00:00:00Z"}', credits: 10, expected: 'validation_failed' },
  { name: 'a real date', tool: 'echo_settings', args: '{"count":1,"when":"2099-02-28T00:00:00Z","mode":"full"}', credits: 10, expected: 'ok' },
  { name: 'a value outside the enum', tool: 'echo_settings', args: '{"count":1,"mode":"slow"}', credits: 10, expected: 'validation_failed' },
  { name: 'too many items', tool: 'echo_settings', args: '{"count":1,"tags":["a","b","c"]}', credits: 10, expected: 'validation_failed' },
  { name: 'a nested __proto__', tool: 'echo_settings', args: '{"count":1,"__proto__":{"count":"x"}}', credits: 10, expected: 'validation_failed' },
];

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ tools: [settings] });
});
afterAll(async () => {
  await server?.close();
});

interface Outcome {
  /** 'ok', or the problem type's last segment. */
  outcome: string;
  status: number;
  pointers?: string[];
  result?: unknown;
}

function problemOutcome(problem: { type: string; status: number; errors?: Array<{ pointer: string }> }): Outcome {
  return {
    outcome: problem.type.replace('https://openrush.io/problems/', ''),
    status: problem.status,
    pointers: problem.errors?.map((error) => error.pointer).sort(),
  };
}

async function overHttp(key: string, tool: string, args: string): Promise<Outcome> {
  const response = await server.call(`/v1/tools/${tool}`, { method: 'POST', key, headers: { 'Content-Type': 'application/json' }, body: args });
  const body = (await response.json()) as any;
  return response.status === 200 ? { outcome: 'ok', status: 200, result: body } : problemOutcome(body);
}

async function overMcp(key: string, tool: string, args: string): Promise<Outcome> {
  const message = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"${tool}","arguments":${args}}}`;
  const response = await server.call('/mcp', { method: 'POST', key, headers: { 'Content-Type': 'application/json', Accept: MCP_ACCEPT }, body: message });
  const body = (await response.json()) as any;
  // Refused before MCP saw it (text that is not well-formed): the HTTP problem, as on the tool's route, its
  // pointers into the message sent; the same argument's pointer once the message's own prefix is taken off.
  if (response.status !== 200) {
    const outcome = problemOutcome(body);
    for (const pointer of outcome.pointers ?? []) expect(pointer).toMatch(/^\/params\/arguments\//);
    return { ...outcome, pointers: outcome.pointers?.map((pointer) => pointer.replace('/params/arguments', '')) };
  }
  expect(body.error, JSON.stringify(body)).toBeUndefined();
  const result = body.result;
  if (result.isError) return problemOutcome(result._meta['openrush.io/problem']);
  return { outcome: 'ok', status: 200, result: result.structuredContent };
}

async function lastRecord(key: string): Promise<UsageRecord> {
  const response = await server.call('/v1/me/usage?limit=1', { key });
  expect(response.status).toBe(200);
  const [record] = (await response.json()) as UsageRecord[];
  return record!;
}

/** A fresh account with `credits`, and the key to call with. */
async function caller(credits: number, readOnly = false): Promise<{ key: string; accountId: string }> {
  const account = await server.newAccount(credits);
  if (!readOnly) return account;
  const created = await apiKeysOf(server).created(account.key, { name: 'read-only', permission_mode: 2 });
  return { key: created.api_key, accountId: account.accountId };
}

describe('a tool call gets the same answer, charge and usage record over HTTP and over MCP', () => {
  it.each(cases)('$name', async ({ tool = 'inspect_domain', args, credits, readOnly, expected }) => {
    const http = await caller(credits, readOnly);
    const mcp = await caller(credits, readOnly);
    const viaHttp = await overHttp(http.key, tool, args);
    const viaMcp = await overMcp(mcp.key, tool, args);
    expect(viaHttp.outcome).toBe(expected);
    expect(viaMcp).toEqual(viaHttp);

    const [httpBalance, mcpBalance] = await Promise.all([server.store.getBalance(http.accountId), server.store.getBalance(mcp.accountId)]);
    expect(mcpBalance).toBe(httpBalance);
    expect(await server.store.sumLedger(mcp.accountId)).toBe(mcpBalance);
    if (expected !== 'ok') expect(mcpBalance).toBe(credits);

    const fields = (record: UsageRecord) => ({
      tool: record.tool,
      credits_charged: record.credits_charged,
      dataforseo_cost_usd: record.dataforseo_cost_usd,
      error_type: record.error_type,
    });
    const [httpRecord, mcpRecord] = [await lastRecord(http.key), await lastRecord(mcp.key)];
    expect(fields(mcpRecord)).toEqual(fields(httpRecord));
    expect(httpRecord).toMatchObject({ channel: 'api', rpc_method: null, tool, error_type: expected === 'ok' ? null : expected });
    expect(mcpRecord).toMatchObject({ channel: 'mcp', rpc_method: 'tools/call', endpoint: '/mcp' });
  });
});
