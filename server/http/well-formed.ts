// Text on the way in must be well-formed Unicode: a lone surrogate (`"x\ud800y"` in JSON) or bytes that are not
// UTF-8 would be stored as invalid UTF-8 and read back as replacement characters, so they are refused with 400
// before anything else looks at them. Bodies are checked as bytes (is it UTF-8?) and after parsing (lone
// surrogates from \u escapes, in keys and values); path segments and query strings are checked percent-decoded.
// U+0000 (NUL) is refused the same way: PostgreSQL cannot store it in text, so it would be a 500 there and stored
// on SQLite; one rule for both stores. The same walk over the body (iterative: server/json-walk.ts) first refuses
// nesting deeper than MAX_JSON_DEPTH, so nothing after this step can overflow the stack on a body.
import { isUtf8 } from 'node:buffer';
import type { NextFunction, Request, Response } from 'express';
import { firstJsonFault, MAX_JSON_DEPTH } from '../json-walk.ts';
import { type ValidationErrorItem, validationFailed } from '../problem.ts';

const REFUSED_TEXT = /[\p{Surrogate}\u0000]/u;

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

const refusedText = (text: string) => REFUSED_TEXT.test(text);

function decodesAsUtf8(text: string): boolean {
  try {
    return !decodeURIComponent(text.replace(/\+/g, ' ')).includes('\u0000');
  } catch {
    return false;
  }
}

const MESSAGE = 'must be well-formed Unicode (UTF-8, no lone surrogates, no U+0000)';
const TOO_DEEP = `nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels`;

export const NOT_UTF8 = 'entity.not.utf8';

/** The problem for a body that is not UTF-8 (see requireUtf8Body). */
export function notUtf8Body() {
  return validationFailed([{ location: 'body', pointer: '', message: MESSAGE }], 'The request body is not UTF-8.');
}

/**
 * For express.json's `verify`: the raw body must be UTF-8. body-parser decorates what is thrown here (it sets
 * `body` and `type` on it), so a plain error is thrown and the error handler turns its type into notUtf8Body().
 */
export function requireUtf8Body(buffer: Buffer): void {
  if (!isUtf8(buffer)) throw Object.assign(new Error('The request body is not UTF-8.'), { type: NOT_UTF8, status: 400 });
}

/**
 * For express.urlencoded's `verify`: the raw body must be UTF-8, and so must every name and value once
 * percent-decoded (`token=%ED%A0%80` is a lone surrogate in ASCII bytes, `a=%FF` no text at all, `a=%zz` not
 * percent-encoding): the parser would quietly read them as U+FFFD or as they stand. The same rule as a query string.
 */
export function requireUtf8Form(buffer: Buffer): void {
  requireUtf8Body(buffer);
  const pairs = buffer.toString('utf8').split('&');
  if (!pairs.every((pair) => pair.split('=').every(decodesAsUtf8))) {
    throw Object.assign(new Error('The request body is not well-formed percent-encoded UTF-8.'), { type: NOT_UTF8, status: 400 });
  }
}

/**
 * After the body is parsed, before anything else walks it: no nesting deeper than MAX_JSON_DEPTH in the body, and
 * no lone surrogates in the body, the path or the query.
 */
export function requireWellFormedInput(req: Request, _res: Response, next: NextFunction): void {
  const inBody = firstJsonFault(req.body, refusedText);
  if (inBody?.kind === 'depth') {
    next(validationFailed([{ location: 'body', pointer: inBody.pointer, message: TOO_DEEP }], `The request body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels.`));
    return;
  }
  const errors: ValidationErrorItem[] = [];
  const url = req.originalUrl;
  const queryStart = url.indexOf('?');
  const path = queryStart === -1 ? url : url.slice(0, queryStart);
  if (!path.split('/').every(decodesAsUtf8)) errors.push({ location: 'path', pointer: '', message: MESSAGE });
  if (queryStart !== -1) {
    for (const pair of url.slice(queryStart + 1).split('&')) {
      const [name = '', value = ''] = pair.split('=', 2);
      if (!decodesAsUtf8(name) || !decodesAsUtf8(value)) {
        errors.push({ location: 'query', pointer: `/${escapePointer(decodesAsUtf8(name) ? decodeURIComponent(name) : '')}`, message: MESSAGE });
      }
    }
  }
  if (inBody !== undefined) errors.push({ location: 'body', pointer: inBody.pointer, message: MESSAGE });
  next(errors.length ? validationFailed(errors, 'The request holds text that is not well-formed Unicode.') : undefined);
}
