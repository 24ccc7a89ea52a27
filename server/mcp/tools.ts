// The contract's metered tools as MCP tools: the same list that /v1/capabilities shows (resolveTools), with the
// operation's request body schema as `inputSchema` and its 200 schema as `outputSchema`. No second list.
import { Ajv, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import type { Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { type ValidationErrorItem, validationFailed, type Problem } from '../problem.ts';
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

/**
 * Checks tool arguments against the tool's input schema, as the HTTP validator checks the operation's body, and
 * answers the same 400 problem (`errors[]` with a JSON pointer per problem) when they do not match.
 */
export function createArgumentChecker(tools: Tool[]): (tool: Tool, args: unknown) => Problem | undefined {
  const ajv = new Ajv({ allErrors: true, strict: false });
  // 'full' checks real calendar dates, as the HTTP validator does.
  ajvFormats.default(ajv, { mode: 'full' });
  const validators = new Map<string, ValidateFunction>();
  for (const tool of tools) validators.set(tool.name, ajv.compile(isObjectSchema(tool.inputSchema) ? tool.inputSchema : { type: 'object' }));
  return (tool, args) => {
    const validate = validators.get(tool.name)!;
    if (validate(args)) return undefined;
    const errors: ValidationErrorItem[] = (validate.errors ?? []).slice(0, 100).map((error) => ({
      location: 'body',
      pointer:
        error.keyword === 'additionalProperties'
          ? `${error.instancePath}/${String((error.params as { additionalProperty?: unknown }).additionalProperty)}`
          : error.instancePath,
      message: (error.message ?? 'is invalid').slice(0, 512),
    }));
    return validationFailed(errors, `The arguments do not match the input schema of ${tool.name}.`);
  };
}
