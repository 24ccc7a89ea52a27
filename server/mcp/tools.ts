// The contract's metered tools as MCP tools: the same list that /v1/capabilities shows (resolveTools), with the
// operation's request body schema as `inputSchema` and its 200 schema as `outputSchema`. No second list.
import type { Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import type { Tool } from '../tools/index.ts';

/** Keys of `_meta` on each listed tool: what a call costs and where the data comes from. */
export const META_CREDITS = 'openrush.io/credits_per_call';
export const META_SOURCE = 'openrush.io/source';

function isObjectSchema(schema: Record<string, unknown> | undefined): schema is Record<string, unknown> {
  return schema !== undefined && schema.type === 'object';
}

export function toMcpTool(tool: Tool): McpTool {
  return {
    name: tool.name,
    ...(tool.title ? { title: tool.title } : {}),
    description: tool.description,
    // MCP wants an object schema for the arguments; a tool without a body takes no arguments.
    inputSchema: (isObjectSchema(tool.inputSchema) ? tool.inputSchema : { type: 'object', additionalProperties: false }) as McpTool['inputSchema'],
    // structuredContent must be an object: a tool whose result is not one answers in text only.
    ...(isObjectSchema(tool.outputSchema) ? { outputSchema: tool.outputSchema as McpTool['outputSchema'] } : {}),
    _meta: { [META_CREDITS]: tool.credits, [META_SOURCE]: tool.source },
  };
}

export function hasStructuredOutput(tool: Tool): boolean {
  return isObjectSchema(tool.outputSchema);
}
