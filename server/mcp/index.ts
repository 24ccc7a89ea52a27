// MCP access: the second way in, beside HTTP, over the same domain.
export { createMcpHandler, MCP_PATH, type McpAnswer, type McpDeps, type McpRequest } from './handler.ts';
