// Contract-driven fuzzing with hostile input: at every place of every operation where a string may stand (body
// fields, path, query and header parameters), strings an attacker or a careless client sends. A string the contract
// accepts gets a documented answer that matches its schema, and what comes back is what was sent (no U+FFFD where
// there was none); ill-formed Unicode (a lone surrogate) is refused as a 4xx problem; anything else the contract
// refuses is a 4xx problem. Raw keys sent in paths never come back in an answer, a usage record, a log line or the
// database. Hostile headers (NUL, oversized, non-ASCII) are 4xx problems too, not Node's bare answers.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileStrings, nestedBodies, pointerOf, stringSites, typesOf, validExceptAt } from './arbitraries.ts';
import { follow, type Operation, operations, validatorAt } from './contract.ts';
import {
  buildRequest,
  call,
  expectDocumented,
  expectProblem,
  expectSafe,
  explain,
  FUZZ_RUNS,
  fuzzOptions,
  type FuzzServer,
  type RequestParts,
  startFuzzServer,
  strangerKey,
  validParts,
  wellFormed,
} from './harness.ts';
import { asSent, FORM, type FuzzRequest, UNSENDABLE } from './http.ts';
import { MAX_JSON_DEPTH } from '../../server/json-walk.ts';

const TIMEOUT = 300_000;
/** Anything shaped like an OpenRush API key. */
const RAW_KEY = /or_[0-9A-Za-z]{38}/;

interface HostileCase {
  site: string;
  parts: fc.Arbitrary<RequestParts>;
  /** Is the request valid under the contract (lone surrogates aside)? */
  accepted: (parts: RequestParts) => boolean;
  /** The strings that were sent. */
  sent: (parts: RequestParts) => string[];
}

function casesOf(fuzz: FuzzServer, op: Operation): HostileCase[] {
  // Key-shaped strings of nobody's: the fuzz account's own keys are kept for the test of keys in paths below.
  const hostile = hostileStrings([strangerKey(), strangerKey().slice(0, 30)]);
  const cases: HostileCase[] = [];
  if (op.body) {
    const body = op.body;
    const validate = validatorAt(body.pointer);
    for (const steps of stringSites(body.schema)) {
      // What the server reads (on a form's wire every value is text).
      const json = validExceptAt(body.schema, steps, () => hostile, { pools: fuzz.pools }).filter((value) => asSent(body.contentType, value) !== UNSENDABLE);
      const sentBody = (parts: RequestParts) => asSent(body.contentType, parts.body && 'json' in parts.body ? parts.body.json : undefined);
      cases.push({
        site: `body ${pointerOf(steps)}`,
        parts: fc.tuple(validParts(fuzz, op), json).map(([parts, value]) => ({ ...parts, body: { json: value } })),
        accepted: (parts) => validate(sentBody(parts)) as boolean,
        sent: (parts) => strings(sentBody(parts)),
      });
    }
  }
  for (const parameter of op.parameters) {
    const validate = validatorAt(parameter.pointer);
    const place = (parts: RequestParts, value: string): RequestParts => {
      if (parameter.in === 'path') return { ...parts, path: { ...parts.path, [parameter.name]: value } };
      if (parameter.in === 'query') return { ...parts, query: [...parts.query.filter(([name]) => name !== parameter.name), [parameter.name, value]] };
      return { ...parts, headers: [...parts.headers.filter(([name]) => name !== parameter.name), [parameter.name, value]] };
    };
    const valueOf = (parts: RequestParts) =>
      parameter.in === 'path' ? parts.path[parameter.name] : [...parts.query, ...parts.headers].find(([name]) => name === parameter.name)?.[1];
    // A header carries bytes, not characters: only what a client can put in one (the raw bytes are tested below).
    const values = parameter.in === 'header' ? hostile.filter((value) => /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value)) : hostile;
    cases.push({
      site: `${parameter.in} ${parameter.name}`,
      parts: fc.tuple(validParts(fuzz, op), values).map(([parts, value]) => place(parts, value)),
      // On the wire an integer is decimal digits with an optional "-" (the contract's Limits section).
      accepted: (parts) => {
        const value = valueOf(parts);
        const numeric = typesOf(follow(parameter.pointer).node).has('integer') && value !== undefined && /^-?\d+$/.test(value);
        return validate(numeric ? Number(value) : value) as boolean;
      },
      sent: (parts) => [valueOf(parts) ?? ''],
    });
  }
  return cases;
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([name, inner]) => [name, ...strings(inner)]);
  return [];
}

