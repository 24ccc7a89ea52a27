// The contract as the fuzz suite reads it, at run time, from the bundled generated/openapi.json: every operation
// (paths × methods), its parameters and request body (with the JSON pointer of each schema, so ajv checks exactly
// what the contract says), and the documented responses. A new operation in the contract is fuzzed with no new code.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv2020Module, { type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// Both are CommonJS modules whose default export is also module.exports.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

export type Schema = Record<string, unknown> & {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  minProperties?: number;
  maxProperties?: number;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
};

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required: boolean;
  schema: Schema;
  /** JSON pointer of the parameter's schema in the contract. */
  pointer: string;
}

export interface DocumentedResponse {
  /** Content type → JSON pointer of its schema. */
  content: Record<string, string>;
  headers: Record<string, { required: boolean; pointer: string }>;
}

export interface Operation {
  id: string;
  method: string;
  /** The path template, e.g. `/v2/api-keys/{api_key_id}`. */
  path: string;
  /** No credential needed (`security: []`). */
  public: boolean;
  /** Only the Dashboard's session cookie is accepted (every security alternative is an apiKey scheme in: cookie). */
  cookieOnly: boolean;
  /** `x-openrush-error-format`: `oauth` answers its 4xx errors as OAuth errors (`OAuthError`), except problems it keeps. */
  errorFormat: 'problem' | 'oauth';
  parameters: Parameter[];
  body?: { required: boolean; contentType: string; schema: Schema; pointer: string };
  /** Status code → what the contract says about it. */
  responses: Record<string, DocumentedResponse>;
}

export const CONTRACT_FILE = fileURLToPath(new URL('../../generated/openapi.json', import.meta.url));
export const contract = JSON.parse(readFileSync(CONTRACT_FILE, 'utf8')) as Record<string, unknown>;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The node at a JSON pointer of the contract (`#/a/b` or `/a/b`). */
export function at(pointer: string): Schema {
  let node: unknown = contract;
  for (const raw of pointer.replace(/^#/, '').split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = (node as Record<string, unknown>)[segment];
    if (node === undefined) throw new Error(`The contract has nothing at ${pointer}`);
  }
  return node as Schema;
}

/** Follows `$ref`s until a real node: returns it and its own pointer. */
export function follow(pointer: string): { node: Schema; pointer: string } {
  let node = at(pointer);
  for (let hops = 0; typeof node.$ref === 'string'; hops++) {
    if (hops > 20) throw new Error(`$ref loop at ${pointer}`);
    pointer = node.$ref.replace(/^#/, '');
    node = at(pointer);
  }
  return { node, pointer };
}

/** A schema with its `$ref` (if any) resolved, one level. */
export function deref(schema: Schema): Schema {
  let node = schema;
  while (typeof node.$ref === 'string') node = at(node.$ref);
  return node;
}

function readOperations(): Operation[] {
  const paths = contract.paths as Record<string, Record<string, unknown>>;
  const schemes = ((contract.components as Record<string, unknown>).securitySchemes ?? {}) as Record<string, { type?: string; in?: string }>;
  const isCookie = (name: string) => schemes[name]?.type === 'apiKey' && schemes[name]?.in === 'cookie';
  const globalSecurity = (contract.security as unknown[] | undefined) ?? [];
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(paths)) {
    const itemPointer = `/paths/${escapePointer(path)}`;
    for (const method of METHODS) {
      if (!(method in item)) continue;
      const opPointer = `${itemPointer}/${method}`;
      const op = at(opPointer) as Record<string, unknown>;
      // Path-level parameters first, then the operation's (which override by name + location).
      const parameters = new Map<string, Parameter>();
      for (const listPointer of [`${itemPointer}/parameters`, `${opPointer}/parameters`]) {
        let list: unknown[];
        try {
          list = at(listPointer) as unknown as unknown[];
        } catch {
          continue;
        }
        list.forEach((_, index) => {
          const { node, pointer } = follow(`${listPointer}/${index}`);
          const parameter: Parameter = {
            name: node.name as string,
            in: node.in as Parameter['in'],
            required: (node as Record<string, unknown>).required === true,
            schema: node.schema as Schema,
            pointer: `${pointer}/schema`,
          };
          parameters.set(`${parameter.in}:${parameter.name}`, parameter);
        });
      }
      let body: Operation['body'];
      if (op.requestBody) {
        const { node: requestBody, pointer } = follow(`${opPointer}/requestBody`);
        const content = requestBody.content as Record<string, { schema: Schema }>;
        const contentType = Object.keys(content)[0]!;
        body = {
          required: (requestBody as Record<string, unknown>).required === true,
          contentType,
          schema: content[contentType]!.schema,
          pointer: `${pointer}/content/${escapePointer(contentType)}/schema`,
        };
      }
      const responses: Record<string, DocumentedResponse> = {};
      for (const status of Object.keys(op.responses as object)) {
        const { node: response, pointer } = follow(`${opPointer}/responses/${status}`);
        const documented: DocumentedResponse = { content: {}, headers: {} };
        for (const type of Object.keys((response.content as object | undefined) ?? {})) {
          documented.content[type] = `${pointer}/content/${escapePointer(type)}/schema`;
        }
        for (const name of Object.keys((response.headers as object | undefined) ?? {})) {
          const header = follow(`${pointer}/headers/${escapePointer(name)}`);
          documented.headers[name.toLowerCase()] = { required: (header.node as Record<string, unknown>).required === true, pointer: `${header.pointer}/schema` };
        }
        responses[status] = documented;
      }
      const security = (op.security as unknown[] | undefined) ?? globalSecurity;
      operations.push({
        id: (op.operationId as string | undefined) ?? `${method} ${path}`,
        method: method.toUpperCase(),
        path,
        public: security.length === 0 || security.some((requirement) => Object.keys(requirement as object).length === 0),
        cookieOnly: security.length > 0 && security.every((requirement) => Object.keys(requirement as object).length > 0 && Object.keys(requirement as object).every(isCookie)),
        errorFormat: op['x-openrush-error-format'] === 'oauth' ? 'oauth' : 'problem',
        parameters: [...parameters.values()],
        body,
        responses,
      });
    }
  }
  return operations;
}

export const operations: Operation[] = readOperations();

// One ajv for the whole contract, in the dialect of OpenAPI 3.1 (JSON Schema 2020-12), with the same 'full' formats
// as the server's validator: real calendar dates, leap seconds only at 23:59:60 UTC.
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv, { mode: 'full' });
ajv.addSchema(contract, 'openapi');
const compiled = new Map<string, ValidateFunction>();

