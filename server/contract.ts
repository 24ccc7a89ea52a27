// The contract, as bundled by `npm run generate`. The server reads everything it needs from here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ContractOperation {
  operationId?: string;
  summary?: string;
  description?: string;
  security?: Array<Record<string, string[]>>;
  tags?: string[];
  parameters?: unknown[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, unknown>;
  [extension: `x-${string}`]: unknown;
}

export interface ContractDocument {
  openapi: string;
  paths: Record<string, Record<string, ContractOperation>>;
  components?: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

const BUNDLE = new URL('../generated/openapi.json', import.meta.url);
/** The bundled contract's file, for tools that read it themselves (Prism in `openrush mock` / `openrush verify`). */
export const BUNDLED_CONTRACT_FILE = fileURLToPath(BUNDLE);

/** A fresh copy of the bundled contract (the validator annotates the object it is given). */
export function loadContract(): ContractDocument {
  return JSON.parse(readFileSync(BUNDLE, 'utf8')) as ContractDocument;
}