describe('hostile input at every place a string may stand', () => {
  let fuzz: FuzzServer;

  beforeAll(async () => {
    fuzz = await startFuzzServer();
  });
  afterAll(async () => {
    await fuzz?.close();
  });

  describe.each(operations.map((op) => [op.id, op] as const))('%s', (_, op) => {
    it(`${op.method} ${op.path}: hostile strings are answered as the contract says`, { timeout: TIMEOUT }, async () => {
      const failures: string[] = [];
      for (const hostile of casesOf(fuzz, op)) {
        try {
          await fc.assert(
            fc.asyncProperty(
              hostile.parts.map((parts) => ({ parts, request: buildRequest(fuzz, op, parts, `${op.id}, a hostile string at ${hostile.site}`) })),
              async ({ parts, request }) => {
                const response = await call(fuzz, request);
                expectSafe(fuzz, request, response);
                const sent = hostile.sent(parts);
                if (!sent.every(wellFormed)) {
                  // Not text the API takes (a lone surrogate, a NUL): refused on the way in, never stored mangled.
                  expectProblem(fuzz, request, response, [400]);
                } else if (hostile.accepted(parts)) {
                  expectDocumented(fuzz, op, request, response);
                  if (response.status < 300 && response.text.includes('\ufffd') && !sent.some((text) => text.includes('\ufffd'))) {
                    throw explain(fuzz, request, response, 'the answer holds U+FFFD where the request had none: the text was mangled');
                  }
                } else {
                  expectProblem(fuzz, request, response);
                }
              },
            ),
            fuzzOptions(FUZZ_RUNS, `hostile ${op.id} ${hostile.site}`),
          );
        } catch (error) {
          const cause = (error as Error).cause;
          failures.push(`✗ ${hostile.site}\n${(error as Error).message}${cause instanceof Error ? `\n${cause.message}` : ''}`);
        }
      }
      expect(failures, `${failures.length} places of ${op.id} mishandled hostile strings:\n\n${failures.join('\n\n')}`).toEqual([]);
    });
  });

  // Issue 15: ~8,000 levels of nesting overflowed a recursive walk (a 500). Past the contract's limit a body is a
  // 400 naming the depth, before anything walks it; up to the limit, the depth alone is never the reason.
  // JSON bodies only: a form (application/x-www-form-urlencoded) is a flat list of names and values.
  describe.each(operations.filter((op) => op.body && op.body.contentType !== FORM).map((op) => [op.id, op] as const))('%s', (_, op) => {
    it(`${op.method} ${op.path}: deeply nested bodies are refused past ${MAX_JSON_DEPTH} levels, never a 5xx`, { timeout: TIMEOUT }, async () => {
      await fc.assert(
        fc.asyncProperty(fc.tuple(validParts(fuzz, op), nestedBodies(MAX_JSON_DEPTH, 64 * 1024)), async ([parts, nested]) => {
          const body = { raw: Buffer.from(nested.text), contentType: op.body!.contentType };
          const request = buildRequest(fuzz, op, { ...parts, body }, `${op.id}, ${nested.levels} levels of ${nested.shape}`);
          const response = await call(fuzz, request);
          expectSafe(fuzz, request, response);
          const tooDeep = (problem: Record<string, unknown>) =>
            ((problem.errors ?? []) as Array<{ message: string }>).some((error) => error.message.includes(`deeper than ${MAX_JSON_DEPTH} levels`));
          if (nested.levels > MAX_JSON_DEPTH) {
            if (!tooDeep(expectProblem(fuzz, request, response, [400]))) throw explain(fuzz, request, response, 'a body past the depth limit is not refused for its depth');
          } else if (response.status >= 400 && tooDeep(expectProblem(fuzz, request, response))) {
            throw explain(fuzz, request, response, `a body of ${nested.levels} levels is refused for its depth`);
          }
        }),
        fuzzOptions(FUZZ_RUNS, `nested ${op.id}`),
      );
    });
  });

  it('raw keys sent in a path never come back: not in usage records, logs or the database', { timeout: TIMEOUT }, async () => {
    const failures: string[] = [];
    const authenticated = operations.filter((op) => !op.public);
    for (const op of authenticated) {
      for (const secret of fuzz.secrets.slice(0, 3)) {
        const parts: RequestParts = { path: {}, query: [], headers: [], auth: { kind: 'key', as: 'bearer' } };
        for (const parameter of op.parameters.filter((p) => p.in === 'path')) parts.path[parameter.name] = secret;
        const template = buildRequest(fuzz, op, parts, '').target;
        for (const rawPath of [template, `${template}/${secret}`, `${template.replace(/\/[^/]*$/, '')}/${secret}`]) {
          const request = buildRequest(fuzz, op, { ...parts, rawPath }, `${op.id}, a raw key in the path`);
          const response = await call(fuzz, request);
          try {
            expectSafe(fuzz, request, response);
          } catch (error) {
            failures.push((error as Error).message);
          }
        }
      }
    }
    // What usage: read shows, for any key of the account.
    const usage = buildRequest(fuzz, operations.find((op) => op.id === 'listUsage')!, { path: {}, query: [['limit', '500']], headers: [], auth: { kind: 'key', as: 'x-api-key' } }, 'the usage records');
    const records = await call(fuzz, usage);
    expect(records.status).toBe(200);
    const leaked = (JSON.parse(records.text) as Array<{ endpoint: string; error_message: string | null }>).filter((record) =>
      RAW_KEY.test(`${record.endpoint} ${record.error_message ?? ''}`),
    );
    expect(leaked.map((record) => `${record.endpoint} | ${record.error_message}`), 'usage records that hold a raw key').toEqual([]);
    expect(failures).toEqual([]);
    expect(fuzz.server.logs.filter((line) => fuzz.secrets.some((secret) => line.includes(secret))), 'log lines that hold a raw key').toEqual([]);
    const stored = await fuzz.server.database.dumpText();
    expect(fuzz.secrets.filter((secret) => stored.includes(secret)).length, 'raw keys in the database').toBe(0);
  });

  it('hostile header bytes are 4xx problems, not bare answers', { timeout: TIMEOUT }, async () => {
    const failures: string[] = [];
    const headers: Array<[string, [string, string]]> = [
      ['a NUL in a header', ['X-Fuzz', 'a\u0000b']],
      ['a NUL in the credential', ['Authorization', `Bearer ${fuzz.key}\u0000`]],
      ['an oversized header', ['X-Fuzz', 'a'.repeat(20_000)]],
      ['a control character in a header', ['X-Fuzz', 'a\u0001b']],
      ['a header name with a space', ['X Fuzz', '1']],
    ];
    for (const op of operations) {
      for (const [what, header] of headers) {
        const request: FuzzRequest = {
          ...buildRequest(fuzz, op, { path: Object.fromEntries(op.parameters.filter((p) => p.in === 'path').map((p) => [p.name, 'cred_01KW1WT6F8KK8E8PW71NXT39GC'])), query: [], headers: [header], auth: op.public ? { kind: 'none' } : { kind: 'key', as: 'bearer' } }, ''),
          note: `${op.id}, ${what}`,
        };
        try {
          const response = await call(fuzz, request);
          expectSafe(fuzz, request, response);
          expectProblem(fuzz, request, response);
        } catch (error) {
          failures.push((error as Error).message);
        }
      }
    }
    // Bytes that are not ASCII, where a key should be: refused as a credential.
    for (const op of operations.filter((candidate) => !candidate.public)) {
      const parts: RequestParts = { path: {}, query: [], headers: [['X-API-Key', 'ключ']], auth: { kind: 'none' } };
      for (const parameter of op.parameters.filter((p) => p.in === 'path')) parts.path[parameter.name] = 'cred_01KW1WT6F8KK8E8PW71NXT39GC';
      const request = buildRequest(fuzz, op, parts, `${op.id}, a key of non-ASCII bytes`);
      try {
        const response = await call(fuzz, request);
        expectSafe(fuzz, request, response);
        expectProblem(fuzz, request, response, [401]);
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    expect(failures, failures.join('\n\n')).toEqual([]);
  });
});
