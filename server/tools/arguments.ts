// Tool arguments are checked by the rules the HTTP route's express-openapi-validator applies to the operation's
// request body: the validator's own Ajv factory (Ajv 2020 for OpenAPI 3.1, its int32/int64/float/double formats,
// readOnly, strictNumbers, defaults filled in), with the options app.ts gives the validator, over the operation's
// request body schema. So an MCP call and an HTTP call of a tool cannot disagree about what is valid
// (test/server/tool-parity.test.ts sends the same arguments both ways).
import type { ValidateFunction } from 'ajv';
// The validator's internals come from the same bundle app.ts runs (vendor/, built by scripts/build.ts).
import { ajvErrorsToValidatorError, createRequestAjv } from '../../vendor/express-openapi-validator.js';
import type { ContractDocument } from '../contract.ts';
import { redactSecrets } from '../endpoint.ts';
import { type Problem, type ValidationErrorItem, validationFailed } from '../problem.ts';
import type { Tool } from './index.ts';

/** How request bodies are checked: given to express-openapi-validator in app.ts, and used here. */
export const REQUEST_VALIDATION = {
  // Bodies are JSON and must already have the right types ("name": 42 is refused).
  validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false },
  // 'full' checks real calendar dates: 2099-02-30 and month 13 are refused, not rolled over.
  validateFormats: true,
  ajvFormats: { mode: 'full' as const },
};

/** The validator's request Ajv options (AjvOptions.request in express-openapi-validator) for REQUEST_VALIDATION. */
const AJV_OPTIONS = {
  strict: false,
  strictNumbers: true,
  strictTuples: true,
  allowUnionTypes: false,
  validateSchema: false,
  coerceTypes: REQUEST_VALIDATION.validateRequests.coerceTypes,
  useDefaults: true,
  removeAdditional: false,
  validateFormats: REQUEST_VALIDATION.validateFormats,
  formats: {},
  serDesMap: {},
  ajvFormats: REQUEST_VALIDATION.ajvFormats,
};

export type ArgumentChecker = (tool: Tool, args: unknown) => Problem | undefined;

/** Compiles every tool's input schema once; the checker answers the HTTP route's 400 problem, or undefined. */
export function createArgumentChecker(contract: ContractDocument, tools: Tool[]): ArgumentChecker {
  const ajv = createRequestAjv(contract as never, AJV_OPTIONS as never);
  const validators = new Map<string, ValidateFunction>();
  for (const tool of tools) validators.set(tool.name, ajv.compile(tool.inputSchema) as ValidateFunction);
  return (tool, args) => {
    const validate = validators.get(tool.name)!;
    if (validate(args)) return undefined;
    const errors: ValidationErrorItem[] = ajvErrorsToValidatorError(400, (validate.errors ?? []) as never)
      .errors.slice(0, 100)
      .map((error: { path?: string; message?: string }) => ({
        location: 'body',
        pointer: error.path ?? '',
        message: redactSecrets(error.message ?? 'is invalid').slice(0, 512),
      }));
    return validationFailed(errors);
  };
}
