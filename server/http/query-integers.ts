// Integer query parameters are plain decimal digits: an optional '-' where the contract allows negatives, then
// 0–9. express-openapi-validator coerces query strings with JavaScript's Number(), which reads `0x10` as 16 and
// `1e1`, `0b11`, ` 5` or `Infinity` as numbers too; this check, run right after it on the raw query string, is
// the one place that refuses them (400).
import type { NextFunction, Request, Response } from 'express';
import type { ContractDocument } from '../contract.ts';
import { type ValidationErrorItem, validationFailed } from '../problem.ts';

interface ParameterObject {
  name: string;
  in: string;
  schema?: { type?: string | string[]; minimum?: number; $ref?: string };
  $ref?: string;
}

/** Resolves a local `#/components/…` reference of the bundled contract. */
function resolve<T>(contract: ContractDocument, value: T & { $ref?: string }): T {
  if (!value.$ref?.startsWith('#/')) return value;
  const target = value.$ref
    .slice(2)
    .split('/')
    .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], contract);
  return resolve(contract, target as T & { $ref?: string });
}

const DIGITS = /^\d+$/;
const SIGNED_DIGITS = /^-?\d+$/;

export function createIntegerQueryCheck(contract: ContractDocument) {
  // Per operation (the validator's req.openapi.schema), the pattern each integer query parameter must match.
  const cache = new WeakMap<object, Map<string, RegExp>>();
  function integerParameters(operation: { parameters?: unknown[] }): Map<string, RegExp> {
    let found = cache.get(operation);
    if (found) return found;
    found = new Map();
    for (const raw of operation.parameters ?? []) {
      const parameter = resolve(contract, raw as ParameterObject);
      const schema = parameter.schema && resolve(contract, parameter.schema);
      const types = [schema?.type].flat();
      if (parameter.in !== 'query' || !types.includes('integer')) continue;
      found.set(parameter.name, schema?.minimum !== undefined && schema.minimum >= 0 ? DIGITS : SIGNED_DIGITS);
    }
    cache.set(operation, found);
    return found;
  }

  return function requireDecimalIntegers(req: Request, _res: Response, next: NextFunction): void {
    const operation = (req as Request & { openapi?: { schema?: { parameters?: unknown[] } } }).openapi?.schema;
    const queryStart = req.originalUrl.indexOf('?');
    if (!operation || queryStart === -1) return next();
    const integers = integerParameters(operation);
    if (integers.size === 0) return next();
    const errors: ValidationErrorItem[] = [];
    for (const [name, value] of new URLSearchParams(req.originalUrl.slice(queryStart + 1))) {
      const pattern = integers.get(name);
      if (pattern && !pattern.test(value)) {
        errors.push({
          location: 'query',
          pointer: `/${name}`,
          message: pattern === DIGITS ? 'must be an integer written in decimal digits' : "must be an integer written in decimal digits, with an optional leading '-'",
        });
      } else if (pattern && !Number.isSafeInteger(Number(value))) {
        // Past ±(2^53 − 1) Number() rounds, and past ~309 digits it gives ±Infinity, which the validator's
        // minimum/maximum let through (a 500 on /v2/api-keys, found by the fuzz suite).
        errors.push({ location: 'query', pointer: `/${name}`, message: 'must be an integer between -9007199254740991 and 9007199254740991' });
      }
    }
    next(errors.length ? validationFailed(errors) : undefined);
  };
}