/** A validator for the schema at a pointer of the contract. */
export function validatorAt(pointer: string): ValidateFunction {
  const known = compiled.get(pointer);
  if (known) return known;
  const validate = ajv.compile({ $ref: `openapi#${pointer}` });
  compiled.set(pointer, validate);
  return validate;
}

/** A validator for a schema fragment taken from the contract (its `$ref`s point into the contract). */
export function validatorOf(schema: Schema): ValidateFunction {
  return ajv.compile({ ...rebase(schema) });
}

/** Rewrites local `#/…` refs to `openapi#/…` so a fragment can be compiled on its own. */
function rebase(schema: unknown): Schema {
  if (Array.isArray(schema)) return schema.map(rebase) as unknown as Schema;
  if (schema === null || typeof schema !== 'object') return schema as Schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key] = key === '$ref' && typeof value === 'string' && value.startsWith('#') ? `openapi${value}` : rebase(value);
  }
  return out as Schema;
}

export function formatErrors(validate: ValidateFunction): string {
  return (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''}`).join('; ');
}

/** Does a string satisfy the contract's `format`? The same check the server's validator makes. */
export function formatHolds(format: string, value: string): boolean {
  const check = ajv.formats[format];
  if (check === undefined) throw new Error(`The fuzz suite does not know format "${format}"`);
  if (check instanceof RegExp) return check.test(value);
  if (typeof check === 'function') return check(value);
  const validate = (check as { validate: RegExp | ((value: string) => boolean) }).validate;
  return validate instanceof RegExp ? validate.test(value) : validate(value);
}
