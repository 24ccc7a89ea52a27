// Metered tools. A tool is an operation of the contract that carries `x-openrush-tool` (its name and source)
// and `x-openrush-credits` (its price), plus a handler. The price is read from the contract and nowhere else.
// Embedders add tools with createApp({ tools: [...] }), giving the operation to add to the contract.
import type { components } from '../../generated/openapi.d.ts';
import type { ContractDocument, ContractOperation } from '../contract.ts';
import { inspectDomain } from './inspect-domain.ts';

type Capabilities = components['schemas']['Capabilities'];
type Source = components['schemas']['Source'];

export interface ToolContext {
  accountId: string;
  requestId: string;
}

export interface ToolOutput {
  /** The response body: must match the operation's 200 response schema. */
  result: unknown;
  /** What the call cost upstream, in US dollars; recorded as the usage record's dataforseo_cost_usd. */
  upstreamCostUsd?: number;
}

export interface ToolDefinition {
  /** The operation's path, e.g. `/v1/tools/word_count`. Tools are called with POST. */
  path: string;
  /**
   * The OpenAPI operation to add to the contract, with `x-openrush-tool: { name, source }` and
   * `x-openrush-credits`. Omit it for a tool whose operation is already in openapi/openapi.yaml.
   */
  operation?: ContractOperation;
  /** A source to list in capabilities, if the tool's source is not one of the contract's. */
  source?: Source;
  /** Receives the request body, already validated against the operation's schema. */
  handler(input: any, context: ToolContext): Promise<ToolOutput> | ToolOutput;
}

/** A tool as the server runs it: everything read from the contract. */
export interface Tool {
  name: string;
  description: string;
  credits: number;
  source: string;
  path: string;
  /** The operation's summary, a short title for people. */
  title?: string;
  /** The JSON Schema of the input (the operation's request body), self-contained. */
  inputSchema: Record<string, unknown>;
  /** The JSON Schema of the result (the operation's 200 response body), self-contained; absent if none is declared. */
  outputSchema?: Record<string, unknown>;
  /** What a key needs to call it (the operation's x-openrush-access). */
  access?: { resource: string; level: string };
  handler: ToolDefinition['handler'];
}

export const builtinTools: ToolDefinition[] = [
  {
    path: '/v1/tools/inspect_domain',
    handler: (input: components['schemas']['InspectDomainRequest']) => ({ result: inspectDomain(input.domain) }),
  },
];

/** Inlines local `$ref`s so that a capabilities reader gets a self-contained JSON Schema. */
function dereference(contract: ContractDocument, schema: unknown, depth = 0): unknown {
  if (depth > 32 || schema === null || typeof schema !== 'object') return schema;
  if (Array.isArray(schema)) return schema.map((item) => dereference(contract, item, depth + 1));
  const ref = (schema as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/')) {
    const target = ref
      .slice(2)
      .split('/')
      .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], contract);
    return dereference(contract, target, depth + 1);
  }
  return Object.fromEntries(
    Object.entries(schema).filter(([key]) => key !== 'example' && key !== 'examples').map(([key, value]) => [key, dereference(contract, value, depth + 1)]),
  );
}

/** The JSON body schema of the operation's 200 response, dereferenced, if it declares one. */
function successSchema(contract: ContractDocument, operation: ContractOperation): Record<string, unknown> | undefined {
  let response = operation.responses?.['200'] as { $ref?: string; content?: Record<string, { schema?: unknown }> } | undefined;
  if (response?.$ref) response = dereference(contract, response) as typeof response;
  const schema = response?.content?.['application/json']?.schema;
  return schema === undefined ? undefined : (dereference(contract, schema) as Record<string, unknown>);
}

/**
 * Adds the embedder's operations to the contract (in place) and pairs every tool operation of the contract with
 * its handler. Throws at start-up when a tool has no price, no handler or no operation.
 */
export function resolveTools(contract: ContractDocument, definitions: ToolDefinition[]): Tool[] {
  const handlers = new Map<string, ToolDefinition>();
  for (const definition of definitions) {
    if (definition.operation) {
      if (contract.paths[definition.path]) throw new Error(`tool path ${definition.path} is already in the contract`);
      contract.paths[definition.path] = { post: definition.operation };
    }
    handlers.set(definition.path, definition);
  }
  const tools: Tool[] = [];
  for (const [path, item] of Object.entries(contract.paths)) {
    const operation = item.post;
    const meta = operation?.['x-openrush-tool'] as { name?: string; source?: string } | undefined;
    if (!operation || !meta) continue;
    const credits = operation['x-openrush-credits'];
    // Bounded like Tool.credits_per_call in the contract.
    if (typeof credits !== 'number' || !Number.isInteger(credits) || credits < 0 || credits > 1_000_000) {
      throw new Error(`tool ${path} needs x-openrush-credits, a whole number of credits from 0 to 1000000`);
    }
    const definition = handlers.get(path);
    if (!definition) throw new Error(`tool ${path} is in the contract but has no handler`);
    handlers.delete(path);
    tools.push({
      name: meta.name ?? path.split('/').pop()!,
      description: (operation.description ?? operation.summary ?? '').trim(),
      credits,
      source: meta.source ?? 'openrush',
      path,
      title: operation.summary,
      inputSchema: dereference(contract, operation.requestBody?.content?.['application/json']?.schema ?? {}) as Record<string, unknown>,
      outputSchema: successSchema(contract, operation),
      access: operation['x-openrush-access'] as Tool['access'],
      handler: definition.handler,
    });
  }
  const orphan = handlers.keys().next();
  if (!orphan.done) throw new Error(`tool ${orphan.value} has a handler but no x-openrush-tool operation in the contract`);
  return tools;
}

/** GET/POST /v1/capabilities: the contract's sources (and the embedder's), and the tools of enabled sources. */
export function capabilitiesOf(contract: ContractDocument, tools: Tool[], definitions: ToolDefinition[]): Capabilities {
  const sources = new Map<string, Source>();
  for (const source of (contract['x-openrush-sources'] as Source[] | undefined) ?? []) sources.set(source.id, source);
  for (const definition of definitions) if (definition.source) sources.set(definition.source.id, definition.source);
  const enabled = (id: string) => sources.get(id)?.enabled ?? false;
  return {
    tools: tools
      .filter((tool) => enabled(tool.source))
      .map((tool) => ({
        name: tool.name,
        description: tool.description,
        credits_per_call: tool.credits,
        source: tool.source,
        method: 'POST' as const,
        path: tool.path,
        input_schema: tool.inputSchema,
      })),
    sources: [...sources.values()],
  };
}
